"""The process-case runner: run one realised executable as a case says, and observe it.

The process gets a fresh scratch folder as its working folder (holding copies of the case's
``files``), its stdin (or an already closed one), a clean fixed environment, and its own process
group. When it ends, times out, or floods its output past the cap, the whole group is killed:
no orphan outlives its case.
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

from engine.documents.models import Case
from engine.verify.outcome import Observed

CAP = 16 * 1024 * 1024  # bytes kept of each of stdout and stderr
CLEAN_ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C",
    "TZ": "UTC",
    "HOME": "/nonexistent",
    "SOURCE_DATE_EPOCH": "0",
}
_DRAIN_GRACE = 2.0  # seconds to read what is left once the group is dead (an escapee may hold it)
_POLL = 0.05  # seconds between exit checks where pidfd_open is missing

_live: set[int] = set()  # process groups of running cases, for kill_running()
_live_lock = threading.Lock()


class CannotRun(Exception):
    """The executable could not be started (missing, not executable, wrong machine)."""


def case_env(case: Case) -> dict[str, str]:
    """The clean, fixed environment updated with the case's ``env``; nothing of ours leaks."""
    return {**CLEAN_ENV, **case.env}


def case_stdin(case: Case) -> bytes:
    if case.stdin is not None:
        return case.stdin
    if case.stdin_file is not None:
        return (case.folder / case.stdin_file).read_bytes()
    return b""


def prepare_scratch(case: Case, scratch: Path) -> None:
    """Copy the case's files into ``scratch``, keeping their layout relative to the case folder."""
    for rel in case.files:
        source, dest = case.folder / rel, scratch / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest)


def run_process(case: Case, executable: Path, scratch: Path, *, cap: int = CAP) -> Observed:
    """Run ``executable`` with the case's arguments in ``scratch`` (an existing, empty folder)."""
    prepare_scratch(case, scratch)
    return run_argv([str(executable), *case.args], cwd=scratch, env=case_env(case),
                    stdin=case_stdin(case), timeout=case.timeout, cap=cap)


def run_argv(argv: list[str], *, cwd: Path, env: dict[str, str], stdin: bytes,
             timeout: float, cap: int = CAP) -> Observed:
    """Run ``argv`` in its own session; read stdout and stderr concurrently up to ``cap`` each."""
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as error:
        raise CannotRun(f"cannot run {argv[0]}: {error.strerror or error}") from error
    with _live_lock:
        _live.add(proc.pid)
    feeder = _feed(proc.stdin, stdin)
    watch: _Watch | None = None
    try:
        watch = _Watch(proc, cap)
        watch.until_exit(time.monotonic() + timeout)
        _kill_group(proc.pid)  # the case has ended: whatever remains of its group goes too
        watch.drain(time.monotonic() + _DRAIN_GRACE)
    finally:
        _kill_group(proc.pid)
        with _live_lock:  # before the wait reaps the leader and frees its pid for reuse
            _live.discard(proc.pid)
        if watch is not None:
            watch.close()
        for pipe in (proc.stdout, proc.stderr):
            pipe.close()  # type: ignore[union-attr]
        proc.wait()
        if feeder is not None:
            feeder.join(_DRAIN_GRACE)  # an escaped descendant may still hold stdin open
    assert watch is not None
    code = proc.returncode
    name = None
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
    return Observed(stdout=bytes(watch.out["stdout"]), stderr=bytes(watch.out["stderr"]),
                    exit=None if code < 0 else code, signal=name,
                    timed_out=watch.timed_out, capped=watch.capped)


def kill_running() -> None:
    """Kill every case still running (an interrupted run): their sessions do not get our ^C."""
    with _live_lock:
        for pgid in _live:
            _kill_group(pgid)


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


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it: while it is a zombie its pid, and so
    its process group id, cannot be reused, which makes the following killpg safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


class _Watch:
    """Reads a child's stdout and stderr through one selector, with the exit as a third event."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int) -> None:
        self.proc, self.cap = proc, cap
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.timed_out = False
        self.capped: str | None = None
        self.sel = selectors.DefaultSelector()
        self.open = 0
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            self.sel.register(pipe.fileno(), selectors.EVENT_READ, name)
            self.open += 1
        self.pidfd: int | None = None
        try:  # a pidfd turns "the child exited" into an event: no polling
            self.pidfd = os.pidfd_open(proc.pid)
            self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")
        except (AttributeError, OSError):
            self.pidfd = None

    def until_exit(self, deadline: float) -> None:
        """Read until the child exits, the deadline passes, or a stream passes the cap."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                return
            wait = remaining if self.pidfd is not None else min(remaining, _POLL)
            exited = False
            for key, _ in self.sel.select(wait):
                if key.data == "exit":
                    exited = True
                elif not self._read(key):
                    return  # capped
            if exited or (self.pidfd is None and _has_exited(self.proc.pid)):
                return

    def drain(self, deadline: float) -> None:
        """Read what is left after the group was killed, until EOF on both streams."""
        if self.pidfd is not None:
            self.sel.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None
        while self.open and self.capped is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            for key, _ in self.sel.select(remaining):
                if not self._read(key):
                    break

    def close(self) -> None:
        self.sel.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def _read(self, key: selectors.SelectorKey) -> bool:
        """Read one chunk; False once a stream passed the cap."""
        data = os.read(key.fd, 1 << 16)
        if not data:
            self.sel.unregister(key.fd)
            self.open -= 1
            return True
        buf = self.out[key.data]
        buf += data
        if len(buf) > self.cap:
            del buf[self.cap:]
            self.capped = key.data
            return False
        return True
