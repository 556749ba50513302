"""Rust projects built with rustc directly, in cargo's layout (issue 6): a library crate, an
executable that uses it, process and function cases, reproducible and relocatable builds."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree

# .ci/run installs rustc: there a missing one is a failure, not a skip.
pytestmark = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                reason="needs rustc")

TREE = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
          small: {opt: min-size, strip: true, lto: true}
          debug: {opt: debug}
        default_targets: [release]
    """,
    "counter/project.yaml": """
        kind: project
        name: word-counter
        version: 0.1.0
        language: rust
        standard: "2021"
        sources: ["src/*.rs"]
        outputs:
          - {name: counter, kind: static-library}
          - {name: counter-dyn, kind: shared-library}
          - {name: wc, kind: executable, sources: [src/main.rs]}
    """,
    "counter/src/lib.rs": """
        mod split;
        pub use split::words;

        #[no_mangle]
        pub extern "C" fn count_words(text: *const std::os::raw::c_char) -> usize {
            let text = unsafe { std::ffi::CStr::from_ptr(text) };
            words(&text.to_string_lossy()).count()
        }

        #[no_mangle]
        pub extern "C" fn scale(x: f64, by: i32) -> f64 { x * by as f64 }
    """,
    "counter/src/split.rs": """
        pub fn words(text: &str) -> impl Iterator<Item = &str> { text.split_whitespace() }
    """,
    "counter/src/main.rs": """
        use std::io::Read;
        fn main() {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).unwrap();
            println!("{}", word_counter::words(&text).count());
        }
    """,
    "counter/cases/cases.yaml": """
        kind: cases
        cases:
          - name: counts stdin
            run: wc
            stdin: "the quick  brown fox\\n"
            expect: {stdout: "4\\n"}
          - name: count table
            function: size_t count_words(const char *text)
            table: [["a b c", 3], ["", 0], ["  one  ", 1]]
          - name: scales
            function: double scale(double x, int by)
            table: [[1.5, 2, 3.0], [2, -1, -2]]
    """,
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "src", TREE)


def test_a_rust_project_builds_and_its_process_and_function_cases_pass(project: Path) -> None:
    store = project.parent / "store"
    done = run_recipe("verify", project / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    (path,) = store.glob("*-word-counter-0.1.0-release")
    assert sorted(p.name for p in (path / "lib").iterdir()) == [
        "libcounter-dyn.so", "libcounter.a", "libcounter.native-libs", "libword_counter.rlib"]
    # What a C program linking libcounter.a needs besides it, as rustc says (libc at least).
    assert "-lc" in (path / "lib/libcounter.native-libs").read_text().split()
    ran = subprocess.run([path / "bin/wc"], input="a b\n", capture_output=True, text=True)
    assert ran.stdout == "2\n"
    assert not list(store.glob("*-cases-*"))  # its own cdylib serves the function cases


@pytest.mark.parametrize("target", ["small", "debug"])  # debug: lld's -O0 (FAST_LINK)
def test_rust_builds_are_reproducible_and_relocatable(tmp_path: Path, target: str) -> None:
    paths = []
    for n in (1, 2):
        src = write_tree(tmp_path / f"checkout{n}" / ("deep/" * n), TREE)
        done = run_recipe("realise", src / "plan.yaml", "-t", target, "--store",
                          tmp_path / f"store{n}")
        assert done.returncode == 0, done.stderr
        paths.append(Path(done.stdout.split()[0]))
    assert paths[0].name == paths[1].name
    for rel in ("bin/wc", "lib/libcounter.a", "lib/libcounter-dyn.so",
                "lib/libword_counter.rlib"):
        assert (paths[0] / rel).read_bytes() == (paths[1] / rel).read_bytes(), rel
        # (not b"checkout": lld's .comment names its own build folder, /checkout/src/...)
        assert b"checkout1" not in (paths[0] / rel).read_bytes()
        assert str(tmp_path).encode() not in (paths[0] / rel).read_bytes()


def test_editing_a_module_rebuilds_and_a_no_op_builds_nothing(project: Path) -> None:
    store = project.parent / "store"
    first = run_recipe("realise", project / "plan.yaml", "--store", store)
    assert first.returncode == 0, first.stderr
    again = run_recipe("realise", project / "plan.yaml", "--store", store)
    assert again.stdout == first.stdout and "building" not in again.stderr
    split = project / "counter/src/split.rs"
    split.write_text(split.read_text().replace("split_whitespace()", "split(' ')"))
    third = run_recipe("realise", project / "plan.yaml", "--store", store)
    assert third.returncode == 0 and third.stdout != first.stdout


def test_a_library_output_without_lib_rs_is_one_line_exit_2(project: Path) -> None:
    (project / "counter/src/lib.rs").rename(project / "counter/src/core.rs")
    main = project / "counter/src/main.rs"
    main.write_text("fn main() {}\n")
    done = run_recipe("realise", project / "plan.yaml", "--store", project.parent / "store")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "counter/project.yaml:8:5: output 'counter' is a static-library, but the rust " \
        "project's sources have no src/lib.rs" in done.stderr
    assert not (project.parent / "store").exists()


def test_rust_eval_cases_run_in_the_crate_scope_and_update(project: Path) -> None:
    """An eval case of a rust project: the scope's `use` paths, the submission in fn main,
    compiled against the crate's rlib; a wrong expectation is re-recorded by --update, a
    submission that does not compile fails with rustc's words."""
    (project / "counter/cases/cases.yaml").unlink()
    project_yaml = project / "counter/project.yaml"
    project_yaml.write_text(project_yaml.read_text() + "repl: {scope: [word_counter::words]}\n")
    write_tree(project, {"counter/cases/eval.yaml": """
        kind: cases
        cases:
          - {name: counts, eval: 'println!("{}", words("a b c").count());',
             expect: {stdout: "3\\n"}}
          - {name: by crate, eval: 'println!("{}", word_counter::scale(1.5, 2));',
             expect: {stdout: "4\\n"}}
          - {name: exits, eval: 'std::process::exit(4);', expect: {exit: 4}}
    """})
    store = project.parent / "store"
    done = run_recipe("verify", project / "plan.yaml", "--store", store)
    assert done.returncode == 1, done.stderr
    assert "=== FAILED word-counter/release: by crate" in done.stdout
    assert "2 passed, 1 failed" in done.stdout
    done = run_recipe("verify", project / "plan.yaml", "--store", store, "--update")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (project / "counter/cases/eval.yaml").read_text()
    assert '"4\\n"' not in text and text.count('stdout: "3\\n"') == 2
    done = run_recipe("verify", project / "plan.yaml", "--store", store)
    assert done.returncode == 0 and "3 passed (3 cached)" in done.stdout
    eval_yaml = project / "counter/cases/eval.yaml"
    eval_yaml.write_text(eval_yaml.read_text().replace("std::process::exit(4);",
                                                       'let x: u8 = "no";'))
    tmp = project.parent / "tmp"
    tmp.mkdir()
    done = run_recipe("verify", project / "plan.yaml", "--store", store, "-k", "exits",
                      env={**os.environ, "TMPDIR": str(tmp)})
    assert done.returncode == 1
    assert "the submission does not compile" in done.stdout and "mismatched types" in done.stdout
    assert list(tmp.iterdir()) == []  # the runner's folder is gone with it


def test_a_missing_rustc_is_one_line_exit_2_and_eval_needs_no_scope(
        project: Path) -> None:
    (project / "counter/cases/cases.yaml").unlink()
    plan = project / "plan.yaml"
    text = plan.read_text()
    plan.write_text(text.replace("release: {opt: release}",
                                 "release: {opt: release, toolchain: {rustc: /nowhere/rustc}}"))
    store = project.parent / "store"
    done = run_recipe("realise", plan, "--store", store)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(
        "target 'release': compiler '/nowhere/rustc' not found; install rustc, or name it by "
        "absolute path in toolchain: {rustc: ...}") and "Traceback" not in done.stderr
    assert [p.name for p in store.iterdir()] == [".recipe"]  # no path built
    plan.write_text(text)
    # Without a repl.scope, a submission names the crate's items by the crate's name.
    done = run_recipe("eval", plan, "-p", "word-counter", "-e",
                      'println!("{}", word_counter::scale(1.5, 2));', "--store", store)
    assert (done.returncode, done.stdout) == (0, "3\n"), done.stderr



def test_the_sysroot_is_asked_once_and_again_when_what_picks_it_changes(
        project: Path, tmp_path: Path) -> None:
    # rustup's proxy costs ~30 ms a run and a verify derives several times: `--print sysroot`
    # is remembered against the stat data of the program, rustup's settings and the
    # rust-toolchain files of the working folder and its parents.
    wrapper, log = tmp_path / "bin" / "rustc", tmp_path / "rustc.log"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {shutil.which("rustc")} "$@"\n')
    wrapper.chmod(0o755)
    plan = project / "plan.yaml"
    plan.write_text(plan.read_text().replace(
        "release: {opt: release}", f"release: {{opt: release, toolchain: {{rustc: {wrapper}}}}}"))
    time.sleep(2.2)  # the racily-clean rule: nothing just written is remembered

    def asked() -> int:
        return log.read_text().count("--print sysroot") if log.exists() else 0

    for _ in range(2):
        done = run_recipe("show", plan, "--store", tmp_path / "store", cwd=project)
        assert done.returncode == 0, done.stderr
    assert asked() == 1
    (project / "rust-toolchain").write_text("stable\n")
    assert run_recipe("show", plan, "--store", tmp_path / "store", cwd=project).returncode == 0
    assert asked() == 2
