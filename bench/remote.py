"""``python3 -m bench --remote``: recipe past one machine (issue 17), on the same corpus.

- **fresh clone, warm shared cache**: a new checkout path, an empty store, the nginx cache
  already filled (by a realise with ``--remote-upload`` of another checkout, untimed):
  ``recipe realise --remote-cache URL``; against ``make`` cold in a new clone, and against
  make with ccache 4.7 on an empty local cache whose HTTP remote storage (``remote_storage =
  http://...|layout=bazel``, another nginx) was filled the same way. Each run is checked: recipe
  compiled nothing (its log says the path was substituted), ccache got every unit from the remote.
  recipe runs twice, each time in a new checkout path with an empty store: in-process, and
  served (``recipe server start`` ran before the timing, as a user has it; the native client).
  A served run is checked to be one: the client used no more CPU than the client alone does,
  and the server's processes did the work. Its CPU seconds are the client's plus those of the
  server's child that ran the command, with what it waited for (the server's ledger, which
  ``recipe server status --json`` reports; the kernel reaps the server's children, so no rusage
  the bench can read holds them), and the server's own.
  What recipe asked the server is counted from nginx's access log (requests, connections,
  bytes), and the machine's load average is recorded at the start and the end:
  on a shared machine, CPU seconds are the steadier figure.
- **2 Dask workers**: a cold realise through ``--executor`` (a scheduler and two one-thread
  workers on this machine, started afresh with an empty shared cache each time, untimed) against
  a cold local ``realise -j 2``. On one machine this measures the executor's overhead, not a
  speed-up: the workers share the same two cores.

Everything listens on 127.0.0.1 only (the servers of ``tests/servers.py``).
"""

from __future__ import annotations

import os
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import corpus
from bench.process import BenchError, Sample, output, remove_tree, timed
from bench.tools import Make, Recipe
from tests.servers import DaskCluster, Nginx

TARGETS = {"fresh_clone": {"make": 0.15, "ccache_remote": 0.5}}
#: The fresh clone's two rows: in-process, and served by a running ``recipe server``.
RECIPES = ("recipe", "served")


def run(work: Path, units: int, seed: int, jobs: int, reps: int,
        log: Callable[[str], None]) -> dict[str, Any]:
    origin = work / "origin"
    corpus.write_app(origin, units, seed)
    recipe = Recipe(jobs, work / "venv")
    cc = recipe.compiler(origin / "plan.yaml", work / "probe-store")
    samples: dict[str, dict[str, list[Sample]]] = {"fresh_clone": {}, "dask": {}}
    load = [os.getloadavg()[0]]
    requests: list[dict[str, int]] = []

    def add(scenario: str, tool: str, sample: Sample) -> None:
        samples[scenario].setdefault(tool, []).append(sample)
        log(f"{scenario:<12} {tool:<14} {sample.seconds:8.3f} s  cpu {sample.cpu:7.3f} s")

    with Nginx(work / "nginx") as cache, Nginx(work / "nginx-ccache") as ccache_server:
        log("filling the shared caches (not measured)")
        output([*recipe.argv, "realise", str(origin / "plan.yaml"), "--store",
                str(work / "store-origin"), "--remote-cache", cache.url, "--remote-upload",
                "-j", str(jobs)], origin, recipe.env)
        remote = f"{ccache_server.url}|layout=bazel"
        filler = _ccache(origin / "app", cc, jobs, work / "ccache-origin", remote)
        filler.build()
        recipe.start_server()  # as a user who ran 'recipe server start' has it
        try:
            for rep in range(reps):
                clone = _clone(origin, work / f"clone-{rep}" / "src")  # a new path every time
                make = Make(clone / "app", cc, jobs)
                add("fresh_clone", "make", make.build())
                make.untimed("clean")
                ccache = _ccache(clone / "app", cc, jobs, work / f"ccache-{rep}", remote)
                ccache.ccache_zero()
                add("fresh_clone", "ccache_remote", ccache.build())
                stats = ccache.ccache_stats()
                if stats.get("remote_storage_hit", 0) < units or stats.get("cache_miss", 0):
                    raise BenchError(f"ccache's remote gave {stats.get('remote_storage_hit', 0)}"
                                     f" of {units} units (misses {stats.get('cache_miss', 0)})")
                remove_tree(clone.parent)
                # In-process and served alternate which goes first; each its own new checkout
                # path and empty store.
                for tool in (("recipe", "served") if rep % 2 == 0 else ("served", "recipe")):
                    clone = _clone(origin, work / f"clone-{rep}-{tool}" / "src")
                    store = work / f"store-{rep}-{tool}"
                    before = _log(cache)
                    argv = ["realise", str(clone / "plan.yaml"), "--store", str(store),
                            "--remote-cache", cache.url, "-j", str(jobs)]
                    if tool == "recipe":
                        sample = timed([*recipe.argv, *argv], clone, recipe.env)
                    else:
                        sample = _served(recipe, argv, clone)
                    add("fresh_clone", tool, sample)
                    if tool == "recipe":
                        requests.append(_requests(_log(cache)[len(before):]))
                    path, valid = recipe.path(clone / "plan.yaml", store)
                    if not valid or recipe.compiled(store, path):
                        raise BenchError(f"fresh clone ({tool}): recipe compiled units despite "
                                         "the shared cache")
                    remove_tree(clone.parent)
                    remove_tree(store)
        finally:
            recipe.stop_server()

    for rep in range(reps):
        store = work / f"local-{rep}"
        add("dask", "local", timed([*recipe.argv, "realise", str(origin / "plan.yaml"),
                                    "--store", str(store), "-j", str(jobs)], origin,
                                   recipe.env))
        remove_tree(store)
        with Nginx(work / f"nginx-dask-{rep}") as cache, \
                DaskCluster(work / f"dask-{rep}", workers=2) as cluster:
            store = work / f"dask-store-{rep}"
            add("dask", "dask", timed(
                [*recipe.argv, "realise", str(origin / "plan.yaml"), "--store", str(store),
                 "--remote-cache", cache.url, "--executor", cluster.url, "-j", str(jobs)],
                origin, recipe.env))
            path, _valid = recipe.path(origin / "plan.yaml", store)
            executed = output([*recipe.argv, "store", "log", path, "--store", str(store)],
                              origin, recipe.env).count("# executed on ")
            if executed < units:
                raise BenchError(f"2 Dask workers: only {executed} actions ran on the cluster")
        remove_tree(store)
    load.append(os.getloadavg()[0])
    summary = _summary(samples)
    summary["load_average"] = {"start": round(load[0], 2), "end": round(load[1], 2)}
    summary["recipe_requests"] = requests[len(requests) // 2]
    return summary


def _served(recipe: Recipe, argv: list[str], clone: Path) -> Sample:
    """``recipe ARGV`` by the native client and the running server (``Recipe.served``: all
    the CPU time the command took); the server's processes must have done the work."""
    sample = recipe.served(argv, clone)
    if sample.cpu - (sample.client or 0.0) < 0.02:
        raise BenchError(f"fresh clone, served: the server's processes used only "
                         f"{sample.cpu - (sample.client or 0.0):.3f} s of CPU: the command "
                         "did not run there")
    return sample


def _log(server: Nginx) -> list[str]:
    return (server.root / "access.log").read_text().splitlines()


def _requests(lines: list[str]) -> dict[str, int]:
    """What one run asked nginx (tests/servers.py's log format: combined, then
    ``c$connection``)."""
    return {"requests": len(lines),
            "connections": len({line.rsplit(" c", 1)[1] for line in lines}),
            "bytes": sum(int(line.split('" ', 1)[1].split()[1]) for line in lines)}


def _clone(origin: Path, dest: Path) -> Path:
    """A copy of the checkout at a new path, without what a build left in it."""
    shutil.copytree(origin, dest, ignore=shutil.ignore_patterns(".recipe", "build", "store*"))
    return dest


def _ccache(folder: Path, cc: str, jobs: int, ccache_dir: Path, remote: str) -> Make:
    make = Make(folder, cc, jobs, ccache_dir)
    make.env["CCACHE_REMOTE_STORAGE"] = remote
    return make


def _summary(samples: dict[str, dict[str, list[Sample]]]) -> dict[str, Any]:
    median = {s: {t: statistics.median(x.seconds for x in xs) for t, xs in tools.items()}
              for s, tools in samples.items()}
    cpu = {s: {t: statistics.median(x.cpu for x in xs) for t, xs in tools.items()}
           for s, tools in samples.items()}
    fresh, fresh_cpu = median["fresh_clone"], cpu["fresh_clone"]
    refs = ("make", "ccache_remote")
    ratios = {tool: {ref: fresh[tool] / fresh[ref] for ref in refs} for tool in RECIPES}
    cpu_ratios = {tool: {ref: fresh_cpu[tool] / fresh_cpu[ref] for ref in refs}
                  for tool in RECIPES}
    return {"median_seconds": median, "median_cpu_seconds": cpu, "ratios": ratios,
            "cpu_ratios": cpu_ratios,
            "dask_overhead": median["dask"]["dask"] / median["dask"]["local"],
            "met": {tool: {ref: ratios[tool][ref] <= limit
                           for ref, limit in TARGETS["fresh_clone"].items()}
                    for tool in RECIPES},
            "samples": {s: {t: [round(x.seconds, 4) for x in xs] for t, xs in tools.items()}
                        for s, tools in samples.items()},
            "cpu_samples": {s: {t: [round(x.cpu, 4) for x in xs] for t, xs in tools.items()}
                            for s, tools in samples.items()}}


def table(summary: dict[str, Any]) -> str:
    fresh = summary["median_seconds"]["fresh_clone"]
    dask = summary["median_seconds"]["dask"]
    rows = []
    for tool, title in (("recipe", "fresh clone, warm shared cache"),
                        ("served", "  the same, served (recipe server)")):
        for ref, name, limit in (("make", "make cold", "<= 0.15 x"),
                                 ("ccache_remote", "make + ccache remote", "<= 0.5 x")):
            rows.append([title if ref == "make" else "",
                         f"{fresh[tool]:.3f}" if ref == "make" else "", name,
                         f"{fresh[ref]:.3f}", f"{summary['ratios'][tool][ref]:.2f}", limit,
                         "yes" if summary["met"][tool][ref] else "NO"])
    rows.append(["cold, 2 Dask workers (one machine)", f"{dask['dask']:.3f}",
                 "recipe -j 2 local", f"{dask['local']:.3f}", f"{summary['dask_overhead']:.2f}",
                 "(overhead)", "-"])
    table = tabulate(rows, headers=["scenario", "recipe s", "reference", "reference s",
                                    "recipe/ref", "target", "met"], disable_numparse=True)
    cpu, asked = summary["median_cpu_seconds"]["fresh_clone"], summary.get("recipe_requests", {})
    load = summary.get("load_average", {})
    return (f"{table}\n\nfresh clone, CPU seconds (median): recipe {cpu['recipe']:.3f}, served "
            f"{cpu['served']:.3f} (client + server's processes), make {cpu['make']:.3f}, "
            f"make + ccache remote {cpu['ccache_remote']:.3f} (recipe/ccache "
            f"{summary['cpu_ratios']['recipe']['ccache_remote']:.2f}, served/ccache "
            f"{summary['cpu_ratios']['served']['ccache_remote']:.2f})\n"
            f"recipe's requests to the shared cache: {asked.get('requests', '?')} on "
            f"{asked.get('connections', '?')} connection(s), {asked.get('bytes', '?')} bytes\n"
            f"load average (1 min): {load.get('start', '?')} at the start, "
            f"{load.get('end', '?')} at the end")
