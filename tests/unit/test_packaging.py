"""What a non-editable install ships: every package of engine/ (a missing one installs fine and
fails only when imported, as engine.crates once did for the benchmark's venv)."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_package_of_engine() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())
                 ["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO).parts)
             for init in (REPO / "engine").rglob("__init__.py")}
    assert found | {"engine.schema"} == listed
