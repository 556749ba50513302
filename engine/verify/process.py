"""The process-case runner: run one realised executable as a case says, and observe it.

The process gets a fresh scratch folder: it works in ``scratch/work`` (holding copies of the
case's ``files``) with ``TMPDIR`` set to ``scratch/tmp``; its stdin (or an already closed one); a
clean fixed environment; its own session. How it is contained (see ``containment()``):

- Runaway: it is stopped at its timeout, as soon as stdout or stderr passes the cap, or when
  its scratch folder holds more than the case's ``scratch_limit`` on disk. That folder is
  measured (``du``'s way: allocated blocks) every 50 ms or so while it runs and once after:
  no tmpfs or quota is needed, at the price of an overshoot of what it writes in one interval.
  RLIMIT_FSIZE would bound one file only, and cannot be set on the child without code between
  fork and exec.
- Leftovers: it runs under the reaper (``engine/build/reaper.py``), a per-case subreaper that
  kills every descendant when the case ends, even those that left its process group. Without a
  C compiler to build the reaper, the case's process group is killed instead (``setsid``
  escapees survive).
- Writes: with Landlock (``landlock.py``) it can write only below its scratch folder (and to
  /dev/null and the like); anything else, the store and the plan's folder included, fails with
  EACCES. Without Landlock, the store paths and the plan's folder are compared before and after
  the run (``writeguard.py``) and a write there fails the case.
"""

from __future__ import annotations

import dataclasses
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from engine.build import reaper
from engine.documents.models import Case
from engine.repl.child import has_exited, kill_group
from engine.verify import landlock
from engine.verify.cache import ActionCache
from engine.verify.outcome import Observed
from engine.verify.runners import Runner
from engine.verify.streams import Watch
from engine.verify.writeguard import Guard

CAP = 16 * 1024 * 1024  # bytes kept of each of stdout and stderr
CLEAN_ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C",
    "TZ": "UTC",
    "HOME": "/nonexistent",
    "SOURCE_DATE_EPOCH": "0",
}
_DRAIN_GRACE = 2.0  # seconds to read what is left once the group is dead (an escapee may hold it)

_live: dict[int, bool] = {}  # running cases: pid -> whether it is a reaper, for kill_running()
_live_lock = threading.Lock()


class CannotRun(Exception):
    """The executable could not be started (missing, not executable, wrong machine)."""


def case_env(case: Case, tmp: Path | None = None, bin_dir: Path | None = None) -> dict[str, str]:
    """The clean, fixed environment (with ``TMPDIR``, if given) updated with the case's ``env``;
    nothing of ours leaks. ``bin_dir`` (the project's ``bin/``) goes first on ``PATH``, so a
    program or script that runs the project's programs by name finds them."""
    env = dict(CLEAN_ENV)
    if tmp is not None:
        env["TMPDIR"] = str(tmp)
    env = {**env, **case.env}
    if bin_dir is not None:
        env["PATH"] = f"{bin_dir}:{env['PATH']}" if env.get("PATH") else str(bin_dir)
    return env


def case_stdin(case: Case) -> bytes:
    if case.stdin is not None:
        return case.stdin
    if case.stdin_file is not None:
        return (case.folder / case.stdin_file).read_bytes()
    return b""


def new_scratch(store: object, label: str) -> Path:
    """A new empty scratch folder: in the store's temporary folder (``Store.temp_dir``), so
    that what a killed run leaves there is removed by the next run that opens the store; in
    the system's temporary folder where there is no store to hand."""
    make = getattr(store, "temp_dir", None)
    if make is not None:
        return Path(make(label))
    return Path(tempfile.mkdtemp(prefix=f"recipe-{label}-"))


def prepare_scratch(case: Case, scratch: Path) -> None:
    """Copy the case's files into ``scratch``, keeping their layout relative to the case folder
    (a ``{from, to}`` entry: to the place it names)."""
    for rel, place in [(rel, rel) for rel in case.files] + list(case.copies):
        source, dest = case.folder / rel, scratch / place
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)


def containment(cache: ActionCache | None = None) -> str:
    """How cases are contained here, in words (for a verbose report or a bug report)."""
    version = landlock.abi()
    writes = (f"writes confined by Landlock (ABI {version})" if version else
              "writes checked after each case (no Landlock)")
    leftovers = ("leftovers killed by the reaper" if reaper.executable(cache) is not None else
                 "leftovers killed by process group (no C compiler for the reaper)")
    return f"{leftovers}; {writes}"


def run_process(case: Case, executable: Path, scratch: Path, *, cap: int = CAP,
                protect: Sequence[Path] = (), skip: Sequence[Path] = (),
                cache: ActionCache | None = None, runner: Runner | None = None) -> Observed:
    """Run ``executable`` with the case's arguments below ``scratch`` (an existing, empty
    folder). ``protect``: folders the case must not write into, checked after the run where
    Landlock cannot refuse the writes (below them, ``skip`` is not checked). ``cache``: where
    the reaper is kept between runs. ``runner``: what runs a program built for another
    machine (see ``engine.verify.runners``)."""
    work, tmp = scratch / "work", scratch / "tmp"
    work.mkdir()
    tmp.mkdir()
    prepare_scratch(case, work)
    confined = landlock.abi() > 0
    guard = Guard(protect, skip) if protect and not confined else None
    try:
        # The program sees its own name as argv[0] (as when a shell finds it on PATH), never
        # its store path: that would put the store's hash into usage lines and error prefixes.
        # A foreign program's runner gets the path, as it must, and the name where it can say
        # it (qemu's -0; not wine).
        argv, env = [executable.name, *case.args], case_env(case, tmp, executable.parent)
        program: str | None = str(executable)
        timeout, writable = case.timeout, [scratch]
        restrict: list[Path] | None = writable
        if runner is not None:  # the same containment, the command wrapped, more time
            timeout, writable = timeout * runner.factor, [scratch, *runner.writable]
            argv, env = runner.wrap([str(executable), *case.args], writable,
                                    executable.name), {**env, **runner.env}
            program, restrict = None, None if runner.confines else writable
        observed = run_argv(argv, cwd=work, env=env, stdin=case_stdin(case), timeout=timeout,
                            cap=cap, writable=restrict, cache=cache,
                            limit=(scratch, case.scratch_limit), executable=program)
        if runner is not None and runner.clean is not None:
            observed = runner.clean(observed)
    finally:
        wrote = guard.changes() if guard is not None else []
    if wrote:
        assert guard is not None
        observed = dataclasses.replace(observed, wrote=tuple(wrote), wrote_alone=guard.alone)
    return dataclasses.replace(observed, root=str(scratch), **captured(case, work, cap))


def captured(case: Case, work: Path, cap: int) -> dict[str, object]:
    """The files the case's expectation looks at, read before the scratch folder goes."""
    from engine.verify import files_expect

    if not files_expect.wanted(case):
        return {}
    files, tree, over = files_expect.capture(case, work, cap)
    return {"files": files, "tree": tree, **({"capped": "files written"} if over else {})}


def run_argv(argv: list[str], *, cwd: Path, env: dict[str, str], stdin: bytes,
             timeout: float, cap: int = CAP, writable: Sequence[Path] | None = None,
             cache: ActionCache | None = None,
             limit: tuple[Path, int] | None = None, executable: str | None = None) -> Observed:
    """Run ``argv`` in its own session; read stdout and stderr concurrently up to ``cap`` each.
    ``writable``: where Landlock lets it write (None: anywhere). ``limit``: a folder and the
    bytes it may hold on disk; past them the process is stopped. ``executable``: the program
    to run when ``argv[0]`` is only the name it should see (as a shell's ``exec -a``)."""
    program = executable or argv[0]
    child = _start(argv, cwd, env, writable, cache, program)
    proc = child.proc
    with _live_lock:
        _live[proc.pid] = child.reaped
    feeder = _feed(proc.stdin, stdin)
    watch: Watch | None = None
    try:
        watch = Watch(proc, cap, limit)
        watch.until_exit(time.monotonic() + timeout)
        _stop(child, watch.pidfd)  # the case has ended: whatever remains of it goes too
        watch.measure()  # what it wrote since the last look, or all of it in a short case
        watch.drain(time.monotonic() + _DRAIN_GRACE)
    finally:
        _kill(child)
        with _live_lock:  # before the wait reaps the leader and frees its pid for reuse
            _live.pop(proc.pid, None)
        if watch is not None:
            watch.close()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()  # type: ignore[union-attr]
        proc.wait()
        if feeder is not None:
            feeder.join(_DRAIN_GRACE)  # an escaped descendant may still hold stdin open
    assert watch is not None
    try:
        code = child.wait()  # the reaper's last word, read once it has ended
    except OSError as error:
        raise CannotRun(f"cannot run {program}: {error.strerror or error}") from None
    name = None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
    return Observed(stdout=bytes(watch.out["stdout"]), stderr=bytes(watch.out["stderr"]),
                    exit=None if code < 0 else code, signal=name,
                    timed_out=watch.timed_out, capped=watch.capped,
                    scratch_full=watch.scratch_full)


def kill_running() -> None:
    """Stop every case still running (an interrupted run): their sessions do not get our ^C."""
    with _live_lock:
        for pid, is_reaper in _live.items():
            if is_reaper:
                _signal(pid, signal.SIGTERM)  # the reaper kills the case and all it left
            else:
                kill_group(pid)


def _start(argv: list[str], cwd: Path, env: dict[str, str], writable: Sequence[Path] | None,
           cache: ActionCache | None, program: str) -> reaper.Contained:
    """The case's program under the reaper (or alone, where there is none), in a session of
    its own, started in a Landlock-restricted thread when ``writable`` is given."""
    spawn = None
    if writable is not None and landlock.abi() > 0:
        def spawn(start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
            return landlock.spawn(writable, start)
    try:
        return reaper.Contained.start(argv, cache, group=False, spawn=spawn, program=program,
                                      cwd=cwd, env=env, stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      start_new_session=True)
    except landlock.LandlockError as error:
        raise CannotRun(str(error)) from error
    except OSError as error:
        raise CannotRun(f"cannot run {program}: {error.strerror or error}") from error


def _stop(child: reaper.Contained, pidfd: int | None) -> None:
    """End the case and everything it started; wait (a little) until that is done."""
    if not child.reaped:
        kill_group(child.proc.pid)
        return
    _signal(child.proc.pid, signal.SIGTERM)  # a no-op once the reaper has ended by itself
    _await_exit(child.proc.pid, pidfd, time.monotonic() + _DRAIN_GRACE)


def _kill(child: reaper.Contained) -> None:
    """Last resort, before the leader is reaped: the reaper gets its chance to clean up first,
    then the session's group is killed (its status stays in the socket for ``wait``)."""
    if child.reaped:
        _stop(child, None)
    kill_group(child.proc.pid)


def _feed(pipe: IO[bytes] | None, data: bytes) -> threading.Thread | None:
    """Write stdin from a thread (the child may read it only after writing a lot) and close it.

    With no data the pipe is closed at once, so a program reading stdin sees EOF immediately.
    """
    assert pipe is not None
    if not data:
        pipe.close()
        return None

    def write() -> None:
        try:
            pipe.write(data)
        except OSError:  # the child exited or closed its stdin without reading it all
            pass
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    thread = threading.Thread(target=write, name="case-stdin", daemon=True)
    thread.start()
    return thread


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _await_exit(pid: int, pidfd: int | None, deadline: float) -> bool:
    """Wait until ``pid`` has exited (without reaping it) or the deadline passes."""
    while not has_exited(pid):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if pidfd is not None:
            select.select([pidfd], [], [], remaining)
        else:
            time.sleep(min(remaining, 0.002))
    return True
