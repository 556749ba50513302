"""What the tests of recipe past one machine share: a checkout both sides build, running
``realise`` against a shared cache, and reading what came out. Their servers are in
``tests/servers.py``; the fixtures that start them (``tc``, ``server``, ``cluster``) in
``tests/conftest.py``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from engine.store import tree_hash
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB
from tests.toolchains import WrapperToolchain


def checkout(root: Path, tc: WrapperToolchain, extra: str = "") -> Path:
    """GREET_LIB at ``root``, its targets built by the wrappers; the plan's path."""
    files = dict(GREET_LIB)
    files["plan.yaml"] = (f"kind: plan\nprojects: ['*/project.yaml']\n{extra}"
                          f"targets:\n  release: {{opt: release, toolchain: {tc.spec_yaml()}}}\n")
    return write_tree(root, files) / "plan.yaml"


def realise(plan: Path, store: Path, *args: str, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("RECIPE_REMOTE")}
    return run_recipe("realise", plan, "--store", store, *args, env={**environ, **(env or {})})


def trees(store: Path, stdout: str) -> dict[str, tuple[str, dict[str, bytes]]]:
    """Each printed store path's name: its NAR hash and every file's bytes."""
    found = {}
    for line in stdout.splitlines():
        path = Path(line)
        assert path.parent == store, line
        files = {p.relative_to(path).as_posix(): p.read_bytes()
                 for p in sorted(path.rglob("*")) if p.is_file()}
        found[path.name] = (tree_hash(path), files)
    return found


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("recipe: warning:")]


def executed_on(store: Path, stdout: str) -> list[str]:
    """The worker each action of the printed paths ran on, from their build logs."""
    found = []
    for path in stdout.split():
        log = run_recipe("store", "log", path, "--store", store).stdout
        found += [line.split()[-1] for line in log.splitlines()
                  if line.startswith("# executed on ")]
    return found
