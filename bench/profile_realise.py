"""``python3 -m bench.profile_realise``: where ``recipe realise`` spends its time on the corpus.

For a no-op and for one ``.c`` edited (after a realise, not measured), it prints the modules
that cost the most to import (``python -X importtime``, top-level packages, cumulative) and a
cProfile of the whole command — imports included, and the worker threads too, merged — as the
engine's functions by cumulative time, then everything by own time. Time waiting for another
thread (``acquire``, ``SimpleQueue.get``) counts in each waiting thread.
"""

from __future__ import annotations

import argparse
import io
import pstats
import sys
import tempfile
from pathlib import Path

from bench import corpus
from bench.process import output, remove_tree
from bench.tools import Recipe

# Run in a child so that imports are part of the profile: one cProfile per thread, merged.
_PROFILED = """
import cProfile, pstats, sys, threading
profilers = []
def per_thread(frame, event, arg):
    sys.setprofile(None)
    profiler = cProfile.Profile()
    profilers.append(profiler)
    profiler.enable()
threading.setprofile(per_thread)
main = cProfile.Profile()
main.enable()
try:
    from engine.cli.main import main as recipe
    recipe(sys.argv[2:])
finally:
    main.disable()
    stats = pstats.Stats(main, stream=sys.stderr)
    for profiler in profilers:
        profiler.disable()
        stats.add(profiler)
    stats.dump_stats(sys.argv[1])
"""


def imports(recipe: Recipe, argv: list[str], top: int) -> list[tuple[float, str]]:
    """Top-level modules by cumulative import time (milliseconds)."""
    # Run beside the plan: with ``-c``, the working folder comes first on sys.path, and this
    # checkout's engine/ must not shadow the installed one.
    err = output([str(recipe.python), "-X", "importtime", str(recipe.script), *argv],
                 Path(argv[1]).parent,
                 recipe.env, stream="stderr")
    found = []
    for line in err.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cumulative, name = line.removeprefix("import time:").split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):
                found.append((int(cumulative) / 1000, name.strip()))
    return sorted(found, reverse=True)[:top]


def profile(recipe: Recipe, argv: list[str], dump: Path, top: int) -> str:
    """cProfile of one command: the engine's functions by cumulative time, all by own time."""
    output([str(recipe.python), "-c", _PROFILED, str(dump), *argv], Path(argv[1]).parent,
           recipe.env)
    text = io.StringIO()
    stats = pstats.Stats(str(dump), stream=text)
    stats.sort_stats("cumulative").print_stats("/engine/", top)
    stats.sort_stats("tottime").print_stats(top)
    return "\n".join(line for line in text.getvalue().splitlines()
                     if line.strip() and not line.lstrip().startswith(("Ordered by", "List")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.profile_realise",
                                     description="where recipe realise spends its time")
    parser.add_argument("--units", type=int, default=100, help="translation units (default 100)")
    parser.add_argument("--top", type=int, default=25, help="lines per listing (default 25)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="recipe-profile-"))
    try:
        corpus.write_app(work, args.units, seed=1)
        recipe = Recipe(jobs=2, venv=work / "venv")
        plan, store = work / "plan.yaml", work / "store"
        realise = ["realise", str(plan), "--store", str(store), "-j", "2"]
        recipe.realise(plan, store)
        edited = work / "app" / corpus.unit_name(args.units // 2)
        for title, change in (("no-op", None), ("one .c edited", edited)):
            if change:
                corpus.edit(change, 1)
            print(f"== {title}: imports (ms, cumulative, top-level packages)")
            for ms, name in imports(recipe, realise, 15):
                print(f"{ms:8.1f}  {name}")
            if change:  # the import listing built the first edit: profile a new one
                corpus.edit(change, 2)
            print(f"== {title}: cProfile, all threads merged")
            print(profile(recipe, realise, work / "profile.out", args.top))
    finally:
        remove_tree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
