"""Reviewing changes: --update reports what it updated, --update --interactive asks (on a
real terminal, through pexpect), orphaned golden files and --prune, and --diff-tool."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pexpect
import pytest

from engine.cli.main import main
from tests.conftest import run_recipe, write_tree
from tests.unit.test_verify_golden import TREE

CASES = """
    kind: cases
    cases:
      - {name: one, run: prog, expect: {stderr: "usage: one\\n", exit: 2}}
      - {name: two, run: prog, args: [again], expect: {stderr: "usage: two\\n", exit: 2}}
      - {name: three, run: prog, args: [x], expect: {stderr: "usage: three\\n", exit: 2}}
      - {name: four, run: prog, args: [y], expect: {stderr: "usage: four\\n", exit: 2}}
      - {name: fine, run: prog, expect: {stderr: "usage: prog FILE\\n", exit: 2}}
"""


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", {**TREE, "tool/cases.yaml": CASES})
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store=tmp_path / "store", cases=root / "tool" / "cases.yaml")


def verify(plan: SimpleNamespace, *args: str,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["verify", "plan.yaml", "--store", str(plan.store), *args])
    return code, capsys.readouterr().out


def recorded(plan: SimpleNamespace) -> list[str]:
    """The names of the cases whose expectation now holds the program's real usage line."""
    return [line.split("name: ")[1].split(",")[0] for line in plan.cases.read_text().splitlines()
            if "usage: prog FILE" in line]


def test_update_reports_updated_not_failed(plan: SimpleNamespace,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    assert out.splitlines()[-1] == "1 passed, 4 updated (1 cached)"  # fine runs as one does
    assert "tool       release   one     updated" in out
    assert "=== UPDATED tool/release: one: stderr differs" in out
    assert "updated tool/cases.yaml: one: stderr\n" in out
    assert recorded(plan) == ["one", "two", "three", "four", "fine"]
    code, out = verify(plan, capsys=capsys)
    assert (code, out.splitlines()[-1]) == (0, "5 passed (5 cached)")


def test_update_that_leaves_a_case_failing_exits_1(plan: SimpleNamespace,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plan.cases.write_text(textwrap.dedent(CASES).lstrip() +
                          '  - {name: self, run: prog, args: [self], expect: {stdout: ""}}\n')
    code, out = verify(plan, "--update", "--json", capsys=capsys)
    assert code == 1
    data = json.loads(out)
    assert data["summary"]["updated"] == 4 and data["summary"]["failed"] == 1
    assert [n["case"] for n in data["not_updated"]] == ["self"]
    assert [o["case"] for o in data["outcomes"] if o.get("updated")] == [
        "one", "two", "three", "four"]


def spawn_verify(plan: SimpleNamespace, *args: str) -> pexpect.spawn:
    env = {**os.environ, "RECIPE_SERVER": "off", "NO_COLOR": "1"}
    return pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "verify", "plan.yaml",
                                          "--store", str(plan.store), *args],
                         cwd=str(plan.dir), env=env, encoding="utf-8", timeout=240)


def test_interactive_review_writes_only_what_was_accepted(plan: SimpleNamespace) -> None:
    child = spawn_verify(plan, "--update", "--interactive")
    child.expect("tool/cases.yaml: one")
    child.expect(r"-usage: one")
    child.expect(r"\+usage: prog FILE")
    child.expect_exact("record it? [a]ccept, [s]kip, accept [A]ll, [q]uit: ")
    child.sendline("a")
    child.expect("tool/cases.yaml: two")
    child.expect_exact("[q]uit: ")
    child.sendline("maybe")  # not an answer: asked again
    child.expect_exact("[q]uit: ")
    child.sendline("s")
    child.expect("tool/cases.yaml: three")
    child.expect_exact("[q]uit: ")
    child.sendline("A")  # this one and the rest, without asking
    child.expect("not updated tool/cases.yaml: two: skipped in review")
    child.expect("1 passed, 1 failed, 3 updated")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert recorded(plan) == ["one", "three", "four", "fine"]

    child = spawn_verify(plan, "--update", "--interactive")
    child.expect("tool/cases.yaml: two")
    child.expect_exact("[q]uit: ")
    child.sendline("q")
    child.expect("not updated tool/cases.yaml: two: not reviewed")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1
    assert recorded(plan) == ["one", "three", "four", "fine"]


def test_interactive_needs_a_terminal_and_update(plan: SimpleNamespace) -> None:
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, "--update", "--interactive",
                      cwd=plan.dir)
    assert done.returncode == 2
    assert done.stderr == ("recipe: --interactive asks on a terminal, and stdin or stdout is "
                           "not one; run it in a terminal, without --json; or use --update "
                           "alone\n")
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, "--interactive",
                      cwd=plan.dir)
    assert (done.returncode, done.stderr) == (2, "recipe: --interactive reviews what --update "
                                                 "records; run verify --update --interactive\n")
    assert not plan.store.exists()


def test_orphaned_golden_files_are_named_and_pruned(plan: SimpleNamespace,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    golden = plan.dir / "tool" / "golden"
    golden.mkdir()
    (golden / "fine.stderr").write_text("usage: prog FILE\n")
    (golden / "old.stdout").write_text("gone\n")
    (golden / "deep").mkdir()
    (golden / "deep" / "older.stdout").write_text("gone\n")
    plan.cases.write_text(textwrap.dedent("""\
        kind: cases
        cases:
          - {name: fine, run: prog, expect: {stderr_file: golden/fine.stderr, exit: 2}}
    """))
    code, out = verify(plan, capsys=capsys)
    assert code == 0
    assert out.endswith(
        "\norphaned golden file tool/golden/old.stdout (no case references it; --prune "
        "deletes it)\norphaned golden file tool/golden/deep/older.stdout (no case references "
        "it; --prune deletes it)\n\n1 passed\n")
    code, out = verify(plan, "-k", "fine", capsys=capsys)  # not a full run: nothing said
    assert "orphaned" not in out
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, "--prune", "-k", "fine",
                      cwd=plan.dir)
    assert (done.returncode, done.stderr) == (
        2, "recipe: --prune needs a full verify: golden files are only known unused when every "
           "case was considered; run it without -k\n")
    code, out = verify(plan, "--prune", capsys=capsys)
    assert code == 0
    assert "pruned golden file tool/golden/old.stdout\n" in out
    assert "pruned golden file tool/golden/deep/older.stdout\n" in out
    assert sorted(p.name for p in golden.rglob("*") if p.is_file()) == ["fine.stderr"]
    code, out = verify(plan, capsys=capsys)
    assert "orphaned" not in out and "pruned" not in out


DIFFER = """#!/bin/sh
# A differ that records how it was called and what it was given.
for a; do l=$r; r=$a; done  # the last two arguments
{ echo "argv: $*"; echo "left:"; cat "$l"; echo "right:"; cat "$r"; } >> "$DIFF_LOG"
echo "differ ran"
"""


def test_a_diff_tool_gets_expected_and_observed_files(
        plan: SimpleNamespace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    differ = tmp_path / "my differ"
    differ.write_text(DIFFER)
    differ.chmod(0o755)
    log = tmp_path / "log"
    monkeypatch.setenv("DIFF_LOG", str(log))
    monkeypatch.setenv("RECIPE_DIFF_TOOL", f"'{differ}' --flag")
    code, out = verify(plan, "-k", "one", capsys=capsys)
    assert code == 1
    text = log.read_text()
    first = text.splitlines()[0]
    assert first.startswith("argv: --flag ") and first.endswith("/observed.stderr")
    assert "-tool-release-one/expected.stderr " in first
    assert text.split("\n", 1)[1] == "left:\nusage: one\nright:\nusage: prog FILE\n"
    left = first.split()[2]
    assert not Path(left).exists()  # removed once the differ returned
    assert Path(left).is_relative_to(plan.store)  # in the store's temporary folder
    # --diff-tool wins over the variable; with --json the differ's words go to stderr.
    log.unlink()
    code = main(["verify", "plan.yaml", "--store", str(plan.store), "-k", "/t", "--json",
                 "--diff-tool", f"'{differ}'"])
    out, err = capsys.readouterr()
    assert code == 1 and json.loads(out)["summary"]["failed"] == 2, err
    assert [line.split("-tool-release-")[1].split("/")[0] for line in
            log.read_text().splitlines() if line.startswith("argv")] == ["two", "three"]


def test_a_missing_diff_tool_is_one_line(plan: SimpleNamespace) -> None:
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, "--diff-tool",
                      "no-such-differ -u", cwd=plan.dir)
    assert (done.returncode, done.stderr) == (
        2, "recipe: --diff-tool 'no-such-differ -u': no program 'no-such-differ' found; name a "
           "differ on PATH, such as 'diff -u' or 'meld'\n")
    assert not plan.store.exists()
