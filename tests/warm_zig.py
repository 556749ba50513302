"""``python -m tests.warm_zig``: build, once, the libc of every zig target the cross tests use,
into the cache RECIPE_ZIG_CACHE names (.ci/run runs it before the suite). Each first build
costs 25 to 60 s of CPU; afterwards the tests' builds take seconds and no timeout pays for it."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.conftest import write_tree
from tests.test_cross import CROSS
from tests.test_cross_rust import RUST

# (tree, target) -> the projects its tests build (C++ on WASI: C only there). Rust links
# through zig cc with rustc's flags: a libc variant of its own for Windows.
TARGETS = {("cross", "arm64"): [], ("cross", "arm64-gnu"): ["hello"], ("cross", "windows"): [],
           ("cross", "wasi"): ["hello"], ("rust", "windows"): [], ("rust", "wasi"): []}
TREES = {"cross": CROSS, "rust": RUST}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="recipe-warm-zig-") as tmp:
        for (tree, target), projects in TARGETS.items():
            src = write_tree(Path(tmp) / tree, TREES[tree])
            start = time.monotonic()
            # No timeout: a first build on a busy machine may take minutes.
            done = subprocess.run([sys.executable, "-m", "engine.cli.main", "realise",
                                   str(src / "plan.yaml"), "--store", str(Path(tmp) / "store"),
                                   "-t", target, *(f"-p={p}" for p in projects)],
                                  capture_output=True, text=True)
            print(f"warm_zig: {tree} {target} in {time.monotonic() - start:.0f} s", flush=True)
            if done.returncode != 0:
                sys.stderr.write(done.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
