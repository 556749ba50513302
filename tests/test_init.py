"""recipe init (issue 18): a plan that verifies right away, for each language; a project added
to an existing plan; never an overwritten file; every refusal one line, exit 2."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_recipe

needs_rustc = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                 reason="needs rustc")


@pytest.mark.parametrize("lang, lib", [
    ("c", False), ("c", True), ("c++", False), ("c++", True),
    pytest.param("rust", False, marks=needs_rustc), pytest.param("rust", True, marks=needs_rustc),
])
def test_init_then_verify_passes(tmp_path: Path, lang: str, lib: bool) -> None:
    done = run_recipe("init", "hello", "--lang", lang, *(["--lib"] if lib else []), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"recipe init: a plan in hello/ with the {lang} project 'hello'")
    assert lines[1] == "next:" and lines[2].strip() == "cd hello"
    assert lines[3].split("#")[0].strip() == "recipe verify plan.yaml"
    plan = tmp_path / "hello"
    assert (plan / ".gitignore").read_text().splitlines()[1:] == ["store/", ".recipe/"]
    verified = run_recipe("verify", "plan.yaml", "--json", cwd=plan)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    outcomes = json.loads(verified.stdout)["outcomes"]
    kinds = {o["case"]: o["status"] for o in outcomes}
    assert kinds == {"counts the words of stdin": "passed", "counts words": "passed"}
    shown = json.loads(run_recipe("show", "plan.yaml", "--json", cwd=plan).stdout)
    assert (Path(shown[0]["path"]) / "lib" / "libhello.a").is_file() == lib
    assert (Path(shown[0]["path"]) / "bin" / ("hello-cli" if lib else "hello")).is_file()


def test_init_in_a_plan_folder_adds_a_project_and_both_verify(tmp_path: Path) -> None:
    assert run_recipe("init", "--name", "first", cwd=tmp_path).returncode == 0
    plan_before = (tmp_path / "plan.yaml").read_bytes()
    done = run_recipe("init", ".", "--lang", "c++", "--name", "second", "--lib", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("recipe init: the c++ project 'second' added to the plan in")
    assert (tmp_path / "plan.yaml").read_bytes() == plan_before  # nothing else is updated
    assert sorted(p.name for p in tmp_path.iterdir()) == [".gitignore", "first", "plan.yaml",
                                                          "second"]
    verified = run_recipe("verify", "plan.yaml", "--json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["summary"]["passed"] == 4


def test_init_of_a_folder_in_a_plan_folder_makes_it_a_project_of_that_plan(
        tmp_path: Path) -> None:
    assert run_recipe("init", "--name", "first", cwd=tmp_path).returncode == 0
    (tmp_path / "tools").mkdir()  # as after `mkdir tools && cd tools`
    done = run_recipe("init", "--lang", "c++", cwd=tmp_path / "tools")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:3] == [
        "recipe init: the c++ project 'tools' added to the plan in ../ (5 files)", "next:",
        "  cd .."]
    assert (tmp_path / "tools/project.yaml").is_file() and not (tmp_path / "tools/tools").exists()
    assert not (tmp_path / "tools/plan.yaml").exists()
    verified = run_recipe("verify", "plan.yaml", "-p", "tools", "--json", cwd=tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["summary"]["passed"] == 2


def test_init_in_a_plan_whose_patterns_miss_the_new_project_says_which_line_to_add(
        tmp_path: Path) -> None:
    assert run_recipe("init", "--name", "first", cwd=tmp_path).returncode == 0
    text = (tmp_path / "plan.yaml").read_text().replace('["*/project.yaml"]',
                                                        '["first/project.yaml"]')
    (tmp_path / "plan.yaml").write_text(text)
    done = run_recipe("init", ".", "--name", "second", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert ('plan.yaml:3:11: the plan\'s projects: patterns do not select it; add '
            '"second/project.yaml" to them') in done.stdout.splitlines()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("args, existing, line", [
    (["init", "p"], {"p/.gitignore": "mine\n"},
     "recipe: p/.gitignore already exists; recipe init writes only new files: init another "
     "folder, or remove it"),
    (["init", "p", "--name", "x", "--lang", "rust"], {"p/x/src/main.rs": "fn main() {}\n"},
     "recipe: p/x/src/main.rs already exists; recipe init writes only new files"),
    (["init", "p"], {"p/plan.yaml": "kind: plan\n"},
     "recipe: p already holds a plan: a project added to it needs a name; pass --name NAME"),
    (["init", "p", "--name", "q"], {"p/plan.yaml": "kind: plan\n", "p/q/a": ""},
     "recipe: p/q already exists; pass another --name, or remove it"),
    (["init", "p", "--name", "Bad"], {},
     "recipe: --name 'Bad' cannot name a project; pass --name NAME: lowercase letters, digits, "
     "'.', '_' or '-', starting with a letter, at most 64 characters"),
    (["init", "My Folder"], {},
     "recipe: the folder name 'My Folder' cannot name a project; pass --name NAME: lowercase"),
    (["init", "p", "--name", "9lives"], {}, "recipe: --name '9lives' cannot name a project"),
    (["init", "f"], {"f": "a file\n"},
     "recipe: f is not a folder; name a folder (new or existing) to init"),
    (["init", "p", "--lang", "go"], {},
     "recipe init: argument --lang: invalid choice: 'go' (choose from 'c', 'c++', 'rust')"),
])
def test_init_refuses_in_one_line_and_writes_nothing(tmp_path: Path, args: list[str],
                                                      existing: dict[str, str],
                                                      line: str) -> None:
    for rel, text in existing.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    before = _tree(tmp_path)
    done = run_recipe(*args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
    assert _tree(tmp_path) == before
