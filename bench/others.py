"""The targets of issue 16 that make has no part in, each measured side by side with its
reference in the same run (medians of ``reps``):

  verify_cached  ``recipe verify recipes/plan.yaml`` (a copy) with every outcome cached
  case_overhead  ``recipe verify --no-cache`` of N cases whose program does nothing, against
                 one case: (T(N) - T(1)) / (N - 1), less the program's own run from Python
  table          ``int add(int, int)`` rows/s through recipe's table harness (``bench.table``),
                 and that rate over one process per row
  eval_new       a new ``recipe eval`` (C++ scope with ``<iostream>``) over plain g++
                 compile+link+run of the same unit (``bench.repl``)
  eval_repeated  the same submission again, over the submission's own run

Each row: the figure, its target and whether it is met.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import repl as repl_bench
from bench import table as table_bench
from bench.process import BenchError, output, remove_tree, timed
from bench.tools import REPO, Recipe, check_served

CASES = 40  # cases of the per-case overhead plan

_NOP_PLAN = """\
kind: plan
projects: ["nop/project.yaml"]
targets:
  release: {opt: release}
default_targets: [release]
"""
_NOP_PROJECT = """\
kind: project
name: nop
version: 1.0.0
language: c
standard: c17
sources: ["main.c"]
outputs:
  - {name: nop, kind: executable}
cases: ["cases.yaml"]
"""


def _row(name: str, title: str, value: float, unit: str, reference: str, limit: float,
         at_least: bool, samples: dict[str, list[float]]) -> dict[str, Any]:
    return {"scenario": name, "title": title, "value": value, "unit": unit,
            "reference": reference,
            "target": {"limit": limit, "of": unit, "at_least": at_least},
            "met": value >= limit if at_least else value <= limit,
            "samples": {k: [round(s, 6) for s in v] for k, v in samples.items()}}


def _median(samples: list[float]) -> float:
    return statistics.median(samples)


def verify_cached(recipe: Recipe, work: Path, reps: int) -> list[dict[str, Any]]:
    """``recipe verify`` of a copy of the bundled plan, every outcome cached (one run first,
    not measured, builds and records them); and by the native client, if a server runs."""
    plans = work / "recipes"
    shutil.copytree(REPO / "recipes", plans, ignore=shutil.ignore_patterns(".recipe"))
    plan, store = plans / "plan.yaml", work / "stores" / "verify"
    args = ["verify", str(plan), "--store", str(store), "-j", str(recipe.jobs)]
    output([*recipe.argv, *args], plans, recipe.env)
    samples, served = [], []
    for _ in range(reps):
        samples.append(timed([*recipe.argv, *args], plans, recipe.env).seconds)
        if recipe.client:
            sample = timed([*recipe.client, *args], plans, recipe.served_env)
            check_served(sample)
            served.append(sample.seconds)
    rows = [_row("verify_cached", "verify, every outcome cached", _median(samples), "s",
                 "", 0.15, False, {"recipe": samples})]
    if served:
        rows.append(_row("verify_cached_served", "verify, every outcome cached, served",
                         _median(served), "s", "", 0.15, False, {"served": served}))
    return rows


def _nop_plan(root: Path, cases: int) -> Path:
    (root / "nop").mkdir(parents=True)
    (root / "plan.yaml").write_text(_NOP_PLAN)
    (root / "nop" / "project.yaml").write_text(_NOP_PROJECT)
    (root / "nop" / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "nop" / "cases.yaml").write_text("kind: cases\ncases:\n" + "".join(
        f"  - {{name: c{i:03d}, run: nop, expect: {{exit: 0, stdout: \"\"}}}}\n"
        for i in range(cases)))
    return root / "plan.yaml"


def case_overhead(recipe: Recipe, work: Path, reps: int) -> dict[str, Any]:
    """What recipe adds to each case of a plan: N cases against one, with ``--no-cache``, less
    the program's own run (``subprocess.run`` from Python, as the reference harness)."""
    root = work / "cases"
    plan, store = _nop_plan(root, CASES), work / "stores" / "cases"
    base = [*recipe.argv, "verify", str(plan), "--store", str(store), "-j", str(recipe.jobs),
            "--no-cache"]
    output(base, root, recipe.env)  # builds nop
    (drv,) = recipe.show(plan, store)
    program = Path(drv["path"])
    program = (program if program.is_absolute() else store / program) / "bin" / "nop"
    if not program.is_file():
        raise BenchError(f"case overhead: no program at {program}")
    many, one, direct = [], [], []
    for _ in range(reps):
        many.append(timed(base, root, recipe.env).seconds)
        one.append(timed([*base, "-k", "nop/c000"], root, recipe.env).seconds)
        start = time.perf_counter()
        for _ in range(CASES):
            subprocess.run([program], check=True)
        direct.append((time.perf_counter() - start) / CASES)
    per_case = (_median(many) - _median(one)) / (CASES - 1) - _median(direct)
    return _row("case_overhead", "per-case overhead, --no-cache", per_case * 1000, "ms",
                f"direct run {_median(direct) * 1000:.2f} ms", 2.0, False,
                {f"verify {CASES} cases": many, "verify 1 case": one, "direct run": direct})


def table(work: Path, reps: int, rows: int, exec_rows: int) -> list[dict[str, Any]]:
    """Function-case throughput: recipe's table harness, and one process per row."""
    folder = work / "table"
    folder.mkdir()
    library, program = table_bench.build(folder)
    case = table_bench.table_case(rows)
    native = table_bench.harness_program(folder, case, library)
    worker = [table_bench.harness_rate(native, case, folder) for _ in range(reps)]
    execs = [table_bench.exec_rate(program, case, exec_rows) for _ in range(reps)]
    rate, per_process = _median(worker), _median(execs)
    samples = {"harness rows/s": worker, "process per row rows/s": execs}
    return [_row("table_rate", "function table, int add(int, int)", rate, "rows/s", "",
                 1_000_000, True, samples),
            _row("table_ratio", "function table over one process per row",
                 rate / per_process, "x", f"process per row {per_process:,.0f} rows/s",
                 1000, True, samples)]


def evals(work: Path, reps: int, server: bool) -> list[dict[str, Any]]:
    """A new and a repeated ``recipe eval``, in-process and (``server``) by the native client
    and the server (``bench.repl``)."""
    samples = repl_bench.measure(work / "repl", reps, server=server)
    plain, own = _median(samples["plain"]), _median(samples["own run"])
    keep = {k: v for k, v in samples.items() if v}
    rows = []
    for kind, suffix in (("eval", ""), ("server", "_served")):
        if not samples[f"{kind} new"]:
            continue
        new, repeated = _median(samples[f"{kind} new"]), _median(samples[f"{kind} repeated"])
        title = ", served" if suffix else ""
        rows += [_row(f"eval_new{suffix}", f"new recipe eval, C++ <iostream>{title}",
                      new / plain, "x", f"plain g++ {plain:.3f} s (eval {new:.3f} s)", 0.35,
                      False, keep),
                 _row(f"eval_repeated{suffix}", f"repeated recipe eval{title}", repeated - own,
                      "s", f"own run {own:.3f} s (eval {repeated:.3f} s)", 0.015, False, keep)]
    return rows


def measure(recipe: Recipe, work: Path, reps: int, rows: int, exec_rows: int,
            log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Every row, in the order of the issue's table."""
    found: list[dict[str, Any]] = []
    steps: list[tuple[str, Callable[[], list[dict[str, Any]]]]] = [
        ("verify, every outcome cached", lambda: verify_cached(recipe, work, reps)),
        ("per-case overhead", lambda: [case_overhead(recipe, work, reps)]),
        ("function table", lambda: table(work, reps, rows, exec_rows)),
        ("recipe eval", lambda: evals(work, reps, bool(recipe.client))),
    ]
    for title, step in steps:
        log(f"{title} ({reps} repetition(s))")
        found.extend(step())
    remove_tree(work / "stores" / "verify")
    return found


def render(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Table lines: scenario, figure, reference, target, met."""
    lines = []
    for row in rows:
        unit, value = row["unit"], row["value"]
        figure = {"s": f"{value:.3f} s", "ms": f"{value:.2f} ms", "x": f"{value:,.2f} x",
                  "rows/s": f"{value:,.0f} rows/s"}[unit]
        if row["scenario"].startswith("eval_repeated"):
            figure = f"+{value:.3f} s"
        limit = row["target"]["limit"]
        sign = ">=" if row["target"]["at_least"] else "<="
        target = {"s": f"{sign} {limit:g} s", "ms": f"{sign} {limit:g} ms",
                  "x": f"{sign} {limit:g} x", "rows/s": f"{sign} {limit:,.0f} rows/s"}[unit]
        if row["scenario"].startswith("eval_repeated"):
            target = f"<= +{limit:g} s"
        lines.append([row["title"], figure, row["reference"] or "-", target,
                      "met" if row["met"] else "missed"])
    return lines
