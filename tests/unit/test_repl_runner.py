"""engine.repl in-process, with real gcc/g++: the scope, the runner cache, the child."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from engine.documents.load import load_plan
from engine.errors import Failure, UsageError
from engine.repl import child
from engine.repl.runner import CompileError, EmptySubmission, command, runner_key
from engine.repl.scope import NoScope, ScopeMissing, check_project
from engine.repl.session import Session
from engine.store import Store
from tests.repl_projects import MIXED, calls, make_plan, make_wrappers


def session(plan_file: Path, store: Path, project: str = "calc", **kw: object) -> Session:
    return Session.prepare(load_plan(plan_file), Store.open(store), project, **kw)  # type: ignore[arg-type]


def run_capture(s: Session, code: str, tmp: Path) -> tuple[str, str, int]:
    runner = s.compile(code)
    out, err = tmp / "out", tmp / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        ended = s.run(runner, stdout=o, stderr=e)
    return out.read_text(), err.read_text(), ended.code


@pytest.fixture
def logged(tmp_path: Path) -> tuple[Path, Path]:
    cc, cxx, log = make_wrappers(tmp_path / "tc")
    return make_plan(tmp_path / "src", (cc, cxx)), log


def test_a_repeated_submission_does_not_compile(logged, tmp_path: Path) -> None:
    plan, log = logged
    with session(plan, tmp_path / "store", works=tmp_path / "w") as s:
        assert run_capture(s, 'printf("%d\\n", calc_quad(3));', tmp_path) == ("12\n", "", 0)
        assert calls(log, "runner.c") == 1
        assert calls(log, "c-header") == 1
        assert run_capture(s, 'printf("%d\\n", calc_quad(3));', tmp_path) == ("12\n", "", 0)
        assert calls(log, "runner.c") == 1
    # a new session, a new process would do the same: from the store's action cache
    with session(plan, tmp_path / "store", works=tmp_path / "w") as s:
        runner = s.compile('printf("%d\\n", calc_quad(3));')
        assert runner.cached
        assert calls(log, "runner.c") == 1
        assert calls(log, "c-header") == 1  # the scope folder is kept, not precompiled again
        run_capture(s, "return 4;", tmp_path)
        assert calls(log, "runner.c") == 2


def test_a_runner_compiles_through_a_pipe_as_the_library_s_units_do(logged,
                                                                     tmp_path: Path) -> None:
    """gcc's ``-pipe`` (engine/toolchain/flags.py ``compiler_argv``): the scope header, the
    runner and the library's units alike; the runner is what it was without it, byte for
    byte (a runner compiled by hand without ``-pipe``)."""
    plan, log = logged
    with session(plan, tmp_path / "store", works=tmp_path / "w") as s:
        runner = s.compile('printf("%d\\n", calc_quad(3));')
        logged_calls = [line.split() for line in log.read_text().splitlines()]
        units = [argv for argv in logged_calls if "-c" in argv]
        made = [argv for argv in logged_calls if "runner.c" in " ".join(argv)
                or "c-header" in argv]
        assert units and len(made) == 2
        assert all("-pipe" in argv for argv in units + made), logged_calls
        argv, cwd, _ = command(s.scope.spec(), runner.folder, runner.folder / "runner.c")
        argv = [a for a in argv if a != "-pipe"]
        argv[argv.index("-o") + 1] = str(tmp_path / "by-hand")
        subprocess.run(argv, cwd=cwd, env={**s.scope.env, "TMPDIR": str(tmp_path)}, check=True)
        assert (tmp_path / "by-hand").read_bytes() == runner.executable.read_bytes()


def test_a_scope_header_change_precompiles_the_scope_again(logged, tmp_path: Path) -> None:
    plan, log = logged
    with session(plan, tmp_path / "store") as s:
        assert run_capture(s, 'puts(CALC_VERSION);', tmp_path)[0] == "0.2\n"
    header = plan.parent / "calc/include/calc.h"
    header.write_text(header.read_text().replace('"0.2"', '"0.3"'))
    with session(plan, tmp_path / "store") as s:
        assert run_capture(s, 'puts(CALC_VERSION);', tmp_path)[0] == "0.3\n"
    assert calls(log, "c-header") == 2
    assert calls(log, "runner.c") == 2
    # only the newest scope folder of calc x release is kept
    assert len([p for p in (tmp_path / "store/.recipe/cache/repl/calc/release").iterdir()
                if p.is_dir()]) == 1


def test_a_dependency_header_or_a_flag_change_invalidates_the_scope(logged,
                                                                    tmp_path: Path) -> None:
    plan, log = logged
    with session(plan, tmp_path / "store") as s:
        assert run_capture(s, 'printf("%d\\n", calc_quad(1));', tmp_path)[0] == "4\n"
    project = plan.parent / "calc/project.yaml"
    project.write_text(project.read_text().replace("CALC_BIAS: 1", "CALC_BIAS: 5"))
    with session(plan, tmp_path / "store") as s:
        assert run_capture(s, 'printf("%d\\n", calc_quad(1));', tmp_path)[0] == "8\n"
    assert calls(log, "c-header") == 2
    base = plan.parent / "base/include/base.h"
    base.write_text(base.read_text().replace("#endif", "#define BASE_NEW 1\n#endif"))
    with session(plan, tmp_path / "store") as s:
        assert run_capture(s, 'printf("%d\\n", BASE_NEW);', tmp_path)[0] == "1\n"
    assert calls(log, "c-header") == 3


def test_the_precompiled_header_is_used(tmp_path: Path) -> None:
    """-Winvalid-pch warns when gcc ignores it: a used PCH compiles the runner silently."""
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", "shapes") as s:
        runner = s.compile("std::cout << shapes::area(2, 3) << shapes::name() << '\\n';")
        assert runner.diagnostics == ""
        gch = list((tmp_path / "store/.recipe/cache/repl/shapes/release").glob("*/scope.hpp.gch"))
        assert len(gch) == 1 and gch[0].stat().st_size > 1_000_000
        assert run_capture(s, "std::cout << shapes::area(2, 3) << shapes::name() << '\\n';",
                           tmp_path) == ("6rect\n", "", 0)


def test_the_runner_key_has_no_path_time_or_environment(tmp_path: Path) -> None:
    """Two checkouts at different paths, two stores, another environment: the same keys."""
    keys = []
    for n in (1, 2):
        plan = make_plan(tmp_path / f"checkout{n}")
        os.environ["RECIPE_TEST_NOISE"] = str(n)
        try:
            with session(plan, tmp_path / f"store{n}") as s:
                keys.append((s.scope.pch_key, runner_key(s.scope.spec(), "return 1;")))
                text = str(s.scope.compile_template) + str(s.scope.link_template)
                assert str(tmp_path) not in text
        finally:
            del os.environ["RECIPE_TEST_NOISE"]
    assert keys[0] == keys[1]


def test_an_executables_only_project_links_everything_but_main(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", "shapes") as s:
        assert s.scope.library.endswith("-shapes-repl-3.0.0-release")
        assert run_capture(s, "std::cout << shapes::name() << std::endl; return 5;",
                           tmp_path) == ("rect\n", "", 5)


def test_the_debug_target_and_a_dependency(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", target="debug") as s:
        assert s.scope.library.endswith("-calc-0.2.0-debug")
        assert run_capture(s, 'printf("%d\\n", base_twice(21));', tmp_path)[0] == "42\n"


def test_output_and_exit_and_signals(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store") as s:
        out = run_capture(s, 'printf("out"); fprintf(stderr, "err"); return 7;', tmp_path)
        assert out == ("out", "err", 7)
        ended = s.run(s.compile("abort();"))
        assert (ended.exit, ended.signal, ended.code) == (None, "SIGABRT", 134)
        ended = s.run(s.compile("int *volatile p = 0; return *p;"))
        assert ended.signal == "SIGSEGV" and ended.code == 139


def test_an_interrupt_kills_the_submission_and_what_it_started(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    code = ('int fork(void); int pid = fork(); if (pid == 0) { for (;;) {} } '
            'FILE *f = fopen("started", "w"); fprintf(f, "%d", pid); fclose(f); for (;;) {}')
    with session(plan, tmp_path / "store", works=tmp_path / "w") as s:
        runner = s.compile(code)
        started = tmp_path / "w/started"

        def interrupt() -> None:  # ^C, once the submission runs
            deadline = time.monotonic() + 60
            while not (started.exists() and started.read_text()) and \
                    time.monotonic() < deadline:
                time.sleep(0.02)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

        thread = threading.Thread(target=interrupt)
        thread.start()
        ended = s.run(runner)
        thread.join()
        assert ended.interrupted and ended.signal == "SIGKILL"
        forked = int(started.read_text())
        deadline = time.monotonic() + 10
        while _alive(forked) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(forked)


def test_a_ctrl_c_as_the_submission_starts_stops_it(tmp_path: Path) -> None:
    """^C after the runner started and before recipe waits for it: where a KeyboardInterrupt
    would have left the runner running, or a wait would not have seen the ^C until its end."""
    plan = make_plan(tmp_path / "src")
    started: list[int] = []

    def confine(_writable: object, start):  # type: ignore[no-untyped-def]
        proc = start()
        started.append(proc.pid)
        os.kill(os.getpid(), signal.SIGINT)
        return proc

    with session(plan, tmp_path / "store") as s:
        runner = s.compile("for (;;) {}")
        try:
            ended = child.run(runner.executable, tmp_path / "w", tmp_path / "t",
                              confine=confine)
        except KeyboardInterrupt:
            os.kill(started[0], signal.SIGKILL)
            pytest.fail("the ^C escaped and left the runner running")
    # SIGTERM: the reaper was stopped before it could take signals, so before it started
    # anything (it blocks them before it forks the runner).
    assert ended.interrupted and ended.signal in ("SIGKILL", "SIGTERM")
    assert not _alive(started[0])
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_the_workspace_persists_between_submissions(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    code = ('char p[4096]; snprintf(p, sizeof p, "%s/n", getenv("RECIPE_WORKS")); '
            'FILE *f = fopen(p, "r"); int n = 0; if (f) { fscanf(f, "%d", &n); fclose(f); } '
            'f = fopen(p, "w"); fprintf(f, "%d", n + 1); fclose(f); printf("%d\\n", n + 1);')
    with session(plan, tmp_path / "store") as s:
        assert s.works == plan.parent / ".recipe/works/calc"
        assert [run_capture(s, code, tmp_path)[0] for _ in range(3)] == ["1\n", "2\n", "3\n"]
    assert (plan.parent / ".recipe/works/calc/n").read_text() == "3"


@pytest.mark.parametrize("project, error, words", [
    ("nope", UsageError, "unknown project 'nope'"),
    ("plain", NoScope, "project 'plain' has no REPL scope"),
])
def test_bad_projects(tmp_path: Path, project: str, error: type, words: str) -> None:
    plan = load_plan(make_plan(tmp_path / "src"))
    with pytest.raises(error, match=words) as caught:
        check_project(plan, project, "release")
    assert not isinstance(caught.value, Failure)


def test_a_scope_header_gone_after_loading(tmp_path: Path) -> None:
    plan = load_plan(make_plan(tmp_path / "src"))
    (tmp_path / "src/calc/include/calc.h").unlink()
    with pytest.raises(ScopeMissing, match="'include/calc.h' does not exist"):
        check_project(plan, "calc", "release")


def test_empty_and_broken_submissions(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store") as s:
        with pytest.raises(EmptySubmission):
            s.compile(" \n\t")
        with pytest.raises(CompileError) as caught:
            s.compile("this is not C;")
        assert "error:" in (caught.value.detail or "")
        assert "runner.c" in caught.value.what and "removed" in caught.value.what
        with pytest.raises(CompileError) as caught:
            s.compile("this is not C;", keep=True)
        kept = Path(caught.value.what.split("generated file: ")[1].split(",")[0])
        assert kept.is_file() and "this is not C;" in kept.read_text()
        shutil.rmtree(kept.parent)


def test_without_landlock_a_write_into_the_sources_fails_the_submission(tmp_path: Path) -> None:
    from engine.repl.session import WroteReadOnly
    from engine.verify.writeguard import Guard

    plan = make_plan(tmp_path / "src")
    target = tmp_path / "src/calc/planted"
    with session(plan, tmp_path / "store", guard=Guard) as s:
        assert run_capture(s, 'FILE *f = fopen("fine", "w"); fclose(f);', tmp_path)[2] == 0
        with pytest.raises(WroteReadOnly, match="wrote into read-only .*planted"):
            s.run(s.compile(f'FILE *f = fopen("{target}", "w"); fclose(f);'))


def test_a_c_project_over_a_cxx_library_in_a_plan_with_rust(tmp_path: Path) -> None:
    """The C++ runtime is linked for a C scope over C++ code; a Rust project elsewhere in the
    plan is none of the REPL's business."""
    plan = make_plan(tmp_path / "src", extra=MIXED)
    with session(plan, tmp_path / "store", "cuser") as s:
        assert run_capture(s, 'printf("%d\\n", cuser_double_len("abc"));',
                           tmp_path) == ("6\n", "", 0)


def test_a_lost_scope_folder_comes_back_from_the_cas_and_gc_keeps_the_runners(
        logged, tmp_path: Path) -> None:
    plan, log = logged
    store = tmp_path / "store"
    code = 'printf("%d\\n", calc_quad(2));'
    with session(plan, store) as s:
        assert run_capture(s, code, tmp_path)[0] == "8\n"
    shutil.rmtree(store / ".recipe/cache/repl")
    report = Store.open(store).gc()  # the repl: root keeps the library, which keeps the rest
    assert report.deleted == [] and report.actions == 0
    with session(plan, store) as s:
        assert (s.scope.folder / "scope.h.gch").is_file()
        assert s.compile(code).cached
    assert (calls(log, "c-header"), calls(log, "runner.c")) == (1, 1)
