"""``python3 -m bench.rust``: recipe against cargo on the bundled generated-functions pair.

The same crates (recipes/generated/: tvalue, tvgen), the same registry (Debian's packaged
crates as a Cargo directory source), the same checks (tvgen's function table as a cargo integration
test), the same profile (recipe's ``opt: debug`` target, cargo's dev profile), side by side in
one run, ``--reps`` times, the edit ``--edits`` times in each (medians; wall time and the CPU
time of the processes each ran):

  cold   ``recipe verify`` into a fresh store    vs  ``cargo build --offline`` + ``cargo test
                                                      --offline`` in a fresh target/
  edit   one generated function edited, then     vs  ``cargo test --offline`` with a warm
         ``recipe verify -k applies``                 target/
         in-process (``RECIPE_SERVER=off``) and served (``recipe server start`` first, then the
         native client ``recipe server client-dir`` names, as README puts it on ``PATH``)
  reuse  a second plan with the same crates into the same store: how many crates it compiles

recipe is this checkout installed in a virtual environment of the bench's own (``bench.tools``'s
``Recipe``: byte code written and read, as a user's install does). A served command's CPU time is
that of the server's child that ran it and of everything it started: ``perf stat -e task-clock``
attached to the server's spare child before the command (without perf: not given); the client
must use under 8 ms of CPU, or it ran Python itself and the bench stops.

Targets (issue 15): edit <= 0.5 x cargo's; reuse compiles no crate. Needs cargo (rustup's) and
Debian's librust-serde-derive-dev and librust-serde-json-dev.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.process import output, remove_tree, timed
from bench.tools import Recipe, check_served

REPO = Path(__file__).resolve().parent.parent
REGISTRY = Path("/usr/share/cargo/registry")
GENERATED = "tvgen/src/generated.rs"
MEAN = "numbers.iter().sum::<f64>() / numbers.len() as f64"

CARGO = {
    "Cargo.toml": '[workspace]\nmembers = ["tvalue", "tvgen"]\nresolver = "2"\n',
    ".cargo/config.toml": '[source.crates-io]\nreplace-with = "registry"\n'
                          f'[source.registry]\ndirectory = "{REGISTRY}"\n'
                          '[net]\noffline = true\n',
    "tvalue/Cargo.toml": '[package]\nname = "tvalue"\nversion = "0.1.0"\nedition = "2021"\n'
                         '[dependencies]\nserde = { version = "1", features = ["derive"] }\n'
                         'serde_json = "1"\n[[bin]]\nname = "tvnorm"\npath = "src/main.rs"\n',
    "tvgen/Cargo.toml": '[package]\nname = "tvgen"\nversion = "0.1.0"\nedition = "2021"\n'
                        '[lib]\ncrate-type = ["cdylib", "rlib"]\n'
                        '[dependencies]\ntvalue = { path = "../tvalue" }\n'
                        '[dev-dependencies]\nserde_json = "1"\n'
                        '[[bin]]\nname = "tvrun"\npath = "src/main.rs"\n',
    # The function table of recipes/generated/tvgen/cases/functions.yaml, as cargo users write it.
    "tvgen/tests/cases.rs": """
fn same(got: &str, want: &str) {
    let got: serde_json::Value = serde_json::from_str(got).unwrap();
    let want: serde_json::Value = serde_json::from_str(want).unwrap();
    assert_eq!(got, want);
}
#[test]
fn applies() {
    same(&tvgen::apply("add", "[1, 2, 3]"), "6");
    same(&tvgen::apply("add", "[1, 0.5]"), "1.5");
    same(&tvgen::apply("mean", "[[1, 2, 3, 4]]"), "2.5");
    same(&tvgen::apply("tag", r#"["point", {"x": 1, "y": [2, 3]}]"#),
         r#"{"tag": "point", "value": {"x": 1, "y": [2, 3]}}"#);
}
""",
}


CPU: dict[str, list[float]] = {}  # scenario -> CPU seconds of the processes it ran
RECIPE: Recipe | None = None  # this checkout, installed (main)


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def run(argv: list[str | Path], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"bench.rust: {' '.join(map(str, argv))} failed:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start


def measured(name: str, times: dict[str, list[float]], cwd: Path,
             *commands: list[str | Path]) -> None:
    """Run the commands (``recipe ...`` runs recipe in-process) as one sample of ``name``: wall
    time, and the CPU time of every process they ran (the fairer figure on a busy machine)."""
    before = _cpu()
    times[name].append(sum(recipe(*argv[1:], cwd=cwd)[0] if argv[0] == "recipe"
                           else run(argv, cwd) for argv in commands))
    CPU.setdefault(name, []).append(_cpu() - before)


def recipe(*args: str | Path, cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """``recipe ARGS`` in-process (``RECIPE_SERVER=off``): wall seconds and its stderr."""
    assert RECIPE is not None
    start = time.perf_counter()
    done = subprocess.run([*RECIPE.argv, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, env=RECIPE.env)
    if done.returncode not in ok:
        raise SystemExit(f"bench.rust: recipe {' '.join(map(str, args))} failed:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stderr


def _spare() -> int:
    """The server's spare child: the process that takes the next command (engine/serving.py)."""
    assert RECIPE is not None
    status = json.loads(output([*RECIPE.argv, "server", "status", "--json"], REPO,
                               RECIPE.served_env))
    server = status["pid"]
    seen = None
    for _ in range(200):  # a command's end forks the next spare: the same one twice, asleep
        kids = " ".join(Path(f"/proc/{server}/task/{t}/children").read_text()
                        for t in os.listdir(f"/proc/{server}/task")).split()
        one = kids[0] if len(kids) == 1 else None
        if one is not None and one == seen and _asleep(one):
            return int(one)
        seen = one
        time.sleep(0.05)
    raise SystemExit(f"bench.rust: the server (pid {server}) has no spare child")


def _asleep(pid: str) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "S"
    except (OSError, IndexError):
        return False


def served(name: str, times: dict[str, list[float]], cwd: Path, *args: str | Path) -> None:
    """``recipe ARGS`` by the native client and the warm server, as one sample of ``name``:
    wall time; CPU time of the client and (``perf stat``) of the server's child that ran it."""
    assert RECIPE is not None
    perf = None
    if shutil.which("perf"):
        perf = subprocess.Popen(["perf", "stat", "-e", "task-clock", "-x,", "-p",
                                 str(_spare())], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)  # attached (untimed)
    sample = timed([*RECIPE.client, *map(str, args)], cwd, RECIPE.served_env)
    check_served(sample)  # the client alone: it did not run Python
    times[name].append(sample.seconds)
    if perf is not None:
        err = perf.communicate(timeout=30)[1]  # perf ends with the child it watched
        found = [line.split(",") for line in err.splitlines() if ",task-clock," in line]
        if found and found[0][0].replace(".", "", 1).isdigit():
            CPU.setdefault(name, []).append(sample.cpu + float(found[0][0]) / 1000)
        else:  # perf watched another process: this sample has no CPU time
            print(f"bench.rust: perf counted nothing ({err.strip()[:200]})", file=sys.stderr)


def plan_folder(where: Path) -> Path:
    for name in ("tvalue", "tvgen"):
        shutil.copytree(REPO / "recipes" / "generated" / name, where / name)
    # The debug target: cargo build and cargo test use the dev profile (opt-level 0).
    (where / "plan.yaml").write_text(f"kind: plan\nregistry: {REGISTRY}\n"
                                     "projects: ['*/project.yaml']\n"
                                     "targets: {debug: {opt: debug}}\n")
    shutil.copy(REPO / "recipes" / "generated" / "recipe.lock", where / "recipe.lock")
    return where / "plan.yaml"


def cargo_folder(where: Path) -> Path:
    for name in ("tvalue", "tvgen"):
        shutil.copytree(REPO / "recipes" / "generated" / name / "src", where / name / "src")
    for rel, text in CARGO.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_text(text.lstrip("\n"))
    return where


def edit(folder: Path, n: int) -> None:
    """A different generated function each time (the mean plus n), as a generator writes."""
    file = folder / GENERATED
    text = (REPO / "recipes" / "generated" / GENERATED).read_text()
    file.write_text(text.replace(MEAN, f"{MEAN} + {n}.0 - {n}.0"))


def main(argv: list[str] | None = None) -> int:
    global RECIPE
    parser = argparse.ArgumentParser(prog="python3 -m bench.rust", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--edits", type=int, default=1,
                        help="edits measured per repetition (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--no-server", action="store_true", help="without the served row")
    args = parser.parse_args(argv)
    cargo = shutil.which("cargo")
    if cargo is None or not (REGISTRY / "serde_json-1.0.87").is_dir():
        print("bench.rust: needs cargo and Debian's librust-serde-json-dev", file=sys.stderr)
        return 1
    # As a terminal runs commands, even when the bench runs in the background (a server refuses
    # a caller that ignores SIGINT or SIGQUIT, as ``cmd &`` in a script leaves them).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    work = Path(tempfile.mkdtemp(prefix="recipe-bench-rust-"))
    RECIPE = Recipe(os.cpu_count() or 1, work / "venv")
    names = ["recipe cold", "cargo cold", "recipe edit", "cargo edit"]
    if not args.no_server:
        names.insert(3, "served edit")
    times: dict[str, list[float]] = {k: [] for k in names}
    reused: list[int] = []
    loads = [os.getloadavg()[0]]
    try:
        if not args.no_server:
            RECIPE.start_server()
        for rep in range(args.reps):
            base = work / f"rep{rep}"
            plan = plan_folder(base / "plan")
            store = base / "store"
            crates = cargo_folder(base / "cargo")
            measured("recipe cold", times, base, ["recipe", "verify", plan, "--store", store])
            measured("cargo cold", times, crates, [cargo, "build", "--offline"],
                     [cargo, "test", "--offline"])
            for n in range(1 + rep * args.edits, 1 + (rep + 1) * args.edits):
                edit(plan.parent, n)
                edit(crates, n)
                measured("recipe edit", times, base,
                         ["recipe", "verify", plan, "--store", store, "-k", "applies"])
                if not args.no_server:
                    edit(plan.parent, 500 + n)  # another function: served, it compiles again
                    served("served edit", times, base, "verify", plan, "--store", store,
                           "-k", "applies")
                measured("cargo edit", times, crates, [cargo, "test", "--offline"])
            second = plan_folder(base / "second")
            edit(second.parent, 10_000 + rep)
            _, log = recipe("realise", second, "--store", store, cwd=base)
            reused.append(sum(1 for line in log.splitlines() if line.startswith("building ")
                              and not line.rsplit("-", 2)[0].endswith(("tvalue", "tvgen"))))
            loads.append(os.getloadavg()[0])
            print(f"rep {rep + 1} (load {loads[-1]:.1f}): "
                  + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
                  + f", crates compiled by a second plan: {reused[-1]}", file=sys.stderr)
    finally:
        if not args.no_server:
            RECIPE.stop_server()
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            remove_tree(work)
    print(report(times, reused, loads, args.reps))
    return 0


def report(times: dict[str, list[float]], reused: list[int], loads: list[float],
           reps: int) -> str:
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: f"{statistics.median(CPU[k]):>5.2f}" if CPU.get(k) else "    -" for k in times}
    lines = [f"load average {' '.join(f'{x:.1f}' for x in loads)} (start, after each "
             f"repetition) on {os.cpu_count()} cores; wall (CPU) seconds, medians of "
             f"{reps} (cold) and {len(times['cargo edit'])} (edit)",
             f"{'scenario':<12} {'recipe':>15} {'cargo':>15} {'ratio':>6}  target"]
    for name, theirs in (("cold", "cargo cold"), ("edit", "cargo edit"),
                         ("edit served", "cargo edit")):
        ours = "served edit" if name == "edit served" else f"recipe {name}"
        if ours not in med:
            continue
        ratio = med[ours] / med[theirs]
        target = "-" if name == "cold" else "<= 0.50" + (" met" if ratio <= 0.5 else " NOT met")
        lines.append(f"{name:<12} {med[ours]:>7.2f} ({cpu[ours]}) {med[theirs]:>7.2f} "
                     f"({cpu[theirs]}) {ratio:>6.2f}  {target}")
    lines.append(f"{'reuse':<12} {max(reused):>9} crates compiled{'':>3}  0 "
                 f"{'met' if max(reused) == 0 else 'NOT met'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
