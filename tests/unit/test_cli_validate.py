"""recipe validate FILE...: one line per valid file, JSON, and exit 2 on the first error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli.main import main

FILES = {
    "plan.yaml": "kind: plan\n",
    "hello/project.yaml": ("kind: project\nname: hello\nversion: '1'\nlanguage: c\n"
                           "outputs: [{name: hello, kind: executable, sources: [main.c]}]\n"),
    "hello/main.c": "",
    "hello/cases/run.yaml": ("kind: cases\ncases:\n"
                             "  - {name: greets, run: hello, expect: {stdout: \"hi\\n\"}}\n"),
    "targets.yaml": "kind: targets\nrelease: {}\n",
}


@pytest.fixture(autouse=True)
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_valid_file_is_named_with_its_kind(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "plan.yaml", "hello/project.yaml", "hello/cases/run.yaml",
                 "targets.yaml"]) == 0
    assert capsys.readouterr().out == ("plan.yaml: valid (plan)\n"
                                       "hello/project.yaml: valid (project)\n"
                                       "hello/cases/run.yaml: valid (cases)\n"
                                       "targets.yaml: valid (targets)\n")


def test_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", "plan.yaml", "targets.yaml"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"file": "plan.yaml", "kind": "plan", "valid": True},
        {"file": "targets.yaml", "kind": "targets", "valid": True}]


def test_the_first_error_is_one_line_and_exit_2(tree: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "hello/cases/run.yaml").write_text(
        "kind: cases\ncases:\n  - {name: greets, run: helo, expect: {}}\n")
    assert main(["validate", "targets.yaml", "plan.yaml", "hello/project.yaml"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "targets.yaml: valid (targets)\n"
    assert captured.err == ("hello/cases/run.yaml:3:25: run: 'helo' is not an executable output "
                            "of the project; did you mean 'hello'?\n")


def test_a_cases_file_alone_does_not_check_run(capsys: pytest.CaptureFixture[str],
                                               tree: Path) -> None:
    (tree / "hello/cases/run.yaml").write_text(
        "kind: cases\ncases:\n  - {name: greets, run: helo, expect: {}}\n")
    assert main(["validate", "hello/cases/run.yaml"]) == 0
    assert capsys.readouterr().out == "hello/cases/run.yaml: valid (cases)\n"


def test_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "nope.yaml"]) == 2
    assert capsys.readouterr().err == "nope.yaml: no such file; check the path\n"


def test_no_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["validate"])
    assert exited.value.code == 2
    assert "FILE" in capsys.readouterr().err
