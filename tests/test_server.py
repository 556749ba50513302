"""recipe server: evals run by a warm process, with the caller's streams, folder, environment
and exit codes, ^C included; and the same results as in-process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import recipe_server, run_recipe
from tests.repl_projects import make_plan

# Who ran the submission, recipe in-process or the server's child: the parent of the reaper,
# the submission's parent.
PPID = ('int getppid(void); char p[64]; int pid, ppid; char st; '
        'snprintf(p, sizeof p, "/proc/%d/stat", getppid()); FILE *f = fopen(p, "r"); '
        'fscanf(f, "%d (%*[^)]) %c %d", &pid, &st, &ppid); printf("%d\\n", ppid);')


@pytest.fixture
def server() -> Iterator[int]:
    """A running server (stopped, and its process gone, afterwards)."""
    with recipe_server() as pid:
        yield pid


def served_env(**extra: str) -> dict[str, str]:
    """The environment, with serving on (conftest turns it off for every other test)."""
    return {**{k: v for k, v in os.environ.items() if k != "RECIPE_SERVER"}, **extra}


def evaluate(plan: Path, code: str, *args: str, cwd: Path | None = None,
             env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "engine.cli.main", "eval", str(plan), "-p", "calc", "-e",
            code, *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=cwd, env=env or served_env(), **popen)  # type: ignore[call-overload]


def outcome(proc: subprocess.Popen[str]) -> tuple[str, str, int]:
    out, err = proc.communicate(timeout=300)
    return out, err, proc.returncode


def test_an_eval_in_the_server_is_the_eval_in_process(tmp_path: Path, server: int) -> None:
    plan = make_plan(tmp_path / "src")
    proc = evaluate(plan, PPID)
    assert int(outcome(proc)[0]) != proc.pid  # served
    cases = ['printf("%d\\n", calc_quad(2)); fprintf(stderr, "e\\n"); return 7;',
             'printf("before\\n"); fflush(stdout); abort();', "int x = ;", "  "]
    served = [outcome(evaluate(plan, code)) for code in cases]
    run_recipe("server", "stop")
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"
    local = [outcome(evaluate(plan, code)) for code in cases]
    tidy = [(o, e.replace(e.split("generated file: ")[-1].split(",")[0], "F"), c)
            for o, e, c in served + local]
    assert tidy[:4] == tidy[4:]
    assert served[0] == ("8\n", "e\n", 7)
    assert served[1][1:] == ("recipe: the submission was killed by SIGABRT\n", 134)
    assert served[2][2] == 1 and "expected expression" in served[2][1]
    assert served[3] == ("", "recipe: the submission is empty; pass some C or C++ code "
                             "with -e\n", 2)


def test_the_runner_is_the_server_s_and_sees_the_caller_s_world(tmp_path: Path,
                                                               server: int) -> None:
    plan = make_plan(tmp_path / "src")
    proc = evaluate(plan, PPID)
    out, err, code = outcome(proc)
    assert code == 0, err
    assert int(out) != proc.pid  # run by a child of the server, not by this recipe
    # A relative plan from the caller's folder; the caller's environment (its store).
    env = served_env(RECIPE_STORE=str(tmp_path / "other-store"))
    out, err, code = outcome(evaluate(Path("src/plan.yaml"), 'printf("%d\\n", calc_quad(1));',
                                      cwd=tmp_path, env=env))
    assert (out, code) == ("4\n", 0), err
    assert (tmp_path / "other-store/.recipe/db.sqlite").is_file()
    # The caller's stdin.
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "eval", str(plan), "-p",
                             "calc", "-e", 'int c = getchar(); printf("%c\\n", c);'],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=served_env())
    assert proc.communicate("z", timeout=300)[0] == "z\n"


@pytest.mark.parametrize(("signum", "status", "last"), [
    (signal.SIGINT, 130, "recipe: interrupted\n"),
    (signal.SIGTERM, 143, "recipe: stopped by SIGTERM\n")], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_stops_the_submission_in_the_server(tmp_path: Path, server: int, signum: int,
                                                   status: int, last: str) -> None:
    plan = make_plan(tmp_path / "src")
    works = tmp_path / "works"
    code = ('int getpid(void); FILE *f = fopen("pid", "w"); fprintf(f, "%d", getpid()); '
            'fclose(f); '
            'printf("looping\\n"); fflush(stdout); for (;;) {}')
    proc = evaluate(plan, code, "--works", str(works))
    assert proc.stdout is not None and proc.stdout.readline() == "looping\n"
    runner = int((works / "pid").read_text())
    assert int(Path(f"/proc/{runner}/stat").read_text().split()[3]) != proc.pid  # served
    proc.send_signal(signum)
    out, err, code_ = outcome(proc)
    assert code_ == status and err.endswith(last), err
    deadline = time.monotonic() + 10
    while Path(f"/proc/{runner}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{runner}").exists()
    assert run_recipe("server", "status").stdout.startswith("recipe server: running")


def test_start_stop_status_and_idle(tmp_path: Path) -> None:
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"
    assert run_recipe("server", "stop").stdout == "recipe server: not running\n"
    started = run_recipe("server", "start", "--idle", "1")
    assert started.returncode == 0 and "running (pid" in started.stdout
    again = run_recipe("server", "start")
    assert again.stdout.startswith("recipe server: already running")
    time.sleep(2.5)
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"
    for idle in ("0", "nan", "inf", "1e300"):
        bad = run_recipe("server", "start", "--idle", idle)
        assert (bad.returncode, bad.stderr) == (2, f"recipe: --idle {float(idle):g} is not a "
                                                   "duration; pass seconds above 0, at most "
                                                   "31536000 (a year)\n")
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"


def test_a_changed_module_sends_evals_back_in_process(tmp_path: Path, server: int) -> None:
    plan = make_plan(tmp_path / "src")
    module = Path(__file__).parents[1] / "engine/errors.py"
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    try:
        proc = evaluate(plan, PPID)
        out, err, code = outcome(proc)
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert code == 0 and int(out) == proc.pid  # in-process: this recipe ran the submission
    deadline = time.monotonic() + 10
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"


def test_a_server_that_does_not_take_the_command_leaves_it_to_the_caller(
        tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket under the server's name that never answers: after the wait, the command
    runs in-process, once."""
    import socket

    from engine import server as served
    from engine.cli.main import main

    plan = make_plan(tmp_path / "src")
    monkeypatch.setattr(served, "_ANSWER", 0.5)
    monkeypatch.setattr(sys, "stdin", None)  # pytest's has no descriptor
    monkeypatch.delenv("RECIPE_SERVER")
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(served.address())
    mute.listen(1)
    try:
        assert served.running() == os.getpid()
        start = time.monotonic()
        code = main(["eval", str(plan), "-p", "calc", "-e", 'printf("once\\n");'])
        assert code == 0 and time.monotonic() - start >= 0.5
    finally:
        mute.close()
    assert capfd.readouterr().out == "once\n"


def test_a_caller_that_gave_up_waiting_runs_the_command_once(
        tmp_path: Path, server: int, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine import server as served
    from engine.cli.main import main

    plan = make_plan(tmp_path / "src")
    works = tmp_path / "works"
    code = 'FILE *f = fopen("runs", "a"); fputs("run\\n", f); fclose(f);'
    monkeypatch.setattr(sys, "stdin", None)
    monkeypatch.delenv("RECIPE_SERVER")
    monkeypatch.setattr(served, "_ANSWER", 0.0)  # give up at once: the server is too slow
    for n in range(1, 4):
        assert main(["eval", str(plan), "-p", "calc", "--works", str(works), "-e", code]) == 0
        time.sleep(0.3)  # a server's child that ran it anyway would have written by now
        assert (works / "runs").read_text() == "run\n" * n


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _cpu_limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_CPU, (600, 600))


@pytest.mark.parametrize("differs", [_ignore_sigint, _cpu_limit], ids=["nohup", "ulimit"])
def test_a_caller_with_other_limits_or_signals_runs_in_process(
        tmp_path: Path, server: int, differs: object) -> None:
    """The submission inherits what its recipe has: the server's would not be the caller's."""
    plan = make_plan(tmp_path / "src")
    proc = evaluate(plan, PPID, preexec_fn=differs)
    out, err, code = outcome(proc)
    assert code == 0 and int(out) == proc.pid, err
    assert int(outcome(served := evaluate(plan, PPID))[0]) != served.pid


def test_a_closed_standard_stream_runs_in_process(tmp_path: Path, server: int) -> None:
    plan = make_plan(tmp_path / "src")
    shell = ["bash", "-c", 'exec "$@" <&-', "-", sys.executable, "-m", "engine.cli.main",
             "eval", str(plan), "-p", "calc", "-e", PPID]
    proc = subprocess.Popen(shell, stdout=subprocess.PIPE, text=True, env=served_env())
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0 and int(out) == proc.pid


def test_what_the_server_imports_opens_nothing_a_fork_would_share() -> None:
    # engine.cli.server.WARM, the remote cache's client and protobuf included: importing it
    # starts no thread and opens no socket, so that no child of the server shares one
    code = ("import os, threading\n"
            "from engine.cli.server import _warm\n"
            "_warm()\n"
            "import sys\n"
            "assert 'engine.remote.http' in sys.modules and 'http.client' in sys.modules\n"
            "print(threading.active_count(), sum(os.readlink(f'/proc/self/fd/{fd}')"
            ".startswith('socket:') for fd in os.listdir('/proc/self/fd')"
            " if os.path.islink(f'/proc/self/fd/{fd}')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]


def test_callers_at_once_are_each_served_at_once(tmp_path: Path, server: int) -> None:
    """engine/serving.py forks the next spare a little after a command is taken, or as soon as
    another caller connects: a second caller while the first command runs is served by another
    child of the server and ends before the first (a guard against holding it until the first
    ends; how soon, the bench measures)."""
    plan = make_plan(tmp_path / "src")
    outcome(evaluate(plan, PPID))  # the scope built and prepared: only the submissions left
    slow = evaluate(plan, '#include <unistd.h>\nsleep(3); puts("slow");')
    time.sleep(0.5)  # the slow one taken
    started = time.monotonic()
    quick = evaluate(plan, PPID)
    out, err, code = outcome(quick)
    took = time.monotonic() - started
    assert code == 0 and int(out) != quick.pid, err  # served, by another of the server's children
    assert slow.poll() is None, "the second caller waited for the first command"
    assert took < 2.0
    assert outcome(slow) == ("slow\n", "", 0)


def _dirty_kb(pid: int) -> tuple[int, int]:
    """Written pages of ``pid``: its own (copied), and those still shared with another."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        found = {line.split(":")[0]: int(line.split()[1]) for line in f if "_Dirty:" in line}
    return found["Private_Dirty"], found["Shared_Dirty"]


def test_the_spare_copies_the_server_s_pages_while_it_waits(tmp_path: Path, server: int) -> None:
    """engine/serving_pages.py: the waiting spare makes the server's writable pages its own,
    so that its command does not take those copy-on-write faults; a command still runs."""
    exe = os.readlink(f"/proc/{server}/exe")

    def spare() -> int:
        """The server's child that is a fork of it (not a compile of the client, say)."""
        for _ in range(600):
            children = Path(f"/proc/{server}/task/{server}/children").read_text().split()
            forks = []
            for child in children:
                try:
                    if os.readlink(f"/proc/{child}/exe") == exe:
                        forks.append(int(child))
                except OSError:
                    continue
            if len(forks) == 1:
                return forks[0]
            time.sleep(0.1)
        raise AssertionError(f"no single spare among {children}")

    def copied() -> bool:
        own, shared = _dirty_kb(spare())
        return own > 4 * shared  # without the copies: ~1.5 MB its own, ~25 MB shared

    deadline = time.monotonic() + 60
    while not copied() and time.monotonic() < deadline:
        time.sleep(0.1)  # an idle-class thread: it runs when a core is free
    assert copied(), _dirty_kb(spare())
    proc = evaluate(make_plan(tmp_path / "src"), PPID)
    out, err, code = outcome(proc)
    assert code == 0 and int(out) != proc.pid, err  # served: the server's child ran it


def _served_so_far() -> tuple[int, float]:
    status = json.loads(run_recipe("server", "status", "--json").stdout)
    return status["commands"], status["cpu_seconds"]


def test_the_status_says_what_the_served_commands_cost(tmp_path: Path, server: int) -> None:
    """engine/serving_ledger.py: the kernel reaps the server's children, so only the server's
    ledger knows what a served command cost, the programs it ran included: a submission that
    burns 0.4 s of CPU shows there, and nothing of the status requests does."""
    plan = make_plan(tmp_path / "src")
    assert _served_so_far() == (0, 0.0)
    burn = "while (clock() < 0.4 * CLOCKS_PER_SEC) {} puts(\"burnt\");"
    out, err, code = outcome(evaluate(plan, f"#include <time.h>\n{burn}"))
    assert (out, code) == ("burnt\n", 0), err
    deadline = time.monotonic() + 60  # the child writes its caches after it answered
    while (served := _served_so_far())[0] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert served[0] == 1 and served[1] >= 0.4, served
    assert "1 commands served" in run_recipe("server", "status").stdout
    assert _served_so_far() == served
