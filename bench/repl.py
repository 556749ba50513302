"""``python3 -m bench.repl``: the REPL's speed against plain g++ (issue 5), side by side.

A C++20 project whose REPL scope header includes ``<iostream>`` is written to a temporary
folder and realised; then, interleaved, ``--reps`` times each (medians reported):

- plain g++: ``g++ -std=c++20`` compile + link + run of the very translation unit the REPL
  generates (scope header, submission in main, the project's library), no precompiled header;
- eval, new submission: ``recipe eval`` of a submission never seen before (a fresh process:
  Python's start, the plan, a no-op realise, the compile with the precompiled scope, the run);
- repl, new submission: the same inside a running session, as ``recipe repl`` does per line
  (its g++ started ahead while the user types: ``engine.repl.ahead``);
- eval and repl, repeated submission: the same submission again (the runner from the cache);
- eval through ``recipe server``, new and repeated: the same ``recipe eval`` command, by the
  native client (``recipe server client-dir``) and the warm server (started for the bench,
  stopped after it), as a user who followed README runs it: after a first served eval, so
  that the server's spare has started the next one's g++ (``engine.repl.ready``);
- the submission's own run time: the runner executed directly.

Targets (issue 16): a new submission <= 0.35 x plain g++; a repeated one <= 0.015 s plus its own
run time.

The Rust rows (issue 15; ``--only rust`` runs them alone): a project on Debian's serde_json
(``librust-serde-json-dev``), a new submission by ``recipe eval`` and in a session against plain
``rustc`` compile + link + run of the very runner file the REPL generates, with the same
``--extern`` and ``-L dependency=`` flags, and ``recipe eval`` through the server (its CPU is the
server child's, not counted); target <= 0.6 x. As ``recipe repl`` does, the session starts the
next submission's rustc before the submission comes (``engine.repl.ahead``): its wall time is
from the submission to its end, its CPU includes the rustc's start and its end (the session's
``settle``, after the wall clock stopped: rustc's end comes after the run). The served row is a
user's second and later eval of the scope: one served eval before the samples, so that the server's
spare child has started the next one's rustc and lld (``engine.repl.ready``), and ``PAUSE``
after each served sample, so that their start is in no other sample.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from tabulate import tabulate

from bench.tools import Recipe

PROJECT = {
    "plan.yaml": "kind: plan\nprojects: [\"*/project.yaml\"]\ntargets:\n"
                 "  release: {opt: release}\ndefault_targets: [release]\n",
    "geo/project.yaml": "kind: project\nname: geo\nversion: 1.0.0\nlanguage: c++\n"
                        "standard: c++20\nsources: [\"src/*.cpp\"]\nheaders: [\"include/*.hpp\"]\n"
                        "public_headers: [include/geo.hpp]\ninclude_dirs: [include]\n"
                        "outputs:\n  - {name: geo, kind: static-library}\n"
                        "repl:\n  scope: [include/geo.hpp]\n",
    "geo/include/geo.hpp": "#pragma once\n#include <iostream>\n"
                           "namespace geo { double area(double w, double h); }\n",
    "geo/src/geo.cpp": "#include \"geo.hpp\"\ndouble geo::area(double w, double h) "
                       "{ return w * h; }\n",
}
SUBMISSION = 'std::cout << "area " << geo::area({n}, 2) << std::endl;'

# A Rust project on registry crates (Debian's serde_json), as issue 15's users have them.
RUST_PROJECT = {
    "plan.yaml": "kind: plan\nregistry: /usr/share/cargo/registry\n"
                 "projects: [\"*/project.yaml\"]\ntargets:\n  release: {opt: release}\n"
                 "default_targets: [release]\n",
    "jtotal/project.yaml": "kind: project\nname: jtotal\nversion: 1.0.0\nlanguage: rust\n"
                           "sources: [\"src/*.rs\"]\ncrates: {serde_json: \"1\"}\n"
                           "outputs:\n  - {name: jtotal, kind: static-library}\n"
                           "repl:\n  scope: [jtotal::total, serde_json::Value]\n",
    "jtotal/src/lib.rs": "/// The sum of the numbers of a JSON array.\n"
                         "pub fn total(text: &str) -> f64 {\n"
                         "    let value: serde_json::Value = serde_json::from_str(text).unwrap();\n"
                         "    value.as_array().map_or(0.0, |items| items.iter()"
                         ".filter_map(|v| v.as_f64()).sum())\n}\n",
}
RUST_SUBMISSION = 'println!("total {{}}", total("[1, 2.5, {n}]"));'


def write_project(root: Path) -> Path:
    for rel, text in PROJECT.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root / "plan.yaml"


def run_ok(argv: list[str], **kw: object) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"bench.repl: {' '.join(argv)} failed:\n{done.stderr}")


CPU: dict[str, list[float]] = {}  # Rust rows: CPU seconds of recipe and its children


def timed(step: Callable[[], None], cpu: str = "",
          after: Callable[[], None] | None = None) -> float:
    """Wall seconds of ``step``; with ``cpu``, its CPU seconds (this process's and its
    children's: the fairer figure on a busy machine) go to ``CPU[cpu]``, with those of
    ``after``, run once the wall clock stopped (what the step left to finish beside what
    follows: a session's rustc, whose teardown goes on while the runner runs)."""
    import resource

    def used() -> float:
        return sum(u.ru_utime + u.ru_stime for u in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN)))

    before, start = used(), time.perf_counter()
    step()
    wall = time.perf_counter() - start
    if after is not None:
        after()
    if cpu:
        CPU.setdefault(cpu, []).append(used() - before)
    return wall


def measure(root: Path, reps: int, server: bool = True) -> dict[str, list[float]]:
    """Every sample, interleaved, in a project written below ``root`` (removed after);
    ``server``: also through ``recipe server``."""
    from engine.documents.load import load_plan
    from engine.repl import source
    from engine.repl.session import Session
    from engine.store import Store

    root.mkdir(parents=True)
    try:
        plan_file = write_project(root / "src")
        store = root / "store"
        recipe = Recipe(jobs=2, venv=root / "venv")  # installed as a user installs it
        cli = [*recipe.argv, "eval", str(plan_file), "-p", "geo", "--store", str(store), "-e"]
        run_eval = partial(run_ok, env=recipe.env)
        run_eval([*cli, SUBMISSION.format(n=0)])  # realise and precompile the scope: once
        session = Session.prepare(load_plan(plan_file), Store.open(store), "geo")
        plain = root / "plain"
        plain.mkdir()
        (plain / "geo.hpp").write_text(PROJECT["geo/include/geo.hpp"])
        library = next(a for a in session.spec.link if a.endswith(".a"))
        samples: dict[str, list[float]] = {k: [] for k in (
            "plain", "eval new", "repl new", "server new", "eval repeated", "repl repeated",
            "server repeated", "own run")}
        repeated = SUBMISSION.format(n=1)
        run_eval([*cli, repeated])
        time.sleep(2.2)  # the files of the first eval are no longer racily clean
        run_eval([*cli, repeated])  # so this one writes the session's record
        runner = session.compile(repeated)
        plain_steps = [["g++", "-std=c++20", "tu.cpp", library, "-o", "tu"], ["./tu"]]
        served = partial(run_ok, env=recipe.served_env)
        try:
            if server:
                recipe.start_server()
                # A user's first eval of the scope through this server: its spare then starts
                # the next one's g++ (engine.repl.ready), as for every later one.
                served([*recipe.client, *cli[1:], SUBMISSION.format(n=2)])
                time.sleep(PAUSE)
            for rep in range(reps):
                n = 1000 + rep * 10
                unit = source.runner_source("c++", SUBMISSION.format(n=n), "geo (release)") \
                    .replace('#include "scope.hpp"', '#include <iostream>\n#include "geo.hpp"')
                (plain / "tu.cpp").write_text(unit)
                samples["plain"].append(timed(partial(_steps, plain_steps, plain)))
                if server:  # by the native client; the in-process ones have RECIPE_SERVER=off
                    client = [*recipe.client, *cli[1:]]
                    samples["server new"].append(timed(partial(
                        served, [*client, SUBMISSION.format(n=n + 3)]), "server new"))
                    time.sleep(PAUSE)  # the spare starts the next g++: not in another sample
                    samples["server repeated"].append(timed(partial(
                        served, [*client, repeated]), "server repeated"))
                    # This process's CPU is in it too: a client that ran Python takes 30 ms.
                    if max(CPU["server new"][-1], CPU["server repeated"][-1]) > 0.015:
                        raise SystemExit("bench.repl: the native client ran the eval in "
                                         "Python, not in the server")
                samples["eval new"].append(timed(partial(
                    run_eval, [*cli, SUBMISSION.format(n=n + 1)])))
                _warm(session)  # as recipe repl: the next g++ waits, its scope loaded
                samples["repl new"].append(timed(partial(_in_session, session,
                                                         SUBMISSION.format(n=n + 2)),
                                                 after=session.settle))  # as recipe repl
                samples["eval repeated"].append(timed(partial(run_eval, [*cli, repeated])))
                samples["repl repeated"].append(timed(partial(_in_session, session, repeated)))
                samples["own run"].append(timed(partial(run_ok, [str(runner.executable)],
                                                        cwd=root)))
        finally:
            if server:
                recipe.stop_server()
        session.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return samples


def measure_rust(root: Path, reps: int) -> dict[str, list[float]]:
    """The Rust rows (issue 15): a new submission of a Rust project using serde_json, by
    ``recipe eval`` and in a session, against plain ``rustc`` of the same runner file with the
    same ``--extern`` and ``-L dependency=`` flags (its defaults otherwise, as a person types
    it)."""
    from engine.documents.load import load_plan
    from engine.repl import source
    from engine.repl.session import Session
    from engine.store import Store

    root.mkdir(parents=True)
    try:
        plan_file = root / "src" / "plan.yaml"
        for rel, text in RUST_PROJECT.items():
            (root / "src" / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / "src" / rel).write_text(text)
        store = root / "store"
        recipe = Recipe(jobs=2, venv=root / "venv")
        cli = [*recipe.argv, "eval", str(plan_file), "-p", "jtotal", "--store", str(store), "-e"]
        run_eval = partial(run_ok, env=recipe.env)
        run_eval([*cli, RUST_SUBMISSION.format(n=0)])  # realise the crates and the project
        session = Session.prepare(load_plan(plan_file), Store.open(store), "jtotal")
        spec = session.spec
        # The flags that find the crates, as the runner gets them; nothing else of recipe's.
        finds = [a for i, a in enumerate(spec.compile) if a == "--extern"
                 or a.startswith("-Ldependency=") or spec.compile[i - 1] == "--extern"]
        plain = root / "plain"
        plain.mkdir()
        samples: dict[str, list[float]] = {"rust plain": [], "rust eval new": [],
                                           "rust server new": [], "rust repl new": []}
        served = partial(run_ok, env=recipe.served_env)
        _warm(session)
        try:
            recipe.start_server()  # the server's row: by the native client, as README says
            # A user's first eval of the scope through this server: its spare then starts
            # the next one's rustc and lld (engine.repl.ready), as for every later one.
            served([*recipe.client, *cli[1:], RUST_SUBMISSION.format(n=1)])
            time.sleep(PAUSE)
            for rep in range(reps):
                n = 1000 + rep * 10
                (plain / "runner.rs").write_text(source.runner_source(
                    "rust", RUST_SUBMISSION.format(n=n), spec.title, spec.uses))
                samples["rust plain"].append(timed(partial(_steps, [
                    [spec.compile[0], "--edition", "2021", *finds, "-o", "runner",
                     "runner.rs"], ["./runner"]], plain), "rust plain"))
                samples["rust eval new"].append(timed(partial(
                    run_eval, [*cli, RUST_SUBMISSION.format(n=n + 1)]), "rust eval new"))
                samples["rust server new"].append(timed(partial(
                    served, [*recipe.client, *cli[1:], RUST_SUBMISSION.format(n=n + 3)]),
                    "rust server new"))
                if CPU["rust server new"][-1] > 0.015:  # the client alone: no Python
                    raise SystemExit("bench.repl: the native client ran the eval in Python, "
                                     "not in the server")
                time.sleep(PAUSE)  # the spare starts the next rustc: not in another's sample
                samples["rust repl new"].append(timed(partial(
                    _in_session, session, RUST_SUBMISSION.format(n=n + 2)), "rust repl new",
                    after=session.settle))  # rustc's end and the cache entry: in its CPU
                _warm(session)
        finally:
            recipe.stop_server()
        session.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.repl", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions (default 5)")
    parser.add_argument("--only", choices=("c++", "rust"),
                        help="only the C++ rows (against g++) or only the Rust rows")
    args = parser.parse_args(argv)
    reps = args.reps
    # As a terminal runs commands, even when the bench runs in the background (a server refuses
    # a caller that ignores SIGINT or SIGQUIT, as ``cmd &`` in a script leaves them).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    work = Path(tempfile.mkdtemp(prefix="recipe-bench-repl-"))
    try:
        samples = measure(work / "repl", reps) if args.only != "rust" else {}
        rust = measure_rust(work / "rust", reps) if args.only != "c++" else {}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(samples, reps, rust))
    return 0


def _steps(steps: list[list[str]], cwd: Path) -> None:
    for argv in steps:
        run_ok(argv, cwd=cwd)


#: Seconds between a sample and the next one while a compiler is started ahead (by a session,
#: or by the server's spare after a served eval): much shorter than a person's typing.
PAUSE = 0.3


def _warm(session: object) -> None:
    """What ``recipe repl`` does before it reads a submission: start the next one's compiler
    (``engine.repl.ahead``: rustc and lld, or gcc), then a pause much shorter than a person's
    typing (0.3 s: their start takes ~15 ms of CPU, more on a loaded machine), so that it
    overlaps no other row's sample. Their CPU is counted in the next session sample's."""
    session.warm()  # type: ignore[attr-defined]
    time.sleep(PAUSE)


def _in_session(session: object, code: str) -> None:
    runner = session.compile(code)  # type: ignore[attr-defined]
    with open(os.devnull, "wb") as sink:
        ended = session.run(runner, stdout=sink)  # type: ignore[attr-defined]
    if ended.code != 0:
        raise SystemExit(f"bench.repl: the submission exited {ended.code}")


def render(samples: dict[str, list[float]], reps: int,
           rust: dict[str, list[float]] | None = None) -> str:
    med = {k: statistics.median(v) for k, v in {**samples, **(rust or {})}.items()}
    rows = []
    if samples:
        own = med["own run"]
        rows.append(["plain g++ -std=c++20, compile+link+run", med["plain"], "", "", "", ""])
        for name in ("eval new", "server new", "repl new"):
            if name in med:
                ratio = med[name] / med["plain"]
                rows.append([f"{name} submission", med[name], "plain g++", f"{ratio:.2f}",
                             "<= 0.35 x", "met" if ratio <= 0.35 else "missed"])
        for name in ("eval repeated", "server repeated", "repl repeated"):
            if name in med:
                over = med[name] - own
                rows.append([f"{name} submission", med[name], "own run", f"+{over:.3f} s",
                             "<= +0.015 s", "met" if over <= 0.015 else "missed"])
        rows.append(["the submission's own run", own, "", "", "", ""])
    if rust:
        rows.append(["plain rustc, same --extern, compile+link+run", med["rust plain"], "", "",
                     "", ""])
        for name in ("rust eval new", "rust server new", "rust repl new"):
            if name not in med:
                continue
            ratio = med[name] / med["rust plain"]
            rows.append([f"{name} submission", med[name], "plain rustc", f"{ratio:.2f}",
                         "<= 0.6 x", "met" if ratio <= 0.6 else "missed"])
        cpu = {k: statistics.median(v) for k, v in CPU.items()}
        if cpu:
            rows.append([f"(CPU: plain {cpu['rust plain']:.3f} s, eval "
                         f"{cpu['rust eval new']:.3f} s = "
                         f"{cpu['rust eval new'] / cpu['rust plain']:.2f} x, repl "
                         f"{cpu['rust repl new']:.3f} s = "
                         f"{cpu['rust repl new'] / cpu['rust plain']:.2f} x)", "", "", "", "",
                         ""])
    table = tabulate(rows, headers=["scenario", "median s", "against", "ratio / overhead",
                                    "target", "met"], floatfmt=".3f")
    return f"medians of {reps}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n{table}"


if __name__ == "__main__":
    sys.exit(main())
