"""Files a case writes: ``expect: files:`` (inline text with patterns, golden files, absent
files) and ``expect: tree:``, compared and re-recorded, on a real program that writes files."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli.main import main
from tests.conftest import run_recipe, write_tree
from tests.unit.test_verify_golden import TREE


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store=tmp_path / "store", cases=root / "tool" / "cases.yaml",
                           folder=root / "tool")


def cases(plan: SimpleNamespace, text: str) -> None:
    plan.cases.write_text(textwrap.dedent(text).lstrip("\n"))


def verify(plan: SimpleNamespace, *args: str,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", "plan.yaml", "--store", str(plan.store), *args])
    return code, capsys.readouterr().out


WRITES = """
    kind: cases
    redact: {"[N]": "[0-9]+"}
    cases:
      - name: writes files
        run: prog
        args: [write, out/a.txt, "count 12\\n", out/b.txt, "%(b)s", c.txt, "%(c)s"]
        expect:
          files:
            out/a.txt: "count [N]\\n"     # a pattern
            ./out/b.txt: {file: golden/b.txt}
            c.txt: "%(c_expected)s"
            d.txt: {absent: true}
"""


def test_files_are_compared_and_recorded(plan: SimpleNamespace,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (plan.folder / "golden").mkdir()
    (plan.folder / "golden" / "b.txt").write_text("bee\n")
    cases(plan, WRITES % {"b": "bee\\n", "c": "sea\\n", "c_expected": "sea\\n"})
    code, out = verify(plan, capsys=capsys)
    assert (code, out.splitlines()[-1]) == (0, "1 passed"), out

    big = "x" * 3000
    cases(plan, WRITES % {"b": "bees\\n", "c": big, "c_expected": "sea\\n"})
    code, out = verify(plan, capsys=capsys)
    assert code == 1
    assert "=== FAILED tool/release: writes files: file c.txt and file out/b.txt differ" in out
    assert "-bee\n+bees\n" in out
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    assert "updated tool/cases.yaml: writes files: file c.txt, file out/b.txt" in out
    assert (plan.folder / "golden" / "b.txt").read_text() == "bees\n"
    # Over 2 KiB: into a golden file named after the case and the path.
    assert (plan.folder / "golden" / "writes-files" / "c.txt").read_text() == big
    text = plan.cases.read_text()
    assert "c.txt: {file: golden/writes-files/c.txt}" in text
    assert 'out/a.txt: "count [N]\\n"     # a pattern' in text  # untouched
    code, out = verify(plan, "--no-cache", capsys=capsys)
    assert (code, out.splitlines()[-1]) == (0, "1 passed"), out


def test_absent_files(plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        cases:
          - name: writes one
            run: prog
            args: [write, made.txt, "here\\n"]
            expect:
              files:
                made.txt: {absent: true}
                never.txt: "was expected\\n"
    """)
    code, out = verify(plan, capsys=capsys)
    assert code == 1
    assert "file made.txt exists, but must not\n" in out
    assert "file never.txt was not written (or is not a regular file)\n" in out
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    text = plan.cases.read_text()
    assert 'made.txt: "here\\n"\n        never.txt: {absent: true}\n' in text
    code, out = verify(plan, capsys=capsys)
    assert code == 0, out


def test_a_tree_names_missing_extra_and_differing_files(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    golden = plan.folder / "golden" / "tree-case"
    (golden / "out").mkdir(parents=True)
    (golden / "out" / "a.txt").write_text("one\n")
    (golden / "gone.txt").write_text("old\n")
    (plan.folder / "input.txt").write_text("an input, left out of the tree\n")
    cases(plan, """
        kind: cases
        cases:
          - name: tree case
            run: prog
            args: [write, out/a.txt, "two\\n", new.txt, "fresh\\n"]
            files: [input.txt, {from: input.txt, to: placed/copy.txt}]
            expect:
              tree: golden/tree-case/
    """)
    code, out = verify(plan, capsys=capsys)
    assert code == 1
    assert "=== FAILED tool/release: tree case: tree golden/tree-case differs" in out
    assert "tree golden/tree-case:\n  missing gone.txt\n  extra new.txt\n  differs out/a.txt\n" \
        in out
    assert "-one\n+two\n" in out
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    assert "updated tool/cases.yaml: tree case: tree golden/tree-case" in out
    assert sorted(p.relative_to(golden).as_posix() for p in golden.rglob("*") if p.is_file()) \
        == ["new.txt", "out/a.txt"]
    assert (golden / "out" / "a.txt").read_text() == "two\n"
    code, out = verify(plan, "--no-cache", capsys=capsys)
    assert (code, out.splitlines()[-1]) == (0, "1 passed"), out


def test_update_never_records_the_scratch_folder_into_a_file(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        cases:
          - name: where
            eval: 'FILE *f = fopen("where.txt", "w"); fputs(getenv("RECIPE_WORKS"), f);'
            expect:
              files: {where.txt: ""}
    """)
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 1
    assert "not updated tool/cases.yaml: where: a file it wrote holds the case's scratch " \
        "folder (" in out
    cases(plan, """
        kind: cases
        cases:
          - name: where
            eval: 'FILE *f = fopen("where.txt", "w"); fputs(getenv("RECIPE_WORKS"), f);'
            expect:
              files: {where.txt: "[ROOT]/works"}
    """)
    code, out = verify(plan, capsys=capsys)
    assert code == 0, out


@pytest.mark.parametrize(("files", "message"), [
    ('{"../up.txt": ""}', "tool/cases.yaml:5:35: expect files: '../up.txt' is not inside the "
     "case's scratch folder; name a file below its working folder, such as out/result.txt (no "
     "'..', not absolute)"),
    ('{"/etc/passwd": ""}', "tool/cases.yaml:5:37: expect files: '/etc/passwd' is not inside"),
    ('{"a/../../b": ""}', "tool/cases.yaml:5:35: expect files: 'a/../../b' is not inside"),
    ('{"x": {file: ../../outside}}',
     "tool/cases.yaml:5:34: path '../../outside' leaves its folder with '..'"),
    ('{"x": {absent: false}}',
     "tool/cases.yaml:5:27: 'expect.files.x' of case 'one' must be a text, {file: PATH} or "
     "{absent: true}; write the expected text, {file: golden/...} or {absent: true}"),
    ('{"x": "[NOPE] [..]"}', "tool/cases.yaml:5:27: unknown placeholder [NOPE] in file x"),
])
def test_a_bad_file_expectation_is_one_line(plan: SimpleNamespace, files: str,
                                            message: str) -> None:
    cases(plan, f"""
        kind: cases
        cases:
          - name: one
            run: prog
            expect: {{files: {files}}}
    """)
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, cwd=plan.dir)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not plan.store.exists()


def test_a_missing_tree_folder_is_refused_unless_updating(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        cases:
          - name: fresh tree
            run: prog
            args: [write, out/a.txt, "a\\n"]
            expect: {tree: golden/fresh-tree/}
    """)
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, cwd=plan.dir)
    assert done.returncode == 2 and "folder 'golden/fresh-tree/' does not exist" in done.stderr
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    assert (plan.folder / "golden" / "fresh-tree" / "out" / "a.txt").read_text() == "a\n"


def test_a_diff_tool_gets_the_files_that_differ(plan: SimpleNamespace, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    differ = tmp_path / "differ"
    differ.write_text('#!/bin/sh\n{ echo "$1 $2"; cat "$1"; echo "|"; cat "$2"; } >> "$LOG"\n')
    differ.chmod(0o755)
    monkeypatch.setenv("LOG", str(tmp_path / "log"))
    cases(plan, """
        kind: cases
        cases:
          - name: writes
            run: prog
            args: [write, out/a.txt, "new\\n"]
            expect: {files: {out/a.txt: "old\\n", b.txt: "never\\n"}}
    """)
    code, _ = verify(plan, "--diff-tool", str(differ), capsys=capsys)
    assert code == 1
    lines = (tmp_path / "log").read_text().splitlines()
    assert lines[0].endswith("-tool-release-writes/observed.files/b.txt")
    assert "/expected.files/b.txt " in lines[0]
    assert lines[1:3] == ["never", "|"]  # not written: empty
    assert lines[3].endswith("/observed.files/out/a.txt")
    assert lines[4:] == ["old", "|", "new"]


def test_update_never_writes_a_tree_through_a_symlink_out_of_the_plan(
        plan: SimpleNamespace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    golden = plan.folder / "golden" / "linked"
    golden.mkdir(parents=True)
    (golden / "out").symlink_to(outside)  # a folder of the golden tree leads out of the plan
    cases(plan, """
        kind: cases
        cases:
          - name: linked
            run: prog
            args: [write, out/a.txt, "a\\n"]
            expect: {tree: golden/linked/}
    """)
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, "--update", cwd=plan.dir)
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1].startswith(
        "tool/cases.yaml:3:5: --update would write tool/golden/linked/out/a.txt outside the "
        "plan's folder"), done.stderr
    assert list(outside.iterdir()) == []
