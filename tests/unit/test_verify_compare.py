"""Judging observations and rendering diffs: escaping, final newlines, long diffs."""

from __future__ import annotations

from pathlib import Path

from engine.documents.models import Case, Expect
from engine.errors import Pos
from engine.verify.compare import compare
from engine.verify.diffs import escape_lines, format_size, unified_diff
from engine.verify.outcome import Observed


def case_expecting(tmp_path: Path, **expect: object) -> Case:
    file = tmp_path / "cases.yaml"
    return Case(name="c", kind="process", file=file, index=0, pos=Pos(file),
                expect=Expect(**expect), run="tool")  # type: ignore[arg-type]


def test_non_printable_bytes_are_escaped() -> None:
    assert escape_lines(b"a\x00b\r\n\x1b[0m\tx\\y\n") == ["a\\x00b\\r\n", "\\x1b[0m\\tx\\\\y\n"]


def test_invalid_utf8_is_escaped_byte_by_byte_valid_utf8_is_kept() -> None:
    assert escape_lines("café \u2028".encode() + b"\xff\xfe\n") == ["café \\u2028\\xff\\xfe\n"]


def test_a_missing_final_newline_shows_in_the_diff() -> None:
    diff = unified_diff(b"a\nb\n", b"a\nb", "stdout")
    assert diff == ("--- expected stdout\n+++ observed stdout\n@@ -1,2 +1,2 @@\n a\n-b\n+b\n"
                    "\\ No newline at end of file\n")


def test_escaped_diff_of_control_characters() -> None:
    diff = unified_diff(b"ok\n", b"ok\x00\x1b[31m\r\n", "stdout")
    assert "-ok\n+ok\\x00\\x1b[31m\\r\n" in diff


def test_long_diffs_are_cut() -> None:
    expected = b"".join(b"line %d\n" % i for i in range(100))
    diff = unified_diff(expected, b"", "stdout").splitlines()
    assert len(diff) == 61
    assert diff[-1] == "... 43 more lines cut"  # 3 header lines + 100 removed, 60 shown


def test_hunk_numbers_stay_right_after_a_long_common_head() -> None:
    head = b"".join(b"same %d\n" % i for i in range(5000))
    diff = unified_diff(head + b"old\n", head + b"new\n", "stdout")
    assert "@@ -4998,4 +4998,4 @@\n same 4997\n same 4998\n same 4999\n-old\n+new\n" in diff


def test_stderr_is_unchecked_without_an_expectation(tmp_path: Path) -> None:
    case = case_expecting(tmp_path, stdout=b"x\n")
    assert compare(case, Observed(b"x\n", b"noise\n", 0), 1 << 20) == ("passed", "", "")


def test_all_three_differences_are_named(tmp_path: Path) -> None:
    case = case_expecting(tmp_path, stdout=b"x\n", stderr=b"", exit=0)
    status, message, detail = compare(case, Observed(b"y\n", b"e\n", 4), 1 << 20)
    assert status == "failed"
    assert message == "stdout, stderr and exit code differ (exit 4, expected 0)"
    assert "--- expected stdout" in detail and "--- expected stderr" in detail


def test_golden_files_are_read_beside_the_cases_file(tmp_path: Path) -> None:
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "c.stdout").write_bytes(b"\xff\n")
    case = case_expecting(tmp_path, stdout_file="golden/c.stdout")
    assert compare(case, Observed(b"\xff\n", b"", 0), 1 << 20)[0] == "passed"
    missing = case_expecting(tmp_path, stdout_file="golden/none.stdout")
    status, message, detail = compare(missing, Observed(b"x\n", b"", 0), 1 << 20)
    assert (status, message) == ("failed", "stdout differs")
    assert "golden/none.stdout does not exist" in detail


def test_unchecked_stderr_is_shown_when_a_case_fails(tmp_path: Path) -> None:
    case = case_expecting(tmp_path, stdout=b"x\n")
    _, _, detail = compare(case, Observed(b"", b"assertion failed\n", 134), 1 << 20)
    assert "stderr (unchecked):\nassertion failed\n" in detail


def test_sizes() -> None:
    assert [format_size(n) for n in (16 << 20, 64 << 10, 1000)] == ["16 MiB", "64 KiB",
                                                                    "1000 bytes"]


def test_a_signal_without_a_name_is_told_by_its_number(tmp_path: Path) -> None:
    realtime = Observed(stdout=b"", stderr=b"", exit=None, signal="signal 40")
    assert compare(case_expecting(tmp_path, signal=40), realtime, 1 << 20)[0] == "passed"
    status, message, detail = compare(case_expecting(tmp_path, signal=11), realtime, 1 << 20)
    assert (status, message) == ("failed", "killed by signal 40, expected SIGSEGV")
    assert detail == "ended: expected signal SIGSEGV, got signal 40\n"
    exited = Observed(stdout=b"out\n", stderr=b"", exit=0)
    status, message, _ = compare(case_expecting(tmp_path, signal=40), exited, 1 << 20)
    assert message == "exited with 0, expected to be killed by signal 40; stdout differs"
