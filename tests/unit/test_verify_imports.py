"""The case formats import what they share from ``engine.verify.job``: no format imports the
runner that dispatches to it, not even lazily inside a function (an import cycle in disguise)."""

from __future__ import annotations

import ast
from pathlib import Path

import engine.verify

FOLDER = Path(engine.verify.__file__).parent


def test_no_module_of_verify_imports_the_runner_back() -> None:
    found = []
    for path in sorted(FOLDER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "engine.verify.runner":
                found.append(f"{path.relative_to(FOLDER)}:{node.lineno}")
    assert found == []
