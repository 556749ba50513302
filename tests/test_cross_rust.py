"""Rust on foreign targets: Debian's rustc (``toolchain: {rustc: /usr/bin/rustc}``) with its
``libstd-rust-dev-wasm32`` and ``libstd-rust-dev-windows``, zig as the linker (as
cargo-zigbuild), every process and eval case run under wasmtime and wine64. Real rustc, zig,
wine64 and wasmtime."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree

pytestmark = pytest.mark.slow

DEBIAN_RUSTC = "/usr/bin/rustc"
STD = Path("/usr/lib/rustlib")

PLAN = """
kind: plan
projects: ["*/project.yaml"]
targets:
  release: {opt: release}
  wasi: {triple: wasm32-wasi, toolchain: {rustc: /usr/bin/rustc}}
  windows: {triple: x86_64-windows-gnu, toolchain: {rustc: /usr/bin/rustc}}
  arm64: {triple: aarch64-linux-musl, toolchain: {rustc: /usr/bin/rustc}}
  nowhere: {triple: wasm32-wasi, toolchain: {rustc: /no/such/rustc}}
default_targets: [release]
"""

RUST = {
    "plan.yaml": PLAN,
    "tally/project.yaml": """
        kind: project
        name: tally
        version: 0.1.0
        language: rust
        sources: ["src/*.rs", "!src/main.rs"]
        outputs:
          - {name: tally, kind: static-library}
          - {name: count, kind: executable, sources: [src/main.rs]}
        repl:
          scope: [tally::words]
        cases: ["cases/*.yaml"]
    """,
    "tally/src/lib.rs": """
        pub fn words(text: &str) -> usize { text.split_whitespace().count() }
    """,
    "tally/src/main.rs": """
        use std::io::Read;
        fn main() {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).unwrap();
            if text.trim() == "panic" { panic!("asked to"); }
            let n = tally::words(&text);
            println!("{} words, {} arguments", n, std::env::args().count() - 1);
            std::process::exit(if n == 0 { 3 } else { 0 });
        }
    """,
    "tally/cases/count.yaml": """
        kind: cases
        cases:
          - {name: counts, run: count, args: [a], stdin: "one two three\\n",
             expect: {stdout: "3 words, 1 arguments\\n"}}
          - {name: nothing, run: count, expect: {stdout: "0 words, 0 arguments\\n", exit: 3}}
          - {name: panics, run: count, stdin: "panic\\n", skip: {windows: "wasi only"},
             expect: {signal: SIGABRT}}
          - {name: in scope, eval: 'println!("{}", words("a b"));', expect: {stdout: "2\\n"}}
    """,
}


@pytest.fixture(scope="module", autouse=True)
def debian_std() -> None:
    pytest.importorskip("ziglang", reason="zig is in the test extra: pip install -e '.[test]'")
    os.environ.setdefault(
        "RECIPE_ZIG_CACHE", str(Path(tempfile.gettempdir()) / f"recipe-zig-cache-{os.getuid()}"))
    for triple in ("wasm32-wasi", "x86_64-pc-windows-gnu"):
        if not (STD / triple / "lib").is_dir():
            pytest.fail(f"Debian's std for {triple} is missing (.ci/run installs "
                        "libstd-rust-dev-wasm32 and libstd-rust-dev-windows)")


def verify(src: Path, store: Path, *args: str) -> tuple[int, dict, str]:
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "--json", *args)
    try:
        return done.returncode, json.loads(done.stdout), done.stderr
    except ValueError:
        return done.returncode, {}, done.stderr


@pytest.mark.parametrize(("target", "runner", "suffix", "magic"), [
    ("wasi", "wasmtime", ".wasm", b"\0asm"),
    ("windows", "wine64", ".exe", b"MZ"),
])
def test_rust_builds_with_zig_as_linker_and_its_cases_run_on_the_target(
        tmp_path: Path, target: str, runner: str, suffix: str, magic: bytes) -> None:
    src = write_tree(tmp_path / "src", RUST)
    code, data, err = verify(src, tmp_path / "store", "-t", target)
    assert code == 0, (err, data)
    seen = {o["case"]: o for o in data["outcomes"]}
    ran = {"counts", "nothing", "in scope"} | ({"panics"} if target == "wasi" else set())
    assert {c for c, o in seen.items() if o["status"] == "passed"} == ran, seen
    assert all(seen[c]["runner"] == runner for c in ran)
    if target == "windows":
        assert seen["panics"]["status"] == "skipped"
        assert seen["panics"]["reason"] == "wasi only"
    program = next(tmp_path.glob(f"store/*-tally-0.1.0-{target}")) / "bin" / f"count{suffix}"
    assert program.read_bytes()[:len(magic)] == magic


def test_rust_cross_outputs_are_identical_from_two_checkouts_into_two_stores(
        tmp_path: Path) -> None:
    trees = []
    for side in ("one", "two/deeper"):
        src = write_tree(tmp_path / side / "checkout", RUST)
        done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / side / "store",
                          "-t", "wasi", "-t", "windows")
        assert done.returncode == 0, done.stderr
        trees.append({Path(line).name: _files(Path(line)) for line in done.stdout.split()})
    assert len(trees[0]) == 2 and trees[0] == trees[1]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(("target", "line", "words"), [
    ("arm64", 7, "rust has no standard library for aarch64-linux-musl"),
    ("nowhere", 8, "compiler '/no/such/rustc' not found"),
])
def test_a_rust_target_that_cannot_build_is_one_line_exit_2(
        tmp_path: Path, target: str, line: int, words: str) -> None:
    src = write_tree(tmp_path / "src", RUST)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "-t", target)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"{src / 'plan.yaml'}:{line}:")
    assert words in done.stderr
    assert not (tmp_path / "store").exists()
