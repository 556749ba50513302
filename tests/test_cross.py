"""Cross targets: zig builds C and C++ for other machines, reproducibly, and every case runs on
its target (qemu-user, wine64, wasmtime). Real zig, real runners, real processes.

zig builds a target's libc into its cache the first time (25 to 60 s of CPU each): every test
here shares one cache, named by RECIPE_ZIG_CACHE (.ci/run sets it and warms it), so the suite
pays that once per machine, not once per test.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

pytestmark = pytest.mark.slow

TARGETS = """
targets:
  release: {opt: release}
  arm64: {triple: aarch64-linux-musl, toolchain: zig}
  arm64-gnu: {triple: aarch64-linux-gnu.2.28, toolchain: zig}
  windows: {triple: x86_64-windows-gnu, toolchain: zig}
  wasi: {triple: wasm32-wasi, toolchain: zig}
  arm64-off: {triple: aarch64-linux-musl, toolchain: zig, runner: none}
  arm64-max: {triple: aarch64-linux-musl, toolchain: zig, runner: [qemu-aarch64, -cpu, max],
              timeout_factor: 20}
  arm64-bogus: {triple: aarch64-linux-musl, toolchain: zig, runner: [qemu-aarch64, -cpu, nosuch]}
default_targets: [release]
"""

CROSS = {
    **GREET_LIB,
    "plan.yaml": 'kind: plan\nprojects: ["*/project.yaml"]\n' + TARGETS,
    "hello/cases/basic.yaml": """
        kind: cases
        cases:
          - name: greets
            run: hello
            args: [one]
            expect: {stdout: "hello 4 1\\n"}
    """,
    "shout/project.yaml": """
        kind: project
        name: shout
        version: 1.0.0
        language: c++
        standard: c++20
        sources: ["src/*.cpp"]
        outputs:
          - {name: shout, kind: executable}
        cases: ["cases/*.yaml"]
    """,
    "shout/src/main.cpp": """
        #include <iostream>
        #include <stdexcept>
        #include <string>
        int main(int argc, char **argv) {
            std::string word = argc > 1 ? argv[1] : "nothing";
            try {
                if (word == "throw") throw std::runtime_error("thrown");
            } catch (const std::exception &e) { word = e.what(); }
            for (auto &c : word) c = static_cast<char>(std::toupper(c));
            std::cout << word << "!" << std::endl;
            return 0;
        }
    """,
    "shout/cases/shout.yaml": """
        kind: cases
        cases:
          - {name: shouts, run: shout, args: [hey], expect: {stdout: "HEY!\\n"}}
          - {name: catches, run: shout, args: [throw], expect: {stdout: "THROWN!\\n"}}
    """,
}


@pytest.fixture(scope="session", autouse=True)
def zig_cache() -> Path:
    """One zig cache for the whole suite and across runs (CI sets RECIPE_ZIG_CACHE)."""
    pytest.importorskip("ziglang", reason="zig is in the test extra: pip install -e '.[test]'")
    folder = os.environ.setdefault(
        "RECIPE_ZIG_CACHE", str(Path(tempfile.gettempdir()) / f"recipe-zig-cache-{os.getuid()}"))
    return Path(folder)


def verify(src: Path, store: Path, *args: str) -> tuple[int, dict, str]:
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "--json", *args)
    try:
        data = json.loads(done.stdout)
    except ValueError:
        data = {}
    return done.returncode, data, done.stderr


def outcomes(data: dict) -> dict[tuple[str, str], dict]:
    return {(o["project"], o["case"]): o for o in data.get("outcomes", [])}


def test_c_and_cxx_for_aarch64_musl_run_under_qemu(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64")
    assert code == 0, (err, data)
    seen = outcomes(data)
    assert set(seen) == {("hello", "greets"), ("shout", "shouts"), ("shout", "catches")}
    assert all(o["status"] == "passed" and o["runner"] == "qemu-aarch64" for o in seen.values())
    hello = next(tmp_path.glob("store/*-hello-0.3.0-arm64")) / "bin" / "hello"
    header = hello.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # aarch64
    # realise --json: each output with its target, size and sha256 (the compiled-binary record)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "-t", "arm64",
                      "-t", "release", "-p", "hello", "--json")
    rows = {r["target"]: r for r in json.loads(done.stdout)}
    assert rows["arm64"]["triple"] == "aarch64-linux-musl" and rows["release"]["triple"] == "host"
    [out] = rows["arm64"]["outputs"]
    data = hello.read_bytes()
    assert out == {"file": "bin/hello", "size": len(data),
                   "sha256": hashlib.sha256(data).hexdigest()}


def test_a_crash_under_qemu_is_the_programs_signal_without_qemus_words(tmp_path: Path) -> None:
    files = {**CROSS, "hello/src/main.c": """
        #include <signal.h>
        #include <stdio.h>
        int main(void) { fputs("before\\n", stderr); fflush(stderr); raise(SIGSEGV); return 0; }
    """}
    src = write_tree(tmp_path / "src", files)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64", "-k", "hello/")
    assert code == 1, err
    outcome = outcomes(data)[("hello", "greets")]
    assert outcome["status"] == "failed" and "SIGSEGV" in outcome["message"]
    assert "qemu:" not in outcome["detail"]


def test_aarch64_glibc_target_runs_under_qemu_with_the_cross_sysroot(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64-gnu", "-p", "hello")
    assert code == 0, (err, data)
    assert outcomes(data)[("hello", "greets")]["runner"] == "qemu-aarch64"
    hello = next(tmp_path.glob("store/*-hello-0.3.0-arm64-gnu")) / "bin" / "hello"
    assert b"ld-linux-aarch64.so.1" in hello.read_bytes()  # dynamically linked to glibc


def test_two_checkouts_into_two_stores_give_identical_trees(tmp_path: Path) -> None:
    trees = []
    for side in ("one", "two/deeper"):
        src = write_tree(tmp_path / side / "checkout", CROSS)
        done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / side / "store",
                          "-t", "arm64", "-t", "windows")
        assert done.returncode == 0, done.stderr
        trees.append({Path(line).name: _files(Path(line)) for line in done.stdout.split()})
    assert trees[0].keys() == trees[1].keys()
    assert len(trees[0]) == 6  # greet, hello, shout for two targets
    assert trees[0] == trees[1]


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_windows_program_runs_under_wine_with_its_own_line_ends(tmp_path: Path) -> None:
    if shutil.which("wine64") is None and not Path("/usr/lib/wine/wine64").exists():
        pytest.fail("wine64 is not installed (.ci/run installs it)")
    files = {**CROSS, "hello/cases/basic.yaml": """
        kind: cases
        cases:
          - {name: greets, run: hello, args: [one], expect: {stdout: "hello 4 1\\r\\n"}}
          - {name: lf, run: hello, args: [one], newlines: lf, expect: {stdout: "hello 4 1\\n"}}
    """}
    src = write_tree(tmp_path / "src", files)
    code, data, err = verify(src, tmp_path / "store", "-t", "windows", "-p", "hello")
    assert code == 0, (err, data)
    assert outcomes(data)[("hello", "greets")]["runner"] == "wine64"
    assert outcomes(data)[("hello", "lf")]["status"] == "passed"
    assert next(tmp_path.glob("store/*-hello-0.3.0-windows")).joinpath("bin/hello.exe").is_file()


def test_wasi_program_runs_under_wasmtime(tmp_path: Path) -> None:
    pytest.importorskip("wasmtime", reason="wasmtime is in the test extra")
    src = write_tree(tmp_path / "src", CROSS)
    code, data, err = verify(src, tmp_path / "store", "-t", "wasi", "-p", "hello")
    assert code == 0, (err, data)
    assert outcomes(data)[("hello", "greets")]["runner"] == "wasmtime"
    wasm = next(tmp_path.glob("store/*-hello-0.3.0-wasi")) / "bin" / "hello.wasm"
    assert wasm.read_bytes()[:4] == b"\0asm"


def test_runner_none_is_listed_not_run_and_does_not_fail(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64-off", "-p", "hello")
    assert code == 0, (err, data)
    outcome = outcomes(data)[("hello", "greets")]
    assert outcome["status"] == "not run" and outcome["ignored"] is True
    text = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store",
                      "-t", "arm64-off", "-p", "hello")
    assert text.returncode == 0
    assert "not run" in text.stdout and "passed" not in text.stdout


def test_a_target_with_no_runner_installed_is_not_run_and_fails(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    # qemu is not on this PATH: the runner the triple needs is missing here.
    env = {**os.environ, "PATH": str(Path(os.__file__).parent)}
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store",
                      "-t", "arm64", "-p", "hello", env=env)
    assert done.returncode == 1, done.stderr
    assert "not run" in done.stdout
    assert "no runner for aarch64-linux-musl (qemu-aarch64 is not installed" in done.stdout
    assert "passed" not in done.stdout


BAD = [
    ("triple: aarch64-linux-musel, toolchain: zig", 4,
     "zig cannot build for triple 'aarch64-linux-musel'; did you mean aarch64-linux-musl?"),
    ("triple: aarch64-linux-gnu.2.99, toolchain: zig", 4, "zig knows no glibc 2.99"),
    ("triple: aarch64-linux-musl, toolchain: zig, cpu: cortex-a999", 4,
     "aarch64 has no CPU 'cortex-a999'"),
    ("triple: aarch64-linux-musl, toolchain: zig, runner: [qemu-nowhere]", 4,
     "runner qemu-nowhere is not installed"),
    ("triple: aarch64-linux-musl", 4, "needs a cross toolchain; write toolchain: zig"),
]


@pytest.mark.parametrize(("spec", "line", "words"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_cross_targets_are_one_line_exit_2_before_anything(
        tmp_path: Path, spec: str, line: int, words: str) -> None:
    plan = f'kind: plan\nprojects: ["*/project.yaml"]\ntargets:\n  bad: {{{spec}}}\n'
    src = write_tree(tmp_path / "src", {**GREET_LIB, "plan.yaml": plan})
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store", "-t", "bad")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"{src / 'plan.yaml'}:{line}:"), done.stderr
    assert words in done.stderr
    assert not (tmp_path / "store").exists()


def test_zig_not_installed_names_the_extra(tmp_path: Path) -> None:
    # An interpreter that cannot import ziglang: a module of that name refusing to load first.
    shadow = write_tree(tmp_path / "shadow", {
        "ziglang.py": "raise ImportError(\"No module named 'ziglang'\")\n"})
    plan = ('kind: plan\nprojects: ["*/project.yaml"]\ntargets:\n'
            '  arm64: {triple: aarch64-linux-musl, toolchain: zig}\n')
    src = write_tree(tmp_path / "src", {**GREET_LIB, "plan.yaml": plan})
    env = {**os.environ, "PYTHONPATH": f"{shadow}{os.pathsep}{os.getcwd()}"}
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"{src / 'plan.yaml'}:4:")
    assert "toolchain zig needs zig, which is not installed" in done.stderr
    assert "pip install -e '.[cross]'" in done.stderr
    assert not (tmp_path / "store").exists()


RUST = {
    "plan.yaml": 'kind: plan\nprojects: ["*/project.yaml"]\n' + TARGETS,
    "tiny/project.yaml": """
        kind: project
        name: tiny
        version: 0.1.0
        language: rust
        sources: ["src/*.rs"]
        outputs:
          - {name: tiny, kind: executable, sources: [src/main.rs]}
    """,
    "tiny/src/main.rs": 'fn main() { println!("tiny"); }\n',
}


def test_rust_on_a_target_without_a_std_is_refused_before_anything(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", RUST)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "-t", "arm64")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"{src / 'plan.yaml'}:6:"), done.stderr  # arm64's triple
    assert "rust has no standard library for aarch64-linux-musl" in done.stderr
    assert "rustup target add aarch64-unknown-linux-musl" in done.stderr
    assert not (tmp_path / "store").exists()


def test_a_cross_release_names_the_triple_and_zig(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    done = run_recipe("release", src / "plan.yaml", "--store", tmp_path / "store", "-t", "arm64",
                      "-p", "hello", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert "hello-0.3.0-arm64-aarch64-linux-musl.tar.gz" in names
    statements = [json.loads(line) for line in
                  (tmp_path / "out" / "provenance.intoto.jsonl").read_text().splitlines()]
    hello = next(s for s in statements if s["subject"][0]["name"].startswith("hello-"))
    build = hello["predicate"]["buildDefinition"]
    assert build["externalParameters"]["triple"] == "aarch64-linux-musl"
    deps = {d["name"] for d in build["resolvedDependencies"]}
    assert {"toolchain:zig", "toolchain:lib"} <= deps


def test_recipe_check_rebuilds_a_cross_target_bit_for_bit(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "-t", "arm64",
                      "-p", "hello")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith("reproducible")]
    assert len(lines) == 2 and lines[1].endswith("-hello-0.3.0-arm64")


def test_a_target_may_name_its_runner(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", CROSS)
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64-max", "-p", "hello")
    assert code == 0, (err, data)
    assert outcomes(data)[("hello", "greets")]["runner"] == "qemu-aarch64"
    # the command is the target's own: a CPU qemu does not have fails the case
    code, data, err = verify(src, tmp_path / "store", "-t", "arm64-bogus", "-p", "hello")
    assert code == 1, (err, data)
    assert outcomes(data)[("hello", "greets")]["status"] == "failed"
