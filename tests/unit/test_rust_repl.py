"""recipe eval and recipe repl of Rust projects (issue 15 point 6): the submission is the body of
fn main in the scope of repl.scope's `use` paths, compiled against the project's rlib and its
whole crate closure (serde_json from Debian's registry), cached like C runners."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree

DEBIAN = Path("/usr/share/cargo/registry")
pytestmark = [
    pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                       reason="needs rustc"),
    pytest.mark.skipif(not (DEBIAN / "serde_json-1.0.87").is_dir() and not os.environ.get("CI"),
                       reason="needs Debian's librust-serde-json-dev")]

FILES = {
    "plan.yaml": f"""
        kind: plan
        registry: {DEBIAN}
        projects: ["*/project.yaml"]
        targets: {{release: {{opt: release}}, debug: {{opt: debug}}}}
        default_targets: [release]
    """,
    # A Rust project of the plan that jtotal depends on: usable by its crate name.
    "units/project.yaml": """
        kind: project
        name: units
        version: 0.1.0
        language: rust
        sources: [src/lib.rs]
        outputs: [{name: units, kind: static-library}]
    """,
    "units/src/lib.rs": "pub fn per_cent(x: f64) -> f64 { x * 100.0 }\n",
    "jtotal/project.yaml": """
        kind: project
        name: jtotal
        version: 0.1.0
        language: rust
        sources: ["src/*.rs"]
        depends: [units]
        crates: {serde_json: "1"}
        outputs: [{name: jtotal, kind: static-library}]
        repl: {scope: ["jtotal::total", "serde_json::Value"]}
    """,
    "jtotal/src/lib.rs": """
        /// The sum of the numbers of a JSON array.
        pub fn total(text: &str) -> f64 {
            let value: serde_json::Value = serde_json::from_str(text).unwrap();
            value.as_array().map_or(0.0, |v| v.iter().filter_map(|x| x.as_f64()).sum())
        }
    """,
    "bare/project.yaml": """
        kind: project
        name: bare
        version: 0.1.0
        language: rust
        sources: [src/main.rs]
        outputs: [{name: bare, kind: executable, sources: [src/main.rs]}]
        repl: {scope: ["std::fmt"]}
    """,
    "bare/src/main.rs": "fn main() {}\n",
    "noscope/project.yaml": """
        kind: project
        name: noscope
        version: 0.1.0
        language: rust
        sources: [src/lib.rs]
        outputs: [{name: noscope, kind: static-library}]
    """,
    "noscope/src/lib.rs": "pub fn one() -> i32 { 1 }\n",
    # A Rust project on a C library of the plan: the runner links it too.
    "chalf/project.yaml": """
        kind: project
        name: chalf
        version: 0.1.0
        language: c
        sources: [half.c]
        outputs: [{name: chalf, kind: static-library}]
    """,
    "chalf/half.c": "double c_half(double x) { return x / 2; }\n",
    "halves/project.yaml": """
        kind: project
        name: halves
        version: 0.1.0
        language: rust
        sources: [src/lib.rs]
        depends: [chalf]
        outputs: [{name: halves, kind: static-library}]
        repl: {scope: ["halves::half"]}
    """,
    "halves/src/lib.rs": """
        extern "C" { fn c_half(x: f64) -> f64; }
        pub fn half(x: f64) -> f64 { unsafe { c_half(x) } }
    """,
}

SUBMISSION = ('let v: Value = serde_json::from_str(r#"{"a": [1, 2]}"#).unwrap();\n'
              'println!("{} {} {}", total("[1, 2.5]"), v["a"][1], units::per_cent(0.5));')


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tree(tmp_path_factory.mktemp("rust-repl") / "src", FILES) / "plan.yaml"


def evaluate(plan: Path, code: str, *args: str, project: str = "jtotal"):  # noqa: ANN201
    return run_recipe("eval", plan, "-p", project, "--store", plan.parent.parent / "store",
                      "-e", code, *args)


def test_eval_sees_the_scope_the_crates_and_direct_dependencies(plan: Path) -> None:
    done = evaluate(plan, SUBMISSION + "\nstd::process::exit(3);")
    assert (done.stdout, done.returncode) == ("3.5 2 50\n", 3), done.stderr


def test_a_repeated_submission_does_not_compile(plan: Path) -> None:
    code = 'println!("{}", total("[4, 5]"));'
    first = evaluate(plan, code, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["stdout"] == "9\n"
    assert json.loads(first.stdout)["cached"] is False
    # A new process: the runner comes from the store's action cache, rustc does not run.
    runners = _runner_actions(plan)
    second = evaluate(plan, code, "--json")
    assert json.loads(second.stdout)["cached"] is True
    assert json.loads(second.stdout)["stdout"] == "9\n"
    assert _runner_actions(plan) == runners


def _runner_actions(plan: Path) -> int:
    """How many runners the store's action cache holds: one per compile."""
    store = plan.parent.parent / "store"
    return sum('"runner"' in path.read_text() for path in store.rglob("*.json")
               if "actions" in path.parts)


def test_a_compile_error_shows_rustc_s_words_and_exits_1(plan: Path) -> None:
    done = evaluate(plan, 'let x: u8 = "no";')
    assert done.returncode == 1 and done.stdout == ""
    assert "error[E0308]: mismatched types" in done.stderr
    assert "./runner.rs:" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(
        "recipe: the submission does not compile (generated file: ")


def test_a_debug_target_keeps_overflow_checks(plan: Path) -> None:
    code = 'let x: u8 = std::hint::black_box(255); println!("{}", x + 1);'
    assert evaluate(plan, code).stdout == "0\n"  # release: wraps, as its programs do
    done = evaluate(plan, code, "-t", "debug")
    assert done.returncode == 101 and "attempt to add with overflow" in done.stderr


def test_without_a_scope_the_crate_is_named_and_without_a_library_one_line_exit_2(
        plan: Path) -> None:
    done = evaluate(plan, 'println!("{}", noscope::one());', project="noscope")
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    done = evaluate(plan, "println!();", project="bare")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"{plan.parent}/bare/project.yaml:2:7: project 'bare' has no library crate for the "
        "REPL to use; add src/lib.rs to its sources")


def test_a_repl_session_of_a_rust_project(plan: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "repl", str(plan), "-p",
                                           "jtotal", "--store",
                                           str(plan.parent.parent / "store")],
                          cwd=str(plan.parent), env={**os.environ, "TERM": "dumb"},
                          encoding="utf-8", timeout=300, dimensions=(40, 200))
    child.expect_exact("recipe> ")

    def submit(line: str) -> str:
        child.sendline(line)
        child.expect_exact("recipe> ")
        return str(child.before).replace("\r\n", "\n")

    assert submit('println!("{}", total("[1, 2, 3]"));').endswith("\n6\n")
    assert "error[E0425]" in submit("println!(\"{}\", nothing_here);")
    assert "recipe: exit 4" in submit("std::process::exit(4);")
    child.sendline('let v: Value = serde_json::json!({"k": [true]}); \\')
    child.expect_exact("   ...> ")
    assert submit('println!("{}", v);').endswith('\n{"k":[true]}\n')
    child.sendline("%quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_a_runner_links_the_c_library_of_the_project(plan: Path) -> None:
    done = evaluate(plan, 'println!("{}", half(7.0));', project="halves")
    assert (done.returncode, done.stdout) == (0, "3.5\n"), done.stderr


def _session(plan: Path):  # noqa: ANN202
    from engine.documents.load import load_plan
    from engine.repl.session import Session
    from engine.store import Store

    return Session.prepare(load_plan(plan), Store.open(plan.parent.parent / "store"), "jtotal")


def test_rustup_s_lld_is_run_by_rustc_itself(plan: Path) -> None:
    """Where rustup's rustc ships lld, a runner is linked by it with the C compiler's start
    files, not through the C compiler (three programs fewer)."""
    with _session(plan) as session:
        argv, files = session.spec.compile, session.scope.identity["rust"]["digests"]
    if not any(name.endswith("/gcc-ld/ld.lld") for name in files):
        pytest.skip("this rustc ships no lld (Debian's)")
    assert "linker-flavor=ld.lld" in argv and any(a.endswith("/bin/rust-lld") for a in argv)
    assert any(a.endswith("crti.o") for a in argv) and "link-arg=-fuse-ld=lld" not in argv
    # Nothing of the C compiler's temporary files (its LTO plugin's) enters the runner's key.
    from engine.repl.rust import startfiles

    cc = shutil.which("gcc") or shutil.which("cc")
    assert cc is not None and startfiles(cc, "/usr/bin:/bin") == startfiles(cc, "/usr/bin:/bin")
    assert not any("plugin" in arg or ".res" in arg for arg in argv)


def test_a_rustc_started_ahead_makes_the_runner_a_plain_compile_makes(plan: Path) -> None:
    """Session.warm starts the next submission's rustc on a FIFO (engine.repl.ahead): the
    runner, its words and its key are those of the plain compile, bit for bit."""
    from engine.build import reaper
    from engine.repl import runner as compiled
    from engine.repl.ahead import Ahead

    code = 'let unused = 1; println!("{}", total("[7]"));'
    with _session(plan) as session:
        ahead = Ahead.start(session.spec, session.store)
        assert ahead is not None
        status, said = ahead.finish(code)
        folder = compiled.runner_folder(session.store)
        src = folder / "runner.rs"
        src.write_text(source_of(session, code))
        argv, cwd, executable = compiled.command(session.spec, folder, src)
        plain = reaper.run(argv, session.store, cwd=cwd,
                           env={**session.spec.env, "TMPDIR": str(folder)})
        assert (status, said) == plain and status == 0
        assert b"--> ./runner.rs:6:5" in said  # its warning, as a plain compile words it
        assert ahead.executable.read_bytes() == executable.read_bytes()
        shutil.rmtree(ahead.folder)
        shutil.rmtree(folder)


def source_of(session, code: str) -> str:  # noqa: ANN001
    from engine.repl import source

    return source.runner_source("rust", code, session.spec.title, session.spec.uses)


def test_a_session_compiles_new_submissions_by_the_rustc_it_started(plan: Path) -> None:
    from engine.repl.runner import CompileError

    with _session(plan) as session:
        session.warm()
        ahead = session._ahead
        assert ahead is not None
        first = session.compile('println!("{}", total("[8, 1]"));')
        assert not first.cached and first.folder == ahead.folder and session._ahead is None
        assert _output(session, first) == "9\n"
        session.warm()
        waiting = session._ahead
        again = session.compile('println!("{}", total("[8, 1]"));')  # a hit: it waits on
        assert again.cached and session._ahead is waiting
        with pytest.raises(CompileError) as error:
            session.compile('let x: u8 = "no";')
        assert "error[E0308]" in error.value.detail and "./runner.rs:6" in error.value.detail
        assert not waiting.folder.exists()  # a failed compile leaves nothing behind
        # A rustc started ahead that died before its submission: compiled the plain way.
        session.warm()
        dead = session._ahead
        dead.contained.stop()
        dead.contained.wait()
        runner = session.compile('println!("{}", total("[2, 2]"));')
        assert _output(session, runner) == "4\n" and not dead.folder.exists()
        # Closing the session stops the rustc that waits and removes its folder.
        session.warm()
        last = session._ahead
    assert last.contained.proc.returncode is not None and not last.folder.exists()


def _output(session, runner) -> str:  # noqa: ANN001
    # The workspace is made by a submission's first run: this test may be the module's first
    session.works.mkdir(parents=True, exist_ok=True)
    with (session.works / "out").open("w+b") as out:
        ended = session.run(runner, stdout=out)
        out.seek(0)
        assert ended.code == 0
        return out.read().decode()


def test_the_lld_started_ahead_links_and_says_why_a_link_fails(plan: Path) -> None:
    """The rustc started ahead links with the lld started beside it (engine.repl.prelink):
    lld's words on a failed link reach rustc's error, and nothing of either is left."""
    from engine.repl.runner import CompileError

    with _session(plan) as session:
        session.warm()
        ahead = session._ahead
        if ahead.linker is None:
            pytest.skip("runners are not linked by rustup's lld here")
        lld = ahead.linker.contained
        code = ('extern "C" { fn recipe_nowhere() -> i32; }\n'
                'println!("{}", unsafe { recipe_nowhere() });')
        with pytest.raises(CompileError) as error:
            session.compile(code)
        assert "undefined symbol: recipe_nowhere" in error.value.detail
        assert lld.proc.returncode is not None and not ahead.folder.exists()
        # A compile error: rustc never links; the lld that waited is stopped.
        session.warm()
        ahead = session._ahead
        with pytest.raises(CompileError):
            session.compile("let x: u8 = 256;")
        assert ahead.linker.contained.proc.returncode is not None
        assert not ahead.linker._thread.is_alive()


def test_a_runner_runs_once_lld_wrote_it_and_is_cached_after_its_run(plan: Path) -> None:
    """A runner of the rustc started ahead is taken as soon as lld wrote it, when rustc and
    lld said nothing (engine.repl.ahead), rustc kept waiting for its linker's answer meanwhile
    (engine.repl.prelink: its end, a teardown of ~5 ms, after the run); ``settle`` lets it end
    and caches the runner, and a lookup of its key meanwhile, in this process or another,
    waits for that (engine.store.promises). A runner with warnings is taken at rustc's end:
    its words whole, as a plain compile gives them."""
    import threading

    from engine.repl import runner as compiled

    with _session(plan) as session:
        session.warm()
        ahead = session._ahead
        if ahead.linker is None:
            pytest.skip("runners are not linked by rustup's lld here")
        runner = session.compile('println!("{}", total("[5, 4]"));')
        assert ahead.settling  # taken at its link
        assert runner.diagnostics == "" and _output(session, runner) == "9\n"
        assert ahead.contained.proc.poll() is None  # rustc still waits for its link's answer
        folder = compiled.runner_folder(session.store)
        found: list[object] = []
        look = threading.Thread(target=lambda: found.append(
            compiled.lookup(session.store, runner.key, folder)))
        look.start()
        look.join(0.3)
        assert look.is_alive()  # promised, not written yet: the lookup waits
        session.settle()
        look.join(10)
        assert found[0] is not None and found[0].cached  # type: ignore[attr-defined]
        assert (folder / "runner").read_bytes() == runner.executable.read_bytes()
        assert ahead.contained.proc.returncode == 0 and not ahead.settling
        shutil.rmtree(folder)
        session.warm()
        ahead = session._ahead
        runner = session.compile('let unused = 2; println!("{}", total("[1]"));')
        assert not ahead.settling and "unused variable" in runner.diagnostics
        assert runner.diagnostics.endswith("warning: 1 warning emitted\n\n")
        assert _output(session, runner) == "1\n"


def test_an_argument_is_quoted_as_lld_reads_a_response_file(tmp_path: Path) -> None:
    import subprocess

    from engine.repl.prelink import quoted

    lld = next(iter(Path.home().glob(".rustup/toolchains/*/lib/rustlib/*/bin/rust-lld")), None)
    if lld is None:
        pytest.skip("no rustup lld")
    odd = str(tmp_path / 'a dir "x" \\ y\tz' / "missing.o")
    (tmp_path / "args").write_text(quoted(odd) + "\n")
    done = subprocess.run([str(lld), "-flavor", "gnu", f"@{tmp_path / 'args'}"],
                          capture_output=True, text=True)
    assert f"cannot open {odd}:" in done.stderr, done.stderr
