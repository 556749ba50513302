"""``python3 -m bench.store``: the store at scale (issue 16, "Also measured, at scale").

Generates two synthetic stores through recipe's own store API, a small one and one ten times
bigger (default 1,000 and 10,000 valid paths, with 100 CAS blobs per path: 1,000,000 at full
scale), then measures on each, medians of ``--reps``:

  open      ``Store.open(root, create=False)`` and a first query (``is_valid``), in-process
  ls        ``recipe store ls``
  gc        ``recipe store gc --dry-run``
  noop      a no-op ``recipe realise`` of a one-project plan whose output lives in that store
  verify    ``recipe store verify``: bytes of the paths' files per second, against hashlib's
            sha256 of the same bytes (read the same way) in the same run

Each valid path is a small tree (a program, a library, a header, a symlink, a note naming its
references) with 0 to 3 references to earlier paths; every tenth path is rooted. Each path
keeps 50 blobs (its sources) and one action result (naming two outputs); the other blobs are
garbage. Blobs are written in the CAS layout directly (``cas/<hex[:2]>/<hex>``, read-only:
what ``Cas.put_blob`` writes, without its temporary file and rename; a sample is then read
back through ``Store.read_blob``). Targets: the bigger store's time over the smaller's at most
10 x (linear; the no-op and the open ideally flat), verify at least 1 GB/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import report
from bench.process import BenchError, in_work_folder, output, progress, timed
from bench.tools import Recipe

BLOBS_PER_PATH = 100
KEPT_BLOBS = 50  # of each path's share: kept by it; the rest are garbage
LINEAR = 10.0  # the bigger store is ten times the smaller: linear growth is at most 10 x
GBPS = 1.0

_PLAN = """\
kind: plan
projects: ["hello/project.yaml"]
targets:
  release: {opt: release}
default_targets: [release]
"""
_PROJECT = """\
kind: project
name: hello
version: 1.0.0
language: c
standard: c17
sources: ["main.c"]
outputs:
  - {name: hello, kind: executable}
"""


# -- generation -------------------------------------------------------------------------------

def write_blobs(state: Path, count: int, seed: int) -> list[str]:
    """``count`` distinct small blobs (30 to 400 bytes), as ``Cas.put_blob`` lays them out."""
    from engine.store.cas import Cas

    cas = Cas(state, lambda _suffix: Path("/nonexistent"))  # only its layout is used
    rng = random.Random(seed)
    digests = []
    made: set[str] = set()
    for i in range(count):
        data = f"blob {i} {rng.getrandbits(64):016x}\n".encode() * rng.randint(1, 12)
        digest = hashlib.sha256(data).hexdigest()
        target = cas.blob_path(digest)
        if target.parent.name not in made:
            target.parent.mkdir(exist_ok=True)
            made.add(target.parent.name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        try:
            os.write(fd, data)
            os.fchmod(fd, 0o444)
        finally:
            os.close(fd)
        digests.append(digest)
    return digests


def _tree(folder: Path, label: str, refs: list[str], pool: bytes, rng: random.Random) -> int:
    """A small output: about 100 KB in four files and a symlink. Its files' bytes."""
    for sub in ("bin", "lib", "include"):
        (folder / sub).mkdir(parents=True)
    names = "".join(f"/store/{ref}\n" for ref in refs).encode()
    total = 0
    for file, size, mode in ((f"bin/{label}", rng.randint(40_000, 90_000), 0o755),
                             (f"lib/lib{label}.a", rng.randint(10_000, 50_000), 0o644),
                             (f"include/{label}.h", rng.randint(200, 3000), 0o644)):
        start = rng.randrange(len(pool) - size)
        data = label.encode() + names + pool[start:start + size]
        (folder / file).write_bytes(data)
        os.chmod(folder / file, mode)
        total += len(data)
    os.symlink(f"lib{label}.a", folder / "lib" / f"lib{label}.so")
    note = "".join(f"{ref}\n" for ref in refs).encode()
    (folder / "REFERENCES").write_bytes(note)
    return total + len(note)


def generate(root: Path, paths: int, blobs: int, seed: int) -> dict[str, Any]:
    """A store at ``root``: ``paths`` valid paths, ``blobs`` blobs, ``paths`` action results,
    a root on every tenth path. What was made, with the time it took."""
    from engine.store import Store

    started = time.perf_counter()
    rng = random.Random(seed)
    pool = random.Random(seed + 1).randbytes(1 << 20)
    with Store.open(root) as store:
        digests = write_blobs(store.state, blobs, seed)
        for digest in random.Random(seed).sample(digests, min(len(digests), 100)):
            store.read_blob(digest)  # checked as every read is: the layout is the CAS's
        names: list[str] = []
        file_bytes = 0
        per_path = max(1, blobs // max(paths, 1))
        for i in range(paths):
            label = f"lib{i:05d}"
            refs = sorted(set(rng.sample(names[-200:], min(len(names), rng.randint(0, 3)))))
            name = store.make_name(f"bench {seed} {i}", label)
            tree = store.temp_dir(label)
            out = tree / "out"
            file_bytes += _tree(out, label, refs, pool, rng)
            key = f"bench-{seed}-{i:06d}"
            share = digests[i * per_path:(i + 1) * per_path]
            outputs = share[KEPT_BLOBS:KEPT_BLOBS + 2]
            store.put_action(key, {"outputs": {f"o{n}": d for n, d in enumerate(outputs)}})
            store.register(name, out, f"bench derivation {i}", refs,
                                  log=f"built {label}\n".encode(), actions=[key],
                                  blobs=share[:KEPT_BLOBS])
            os.rmdir(tree)
            if i % 10 == 9:
                store.add_root(f"bench/{i}", name)
            names.append(name)
    return {"paths": paths, "blobs": blobs, "file_bytes": file_bytes, "last": names[-1],
            "seconds": round(time.perf_counter() - started, 1)}


# -- measuring --------------------------------------------------------------------------------

def open_seconds(root: Path, name: str) -> tuple[float, float]:
    """``Store.open`` and a first query, in this process: wall and CPU seconds."""
    from engine.store import Store

    cpu, start = time.process_time(), time.perf_counter()
    store = Store.open(root, create=False)
    try:
        if not store.is_valid(name):
            raise BenchError(f"{name} is not valid in {root}")
    finally:
        store.close()
    return time.perf_counter() - start, time.process_time() - cpu


def sha256_seconds(root: Path) -> tuple[float, float, int]:
    """hashlib's sha256 of every regular file of every valid path, read whole (1 MB reads
    above 1 MB), one thread: the reference of verify. Wall and CPU seconds, and bytes."""
    files = []
    for name in os.listdir(root):
        if name.startswith("."):
            continue
        for folder, _dirs, found in os.walk(root / name):
            files += [os.path.join(folder, f) for f in found
                      if not os.path.islink(os.path.join(folder, f))]
    cpu, start = time.process_time(), time.perf_counter()
    total = 0
    for file in files:
        with open(file, "rb", buffering=0) as f:
            digest = hashlib.sha256()
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                total += len(chunk)
    return time.perf_counter() - start, time.process_time() - cpu, total


def small_plan(work: Path) -> Path:
    (work / "hello").mkdir(parents=True)
    (work / "plan.yaml").write_text(_PLAN)
    (work / "hello" / "project.yaml").write_text(_PROJECT)
    (work / "hello" / "main.c").write_text('#include <stdio.h>\n'
                                          'int main(void) { puts("hello"); return 0; }\n')
    return work / "plan.yaml"


def measure_store(recipe: Recipe, root: Path, made: dict[str, Any], plan: Path, reps: int
                  ) -> dict[str, list[float]]:
    """Every sample on the store at ``root``, interleaved repetition by repetition."""
    store = ["--store", str(root)]
    base = recipe.argv
    output([*base, "realise", str(plan), *store, "-j", str(recipe.jobs)], plan.parent,
           recipe.env)  # builds hello into the big store (not measured)
    listing = output([*base, "store", "ls", *store, "--json"], plan.parent, recipe.env)
    if len(json.loads(listing)) != made["paths"] + 1:
        raise BenchError(f"store ls of {root} does not list {made['paths'] + 1} paths")
    # Once each, not measured: the first no-op after the build, and the first run of each
    # command compiles the venv's byte code.
    for argv in (["realise", str(plan), *store, "-j", str(recipe.jobs)], ["store", "ls", *store],
                 ["store", "gc", "--dry-run", *store], ["store", "verify", *store]):
        output([*base, *argv], plan.parent, recipe.env)
    samples: dict[str, list[float]] = {}

    def add(key: str, wall: float, cpu: float) -> None:
        samples.setdefault(key, []).append(wall)
        samples.setdefault(f"{key}_cpu", []).append(cpu)

    def run(key: str, *argv: str) -> None:
        sample = timed([*base, *argv, *store], plan.parent, recipe.env)
        add(key, sample.seconds, sample.cpu)

    for _ in range(reps):
        add("open", *open_seconds(root, made["last"]))
        run("ls", "store", "ls")
        run("gc", "store", "gc", "--dry-run")
        sample = recipe.realise(plan, root)
        add("noop", sample.seconds, sample.cpu)
        run("verify", "store", "verify")
        wall, cpu, total = sha256_seconds(root)
        add("sha256", wall, cpu)
        made["file_bytes"] = total  # the generated paths' and hello's
    return samples


ROWS = (("open", "open the store + first query (in-process)"),
        ("ls", "recipe store ls"),
        ("gc", "recipe store gc --dry-run"),
        ("noop", "no-op recipe realise, output in the store"))


def summarise(sizes: list[dict[str, Any]]) -> list[list[str]]:
    """The table: per operation, the medians at each size (wall, CPU), the ratio, the target,
    met (by wall time)."""
    lines = []
    for key, title in ROWS:
        a, b = (statistics.median(s["samples"][key]) for s in sizes)
        ca, cb = (statistics.median(s["samples"][f"{key}_cpu"]) for s in sizes)
        lines.append([title, f"{a:.3f} s (cpu {ca:.3f})", f"{b:.3f} s (cpu {cb:.3f})",
                      f"{b / a:.2f} x (cpu {cb / ca:.2f})", f"<= {LINEAR:g} x",
                      "met" if b / a <= LINEAR else "missed"])
    for size in sizes:
        median = {k: statistics.median(v) for k, v in size["samples"].items()}
        gb = size["made"]["file_bytes"] / 1e9
        size["verify_gbps"], size["sha256_gbps"] = gb / median["verify"], gb / median["sha256"]
        lines.append([f"recipe store verify, {size['made']['paths']:,} paths ({gb:.2f} GB)",
                      f"{median['verify']:.3f} s (cpu {median['verify_cpu']:.3f})",
                      f"{gb / median['verify']:.2f} GB/s (cpu {gb / median['verify_cpu']:.2f})",
                      f"sha256 {gb / median['sha256']:.2f} GB/s "
                      f"(cpu {gb / median['sha256_cpu']:.2f})",
                      f">= {GBPS:g} GB/s", "met" if gb / median["verify"] >= GBPS else "missed"])
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench.store",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--paths", type=int, default=10_000,
                        help="valid paths of the bigger store (default 10000; the smaller "
                             "has a tenth)")
    parser.add_argument("--blobs", type=int, help="blobs of the bigger store (default 100 "
                        "per path; the smaller has a tenth)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="1,000 paths, 100,000 blobs, one repetition: a smoke run")
    parser.add_argument("--seed", type=int, default=1, help="seed (default 1)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.paths, args.reps = min(args.paths, 1000), 1
    if args.blobs is None:
        args.blobs = args.paths * BLOBS_PER_PATH
    if args.paths < 10 or args.reps < 1 or args.blobs < 0:
        parser.error("--paths must be 10 or more, --reps 1 or more")
    return args


def run(args: argparse.Namespace, work: Path, log: Callable[[str], None]
        ) -> tuple[str, dict[str, Any]]:
    info = report.machine("cc")
    recipe = Recipe(2, work / "venv")
    plan = small_plan(work / "plan")
    sizes = []
    for paths, blobs in ((args.paths // 10, args.blobs // 10), (args.paths, args.blobs)):
        root = work / f"store-{paths}"
        log(f"generating {paths:,} paths and {blobs:,} blobs in {root}")
        made = generate(root, paths, blobs, args.seed)
        log(f"  {made['seconds']} s; measuring ({args.reps} repetition(s))")
        sizes.append({"made": made, "samples": measure_store(recipe, root, made, plan,
                                                             args.reps)})
    info["load_average_end"] = list(os.getloadavg())
    lines = summarise(sizes)
    small, big = (s["made"] for s in sizes)
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    end = ", ".join(f"{x:.2f}" for x in info["load_average_end"])
    head = "\n".join([
        f"recipe store at scale, {info['date']}  (recipe {info['recipe']})",
        f"machine: {info['cores']} cores, {info['cpu']}, {info['kernel']}, "
        f"Python {info['python']}; load {load} at the start, {end} at the end",
        f"stores:  {small['paths']:,} and {big['paths']:,} paths, {small['blobs']:,} and "
        f"{big['blobs']:,} blobs; {args.reps} repetition(s), medians",
    ])
    text = head + "\n\n" + tabulate(
        lines, headers=["operation", f"{small['paths']:,} paths", f"{big['paths']:,} paths",
                        "ratio", "target", "met"], disable_numparse=True)
    return text, {"machine": info, "config": vars(args) | {"json": None}, "sizes": sizes}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    done = in_work_folder("recipe-bench-store-", args.keep, lambda work: run(args, work, progress))
    if done is None:
        return 1
    text, data = done
    print(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
