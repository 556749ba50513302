"""Function tables from data files (issue 19): ``rows: data/x.csv`` or ``.jsonl`` beside the cases
document, on the real shared library of tests/unit/test_function_cases.py. Bad rows are named by
file and line before anything runs; failures name their line; ``--update`` rewrites only the
expected column of the rows that differ, keeping every other byte."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from engine.documents import data_rows
from engine.documents.errors import DocumentError
from engine.documents.load import load_cases_file
from tests.conftest import run_recipe, write_tree
from tests.unit.test_function_cases import TREE

ADD = "'int add(int a, int b)'"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    tree = {k: v for k, v in TREE.items() if k != "mathx/cases/tables.yaml"}
    return write_tree(tmp_path / "src", tree)


def cases(src: Path, *entries: str) -> Path:
    body = "".join(f"  - {e}\n" for e in entries)
    file = src / "mathx/cases/rows.yaml"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(f"kind: cases\ncases:\n{body}")
    return file


def data(src: Path, name: str, text: str | bytes) -> Path:
    file = src / "mathx/cases/data" / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_bytes(text.encode() if isinstance(text, str) else text)
    return file


def verify(src: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_recipe("verify", src / "plan.yaml", "--store", src.parent / "store", "-t",
                      "release", *args, cwd=src)


def test_csv_and_jsonl_rows_run_and_failures_name_their_line(project: Path) -> None:
    data(project, "add.csv", 'a,b,expected\n1,2,3\r\n"4",5,9\n\n7,"8",16\n')
    data(project, "plain.csv", "1,1,2\n2,2,4\n")
    data(project, "add.jsonl", "[1, 2, 3]\n\n[2, 2, 5]\n")
    data(project, "greet.csv", 'who,expected\nworld,hello world\n\\N,\\N\n"a, b","hello a, b"\n')
    data(project, "half.jsonl", "[3, 1.5]\n[1, 0.5]\n")
    cases(project, f"{{name: csv, function: {ADD}, rows: data/add.csv}}",
          f"{{name: plain, function: {ADD}, table: [[0, 0, 0]], rows: data/plain.csv}}",
          f"{{name: jsonl, function: {ADD}, rows: data/add.jsonl}}",
          "{name: greet, function: 'const char *greet(const char *who)', rows: data/greet.csv}",
          "{name: half, function: double half(double), tolerance: 1e-12, "
          "rows: data/half.jsonl}")
    done = verify(project)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "row 3 (mathx/cases/data/add.csv:5): add(7, 8) returned 15, expected 16" \
        in done.stdout
    assert "row 2 (mathx/cases/data/add.jsonl:3): add(2, 2) returned 4, expected 5" \
        in done.stdout
    assert "3 passed, 2 failed" in done.stdout


def test_bad_rows_are_named_by_line_first_ten_and_a_count(project: Path) -> None:
    rows = [f"{i},1,{i + 1}" for i in range(100)]
    for i in range(10, 22):
        rows[i] = f"{i},x,1"
    data(project, "add.csv", "\n".join(rows) + "\n")
    cases(project, f"{{name: csv, function: {ADD}, rows: data/add.csv}}")
    done = verify(project)
    assert done.returncode == 2 and done.stdout == "" and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0] == ("mathx/cases/data/add.csv:11:1: argument 2 of add: 'x' is not an "
                        "integer; write an integer that fits int")
    assert [line.split(":")[1] for line in lines[:10]] == [str(n) for n in range(11, 21)]
    assert lines[10].endswith("2 more bad rows (fix the ones above and read again)")
    assert not list((project.parent / "store").glob("*-mathx-cases-*"))  # nothing built


@pytest.mark.parametrize("name, text, entry, message", [
    ("add.csv", None, "rows: data/add.csv", "rows.yaml:3:56: file 'data/add.csv' does not "
                                            "exist"),
    ("add.txt", "1,2,3\n", "rows: data/add.txt", "rows.yaml:3:56: rows: 'data/add.txt' is not "
                                                 "a kind of data file recipe reads; name a .csv "
                                                 "or a .jsonl file"),
    ("add.csv", "a,c,expected\n1,2,3\n", "rows: data/add.csv",
     "add.csv:1:1: the header names 'c', which is not a parameter of add(); name the columns "
     "arg1, arg2, a, b, expected"),
    ("add.csv", "1,2\n", "rows: data/add.csv",
     "add.csv:1:1: 2 values, but add() needs 3; write 3 fields: a,b,expected"),
    ("add.csv", "1,2,3\n2147483648,0,0\n", "rows: data/add.csv",
     "add.csv:2:1: argument 1 of add: 2147483648 does not fit int (-2147483648..2147483647); "
     "write an integer that fits int"),
    ("add.jsonl", "[1, 2, 3]\n[1, 2.5, 3]\n", "rows: data/add.jsonl",
     "add.jsonl:2:1: argument 2 of add: 2.5 is not an integer; write an integer that fits int"),
    ("add.jsonl", "[1, 2, 3]\n{}\n", "rows: data/add.jsonl",
     "add.jsonl:2:1: not a JSON array; write [a, b, expected] on one line"),
    ("add.csv", '1,"2,3\n', "rows: data/add.csv", "add.csv:1:1: not CSV: unexpected end of "
                                                   "data; fix the quoting of this record"),
    ("add.csv", "", "table: [[1, 1, 2]], rows: data/add.csv", None),
])
def test_bad_data_files(tmp_path: Path, name: str, text: str | None, entry: str,
                        message: str | None) -> None:
    if text is not None:
        data(tmp_path, name, text)
    file = cases(tmp_path, f"{{name: t, function: {ADD}, {entry}}}")
    if message is None:  # an empty data file is no rows: the inline ones remain
        assert load_cases_file(file)[0].table == [[1, 1, 2]]
        return
    with pytest.raises(DocumentError) as error:
        load_cases_file(file)
    assert message in error.value.render().splitlines()[0]


def test_a_data_file_over_its_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data(tmp_path, "add.csv", "1,2,3\n" * 10)
    file = cases(tmp_path, f"{{name: t, function: {ADD}, rows: data/add.csv}}")
    monkeypatch.setattr(data_rows, "MAX_DATA_BYTES", 59)
    with pytest.raises(DocumentError, match=r"too large .* the limit is 0 GiB"):
        load_cases_file(file)


def test_update_rewrites_only_the_differing_rows_of_a_csv_file(project: Path) -> None:
    csv_text = 'a,b,expected\r\n1,2,3\r\n"2","2","5"\r\n3,3,6\r\n4, 4 ,0\r\n'
    csv_file = data(project, "add.csv", csv_text)
    jsonl_file = data(project, "add.jsonl", '[1, 2, 3]\n[2,2,5]\n[3, 3, 7]\n')
    cases(project, f"{{name: csv, function: {ADD}, rows: data/add.csv}}",
          f"{{name: jsonl, function: {ADD}, table: [[1, 1, 3]], rows: data/add.jsonl}}")
    done = verify(project, "--update")
    assert done.returncode == 0, done.stdout + done.stderr
    assert csv_file.read_bytes() == (b'a,b,expected\r\n1,2,3\r\n"2","2","4"\r\n3,3,6\r\n'
                                     b'4, 4 ,8\r\n')
    assert jsonl_file.read_text() == '[1, 2, 3]\n[2,2,4]\n[3, 3, 6]\n'
    assert "data/add.csv:3, data/add.csv:5" in done.stdout
    assert "table row 1" in done.stdout  # the inline row of the jsonl case, in the YAML
    assert verify(project).returncode == 0


def test_a_crash_in_the_middle_of_a_large_table_fails_only_that_row(project: Path) -> None:
    rows = [f"{i},{i}" for i in range(2, 20_002)]
    rows[9_000] = "0,0"  # crash(0) dereferences NULL
    data(project, "crash.csv", "x,expected\n" + "\n".join(rows) + "\n")
    cases(project, "{name: crashes, function: int crash(int x), rows: data/crash.csv}")
    done = verify(project)
    assert done.returncode == 1
    assert "1 of 20000 rows failed" in done.stdout
    assert "row 9001 (mathx/cases/data/crash.csv:9002): crash(0) crashed: SIGSEGV; " \
        "expected 0" in done.stdout


def test_failing_rows_are_capped_in_text_and_html(project: Path) -> None:
    data(project, "add.csv", "".join(f"{i},1,{i}\n" for i in range(30)))
    cases(project, f"{{name: csv, function: {ADD}, rows: data/add.csv}}")
    done = verify(project, "--html", "report.html", "--junit", "report.xml")
    assert done.returncode == 1
    assert done.stdout.count("returned") == 20
    junit = (project / "report.xml").read_text()
    assert junit.count("returned") == 20 and "10 more failing rows" in junit
    assert "... and 10 more failing rows (--failing-rows N shows more)" in done.stdout
    page = (project / "report.html").read_text()
    assert page.count('class="got"') == 20 and "10 more failing rows" in page
    assert "<td>1 (mathx/cases/data/add.csv:1)</td>" in page
    done = verify(project, "--failing-rows", "3")
    assert done.stdout.count("returned") == 3 and "27 more failing rows" in done.stdout


def test_a_data_file_is_an_input_of_the_cached_outcome(project: Path) -> None:
    csv_file = data(project, "add.csv", "1,2,3\n2,2,4\n")
    cases(project, f"{{name: csv, function: {ADD}, rows: data/add.csv}}")
    assert "passed (cached)" not in verify(project).stdout
    again = verify(project)
    assert again.returncode == 0 and "passed (cached)" in again.stdout
    csv_file.write_text("1,2,3\n2,2,5\n")  # the file is hashed: a change runs the rows again
    changed = verify(project)
    assert changed.returncode == 1 and "(cached)" not in changed.stdout
    assert "row 2 (mathx/cases/data/add.csv:2): add(2, 2) returned 4, expected 5" \
        in changed.stdout
    assert "(cached)" in verify(project).stdout


def test_a_long_table_of_long_timeouts_runs(project: Path) -> None:
    """The worker's outer bound (rows x timeout) once passed poll()'s limit of 24.8 days."""
    data(project, "add.jsonl", "".join(f"[{i}, 1, {i + 1}]\n" for i in range(30)))
    cases(project, f"{{name: slow, function: {ADD}, timeout: 86400, rows: data/add.jsonl}}")
    done = verify(project)
    assert done.returncode == 0, done.stdout + done.stderr


_PIECES = ["1", "-2", "2147483648", "x", "", " ", ",", '"', '""', "\n", "\r\n", "\r", "\\N",
           "[", "]", "null", "1.5", "true", "\x00", "é", "a,b,expected\n", "[1, 2, 3]\n",
           "1,2,3\n", "{}", "\ufeff", "\u2028"]


@settings(max_examples=300, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate])
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=30),
       suffix=st.sampled_from([".csv", ".jsonl"]),
       prototype=st.sampled_from(["'int add(int a, int b)'",
                                  "'const char *greet(const char *who)'",
                                  "'void nothing(double x)'", "bool ok(void)"]))
def test_hostile_data_files_fail_in_lines_that_name_file_and_line(
        tmp_path_factory: pytest.TempPathFactory, pieces: list[str], suffix: str,
        prototype: str) -> None:
    src = tmp_path_factory.mktemp("hostile")
    data(src, "rows" + suffix, "".join(pieces).encode("utf-8", "surrogatepass"))
    file = cases(src, f"{{name: t, function: {prototype}, rows: data/rows{suffix}}}")
    try:
        case = load_cases_file(file)[0]
    except DocumentError as error:  # nothing else: no ValueError, no IndexError
        for line in error.render().splitlines():
            assert line.startswith(str(src / "mathx/cases")) or line.startswith("mathx/"), line
        return
    assert len(case.row_lines) == len(case.table)
    assert all(len(row) == len(case.signature.params) + 1 for row in case.table)


def test_update_of_a_csv_whose_header_reorders_the_columns(tmp_path: Path) -> None:
    from engine.verify.update_rows import edit_rows

    text = 'expected,b,a\n3,2,1\n"9",5,"4"\n7,1,1\n'
    csv_file = data(tmp_path, "add.csv", text)
    case = load_cases_file(cases(tmp_path, f"{{name: t, function: {ADD}, "
                                           "rows: data/add.csv}"))[0]
    assert case.table == [[1, 2, 3], [4, 5, 9], [1, 1, 7]] and case.row_lines == [2, 3, 4]
    new, recorded, refused = edit_rows(csv_file, [(case, {1: 10, 2: 2})])
    assert new == b'expected,b,a\n3,2,1\n"10",5,"4"\n2,1,1\n' and not refused
    assert recorded == [(case, ["data/add.csv:3", "data/add.csv:4"])]
    csv_file.write_text(text.replace("7,1,1", "7,1,2"))  # edited during the run: refused
    new, recorded, refused = edit_rows(csv_file, [(case, {1: 10, 2: 2})])
    assert new is None and refused and "changed during the run" in refused[0][1]
