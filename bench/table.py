"""``python3 -m bench.table``: function-case throughput (issues 6, 16), side by side in one run.

A 100,000-row ``int add(int, int)`` table is called through recipe's table harness (a native
program generated for the signature, rows packed in and results packed out, one contained
process: ``engine.verify.harness``, what ``recipe verify`` uses for C and C++ projects) and through
the Python worker (rows in batches through ctypes, ``engine.verify.table``: Rust projects), and
judged; the reference runs one process per
row (a ``main`` that adds its two arguments, started with ``subprocess``, its output compared),
timed over ``--exec-rows`` rows and reported as a rate. Medians of ``--reps``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tabulate import tabulate

from bench.process import remove_tree
from engine.documents.models import Case, Expect
from engine.documents.signature import parse_signature
from engine.errors import Pos
from engine.verify import harness, harness_source
from engine.verify.table import call_rows, judge

LIBRARY = "int add(int a, int b) { return a + b; }\n"
PROGRAM = ('#include <stdio.h>\n#include <stdlib.h>\n'
           'int main(int c, char **v) { printf("%d\\n", atoi(v[1]) + atoi(v[2])); return 0; }\n')


def build(work: Path) -> tuple[Path, Path]:
    (work / "add.c").write_text(LIBRARY)
    (work / "main.c").write_text(PROGRAM)
    library, program = work / "libadd.so", work / "add"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", library, work / "add.c"], check=True)
    subprocess.run(["gcc", "-O2", "-o", program, work / "main.c"], check=True)
    return library, program


def table_case(rows: int) -> Case:
    pos = Pos(Path("bench.yaml"))
    case = Case(name="add", kind="function", file=Path("bench.yaml"), index=0, pos=pos,
                expect=Expect())
    case.signature = parse_signature("int add(int a, int b)", pos)
    case.table = [[i, i % 1000, i + i % 1000] for i in range(rows)]
    return case


def harness_program(work: Path, case: Case, library: Path) -> Path:
    """The case's table harness, compiled as recipe compiles it for the host, linked against
    ``library`` (recipe caches it in the store: only the rows are timed)."""
    assert case.signature is not None
    source = work / f"harness-{case.signature.name}.c"
    source.write_text(harness_source.generate(case.signature, case.free, "bench"))
    program = source.with_suffix("")
    subprocess.run(["gcc", "-O2", "-std=c11", "-w", "-fPIC", "-o", program, source, library,
                    f"-Wl,-rpath,{library.parent}"], check=True)
    return program


def harness_rate(program: Path, case: Case, work: Path) -> float:
    start = time.perf_counter()
    rows = harness.call_rows(case, program, work / "scratch")
    failing, _ = judge(case, rows)
    seconds = time.perf_counter() - start
    remove_tree(work / "scratch")
    if failing:
        raise SystemExit(f"bench.table: {len(failing)} rows failed")
    return len(case.table) / seconds


def worker_rate(library: Path, case: Case, work: Path) -> float:
    start = time.perf_counter()
    rows = call_rows(case, library, work / "scratch")
    failing, _ = judge(case, rows)
    seconds = time.perf_counter() - start
    remove_tree(work / "scratch")
    if failing:
        raise SystemExit(f"bench.table: {len(failing)} rows failed")
    return len(case.table) / seconds


def exec_rate(program: Path, case: Case, count: int) -> float:
    start = time.perf_counter()
    for a, b, want in case.table[:count]:
        out = subprocess.run([program, str(a), str(b)], capture_output=True, text=True).stdout
        if int(out) != want:
            raise SystemExit(f"bench.table: {a} + {b} gave {out}")
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.table", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="table rows (100000)")
    parser.add_argument("--exec-rows", type=int, default=2000,
                        help="rows timed for the process-per-row reference (2000)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (5)")
    parser.add_argument("--load-rows", type=int, default=25_000,
                        help="rows of the inline YAML table loaded (25000; 0: skip issue 19)")
    parser.add_argument("--typed-rows", type=int, default=100_000,
                        help="rows of the double and const char * tables (100000)")
    parser.add_argument("--data-rows", type=int, default=1_000_000,
                        help="rows of the CSV data file run by recipe verify (1000000)")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="recipe-bench-table-"))
    try:
        library, program = build(work)
        case = table_case(args.rows)
        native = harness_program(work, case, library)
        harnessed = [harness_rate(native, case, work) for _ in range(args.reps)]
        worker = [worker_rate(library, case, work) for _ in range(args.reps)]
        execs = [exec_rate(program, case, args.exec_rows) for _ in range(args.reps)]
    finally:
        remove_tree(work)
    h, w, e = (statistics.median(x) for x in (harnessed, worker, execs))
    print(tabulate([["recipe table harness", f"{h:,.0f}", f"{args.rows:,}", ">= 1,000,000",
                     "met" if h >= 1_000_000 else "not met"],
                    ["Python worker (batches)", f"{w:,.0f}", f"{args.rows:,}", "", ""],
                    ["one process per row", f"{e:,.0f}", f"{args.exec_rows:,}", "", ""],
                    ["harness / one process per row", f"{h / e:,.0f} x", "", ">= 1,000 x",
                     "met" if h >= 1000 * e else "not met"]],
                   headers=["int add(int, int)", "rows/s (median)", "rows", "target", ""]))
    if args.load_rows:
        print()
        issue_19(args)
    return 0


def issue_19(args: argparse.Namespace) -> None:
    from bench import table_load

    work = Path(tempfile.mkdtemp(prefix="recipe-bench-load-"))
    try:
        print(f"load average before: {table_load.load_average()}")
        loads = table_load.load_figures(work, args.reps, args.load_rows)
        print(tabulate(loads, headers=["loaded cold", "libyaml s", "CPU s", "round trip s",
                                       "CPU s", "speed-up"]))
        print("target: the inline table <= 0.5 s, >= 10 x\n")
        library = table_load.build_library(work)
        rates = table_load.typed_rates(work, library, args.reps, args.typed_rows)
        print(tabulate(rates, headers=[f"{args.typed_rows:,} rows", "harness rows/s",
                                       "worker rows/s"]))
        print()
        big = table_load.data_file_figures(work, max(1, min(args.reps, 3)), args.data_rows)
        print(tabulate(big, headers=["nothing cached", "start to verdict", "rows alone",
                                     "the rest"]))
        print("target: the rest <= 3 s")
        print(f"load average after: {table_load.load_average()}")
    finally:
        remove_tree(work)


if __name__ == "__main__":
    sys.exit(main())
