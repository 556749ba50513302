"""The table harness on the host: rows packed in, results packed out, a crash or a hang in the
middle of a batch failing its row alone, the function's own prints kept apart from the results,
and the harness cached in the store like a REPL runner. Real gcc, real processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from engine.documents.load import load_plan
from engine.documents.models import Case, Expect
from engine.documents.signature import parse_signature
from engine.errors import Pos
from engine.repl.runner import lookup, runner_key
from engine.store import Store
from engine.verify import harness, harness_source
from engine.verify.table import judge
from tests.conftest import run_recipe, write_tree

LIBRARY = r"""
#include <stdio.h>
#include <stdlib.h>
int twice(int x) {
    if (x == 5000 || x == 5001) { volatile int *p = 0; return *p; }
    if (x == 9000) for (;;) {}
    return 2 * x;
}
int noisy(int x) { printf("row %d\n", x); fflush(stdout); return x + 1; }
long labs(long x) { return x < 0 ? -x : x; }  /* named like libc's: no clash */
int quits(int x) { if (x == 3 || x == 124) exit(x); return x; }
int loud(int x) { if (x == 7) for (int i = 0; i < 100000; i++) puts("loud"); return x; }
"""


def _case(text: str, rows: list[list[object]], timeout: float = 10.0) -> Case:
    pos = Pos(Path("t.yaml"))
    case = Case(name="t", kind="function", file=Path("t.yaml"), index=0, pos=pos,
                expect=Expect())
    case.signature = parse_signature(text, pos)
    case.table = rows
    case.timeout = timeout
    return case


def _program(tmp_path: Path, case: Case) -> Path:
    assert case.signature is not None
    (tmp_path / "lib.c").write_text(LIBRARY)
    source = tmp_path / f"{case.signature.name}.c"
    source.write_text(harness_source.generate(case.signature, None, "test"))
    program = tmp_path / case.signature.name
    subprocess.run(["gcc", "-O1", "-std=c11", "-w", "-o", program, source, tmp_path / "lib.c"],
                   check=True)
    return program


def test_crashes_and_a_hang_inside_a_batch_fail_their_rows_alone(tmp_path: Path) -> None:
    rows: list[list[object]] = [[i, 2 * i] for i in range(12_000)]
    case = _case("int twice(int x)", rows, timeout=0.5)
    results = harness.call_rows(case, _program(tmp_path, case), tmp_path / "scratch")
    assert results.problems == {5000: "crashed: SIGSEGV", 5001: "crashed: SIGSEGV",
                                9000: "timed out after 0.5 s"}
    failing, _ = judge(case, results)
    assert failing == [5000, 5001, 9000]
    assert results.values[4999] == 9998 and results.values[5002] == 10004
    assert results.values[11_999] == 23_998


def test_what_the_function_prints_is_not_a_result(tmp_path: Path) -> None:
    case = _case("int noisy(int x)", [[i, i + 1] for i in range(10)])
    results = harness.call_rows(case, _program(tmp_path, case), tmp_path / "scratch")
    assert results.values == list(range(1, 11)) and results.problems == {}


def test_a_function_named_like_a_libc_one(tmp_path: Path) -> None:
    case = _case("long labs(long x)", [[-3, 3], [-(2**40), 2**40]])
    results = harness.call_rows(case, _program(tmp_path, case), tmp_path / "scratch")
    assert results.values == [3, 2**40]


def test_a_function_that_exits_with_the_harness_own_codes_fails_its_row_alone(
        tmp_path: Path) -> None:
    # exit(3) is also the harness's own "cannot run", exit(124) the Windows watchdog's: from a
    # function on the host, each is that row's exit code and nothing more.
    case = _case("int quits(int x)", [[3, 3], [1, 1], [124, 124], [2, 2]])
    results = harness.call_rows(case, _program(tmp_path, case), tmp_path / "scratch")
    assert results.problems == {0: "ended the harness with exit code 3",
                                2: "ended the harness with exit code 124"}
    assert results.values[1] == 1 and results.values[3] == 2


PROJECT = {
    "plan.yaml": 'kind: plan\nprojects: ["*/project.yaml"]\n',
    "m/project.yaml": """
        kind: project
        name: m
        version: 1.0.0
        language: c
        sources: ["*.c"]
        outputs: [{name: m, kind: static-library}]
        cases: ["cases.yaml"]
    """,
    "m/m.c": "int add(int a, int b) { return a + b; }\n",
    "m/cases.yaml": """
        kind: cases
        cases:
          - {name: adds, function: "int add(int a, int b)", table: [[1, 2, 3]]}
    """,
}


def test_the_harness_is_cached_in_the_store_like_a_repl_runner(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", PROJECT)
    root = tmp_path / "store"
    first = run_recipe("verify", src / "plan.yaml", "--store", root, "--json")
    assert json.loads(first.stdout)["outcomes"][0]["status"] == "passed", first.stderr
    plan = load_plan(src / "plan.yaml")
    store = Store.open(root)
    path = next(root.glob("*-m-1.0.0-release"))
    spec, library = harness.spec_for(plan, store, "m", "release", path)
    assert library == path / "lib" / "libm.a"
    case = plan.projects["m"].cases[0]
    assert case.signature is not None
    key = runner_key(spec, harness_source.generate(case.signature, None, spec.title))
    found = lookup(store, key, Path(store.temp_dir("t")))
    assert found is not None and found.executable.read_bytes()[:4] == b"\x7fELF"
    # what the rows returned is cached too: an unchanged run calls nothing
    again = run_recipe("verify", src / "plan.yaml", "--store", root, "--json")
    assert json.loads(again.stdout)["outcomes"][0]["cached"] is True


def test_a_harness_that_does_not_build_is_an_error_in_words_not_a_traceback(
        tmp_path: Path) -> None:
    # The static library links (an archive resolves nothing), the harness does not: add()
    # calls a function no source defines.
    tree = {**PROJECT, "m/m.c": "int gone(int);\nint add(int a, int b) { return gone(a) + b; }\n"}
    src = write_tree(tmp_path / "src", tree)
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 1, done.stderr
    assert "the table harness of add() does not build" in done.stdout
    assert "gone" in done.stdout  # the linker's words
    assert "Traceback" not in done.stdout + done.stderr


def test_a_row_that_prints_past_the_output_cap_fails_for_that_not_as_a_crash(
        tmp_path: Path) -> None:
    case = _case("int loud(int x)", [[i, i] for i in range(20)])
    results = harness.call_rows(case, _program(tmp_path, case), tmp_path / "scratch",
                                cap=64 * 1024)
    assert results.problems == {
        7: "stdout exceeded 64 KiB (the output cap; the rows run together share it)"}
    assert results.values[:7] == list(range(7)) and results.values[8:] == list(range(8, 20))
