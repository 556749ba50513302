"""Function cases: tables of rows called in a worker process through ctypes, on real shared
libraries built by recipe (issue 6). Every row is judged on its own; a crash or a hang fails
only its row; the verifying process never loads project code."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.documents.models import Case, Expect
from engine.documents.signature import parse_signature
from engine.errors import Pos
from engine.verify.table import TableError, call_rows, judge
from tests.conftest import run_recipe, write_tree

LIBRARY_C = r"""
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include "mathx.h"
int add(int a, int b) { return a + b; }
double half(double x) { return x / 2; }
float third(float x) { return x / 3; }
const char *greet(const char *who) {
    static char buf[64];
    if (!who) return NULL;
    snprintf(buf, sizeof buf, "hello %s", who);
    return buf;
}
int crash(int x) {
    if (x == 0) { volatile int *p = 0; return *p; }
    if (x == 1) abort();
    return x;
}
int divide(int a, int b) { return a / b; }
int hang(int x) { while (x == 7) {} return x; }
bool is_even(long long x) { return x % 2 == 0; }
char first(const char *s) { return s[0]; }
unsigned char low(unsigned int x) { return x & 0xff; }
uint64_t big(uint64_t x) { return x; }
"""

TREE = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
          debug: {opt: debug}
        default_targets: [release, debug]
    """,
    "mathx/project.yaml": """
        kind: project
        name: mathx
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        include_dirs: [include]
        outputs:
          - {name: mathx, kind: static-library}
          - {name: tool, kind: executable, sources: [tool.c]}
    """,
    "mathx/include/mathx.h": """
        #include <stdbool.h>
        #include <stdint.h>
        int add(int a, int b);
        double half(double x);
        float third(float x);
        const char *greet(const char *who);
        int crash(int x);
        int divide(int a, int b);
        int hang(int x);
        bool is_even(long long x);
        char first(const char *s);
        unsigned char low(unsigned int x);
        uint64_t big(uint64_t x);
    """,
    "mathx/src/mathx.c": LIBRARY_C,
    "mathx/tool.c": '#include "mathx.h"\nint main(void) { return add(0, 0); }\n',
    "mathx/cases/tables.yaml": """
        kind: cases
        cases:
          - name: adds
            function: int add(int a, int b)
            table:
              - [1, 2, 3]
              - [-5, 5, 0]      # a comment that stays
              - [2147483647, 0, 2147483647]
              - [2, 2, 5]
          - name: numbers
            function: double half(double)
            tolerance: 1e-12
            table: [[3, 1.5], [1, 0.5]]
          - name: floats
            function: float third(float)
            table: [[3, 1], [1, 0.33333334]]
          - name: strings
            function: const char *greet(const char *who)
            table: [["world", "hello world"], [null, null], ["é", "hello é"]]
          - name: small types
            function: char first(const char *)
            table: [["abc", "a"]]
          - name: bytes
            function: unsigned char low(unsigned int)
            table: [[258, 2], [4294967295, 255]]
          - name: wide
            function: uint64_t big(uint64_t)
            table: [[18446744073709551615, 18446744073709551615]]
          - name: truth
            function: bool is_even(long long)
            table: [[2, true], [-3, false], [9223372036854775807, false]]
    """,
}

CRASHES = """
    kind: cases
    cases:
      - name: crashes
        function: int crash(int)
        table: [[0, 0], [1, 1], [3, 3], [4, 4]]
      - name: divides
        function: int divide(int a, int b)
        table: [[6, 3, 2], [1, 0, 0], [9, 3, 3]]
      - name: hangs
        function: int hang(int)
        timeout: 0.5
        table: [[1, 1], [7, 7], [8, 8]]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", TREE)


def verify(src: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_recipe("verify", src / "plan.yaml", "--store", src.parent / "store", *args)


def test_every_row_is_judged_and_each_failure_named(project: Path) -> None:
    done = verify(project)
    assert done.returncode == 1, done.stderr
    # Only row 4 of adds fails, on both targets; every other case passes.
    assert done.stdout.count("FAILED") == 2 and "14 passed, 2 failed" in done.stdout
    assert "row 4: add(2, 2) returned 4, expected 5" in done.stdout
    # The harness linked the project's own static library: no other library was built.
    paths = sorted(p.name.split("-", 1)[1] for p in (project.parent / "store").glob("*-*"))
    assert paths == ["mathx-1.0.0-debug", "mathx-1.0.0-release"]


def test_a_crash_or_a_hang_fails_its_row_and_the_next_rows_run(project: Path) -> None:
    (project / "mathx/cases/tables.yaml").unlink()
    write_tree(project, {"mathx/cases/crashes.yaml": CRASHES})
    done = verify(project, "-t", "release")
    assert done.returncode == 1
    out = done.stdout
    assert "row 1: crash(0) crashed: SIGSEGV; expected 0" in out
    assert "row 2: crash(1) crashed: SIGABRT; expected 1" in out
    assert "row 3: crash(3)" not in out and "row 4: crash(4)" not in out
    assert "row 2: divide(1, 0) crashed: SIGFPE; expected 0" in out
    assert "row 2: hang(7) timed out after 0.5 s; expected 7" in out
    assert "row 1: hang(1)" not in out and "row 3: hang(8)" not in out
    assert out.rstrip().endswith("3 failed")


def test_update_rerecords_only_the_rows_that_differ(project: Path) -> None:
    cases = project / "mathx/cases/tables.yaml"
    before = cases.read_text()
    done = verify(project, "--update")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "adds: table row 4" in done.stdout
    after = cases.read_text()
    assert after == before.replace("- [2, 2, 5]", "- [2, 2, 4]")
    assert verify(project).returncode == 0


def test_update_refuses_a_row_that_crashed(project: Path) -> None:
    write_tree(project, {"mathx/cases/crashes.yaml": CRASHES})
    before = (project / "mathx/cases/crashes.yaml").read_text()
    done = verify(project, "--update", "-t", "release", "-k", "crashes")
    assert done.returncode == 1
    assert "not updated" in done.stdout and "row 1 crashed or hung" in done.stdout
    assert (project / "mathx/cases/crashes.yaml").read_text() == before


def test_a_function_missing_from_the_library_is_one_line_exit_2(project: Path) -> None:
    cases = project / "mathx/cases/tables.yaml"
    cases.write_text(cases.read_text().replace("int add(int a, int b)", "int sum(int a, int b)"))
    done = verify(project)
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("mathx/cases/tables.yaml:") or "tables.yaml:" in lines[-1]
    assert "has no function 'sum'" in lines[-1] and "Traceback" not in done.stderr


def test_a_cxx_library_with_extern_c_functions_and_its_own_shared_library(tmp_path) -> None:
    src = write_tree(tmp_path / "src", {
        "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
        "vec/project.yaml": """
            kind: project
            name: vec
            version: 1.0.0
            language: c++
            sources: ["*.cpp"]
            outputs: [{name: vec, kind: shared-library}]
        """,
        "vec/vec.cpp": """
            #include <numeric>
            #include <vector>
            extern "C" long long triangle(int n) {
                std::vector<long long> v(n);
                std::iota(v.begin(), v.end(), 1);
                return std::accumulate(v.begin(), v.end(), 0LL);
            }
        """,
        "vec/cases/t.yaml": """
            kind: cases
            cases:
              - {name: sums, function: long long triangle(int), table: [[4, 10], [100, 5050]]}
        """,
    })
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not list((tmp_path / "store").glob("*-vec-cases-*"))  # its own .so served


def test_the_verifying_process_never_loads_the_library(project: Path, tmp_path: Path) -> None:
    lib = tmp_path / "libadd.so"
    (tmp_path / "add.c").write_text("int add(int a, int b) { return a + b; }\n")
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", lib, tmp_path / "add.c"], check=True)
    pos = Pos(tmp_path / "c.yaml")
    case = Case(name="adds", kind="function", file=pos.file, index=0, pos=pos, expect=Expect())
    case.signature = parse_signature("int add(int, int)", pos)
    case.table = [[i, 1, i + 1] for i in range(10_000)] + [[1, 1, 3]]
    results = call_rows(case, lib, tmp_path / "scratch")
    failing, detail = judge(case, results)
    assert failing == [10_000] and detail == "row 10001: add(1, 1) returned 2, expected 3"
    assert str(lib) not in Path("/proc/self/maps").read_text()
    case.signature = parse_signature("int nothere(int, int)", pos)
    with pytest.raises(TableError, match="nothere"):
        call_rows(case, lib, tmp_path / "scratch2")


def test_a_project_whose_only_source_defines_main_is_one_line_exit_2(tmp_path: Path) -> None:
    # The cases library is built from the sources that do not define main: with none, the
    # case is refused before anything runs (it once ended in a missing build folder).
    src = write_tree(tmp_path / "src", {
        "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
        "p/project.yaml": """
            kind: project
            name: p
            version: 1.0.0
            language: c
            sources: ["src/*.c"]
            outputs:
              - {name: p, kind: executable}
        """,
        "p/src/main.c": "int add(int a, int b) { return a + b; }\nint main(void) { return 0; }\n",
        "p/cases/c.yaml": """
            kind: cases
            cases:
              - name: adds
                function: int add(int a, int b)
                table:
                  - [1, 2, 3]
        """,
    })
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 2
    last = done.stderr.splitlines()[-1]  # after the progress line of the build
    assert last.endswith("p/cases/c.yaml:3:5: case 'adds': project 'p' has no code to call but "
                         "in sources that define main; move the functions into a source of "
                         "their own (the cases library is built from every source that does "
                         "not define main)")
    assert "Traceback" not in done.stderr
