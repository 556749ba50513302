"""The plan cache (engine.documents.cached): a no-op run reads no document and imports neither
ruamel.yaml nor jsonschema, and any change to what the plan was loaded from is seen."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from engine.documents import cached
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

SETTLE = cached.RACY_NS / 1e9 + 0.2  # until freshly written files are no longer racily clean


def realise(plan: Path, store: Path) -> list[str]:
    done = run_recipe("realise", plan, "--store", store)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def imports_of_a_realise(plan: Path, store: Path) -> set[str]:
    """Top-level modules imported by ``recipe show``: it loads the plan (through this cache)
    as ``realise`` does, but is never answered by the no-op record (tests/unit/test_noop.py)."""
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"try:\n    main(['show', {str(plan)!r}, '--store', {str(store)!r}])\n"
            "except SystemExit:\n    pass\n"
            "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_a_no_op_imports_no_yaml_or_schema_library(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    first = realise(src / "plan.yaml", store)
    time.sleep(SETTLE)
    assert realise(src / "plan.yaml", store) == first  # loads again (racy), records the cache
    modules = imports_of_a_realise(src / "plan.yaml", store)
    assert "ruamel" not in modules and "jsonschema" not in modules
    assert list((src / ".recipe/cache").glob("plan-*.pickle"))


def test_every_change_to_what_the_plan_was_loaded_from_is_seen(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    first = realise(src / "plan.yaml", store)
    time.sleep(SETTLE)
    realise(src / "plan.yaml", store)
    assert "ruamel" not in imports_of_a_realise(src / "plan.yaml", store)  # trusted now

    # An edit right away (racily clean, same size) is seen.
    project = src / "hello/project.yaml"
    project.write_text(project.read_text().replace("SHOUT: 1", "SHOUT: 2"))
    second = realise(src / "plan.yaml", store)
    assert second[1] != first[1] and second[0] == first[0]

    # A new file matching a glob is seen through its folder.
    time.sleep(SETTLE)
    realise(src / "plan.yaml", store)
    (src / "greet/src/more.c").write_text("int more(void) { return 1; }\n")
    third = realise(src / "plan.yaml", store)
    assert third[0] != second[0]

    # A document broken after it was cached fails as it would without the cache.
    time.sleep(SETTLE)
    realise(src / "plan.yaml", store)
    project.write_text(project.read_text().replace("language: c", "language: [c"))
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and "project.yaml:" in done.stderr


def test_a_damaged_cache_is_not_used(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    first = realise(src / "plan.yaml", store)
    for cache in (src / ".recipe/cache").glob("plan-*.pickle"):
        cache.write_bytes(b"not a pickle")
    assert realise(src / "plan.yaml", store) == first
