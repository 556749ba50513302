"""The figures of issue 19, for ``python3 -m bench.table``: documents that load fast, and tables
from data files at scale, side by side with the reference (the round-trip loader as it was) in
one run. Medians of ``reps``; the load average is printed with them (a shared machine).

- a 25,000-row inline ``int add(int, int)`` table: loaded cold (no plan cache), libyaml reader
  against the round trip (the loader with the fast reader off: ruamel for everything, jsonschema
  over every row);
- the bundled plan (``recipes/plan.yaml``): every document loaded cold, both ways;
- rows/s of a ``double`` function with a tolerance and of ``const char *`` arguments;
- a 1,000,000-row CSV table through ``recipe verify`` as a user runs it, nothing cached (fresh
  ``.recipe/``, ``--no-cache``; the library already built): command start to verdict, against
  the rows' own run time (the worker's calls and the judging, timed on their own).
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bench.process import remove_tree
from engine.documents.models import Case, Expect
from engine.documents.signature import parse_signature
from engine.errors import Pos
from engine.verify.table import call_rows, judge

REPO = Path(__file__).resolve().parent.parent
LIBRARY = ("#include <stdio.h>\n#include <string.h>\n"
           "int add(int a, int b) { return a + b; }\n"
           "double scale(double x, double k) { return x * k; }\n"
           "size_t span(const char *s, const char *t) { return strlen(s) + strlen(t); }\n")


def median_of(reps: int, run: Callable[[], Any]) -> float:
    return cpu_and_wall(reps, run)[1]


def cpu_and_wall(reps: int, run: Callable[[], Any]) -> tuple[float, float]:
    """Medians of (CPU seconds of this process and its children, wall seconds): on a shared,
    loaded machine the wall clock waits for other people's work, the CPU time does not."""
    cpus, walls = [], []
    for _ in range(reps):
        before, start = _cpu(), time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu() - before)
    return statistics.median(cpus), statistics.median(walls)


def _cpu() -> float:
    own, children = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                       resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextlib.contextmanager
def round_trip_only() -> Iterator[None]:
    """The loader as it was before issue 19: no libyaml reader, jsonschema over every row."""
    from engine.documents import schema, yaml_load

    fast, light = yaml_load.fast_load, schema._without_tables
    yaml_load.fast_load = lambda text: None  # type: ignore[assignment]
    schema._without_tables = lambda doc: doc.data  # type: ignore[assignment]
    try:
        yield
    finally:
        yaml_load.fast_load, schema._without_tables = fast, light


def inline_table(work: Path, rows: int) -> Path:
    file = work / "inline.yaml"
    with open(file, "w") as f:
        f.write("kind: cases\ncases:\n  - name: add\n    function: int add(int a, int b)\n"
                "    table:\n")
        f.writelines(f"      - [{i}, {i % 1000}, {i + i % 1000}]\n" for i in range(rows))
    return file


def load_figures(work: Path, reps: int, rows: int) -> list[list[str]]:
    from engine.documents.load import load_cases_file, load_plan

    table = inline_table(work, rows)
    plan = REPO / "recipes" / "plan.yaml"
    out = []
    for title, load in ((f"{rows:,}-row inline table", lambda: load_cases_file(table)),
                        ("bundled plan, every document", lambda: load_plan(plan))):
        fast_cpu, fast = cpu_and_wall(reps, load)
        with round_trip_only():
            slow_cpu, slow = cpu_and_wall(max(1, min(reps, 3)), load)
        out.append([title, f"{fast:.3f}", f"{fast_cpu:.3f}", f"{slow:.3f}", f"{slow_cpu:.3f}",
                    f"{slow / fast:.1f} x"])
    return out


def build_library(work: Path) -> Path:
    (work / "lib.c").write_text(LIBRARY)
    library = work / "libbench.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", library, work / "lib.c"],
                   check=True)
    return library


def _case(prototype: str, rows: list[list[Any]], tolerance: float = 0.0) -> Case:
    pos = Pos(Path("bench.yaml"))
    case = Case(name="bench", kind="function", file=Path("bench.yaml"), index=0, pos=pos,
                expect=Expect(), tolerance=tolerance)
    case.signature = parse_signature(prototype, pos)
    case.table = rows
    return case


def typed_rates(work: Path, library: Path, reps: int, rows: int) -> list[list[str]]:
    cases = [
        ("int add(int, int)", _case("int add(int a, int b)",
                                    [[i, i % 1000, i + i % 1000] for i in range(rows)])),
        ("double scale(double, double), tolerance", _case(
            "double scale(double x, double k)", [[i * 0.5, 0.1, i * 0.05] for i in range(rows)],
            1e-9)),
        ("size_t span(const char *, const char *)", _case(
            "size_t span(const char *s, const char *t)",
            [[f"row{i}", "x" * (i % 17), len(f"row{i}") + i % 17] for i in range(rows)])),
    ]
    from bench.table import harness_program
    from engine.verify import harness

    out = []
    for title, case in cases:
        program = harness_program(work, case, library)

        def run(case: Case = case, title: str = title, program: Path | None = None) -> None:
            rows = harness.call_rows(case, program, work / "scratch") if program else \
                call_rows(case, library, work / "scratch")
            failing, _ = judge(case, rows)
            remove_tree(work / "scratch")
            if failing:
                raise SystemExit(f"bench.table: {title}: {len(failing)} rows failed")

        out.append([title, f"{rows / median_of(reps, partial(run, program=program)):,.0f}",
                    f"{rows / median_of(reps, run):,.0f}"])
    return out


def write_plan(work: Path, rows: int) -> Path:
    plan = work / "plan"
    (plan / "add/cases/data").mkdir(parents=True)
    (plan / "plan.yaml").write_text("kind: plan\nprojects: ['*/project.yaml']\n")
    (plan / "add/project.yaml").write_text(
        "kind: project\nname: add\nversion: 1.0.0\nlanguage: c\nsources: ['*.c']\n"
        "outputs: [{name: add, kind: shared-library}]\n")
    (plan / "add/add.c").write_text("int add(int a, int b) { return a + b; }\n")
    (plan / "add/cases/add.yaml").write_text(
        "kind: cases\ncases:\n  - name: add\n    function: int add(int a, int b)\n"
        "    rows: data/add.csv\n")
    with open(plan / "add/cases/data/add.csv", "w") as f:
        f.write("a,b,expected\n")
        f.writelines(f"{i},{i % 1000},{i + i % 1000}\n" for i in range(rows))
    return plan


def data_file_figures(work: Path, reps: int, rows: int) -> list[list[str]]:
    """(command start to verdict, the rows' own time, the difference) for ``rows`` CSV rows."""
    from engine.documents.load import load_cases_file

    plan = write_plan(work, rows)
    store = work / "store"
    command = [sys.executable, "-m", "engine.cli.main", "verify", str(plan / "plan.yaml"),
               "--store", str(store), "--no-cache", "--json"]
    subprocess.run(command, capture_output=True, check=False)  # builds the library once
    library = next(store.glob("*-add-*")) / "lib" / "libadd.so"
    case = load_cases_file(plan / "add/cases/add.yaml")[0]
    from bench.table import harness_program
    from engine.verify import harness

    program = harness_program(work, case, library)  # as recipe verify calls them

    def rows_alone() -> None:
        failing, _ = judge(case, harness.call_rows(case, program, work / "scratch"))
        remove_tree(work / "scratch")
        assert not failing

    def whole() -> None:
        remove_tree(plan / ".recipe")
        done = subprocess.run(command, capture_output=True, text=True, cwd=work)
        if done.returncode != 0:
            raise SystemExit(f"bench.table: recipe verify failed: {done.stdout}{done.stderr}")

    (total_cpu, total), (alone_cpu, alone) = cpu_and_wall(reps, whole), \
        cpu_and_wall(reps, rows_alone)
    return [[f"{rows:,}-row CSV, wall s", f"{total:.2f}", f"{alone:.2f}", f"{total - alone:.2f}"],
            [f"{rows:,}-row CSV, CPU s", f"{total_cpu:.2f}", f"{alone_cpu:.2f}",
             f"{total_cpu - alone_cpu:.2f}"]]


def load_average() -> str:
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())
