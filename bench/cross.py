"""``python3 -m bench --cross``: cross builds with zig, side by side with make (issue 14).

On the 100-unit corpus, for aarch64-linux-musl, zig's libc already in its cache (one untimed
build of each tool first: recipe and make link with different flags, so each fills its own
libc variant), ``--reps`` times, interleaved:

  cold     recipe: a fresh store, ``recipe realise -t arm64``; make: ``make clean`` then
           ``make -j2 CC="zig cc -target aarch64-linux-musl"``
  edit_c   one unit gets a new constant; both build again

Then the seed's figures on the bundled plan (recipes/): for each cross target, ``recipe
realise -t T`` into a fresh store (zig's cache warm: what a later build of a target costs),
then the same target under another name into the same store (every action the same, so a warm
store: the derivation is new, each compile and link a cache hit) and the saving it makes.
Targets: cold and edit at most make's time (as issue 16's), a target under 30 s, a warm
rebuild saving 90 %.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import corpus
from bench.process import BenchError, Sample, remove_tree, timed
from bench.tools import REPO, Make, Recipe

TRIPLE = "aarch64-linux-musl"
CROSS = f"  arm64: {{triple: {TRIPLE}, toolchain: zig}}\n"
LIMITS = {"cold": 1.0, "edit_c": 1.0}
PER_TARGET = 30.0  # seconds, the seed's goal for one target of the bundled plan
SAVING = 0.90  # the seed's goal for a warm store's rebuild
C_PROJECTS = ("strutil", "wordcount", "histogram", "tally")


def zig_cache() -> Path:
    """The zig cache both tools share: the test suite's (warm), or a private one."""
    default = Path(tempfile.gettempdir()) / f"recipe-zig-cache-{os.getuid()}"
    return Path(os.environ.get("RECIPE_ZIG_CACHE") or default)


def zig() -> str:
    import ziglang

    return str(Path(ziglang.__file__).parent / "zig")


def run(work: Path, units: int, seed: int, jobs: int, reps: int,
        log: Callable[[str], None]) -> dict[str, Any]:
    cache = zig_cache()
    recipe = Recipe(jobs, work / "venv")
    recipe.env["RECIPE_ZIG_CACHE"] = str(cache)
    trees = {tool: work / tool for tool in ("recipe", "make")}
    for tree in trees.values():
        corpus.write_app(tree, units, seed)
    plan = trees["recipe"] / "plan.yaml"
    plan.write_text(plan.read_text().replace("\ndefault_targets:",
                                             "\n" + CROSS + "default_targets:"))
    make = Make(trees["make"] / "app", f"{zig()} cc -target {TRIPLE}", jobs)
    make.env["ZIG_GLOBAL_CACHE_DIR"] = make.env["ZIG_LOCAL_CACHE_DIR"] = str(cache)
    stores = work / "stores"

    def realise(store: Path) -> Sample:
        return timed([*recipe.argv, "realise", str(plan), "--store", str(store), "-t", "arm64",
                      "-j", str(jobs)], plan.parent, recipe.env)

    log("warming zig's libc for both tools (not measured)")
    realise(stores / "warm")
    make.build()
    make.untimed("clean")
    samples: dict[str, dict[str, list[Sample]]] = {"cold": {}, "edit_c": {}}
    edited = corpus.unit_name(units // 2)
    for rep in range(reps):
        store = stores / f"rep{rep}"
        for scenario in ("cold", "edit_c"):
            if scenario == "edit_c":
                for tree in trees.values():
                    corpus.edit(tree / "app" / edited, rep + 1)
            order = ("recipe", "make") if rep % 2 == 0 else ("make", "recipe")
            for tool in order:
                if tool == "make" and scenario == "cold":
                    make.untimed("clean")
                if tool == "make" and len(make.pending()) != (units if scenario == "cold"
                                                              else 1):
                    raise BenchError(f"{scenario}: make would compile {make.pending()[:5]}")
                sample = realise(store) if tool == "recipe" else make.build()
                samples[scenario].setdefault(tool, []).append(sample)
                log(f"rep {rep + 1}/{reps}  {scenario:<7} {tool:<6} {sample.seconds:8.3f} s"
                    f"  cpu {sample.cpu:7.3f} s")
        remove_tree(store)
    return {**_summary(samples), "targets": bundled(work, recipe, jobs, log)}


def bundled(work: Path, recipe: Recipe, jobs: int,
            log: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Per cross target of the bundled plan: a build into a fresh store (zig warm) and a
    rebuild from a warm store (the same target under another name)."""
    tree = work / "recipes"
    shutil.copytree(REPO / "recipes", tree, ignore=shutil.ignore_patterns("store*", ".recipe"))
    plan = tree / "plan.yaml"
    text = plan.read_text()
    targets = [name for name in ("arm64", "riscv64", "arm64-gnu", "windows", "wasi", "macos")
               if f"\n  {name}: " in text]
    again = "".join(f"  {name}-again:{_spec(text, name)}\n" for name in targets)
    plan.write_text(text.replace("\ndefault_targets:", "\n" + again + "default_targets:"))
    results = {}
    for name in targets:
        store = work / "stores" / f"bundled-{name}"
        # rstats (Rust) builds where rustc has the target's std (Debian's, for Windows and WASI)
        rust = name in ("windows", "wasi") and Path(f"/usr/lib/rustlib/{_rust(name)}").is_dir()
        projects = [a for p in (*C_PROJECTS, *(["rstats"] if rust else [])) for a in ("-p", p)]
        argv = [*recipe.argv, "realise", str(plan), "--store", str(store), "-j", str(jobs),
                *projects]
        cold = timed([*argv, "-t", name], tree, recipe.env)
        warm = timed([*argv, "-t", f"{name}-again"], tree, recipe.env)
        results[name] = {"seconds": round(cold.seconds, 2), "cpu": round(cold.cpu, 2),
                         "warm_seconds": round(warm.seconds, 2),
                         "saving": round(1 - warm.seconds / cold.seconds, 3),
                         "projects": len(projects) // 2}
        log(f"bundled {name:<10} {cold.seconds:7.2f} s, warm store {warm.seconds:6.2f} s")
        remove_tree(store)
    return results


def _spec(text: str, name: str) -> str:
    line = next(x for x in text.splitlines() if x.startswith(f"  {name}: "))
    return line.split(":", 1)[1].split("#")[0].rstrip()


def _rust(name: str) -> str:
    return {"windows": "x86_64-pc-windows-gnu", "wasi": "wasm32-wasi"}[name]


def _summary(samples: dict[str, dict[str, list[Sample]]]) -> dict[str, Any]:
    median = {s: {t: statistics.median(x.seconds for x in xs) for t, xs in tools.items()}
              for s, tools in samples.items()}
    ratios = {s: tools["recipe"] / tools["make"] for s, tools in median.items()}
    return {"median_seconds": median, "ratios": ratios,
            "met": {s: ratios[s] <= LIMITS[s] for s in ratios},
            "samples": {s: {t: [round(x.seconds, 4) for x in xs] for t, xs in tools.items()}
                        for s, tools in samples.items()}}


def table(summary: dict[str, Any]) -> str:
    rows = []
    titles = {"cold": f"cold build, {TRIPLE} (zig warm)", "edit_c": "one .c edited"}
    for scenario, title in titles.items():
        median = summary["median_seconds"][scenario]
        rows.append([title, f"{median['recipe']:.3f}", "make -j2, zig cc",
                     f"{median['make']:.3f}", f"{summary['ratios'][scenario]:.2f}",
                     f"<= {LIMITS[scenario]} x", "yes" if summary["met"][scenario] else "NO"])
    for name, figures in summary["targets"].items():
        rows.append([f"bundled plan, {name} ({figures['projects']} projects)",
                     f"{figures['seconds']:.2f}", "", "", "", f"< {PER_TARGET:.0f} s",
                     "yes" if figures["seconds"] < PER_TARGET else "NO"])
        rows.append([f"  warm store rebuild, {name}", f"{figures['warm_seconds']:.2f}",
                     "saving", f"{figures['saving']:.0%}", "", f">= {SAVING:.0%}",
                     "yes" if figures["saving"] >= SAVING else "NO"])
    return tabulate(rows, headers=["scenario", "recipe s", "reference", "reference s",
                                   "recipe/ref", "target", "met"], disable_numparse=True)
