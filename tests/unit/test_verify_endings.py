"""How a case ended (issue 13, point 4): ``expect: {signal: ...}`` tells a death by a signal from
an exit code, ``xfail:`` turns a failure into ``xfailed`` (and a pass into ``xpassed``, which
fails the run), ``skip:`` does not run a case; every reporter and ``--update`` know them.
Real programs, compiled by the test: one that crashes with SIGSEGV, one that aborts, one that
exits 139 as a shell reports a SIGSEGV death."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli.main import main
from tests.conftest import write_tree

TREE = {
    "plan.yaml": "kind: plan\n",
    "ends/project.yaml": """
        kind: project
        name: ends
        version: "1.0"
        language: c
        outputs:
          - {name: segv, kind: executable, sources: [segv.c]}
          - {name: aborts, kind: executable, sources: [aborts.c]}
          - {name: exits139, kind: executable, sources: [exits139.c]}
          - {name: ok, kind: executable, sources: [ok.c]}
        cases: [cases.yaml]
    """,
    # All volatile: gcc can neither see the pointer is null (and trap) nor drop the store.
    "ends/segv.c": "#include <stdio.h>\nint main(void) { volatile int *volatile p = 0;\n"
                   "puts(\"before\"); fflush(stdout); *p = 1; return 0; }\n",
    "ends/aborts.c": "#include <stdlib.h>\nint main(void) { abort(); }\n",
    "ends/exits139.c": "#include <stdio.h>\nint main(void) { puts(\"before\"); return 139; }\n",
    "ends/ok.c": "#include <stdio.h>\nint main(void) { puts(\"ok\"); return 0; }\n",
    "ends/cases.yaml": """
        kind: cases
        cases:
          - {name: crashes, run: segv, expect: {stdout: "before\\n", signal: SIGSEGV}}
          - {name: exit 139 is no crash, run: exits139,
             expect: {stdout: "before\\n", signal: SIGSEGV}}
          - {name: a crash is no exit 139, run: segv, args: [b],
             expect: {stdout: "before\\n", exit: 139}}
          - {name: aborts by number, run: aborts, expect: {signal: 6}}
          - {name: aborts is no segv, run: aborts, args: [b], expect: {signal: SIGSEGV}}
          - name: known bug
            run: aborts
            args: [c]
            xfail: "bug 12: aborts on empty input"
            expect: {stdout: ""}
          - name: fixed bug
            run: ok
            xfail: "bug 13: prints nothing"
            expect: {stdout: "ok\\n"}
          - name: not here
            run: segv
            skip: needs a network
            expect: {stdout: "never run\\n"}
    """,
}


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store=str(tmp_path / "store"), tmp=tmp_path)


def verify(plan: SimpleNamespace, *args: str) -> int:
    return main(["verify", "plan.yaml", "--store", plan.store, "-j", "2", *args])


def test_a_signal_is_told_from_an_exit_code_in_every_report(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    junit, html = plan.tmp / "junit.xml", plan.tmp / "report.html"
    assert verify(plan, "--junit", str(junit), "--html", str(html)) == 1
    out = capsys.readouterr().out
    status = dict(re.findall(r"^ends\s+release\s+(.+?)\s{2,}(\S+)\s", out, re.M))
    assert status == {
        "crashes": "passed", "exit 139 is no crash": "failed",
        "a crash is no exit 139": "failed", "aborts by number": "passed",
        "aborts is no segv": "failed", "known bug": "xfailed", "fixed bug": "xpassed",
        "not here": "skipped"}
    assert "=== FAILED ends/release: exit 139 is no crash: exited with 139, expected to be " \
        "killed by SIGSEGV\nended: expected signal SIGSEGV, got exit code 139\n" in out
    assert "=== FAILED ends/release: a crash is no exit 139: killed by SIGSEGV\n" in out
    assert "ended: expected exit code 139, got signal SIGSEGV\n" in out
    assert "=== FAILED ends/release: aborts is no segv: killed by SIGABRT, expected SIGSEGV\n" \
        in out
    assert "=== XFAILED ends/release: known bug: xfail: bug 12: aborts on empty input (killed " \
        "by SIGABRT)\n" in out
    assert "=== XPASSED ends/release: fixed bug: passed, but is marked xfail: bug 13: prints " \
        "nothing; remove 'xfail:' if it is fixed\n" in out
    assert "=== SKIPPED ends/release: not here: needs a network\n" in out
    assert out.splitlines()[-1] == "2 passed, 3 failed, 1 xfailed, 1 xpassed, 1 skipped"

    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("8", "4", "0", "2")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["not here"].find("skipped").get("message") == "needs a network"
    assert cases["known bug"].find("skipped").get("message") == \
        "xfail: bug 12: aborts on empty input"
    assert cases["fixed bug"].find("failure") is not None
    assert "exited with 139" in cases["exit 139 is no crash"].find("failure").get("message")
    assert not list(cases["crashes"])

    page = html.read_text()
    assert '<span class="badge warn">xfailed</span><span class="name">known bug' in page
    assert '<span class="badge bad">xpassed</span>' in page
    assert "--- expected ending" in page and "-signal SIGSEGV" in page and "+exit code 139" in page

    assert verify(plan, "--json", "--no-cache") == 1
    data = json.loads(capsys.readouterr().out)
    by_name = {o["case"]: o for o in data["outcomes"]}
    assert by_name["crashes"]["ended"] == {"signal": "SIGSEGV"}
    assert by_name["exit 139 is no crash"]["ended"] == {"exit": 139}
    assert by_name["not here"]["ended"] is None and by_name["not here"]["reason"] == \
        "needs a network"
    assert {k: data["summary"][k] for k in ("passed", "failed", "xfailed", "xpassed",
                                            "skipped")} == \
        {"passed": 2, "failed": 3, "xfailed": 1, "xpassed": 1, "skipped": 1}


def test_xfailed_and_skipped_leave_a_run_green_and_xpassed_fails_it(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    html = plan.tmp / "green.html"
    assert verify(plan, "-k", "crashes", "-k", "known", "-k", "not here", "--html",
                  str(html)) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 1 xfailed, 1 skipped"
    assert '<header class="ok">' in html.read_text()
    assert verify(plan, "-k", "fixed bug") == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 xpassed"
    # A skipped case never runs: its program would crash (and it is not in the cache either).
    assert verify(plan, "-k", "not here", "--no-cache") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 skipped"
    # The mark is no part of the outcome cache's key: without it, the same run is judged again.
    cases = plan.dir / "ends" / "cases.yaml"
    cases.write_text(cases.read_text().replace('    xfail: "bug 12: aborts on empty input"\n',
                                               ""))
    assert verify(plan, "-k", "known") == 1
    assert capsys.readouterr().out.splitlines()[-1] == "1 failed (1 cached)"


def test_update_records_signals_only_where_one_is_expected(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(plan, "--update") == 1  # the xpassed case and the unexpected crash remain
    out = capsys.readouterr().out
    assert "updated ends/cases.yaml: exit 139 is no crash: exit\n" in out
    assert "updated ends/cases.yaml: aborts is no segv: signal\n" in out
    assert "not updated ends/cases.yaml: a crash is no exit 139: killed by SIGSEGV: a signal is " \
        "re-recorded only for a case that expects one; write expect: {signal: SIGSEGV} if it " \
        "must die so\n" in out
    assert "not updated ends/cases.yaml: fixed bug: it passes, but is marked xfail (bug 13: " \
        "prints nothing); remove 'xfail:' if it is fixed\n" in out
    said = [line for line in out.splitlines() if line.startswith(("updated ", "not updated "))]
    assert not any("known bug" in line for line in said)  # xfail: never re-recorded
    text = (plan.dir / "ends" / "cases.yaml").read_text()
    assert '- {name: exit 139 is no crash, run: exits139, expect: {stdout: "before\\n", ' \
        'exit: 139}}\n' in text
    assert '{name: aborts is no segv, run: aborts, args: [b], expect: {signal: SIGABRT}}' in text
    assert '{name: a crash is no exit 139, run: segv, args: [b], expect: {stdout: ' \
        '"before\\n", exit: 139}}\n' in text  # as it was
    assert 'xfail: "bug 12: aborts on empty input"\n    expect: {stdout: ""}' in text
    # What is left fails for the two reasons given; the rest now passes.
    assert verify(plan, "-k", "!a crash is no", "-k", "!fixed bug") == 0
    capsys.readouterr()


def test_bad_signals_and_reasons_are_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cases = tmp_path / "cases.yaml"
    for expect, said in (
            ("{signal: SIGSEG}", "cases.yaml:2:44: unknown signal 'SIGSEG'; did you mean "
                                 "'SIGSEGV'?"),
            ("{signal: segv}", "cases.yaml:2:44: unknown signal 'segv'; did you mean "
                               "'SIGSEGV'?"),
            ("{signal: 0}", "cases.yaml:2:44: 'expect.signal' of case 'c' must be >= 1, not 0"),
            ("{signal: [11]}", "cases.yaml:2:44: 'expect.signal' of case 'c' must be a string "
                               "or an integer, not a list; write a string or an integer")):
        cases.write_text(f"kind: cases\ncases: [{{name: c, run: x, expect: {expect}}}]\n")
        assert main(["validate", str(cases)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.endswith(f"{said}\n"), err
    cases.write_text("kind: cases\ncases: [{name: c, run: x, skip: 3, expect: {}}]\n")
    assert main(["validate", str(cases)]) == 2
    assert capsys.readouterr().err.endswith(
        "cases.yaml:2:33: 'skip' of case 'c' must be a string, not the number 3; quote it: "
        "\"3\"\n")
    cases.write_text("kind: cases\ncases: [{name: c, eval: x, xfail: '', expect: {}}]\n")
    assert main(["validate", str(cases)]) == 2
    assert capsys.readouterr().err.endswith(
        "cases.yaml:2:35: 'xfail' of case 'c' must not be empty; remove it or give it a "
        "value\n")
