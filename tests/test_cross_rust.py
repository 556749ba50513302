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


# Function cases of Rust projects on a foreign target (issue 14, point 4): called by the table
# harness, linked against the project's static library (``fns``) or, for a project without one
# (``lone``), the one built for the harness; and the native libraries rustc reported.
FUNCTIONS = {
    "fns/project.yaml": """
        kind: project
        name: fns
        version: 0.1.0
        language: rust
        sources: ["src/lib.rs"]
        outputs:
          - {name: fns, kind: static-library}
        cases: ["cases/*.yaml"]
    """,
    "fns/src/lib.rs": """
        use std::ffi::CStr;
        use std::os::raw::c_char;
        #[no_mangle]
        pub extern "C" fn fns_add(a: i32, b: i32) -> i32 { a.wrapping_add(b) }
        #[no_mangle]
        pub extern "C" fn fns_words(text: *const c_char) -> usize {
            if text.is_null() { return 0; }
            let text = unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned();
            text.split_whitespace().collect::<Vec<_>>().len()
        }
        #[no_mangle]
        pub extern "C" fn fns_half(x: f64) -> f64 { x / 2.0 }
        #[no_mangle]
        pub extern "C" fn fns_checked(x: i32) -> i32 {
            if x == 0 { panic!("zero"); }
            100 / x
        }
    """,
    "fns/cases/tables.yaml": """
        kind: cases
        cases:
          - name: adds
            function: int fns_add(int a, int b)
            table: [[1, 2, 3], [-4, 4, 0], [2147483647, 1, -2147483648]]
          - name: counts words
            function: size_t fns_words(const char *text)
            table: [["one two three", 3], ["", 0], [null, 0]]
          - name: halves
            function: double fns_half(double x)
            table: [[3.0, 1.5], [-1.0, -0.5]]
          - name: wrongly
            function: int fns_add(int a, int b)
            table: [[1, 1, 2], [2, 2, 5]]
          - name: panics alone
            function: int fns_checked(int x)
            table: [[5, 20], [0, 0], [50, 2], [-1, -100]]
    """,
    "lone/project.yaml": """
        kind: project
        name: lone
        version: 0.1.0
        language: rust
        sources: ["src/lib.rs"]
        outputs:
          - {name: lone, kind: executable, sources: [src/main.rs]}
        cases: ["cases/*.yaml"]
    """,
    "lone/src/lib.rs": """
        #[no_mangle]
        pub extern "C" fn lone_square(x: i64) -> i64 { x * x }
    """,
    "lone/src/main.rs": """
        fn main() { println!("{}", lone::lone_square(7)); }
    """,
    "lone/cases/tables.yaml": """
        kind: cases
        cases:
          - {name: squares, function: long long lone_square(long long x),
             table: [[3, 9], [-4, 16]]}
    """,
}


@pytest.mark.parametrize(("target", "runner"), [("wasi", "wasmtime"), ("windows", "wine64")])
def test_rust_function_cases_run_on_the_target_through_the_harness(
        tmp_path: Path, target: str, runner: str) -> None:
    src = write_tree(tmp_path / "src", {**RUST, **FUNCTIONS})
    code, data, err = verify(src, tmp_path / "store", "-t", target, "-p", "fns", "-p", "lone")
    assert code == 1, (err, data)  # the wrong expectation and the panicking row
    seen = {o["case"]: o for o in data["outcomes"]}
    assert {c: o["status"] for c, o in seen.items()} == {
        "adds": "passed", "counts words": "passed", "halves": "passed", "squares": "passed",
        "wrongly": "failed", "panics alone": "failed"}, seen
    assert {o["runner"] for o in seen.values()} == {runner}
    assert seen["wrongly"]["message"] == "1 of 2 rows failed", seen["wrongly"]
    # A panic cannot unwind out of extern "C": the harness aborts at that row, which alone
    # fails; a fresh harness calls the rows after it.
    panicked = seen["panics alone"]
    assert panicked["message"] == "1 of 4 rows failed", panicked
    assert "row 2: fns_checked(0) " + ("crashed: SIGABRT" if target == "wasi" else
                                       "ended the harness with exit code 9 (a fail-fast abort)") \
        in panicked["detail"], panicked


def test_a_rust_function_the_library_lacks_on_a_foreign_target_is_one_line_exit_2(
        tmp_path: Path) -> None:
    tree = {**RUST, **FUNCTIONS, "fns/cases/tables.yaml": """
        kind: cases
        cases:
          - {name: absent, function: int fns_nothing(int a), table: [[1, 1]]}
    """}
    src = write_tree(tmp_path / "src", tree)
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store", "-t", "windows",
                      "-p", "fns")
    assert done.returncode == 2, done.stderr
    # (the library is built first: it is what is read)
    said = [line for line in done.stderr.splitlines() if not line.startswith("building ")]
    assert len(said) == 1, done.stderr
    assert said[0].startswith(f"{src / 'fns' / 'cases' / 'tables.yaml'}:3:5: "), done.stderr
    assert "has no function 'fns_nothing'" in said[0]


def test_a_rust_shared_library_builds_for_the_host_and_foreign_targets(tmp_path: Path) -> None:
    # On the host the rlib and the library named after the crate come from one rustc run
    # (--out-dir); on another triple rustc names its files otherwise (foo.dll, foo.wasm), so
    # they are compiled apart there, each to the name recipe gives it.
    tree = {**RUST, "tally/project.yaml": RUST["tally/project.yaml"].replace(
        "kind: static-library}", "kind: shared-library}")}
    src = write_tree(tmp_path / "src", tree)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store",
                      "-t", "release", "-t", "wasi", "-t", "windows", "-p", "tally", "--json")
    assert done.returncode == 0, done.stderr
    names = {Path(o["file"]).name for p in json.loads(done.stdout) for o in p["outputs"]}
    assert "libtally.so" in names, names
    assert any(n.endswith(".dll") for n in names), names


def test_no_path_of_recipes_installation_enters_a_rust_cross_derivation(tmp_path: Path) -> None:
    # zig's linker wrapper lives in recipe's own folder and runs on recipe's Python: both differ
    # per checkout and machine, so an action names them by placeholders and the wrapper enters
    # by its digest; otherwise two checkouts of recipe would name the same output differently.
    import sys

    import engine
    from engine.derive.derivation import Deriver
    from engine.documents.load import load_plan
    from engine.store import Store
    from engine.toolchain import rust_cross

    src = write_tree(tmp_path / "src", RUST)
    plan = load_plan(src / "plan.yaml")
    deriver = Deriver(plan, Store.open(tmp_path / "store").make_name, tmp_path / "cache")
    drv = deriver.derive("tally", "wasi")
    text = json.dumps([a.as_json() for a in drv.actions])
    assert str(Path(engine.__file__).parent) not in text
    assert sys.executable not in text
    assert rust_cross.wrapper_digest() in text
