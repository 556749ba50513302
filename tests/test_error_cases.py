"""End-to-end error cases: ``recipe validate`` on each tree under ``tests/cases/errors/<name>/``.

Each case folder holds a small document tree and ``expected.txt``, the exact stderr (one line,
paths relative to the case folder). Optional files: ``args`` (the arguments after ``validate``,
default ``plan.yaml``) and ``symlinks`` (lines ``link -> target``, created in the copy: symlink
loops and escapes cannot live in the repository without tripping other tools).

``RECIPE_RECORD=1`` re-records ``expected.txt`` and fails the test, so a recording run never
counts as passing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).parent / "cases" / "errors"
NAMES = sorted(p.name for p in CASES.iterdir() if p.is_dir()) if CASES.is_dir() else []
SPECIAL = ("expected.txt", "args", "symlinks")


@pytest.mark.parametrize("name", NAMES)
def test_error_case(name: str, tmp_path: Path) -> None:
    source = CASES / name
    work = tmp_path / "case"
    shutil.copytree(source, work, symlinks=True, ignore=shutil.ignore_patterns(*SPECIAL))
    (tmp_path / "outside.txt").write_text("a file outside the plan's folder\n")
    if (source / "symlinks").exists():
        for line in (source / "symlinks").read_text().splitlines():
            link, target = (part.strip() for part in line.split("->"))
            (work / link).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, work / link)
    args = (source / "args").read_text().split() if (source / "args").exists() else ["plan.yaml"]

    result = subprocess.run([sys.executable, "-m", "engine.cli.main", "validate", *args],
                            cwd=work, capture_output=True, text=True, timeout=60)

    assert "Traceback" not in result.stderr, result.stderr
    if os.environ.get("RECIPE_RECORD"):
        (source / "expected.txt").write_text(result.stderr)
        pytest.fail(f"recorded {name}/expected.txt; run again without RECIPE_RECORD")
    assert result.stderr == (source / "expected.txt").read_text()
    assert result.stderr.count("\n") == 1
    assert result.returncode == 2
    assert result.stdout == ""


def test_there_are_error_cases() -> None:
    assert len(NAMES) >= 20
