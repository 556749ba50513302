"""Reporters: the text table and summary, JUnit XML, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from engine.verify.outcome import Outcome
from engine.verify.report import (
    HEADERS,
    render_text,
    simple_table,
    summary_line,
    to_json,
    write_junit,
)

OUTCOMES = [
    Outcome("wc", "release", "counts words", "passed", 0.01),
    Outcome("wc", "release", "cached one", "passed", 0.0, cached=True),
    Outcome("wc", "debug", "counts lines", "failed", 0.02, message="stdout differs",
            detail="--- expected stdout\n+++ observed stdout\n@@ -1 +1 @@\n-1\n+2\n"),
    Outcome("wc", "debug", "in scope", "failed", 0.0, message="1 of 3 rows failed"),
    Outcome("str", "release", "bad \x1b name", "error", 0.0, message="boom\x00",
            detail="Traceback\x07\n"),
]


def test_summary_line_counts_every_status() -> None:
    assert summary_line(OUTCOMES) == "2 passed, 2 failed, 1 error (1 cached)"
    assert summary_line([]) == "no cases"


def test_text_report_has_table_details_and_summary() -> None:
    text = render_text(OUTCOMES)
    lines = text.splitlines()
    assert lines[0].split() == ["project", "target", "case", "outcome", "time"]
    assert any("passed (cached)" in line for line in lines)
    assert "=== FAILED wc/debug: counts lines: stdout differs\n--- expected stdout" in text
    assert "=== FAILED wc/debug: in scope: 1 of 3 rows failed" in text
    assert "counts words: " not in text  # passed cases have no detail
    assert lines[-1] == "2 passed, 2 failed, 1 error (1 cached)"


def test_junit_counts_failures_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "reports" / "junit.xml"
    write_junit(OUTCOMES, path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert list(suites) == ["wc/release", "wc/debug", "str/release"]
    debug = suites["wc/debug"]
    assert debug.get("failures") == "2" and debug.find(".//skipped") is None
    failures = debug.findall("testcase/failure")
    assert [f.get("message") for f in failures] == [
        "stdout differs", "1 of 3 rows failed"]
    assert failures[0].text is not None and "-1\n+2" in failures[0].text
    error = suites["str/release"].find("testcase/error")
    assert error is not None and error.get("message") == "boom\\x00"


def test_json_has_outcomes_and_summary() -> None:
    data = json.loads(json.dumps(to_json(OUTCOMES)))
    assert data["summary"] == {"passed": 2, "failed": 2, "error": 1, "xfailed": 0, "xpassed": 0,
                               "skipped": 0, "updated": 0, "cached": 1, "total": 5}
    assert data["outcomes"][2] == {
        "project": "wc", "target": "debug", "case": "counts lines", "status": "failed",
        "seconds": 0.02, "message": "stdout differs", "detail": OUTCOMES[2].detail,
        "cached": False, "ended": None, "reason": None}


def test_text_report_escapes_control_characters() -> None:
    text = render_text(OUTCOMES)
    assert "\x1b" not in text and "\x00" not in text and "\x07" not in text
    assert "=== ERROR str/release: bad \\x1b name: boom\\x00\nTraceback\\x07\n" in text


_ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_ASCII, _ASCII, _ASCII, _ASCII, _ASCII), max_size=6))
def test_the_table_is_what_tabulate_prints_without_importing_it(rows: list[tuple]) -> None:
    # The report's own table (tabulate's import alone is a sixth of an all-cached verify):
    # exactly tabulate's "simple" format for the cells it is used for, printable ASCII.
    assert simple_table(rows, HEADERS) == tabulate(rows, headers=HEADERS, tablefmt="simple",
                                                   disable_numparse=True)


def test_the_text_report_imports_neither_tabulate_nor_elementtree() -> None:
    code = ("import sys\nfrom engine.verify.outcome import Outcome\n"
            "from engine.verify.report import render_text\n"
            "render_text([Outcome('wc', 'release', 'counts', 'passed', 0.01)])\n"
            "print(sorted(m for m in ('tabulate', 'xml.etree.ElementTree') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
