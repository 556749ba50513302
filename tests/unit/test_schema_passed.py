"""Documents that passed their schema are remembered in the user's cache
(engine/documents/schema_passed.py): a fresh clone of the same plan, at another path, neither
imports jsonschema nor validates again; a changed document is validated again; an error is
never remembered, so it is reported every time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import write_tree

FILES = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs: [{name: hello, kind: executable}]
    """,
    "hello/src/main.c": "int main(void) { return 0; }\n",
}


def validate(plan: Path, xdg: Path) -> tuple[subprocess.CompletedProcess[str], bool]:
    """``recipe validate PLAN``, and whether it imported jsonschema."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "engine.cli.main",
                           "validate", str(plan)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "XDG_CACHE_HOME": str(xdg)})
    imported = any(line.rstrip().endswith("| jsonschema") for line in done.stderr.splitlines())
    errors = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout,
                                       "\n".join(errors)), imported


def test_a_fresh_clone_does_not_validate_again(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    done, imported = validate(write_tree(tmp_path / "a", FILES) / "plan.yaml", xdg)
    assert done.returncode == 0 and imported, done.stderr
    assert (xdg / "recipe" / "valid-documents.json").is_file()
    clone = write_tree(tmp_path / "elsewhere" / "b", FILES) / "plan.yaml"
    done, imported = validate(clone, xdg)
    assert done.returncode == 0 and not imported, done.stderr  # both documents remembered
    project = clone.parent / "hello" / "project.yaml"
    project.write_text(project.read_text().replace("1.0.0", "1.0.1"))
    done, imported = validate(clone, xdg)
    assert done.returncode == 0 and imported, done.stderr  # changed: validated again


def test_an_error_is_reported_every_time(tmp_path: Path) -> None:
    xdg = tmp_path / "xdg"
    files = {**FILES, "hello/project.yaml": FILES["hello/project.yaml"].replace(
        "language: c", "language: cobol")}
    plan = write_tree(tmp_path / "a", files) / "plan.yaml"
    for _ in range(2):
        done, imported = validate(plan, xdg)
        assert done.returncode == 2 and imported
        [line] = done.stderr.splitlines()
        assert "project.yaml:4:" in line and "cobol" in line, line
