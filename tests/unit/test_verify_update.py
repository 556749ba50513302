"""--update: expectations re-recorded in place, comments and styles kept, golden files."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from engine.documents.models import Case, Expect
from engine.errors import Pos
from engine.verify.outcome import Observed, Outcome
from engine.verify.plan_writes import OutsidePlanError
from engine.verify.runner import Job, run_jobs
from engine.verify.update import slug, update
from engine.verify.yaml_edit import splice, styled

SCRIPTS = {
    "greet": 'printf "hello, %s\\n" "$1"',
    "lines": "printf 'one\\ntwo\\nthree\\n'",
    "big": 'i=0; while [ $i -lt 300 ]; do echo "line $i of a long output"; i=$((i+1)); done',
    "binary": "printf 'a\\377b\\n'",
    "fail": 'echo "bad input" >&2; exit 3',
    "slow": "sleep 5",
}

MAIN = """\
# Cases for greet: keep this comment.
kind: cases
cases:
  # a double-quoted expectation that is out of date
  - name: greets the world
    run: greet
    args: [world]
    expect:
      stdout: "hello, there\\n"   # was right once

  - name: block style
    run: lines
    expect:
      stdout: |
        one
        two
  - name: unchanged
    run: greet
    args: ['you']
    expect: {stdout: "hello, you\\n"}   # flow style stays
  - name: Big Output!
    run: big
    expect:
      stdout: ''
  - name: binary
    run: binary
    expect:
      stdout: "x"
      exit: 0
  - name: fails loudly
    run: fail
    expect:
      stderr: ""    # stderr is checked here
  - name: too slow
    run: slow
    timeout: 0.2
    expect:
      stdout: "never\\n"
"""

OTHER = """\
kind: cases
cases:
- name: other greeting   # this file has nothing to update
  run: greet
  args: [me]
  expect:
    stdout: "hello, me\\n"
"""


def load_cases(file: Path) -> list[Case]:
    """A small stand-in for the documents layer: the process cases of one cases file."""
    doc = YAML(typ="safe").load(file.read_text())
    cases = []
    for index, raw in enumerate(doc["cases"]):
        e = raw.get("expect", {})
        enc = (lambda v: None if v is None else v.encode())  # noqa: E731
        cases.append(Case(
            name=raw["name"], kind="process", file=file, index=index, pos=Pos(file),
            expect=Expect(stdout=enc(e.get("stdout")), stdout_file=e.get("stdout_file"),
                          stderr=enc(e.get("stderr")), stderr_file=e.get("stderr_file"),
                          exit=e.get("exit", 0)),
            run=raw["run"], args=tuple(raw.get("args", ())), timeout=raw.get("timeout", 10.0),
            raw=raw))
    return cases


@pytest.fixture
def project(tmp_path: Path) -> Path:
    store_path = tmp_path / "0123456789abcdfghijklmnpqrsvwxyz-greet-1.0-release"
    (store_path / "bin").mkdir(parents=True)
    for name, body in SCRIPTS.items():
        script = store_path / "bin" / name
        script.write_text(f"#!/bin/sh\n{body}\n")
        script.chmod(0o755)
    cases = tmp_path / "greet" / "cases"
    cases.mkdir(parents=True)
    (cases / "main.yaml").write_text(MAIN)
    (cases / "other.yaml").write_text(OTHER)
    return tmp_path


def verify(project: Path) -> list[Outcome]:
    store_path = next(project.glob("*-greet-1.0-release"))
    folder = project / "greet" / "cases"
    cases = [c for name in ("main.yaml", "other.yaml") if (folder / name).exists()
             for c in load_cases(folder / name)]
    return run_jobs([Job("greet", "release", c, store_path) for c in cases], workers=4)


def test_update_rewrites_only_what_differed(project: Path) -> None:
    folder = project / "greet" / "cases"
    other_before = (folder / "other.yaml").read_bytes()
    before = verify(project)
    assert [o.status for o in before] == ["failed"] * 2 + ["passed"] + ["failed"] * 4 + \
        ["passed"]

    result = update(before, project)
    assert [(r.case.name, r.fields) for r in result.recorded] == [
        ("greets the world", ["stdout"]), ("block style", ["stdout"]),
        ("Big Output!", ["stdout"]), ("binary", ["stdout"]),
        ("fails loudly", ["stderr", "exit"])]
    assert [(c.name, why) for c, why in result.refused] == [("too slow",
                                                             "timed out after 0.2s")]
    assert not result.all_match(before)  # the timed-out case still does not match

    text = (folder / "main.yaml").read_text()
    assert (folder / "other.yaml").read_bytes() == other_before  # untouched file: not written
    expected_text = MAIN.replace(
        'stdout: "hello, there\\n"', 'stdout: "hello, world\\n"'
    ).replace(
        "        one\n        two\n", "        one\n        two\n        three\n"
    ).replace(
        "      stdout: ''\n", "      stdout_file: golden/big-output.stdout\n"
    ).replace(
        '      stdout: "x"\n', "      stdout_file: golden/binary.stdout\n"
    ).replace(
        '      stderr: ""    # stderr is checked here\n',
        '      stderr: "bad input\\n" # stderr is checked here\n'
        '      exit: 3\n')
    assert text == expected_text
    assert (folder / "golden" / "binary.stdout").read_bytes() == b"a\xffb\n"
    big = (folder / "golden" / "big-output.stdout").read_bytes()
    assert len(big) > 2048 and big.startswith(b"line 0 of a long output\n")

    after = verify(project)
    assert [o.case for o in after if not o.passed] == ["too slow"]


def test_a_second_update_changes_nothing(project: Path) -> None:
    update(verify(project), project)
    folder = project / "greet" / "cases"
    snapshot = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    result = update(verify(project), project)
    assert result.recorded == []
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == snapshot


def test_golden_files_are_rewritten_where_they_are(project: Path) -> None:
    folder = project / "greet" / "cases"
    (folder / "data").mkdir()
    (folder / "data" / "out.txt").write_text("stale\n")
    (folder / "main.yaml").write_text(textwrap.dedent("""\
        kind: cases
        cases:
          - name: greets
            run: greet
            args: [file]
            expect:
              stdout_file: data/out.txt
        """))
    (folder / "other.yaml").unlink()
    before = (folder / "main.yaml").read_bytes()
    result = update(verify(project), project)
    assert [r.fields for r in result.recorded] == [["stdout"]]
    assert (folder / "data" / "out.txt").read_bytes() == b"hello, file\n"
    assert (folder / "main.yaml").read_bytes() == before


def test_untouched_scalars_keep_their_spelling(project: Path) -> None:
    """A round trip would write an escape like \\u00A0 as the (invisible) character itself."""
    folder = project / "greet" / "cases"
    (folder / "other.yaml").unlink()
    (folder / "main.yaml").write_text(textwrap.dedent("""\
        kind: cases
        cases:
          - name: keeps its escapes
            run: greet
            args: ["a\\u00A0b"]
            expect: {stdout: "hello, a\\u00A0b\\n"}
          - name: stale
            run: greet
            args: [x]
            expect: {stdout: "hi\\n"}
        """))
    before = (folder / "main.yaml").read_text()
    assert [r.case.name for r in update(verify(project), project).recorded] == ["stale"]
    assert (folder / "main.yaml").read_text() == before.replace('"hi\\n"', '"hello, x\\n"')


def test_splice_carries_edits_over_and_falls_back_when_it_cannot() -> None:
    original = 'a: "\\x41"\nb: 1\nc: 2\n'
    before = "a: 'A'\nb: 1\nc: 2\n"  # the round trip respelled line 1
    assert splice(original, before, "a: 'A'\nb: 1\nc: 3\nd: 4\n") == \
        'a: "\\x41"\nb: 1\nc: 3\nd: 4\n'
    assert splice(original, before, "a: 'B'\nb: 1\nc: 2\n") == "a: 'B'\nb: 1\nc: 2\n"
    assert splice("x\n", "x\n", "y\n") == "y\n"


def _outcome(case: Case, stdout: bytes, stderr: bytes = b"") -> Outcome:
    return Outcome("p", "t", case.name, "failed", observed=Observed(stdout, stderr, 0),
                   source=case)


def test_targets_that_disagree_are_not_recorded(project: Path) -> None:
    case = load_cases(project / "greet" / "cases" / "other.yaml")[0]
    result = update([_outcome(case, b"one\n"), _outcome(case, b"two\n")], project)
    assert result.recorded == [] and result.refused[0][1] == "the targets disagree on its output"
    # An unchecked stderr may differ from target to target.
    result = update([_outcome(case, b"new\n", b"debug build\n"), _outcome(case, b"new\n")], project)
    assert [r.fields for r in result.recorded] == [["stdout"]] and result.refused == []


@pytest.mark.parametrize(("old", "text", "kind"), [
    (DoubleQuotedScalarString("a"), "b\n", DoubleQuotedScalarString),
    (SingleQuotedScalarString("a"), "b", SingleQuotedScalarString),
    (SingleQuotedScalarString("a"), "b\n", DoubleQuotedScalarString),
    (LiteralScalarString("a\n"), "b\nc\n", LiteralScalarString),
    (LiteralScalarString("a\n"), "no final newline", DoubleQuotedScalarString),
    (LiteralScalarString("a\n"), "tab\there\n", DoubleQuotedScalarString),
    ("plain", "still plain", str),
    ("plain", "two\nlines\n", DoubleQuotedScalarString),
    (None, "one line\n", DoubleQuotedScalarString),
    (None, "several\nlines\n", LiteralScalarString),
])
def test_styles_are_kept_when_the_text_fits(old: object, text: str, kind: type) -> None:
    new = styled(old, text)
    assert new == text and type(new) is kind


def test_slugs() -> None:
    assert slug("Big Output!") == "big-output"
    assert slug("counts words (UTF-8)") == "counts-words-utf-8"
    assert slug("!!!") == "case"


def test_an_expectation_edited_during_the_run_is_kept_and_the_rest_recorded(
        project: Path) -> None:
    """Between the run and its update, a case is edited by hand, another is inserted before
    the others, and one is removed: the edit stays, the moved cases are still recorded."""
    folder = project / "greet" / "cases"
    (folder / "other.yaml").unlink()
    outcomes = verify(project)
    text = (folder / "main.yaml").read_text()
    edited = text.replace('stdout: "hello, there\\n"', 'stdout: "hello, by hand\\n"') \
        .replace("cases:\n", "cases:\n  - {name: new, run: greet, expect: {stdout: x}}\n") \
        .replace("  - name: binary\n    run: binary\n", "  - name: gone\n    run: binary\n")
    (folder / "main.yaml").write_text(edited)

    result = update(outcomes, project)
    assert [(c.name, why.split(";")[0].split(",")[0]) for c, why in result.refused] == [
        ("too slow", "timed out after 0.2s"),
        ("greets the world", "its expectation was changed during the run"),
        ("binary", "it is no longer in its file (renamed or removed during the run)")]
    assert [r.case.name for r in result.recorded] == ["block style", "Big Output!",
                                                       "fails loudly"]
    after = (folder / "main.yaml").read_text()
    assert 'stdout: "hello, by hand\\n"   # was right once' in after
    assert "        one\n        two\n        three\n" in after
    assert "{name: new, run: greet, expect: {stdout: x}}" in after


def test_an_update_that_finds_its_work_done_is_content(project: Path) -> None:
    """Another run recorded the same observations meanwhile: nothing is written, every case
    counts as recorded (``already``), and the run matches."""
    outcomes = [o for o in verify(project) if o.case != "too slow"]
    first = update(outcomes, project)
    folder = project / "greet" / "cases"
    snapshot = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    second = update(outcomes, project)
    assert [(r.case.name, r.already) for r in second.recorded] == \
        [(r.case.name, True) for r in first.recorded]
    assert second.refused == [] and second.all_match(outcomes)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == snapshot


def test_a_cases_file_that_became_a_symlink_out_of_the_plan_is_refused(
        project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = project / "greet" / "cases"
    outcomes = verify(project)
    outside = tmp_path_factory.mktemp("outside") / "main.yaml"
    outside.write_text(MAIN)
    (folder / "main.yaml").unlink()
    (folder / "main.yaml").symlink_to(outside)
    with pytest.raises(OutsidePlanError, match="would write .*main.yaml outside the plan's "
                                               "folder"):
        update(outcomes, project)
    assert outside.read_text() == MAIN and (folder / "main.yaml").is_symlink()
    assert not (folder / "golden").exists()


def test_function_rows_merge_with_the_file_as_it_is_now(tmp_path: Path) -> None:
    """A row recorded meanwhile is already recorded; a row edited by hand refuses its case."""
    file = tmp_path / "cases.yaml"
    text = textwrap.dedent("""\
        kind: cases
        cases:
          - name: adds
            function: "int add(int, int)"
            table:
              - [1, 1, 0]   # wrong
              - [2, 2, 0]   # wrong
          - name: subtracts
            function: "int sub(int, int)"
            table:
              - [1, 1, 5]
        """)
    file.write_text(text)
    raw = YAML(typ="safe").load(text)["cases"]
    cases = [Case(name=r["name"], kind="function", file=file, index=i, pos=Pos(file),
                  expect=Expect(), raw=r) for i, r in enumerate(raw)]
    outcomes = [Outcome("p", "t", "adds", "failed", source=cases[0], rows={0: 2, 1: 4}),
                Outcome("p", "t", "subtracts", "failed", source=cases[1], rows={0: 0})]
    file.write_text(text.replace("[1, 1, 0]", "[1, 1, 2]").replace("[1, 1, 5]", "[1, 1, 7]"))
    result = update(outcomes, tmp_path)
    assert [(r.case.name, r.fields) for r in result.recorded] == [("adds", ["table row 2"])]
    assert [c.name for c, _ in result.refused] == ["subtracts"]
    assert file.read_text() == text.replace("[1, 1, 0]", "[1, 1, 2]") \
        .replace("[2, 2, 0]", "[2, 2, 4]").replace("[1, 1, 5]", "[1, 1, 7]")
