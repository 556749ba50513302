"""``python3 -m bench.rust``: recipe against cargo on the bundled generated-functions pair.

The same crates (recipes/tvalue, recipes/tvgen), the same registry (Debian's packaged crates as
a Cargo directory source), the same checks (tvgen's function table as a cargo integration
test), side by side in one run, ``--reps`` times (median):

  cold   ``recipe verify`` into a fresh store    vs  ``cargo build --offline`` + ``cargo test
                                                      --offline`` in a fresh target/
  edit   one generated function edited, then     vs  ``cargo test --offline`` with a warm
         ``recipe verify -k applies``                 target/
  reuse  a second plan with the same crates into the same store: how many crates it compiles

Targets (issue 15): edit <= 0.5 x cargo's; reuse compiles no crate. Needs cargo (rustup's) and
Debian's librust-serde-derive-dev and librust-serde-json-dev.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    # The function table of recipes/tvgen/cases/functions.yaml, as cargo users write it.
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


def run(argv: list[str | Path], cwd: Path, ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True)
    if done.returncode not in ok:
        raise SystemExit(f"bench.rust: {' '.join(map(str, argv))} failed:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start


def recipe(*args: str | Path, cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "engine.cli.main", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    if done.returncode not in ok:
        raise SystemExit(f"bench.rust: recipe {' '.join(map(str, args))} failed:\n"
                         f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start, done.stderr


def plan_folder(where: Path) -> Path:
    for name in ("tvalue", "tvgen"):
        shutil.copytree(REPO / "recipes" / name, where / name)
    (where / "plan.yaml").write_text(f"kind: plan\nregistry: {REGISTRY}\n"
                                     "projects: ['*/project.yaml']\n")
    shutil.copy(REPO / "recipes" / "recipe.lock", where / "recipe.lock")
    return where / "plan.yaml"


def cargo_folder(where: Path) -> Path:
    for name in ("tvalue", "tvgen"):
        shutil.copytree(REPO / "recipes" / name / "src", where / name / "src")
    for rel, text in CARGO.items():
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        (where / rel).write_text(text.lstrip("\n"))
    return where


def edit(folder: Path, n: int) -> None:
    """A different generated function each time (the mean plus n), as a generator writes."""
    file = folder / GENERATED
    text = (REPO / "recipes" / GENERATED).read_text()
    file.write_text(text.replace(MEAN, f"{MEAN} + {n}.0 - {n}.0"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.rust", description=__doc__.split(
        "\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    cargo = shutil.which("cargo")
    if cargo is None or not (REGISTRY / "serde_json-1.0.87").is_dir():
        print("bench.rust: needs cargo and Debian's librust-serde-json-dev", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="recipe-bench-rust-"))
    times: dict[str, list[float]] = {k: [] for k in ("recipe cold", "cargo cold",
                                                     "recipe edit", "cargo edit")}
    reused: list[int] = []
    try:
        for rep in range(args.reps):
            base = work / f"rep{rep}"
            plan = plan_folder(base / "plan")
            store = base / "store"
            crates = cargo_folder(base / "cargo")
            times["recipe cold"].append(recipe("verify", plan, "--store", store, cwd=base)[0])
            times["cargo cold"].append(run([cargo, "build", "--offline"], crates)
                                       + run([cargo, "test", "--offline"], crates))
            edit(plan.parent, rep + 1)
            edit(crates, rep + 1)
            times["recipe edit"].append(recipe("verify", plan, "--store", store, "-k",
                                               "applies", cwd=base)[0])
            times["cargo edit"].append(run([cargo, "test", "--offline"], crates))
            second = plan_folder(base / "second")
            edit(second.parent, 100 + rep)
            _, log = recipe("realise", second, "--store", store, cwd=base)
            reused.append(sum(1 for line in log.splitlines() if line.startswith("building ")
                              and not line.rsplit("-", 2)[0].endswith(("tvalue", "tvgen"))))
            print(f"rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items())
                  + f", crates compiled by a second plan: {reused[-1]}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["recipe edit"] / med["cargo edit"]
    print(f"{'scenario':<8} {'recipe':>9} {'cargo':>9} {'ratio':>6}  target")
    print(f"{'cold':<8} {med['recipe cold']:>8.2f}s {med['cargo cold']:>8.2f}s "
          f"{med['recipe cold'] / med['cargo cold']:>6.2f}  -")
    print(f"{'edit':<8} {med['recipe edit']:>8.2f}s {med['cargo edit']:>8.2f}s {ratio:>6.2f}  "
          f"<= 0.50 {'met' if ratio <= 0.5 else 'NOT met'}")
    print(f"{'reuse':<8} {max(reused):>9} crates compiled{'':>3}  0 "
          f"{'met' if max(reused) == 0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
