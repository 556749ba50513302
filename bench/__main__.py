"""``python3 -m bench``: every target of issue 16, side by side in one run.

Generates the corpus in a temporary folder; runs every make scenario ``--reps`` times (recipe,
make -j2 and make + ccache interleaved), counts recipe's own instructions for a no-op and a
one-unit edit (callgrind, when valgrind is installed), then measures the other targets
(``bench.others``: verify with outcomes cached, per-case overhead, function table, recipe eval).
The no-op, one .c edited, warm rebuild, 200-project no-op, verify and eval rows run twice:
in-process and served (``recipe server start``, the native client as README puts it on
``PATH``).
Prints the machine and one table of every row with its target and ``met`` or ``missed``; with
``--json FILE`` writes everything, every sample included. Exit code 0 when the runs worked (met
targets or not), 1 when a scenario failed its checks. ``--remote`` and ``--cross`` measure
instead recipe past one machine (bench/remote.py) and cross builds with zig (bench/cross.py)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from bench import others, report
from bench.corpus import hot_users
from bench.process import in_work_folder, progress
from bench.scenarios import Bench


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--quick", action="store_true", help="one repetition: a smoke run")
    parser.add_argument("--units", type=int, default=100, help="translation units (default 100)")
    parser.add_argument("--projects", type=int, default=200,
                        help="one-file projects of the no-op plan (default 200)")
    parser.add_argument("--rows", type=int, default=100_000,
                        help="rows of the function table (default 100000)")
    parser.add_argument("--exec-rows", type=int, default=2000,
                        help="rows run one process each, the table's reference (default 2000)")
    parser.add_argument("--seed", type=int, default=1, help="corpus seed (default 1)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="parallel jobs (default 2)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the results as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-server", action="store_true",
                        help="without the served rows (recipe server and its native client)")
    parser.add_argument("--remote", action="store_true",
                        help="instead: a fresh clone with a warm shared cache (in-process and "
                             "served) against make and ccache's remote storage, and 2 Dask "
                             "workers against -j 2 "
                             "(bench/remote.py; needs nginx and the distributed extra)")
    parser.add_argument("--cross", action="store_true",
                        help="instead: cross builds with zig for aarch64-linux-musl against "
                             "make with zig cc, and each cross target of the bundled plan "
                             "(bench/cross.py; needs the cross extra)")
    args = parser.parse_args(argv)
    if args.quick:
        args.reps = 1
    if args.reps < 1 or args.projects < 1 or args.jobs < 1:
        parser.error("--reps, --projects and --jobs must be 1 or more")
    return args


def measure_remote(args: argparse.Namespace, work: Path, config: dict[str, Any]
                   ) -> tuple[str, dict[str, Any]]:
    """``--remote``: the table to print and what ``--json`` writes."""
    from bench import remote

    info = report.machine("gcc")
    print(report.header(info, config), flush=True)
    summary = remote.run(work, args.units, args.seed, args.jobs, args.reps, progress)
    return remote.table(summary), {"machine": info, "config": config, "remote": summary}


def measure_cross(args: argparse.Namespace, work: Path, config: dict[str, Any]
                  ) -> tuple[str, dict[str, Any]]:
    """``--cross``: the table to print and what ``--json`` writes."""
    from bench import cross

    info = report.machine("gcc")
    print(report.header(info, config), flush=True)
    summary = cross.run(work, args.units, args.seed, args.jobs, args.reps, progress)
    info["load_average_end"] = list(os.getloadavg())
    return cross.table(summary), {"machine": info, "config": config, "cross": summary}


def measure(args: argparse.Namespace, work: Path, config: dict[str, Any]
            ) -> tuple[str, dict[str, Any]]:
    """Every target of issue 16: the tables to print and what ``--json`` writes."""
    progress(f"corpus in {work}")
    bench = Bench(work, args.units, args.projects, args.seed, args.jobs, progress)
    info = report.machine(bench.cc)
    info["file_create_us"] = report.create_cost_us(work)
    print(report.header(info, config), flush=True)
    progress(f"building the {args.projects}-project plan once (not measured)")
    bench.prepare_many()
    try:
        if not args.no_server:  # served rows: the server started, its native client as on PATH
            bench.recipe.start_server()
        for rep in range(args.reps):
            bench.repetition(rep, args.reps)
        progress("instruction counts of recipe's process (callgrind)")
        instructions = bench.instructions()
        other = others.measure(bench.recipe, work, args.reps, args.rows, args.exec_rows,
                               progress)
    finally:
        if not args.no_server:
            bench.recipe.stop_server()
    rows = report.summarise(bench.results)
    info["load_average_end"] = list(os.getloadavg())
    info["file_create_us_end"] = report.create_cost_us(work)
    text = (f"{report.table(rows, other, instructions)}\n\n{report.cpu_table(rows)}\n\n"
            f"creating a file in the bench's folder: {info['file_create_us']:.1f} µs at the "
            f"start, {info['file_create_us_end']:.1f} µs at the end (median of 200)")
    return text, {"machine": info, "config": config, "scenarios": rows, "other": other,
                  "instructions": instructions}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # As a terminal runs commands, even when the bench runs in the background (``&`` ignores
    # SIGINT and SIGQUIT in what it starts: a server refuses such a caller, as it must).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    started = time.perf_counter()
    kind = "remote" if args.remote else "cross" if args.cross else ""
    config = {"units": args.units, "hot": hot_users(args.units),
              "projects": 0 if kind else args.projects, "seed": args.seed,
              "jobs": args.jobs, "reps": args.reps}
    chosen = {"remote": measure_remote, "cross": measure_cross}.get(kind, measure)
    done = in_work_folder(f"recipe-bench-{kind}-" if kind else "recipe-bench-", args.keep,
                          lambda work: chosen(args, work, config))
    if done is None:
        return 1
    text, data = done
    duration = time.perf_counter() - started
    print()
    print(text)
    print(f"\n{duration:.0f} s in all")
    if args.json:
        data["duration_seconds"] = round(duration, 1)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
