"""A submission never outlives its eval or repl: recipe killed by SIGTERM, SIGHUP or SIGKILL, a
daemon the submission left behind (double fork and ``setsid``), ``--timeout``. Each submission
writes its pid (and its daemon's) into the workspace; /proc says whether it still runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.repl_projects import make_plan

TIMEOUT = 240  # seconds for a first eval (realise and compile) on a loaded machine

# Block-scope declarations: the prelude includes stdio.h, stdlib.h and string.h only.
DECLARE = ("int fork(void); int setsid(void); int getpid(void); unsigned sleep(unsigned); "
           "int usleep(unsigned); void _exit(int); char p[4096], q[4096];")
# Writes "pid" atomically (a rename), so that the test never reads half of it.
WRITE_PID = ('snprintf(p, sizeof p, "%s/pid.tmp", getenv("RECIPE_WORKS")); '
             'snprintf(q, sizeof q, "%s/pid", getenv("RECIPE_WORKS")); '
             'FILE *f = fopen(p, "w"); fprintf(f, "%d\\n", getpid()); fclose(f); rename(p, q);')
SPIN = DECLARE + WRITE_PID + " for (;;) {}"
# The submission forks, the child leaves the session and forks the daemon, which writes its
# pid as "pid" and sleeps forever; the submission waits for the pid and returns 0.
DAEMON = DECLARE + (
    'snprintf(q, sizeof q, "%s/pid", getenv("RECIPE_WORKS")); '
    'if (fork() == 0) { setsid(); if (fork() == 0) { '
    + WRITE_PID + ' for (;;) sleep(1); } _exit(0); } '
    'for (int i = 0; i < 3000; i++) { FILE *g = fopen(q, "r"); if (g) { fclose(g); break; } '
    'usleep(10000); } return 0;')


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_plan(tmp_path_factory.mktemp("repl") / "src")


@pytest.fixture
def works(tmp_path: Path) -> Iterator[Path]:
    """The workspace; whatever pid the submission wrote there is SIGKILLed at the end, so a
    failing test leaves no spinning process behind."""
    folder = tmp_path / "works"
    yield folder
    pid = _read_pid(folder)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _eval(plan: Path, works: Path, code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "eval", str(plan), "-p",
                             "calc", "--works", str(works), "-e", code, *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _read_pid(works: Path) -> int | None:
    try:
        return int((works / "pid").read_text())
    except (OSError, ValueError):
        return None


def _await_pid(works: Path, proc: subprocess.Popen[str] | None = None) -> int:
    deadline = time.monotonic() + TIMEOUT
    while (pid := _read_pid(works)) is None:
        assert proc is None or proc.poll() is None, proc.communicate() if proc else ""
        assert time.monotonic() < deadline, "the submission never wrote its pid"
        time.sleep(0.05)
    return pid


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL],
                         ids=["TERM", "HUP", "KILL"])
def test_a_killed_eval_leaves_no_process_of_the_submission(plan: Path, works: Path,
                                                           sig: signal.Signals) -> None:
    proc = _eval(plan, works, SPIN)
    pid = _await_pid(works, proc)
    os.kill(proc.pid, sig)  # recipe alone, not its process group
    _out, err = proc.communicate(timeout=30)  # a runner left holding the pipes: no EOF
    assert _gone(pid), f"the submission (pid {pid}) outlived recipe killed by {sig.name}"
    assert "Traceback" not in err
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # stopped, then exits as a shell says it
        assert proc.returncode == 128 + sig, err
        assert err.strip().splitlines()[-1] == f"recipe: stopped by {sig.name}"


def test_a_daemon_the_submission_left_dies_when_eval_returns(plan: Path, works: Path) -> None:
    proc = _eval(plan, works, DAEMON)
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err
    pid = _read_pid(works)
    assert pid is not None, err
    assert _gone(pid), f"the daemon (pid {pid}) outlived its eval"


def test_eval_timeout_kills_the_submission_and_exits_124(plan: Path, works: Path) -> None:
    _eval(plan, works, "return 0;").communicate(timeout=TIMEOUT)  # realised and prepared
    started = time.monotonic()
    proc = _eval(plan, works, SPIN, "--timeout", "1")
    _out, err = proc.communicate(timeout=TIMEOUT)
    took = time.monotonic() - started
    assert proc.returncode == 124, err
    assert err.strip().splitlines()[-1] == ("recipe: timed out after 1 s; the submission and "
                                            "all it started were killed")
    pid = _read_pid(works)
    assert pid is not None and not _alive(pid)
    assert took < 30, f"eval --timeout 1 took {took:.1f} s"  # a compile, then 1 s


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "1e9"])
def test_a_timeout_that_is_no_duration_is_refused_in_one_line(plan: Path, works: Path,
                                                              timeout: str) -> None:
    proc = _eval(plan, works, "return 0;", "--timeout", timeout)
    _out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 2
    assert err.splitlines() == [f"recipe: --timeout {float(timeout):g} is not a duration; pass "
                                "seconds above 0, at most 86400 (a day)"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["KILL", "TERM"])
def test_a_killed_repl_leaves_no_process_of_the_submission(plan: Path, works: Path,
                                                           sig: signal.Signals) -> None:
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "repl", str(plan), "-p",
                                           "calc", "--works", str(works)],
                          cwd=str(plan.parent), env={**os.environ, "TERM": "dumb"},
                          encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))
    try:
        child.expect_exact("recipe> ")
        child.sendline(SPIN)
        pid = _await_pid(works)
        os.kill(child.pid, sig)
        child.expect(pexpect.EOF, timeout=30)  # a runner left holding the terminal: no EOF
        child.close()
        assert _gone(pid), f"the submission (pid {pid}) outlived repl killed by {sig.name}"
        if sig == signal.SIGTERM:
            assert child.exitstatus == 128 + sig
    finally:
        if child.isalive():
            child.kill(signal.SIGKILL)
