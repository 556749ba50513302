"""Running a runner: its own process group, our stdout and stderr, a clean environment.

The child writes straight to the descriptors it is given (by default ours), so its output
appears as it produces it, with nothing in between. It runs under the reaper (a subreaper, see
``engine/build/reaper.py``) in its own process group, in the background of the terminal: a ^C
reaches recipe only, which then has the reaper kill the submission and everything it started,
also what left its group (``setsid``, a double fork), and says so; the same happens to what is
left when the submission ends, on a timeout, and when recipe ends however it ends (SIGKILL
too: the reaper sees its control socket close). It works in its workspace (``RECIPE_WORKS``)
with a private ``TMPDIR``; where the caller passes a confinement (Landlock, see
``engine/verify/landlock.py``) it can write nowhere else: not into the store, not into the
plan's sources.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

TYPE_CHECKING = False  # typing and dataclasses would cost a repeated ``recipe eval`` 15 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import IO

    Popen = subprocess.Popen[bytes]
    #: ``confine(writable, start)``: call ``start`` so that the process it starts may write
    #: only below ``writable`` (``engine.verify.landlock.spawn`` has this shape).
    Confine = Callable[[Sequence[Path], Callable[[], Popen]], Popen]

    from engine.build.reaper import ActionCache

# The clean, fixed environment of process cases (engine/verify/process.py), plus the REPL's own.
ENV = {
    "PATH": "/usr/bin:/bin",
    "LC_ALL": "C",
    "TZ": "UTC",
    "HOME": "/nonexistent",
    "SOURCE_DATE_EPOCH": "0",
}

class Ended:
    """How a submission ended: ``exit`` is None when a signal ended it, ``signal`` its name
    (``SIGSEGV``), ``interrupted`` when recipe stopped it on ^C, ``timed_out`` when it ran
    past its timeout (and was killed)."""

    __slots__ = ("exit", "signal", "signum", "interrupted", "timed_out")

    def __init__(self, exit: int | None, signal: str | None = None, signum: int = 0,
                 interrupted: bool = False, timed_out: bool = False) -> None:
        self.exit, self.signal, self.signum, self.interrupted = exit, signal, signum, interrupted
        self.timed_out = timed_out

    def __repr__(self) -> str:
        return (f"Ended(exit={self.exit}, signal={self.signal}, interrupted={self.interrupted}, "
                f"timed_out={self.timed_out})")

    @property
    def code(self) -> int:
        """An exit code as a shell reports it: the submission's, or 128 + the signal."""
        return self.exit if self.exit is not None else 128 + self.signum


def environment(works: Path, tmp: Path) -> dict[str, str]:
    return {**ENV, "TMPDIR": str(tmp), "RECIPE_WORKS": str(works)}


def run(executable: Path, works: Path, tmp: Path, *, stdin: int | IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = None, stderr: int | IO[bytes] | None = None,
        confine: Confine | None = None, cache: ActionCache | None = None,
        timeout: float | None = None, argv0: str | None = None) -> Ended:
    """Run ``executable`` in the workspace ``works`` until it ends, ^C, or ``timeout`` seconds;
    ``stdin`` defaults to /dev/null (the terminal belongs to recipe). It runs under the reaper
    (``engine/build/reaper.py``, kept in ``cache``): whatever it started dies with it, and all
    of it dies with recipe, even a SIGKILLed one. SIGTERM or SIGHUP to recipe meanwhile stops
    it all and raises ``Terminated``. ``argv0``: the name it sees as ``argv[0]`` (the
    project's), not the runner's temporary path."""
    import time

    from engine.build.reaper import Contained

    works.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)
    spawn = None
    if confine is not None:
        def spawn(start: Callable[[], Popen]) -> Popen:
            return confine([works, tmp], start)

    deadline = None if timeout is None else time.monotonic() + timeout
    wake = _catch_signals()
    why: int | str | None = None
    try:
        started = Contained.start([argv0 or str(executable)], cache, spawn=spawn,
                                  program=str(executable), cwd=works,
                                  env=environment(works, tmp),
                                  stdin=subprocess.DEVNULL if stdin is None else stdin,
                                  stdout=stdout, stderr=stderr)
        try:
            why = _await_exit(started.proc.pid, wake, deadline)
        finally:
            started.stop()  # on ^C all of it, else leftovers; the reaper (or the leader) is
            code = started.wait()  # not reaped yet, so its id is still ours
        if why is None and wake is not None:  # a signal that came while it all ended
            why = next((n for n in _drain(wake[0]) if n in (signal.SIGTERM, signal.SIGHUP)),
                       None)
    finally:
        if wake is not None:
            _release_interrupts(*wake)
    if isinstance(why, int) and why != signal.SIGINT:
        from engine.errors import Terminated

        raise Terminated(why)
    interrupted, timed_out = why == signal.SIGINT, why == "timeout"
    if code >= 0:
        return Ended(exit=code, interrupted=interrupted, timed_out=timed_out)
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return Ended(exit=None, signal=name, signum=-code, interrupted=interrupted,
                 timed_out=timed_out)


#: While a runner runs, ^C is noted, never raised: a KeyboardInterrupt can strike between two
#: bytecodes, say between starting the runner and holding it, and leave it running. Nor can the
#: handler itself be waited on: Python runs it between bytecodes, so a ^C that comes just before
#: a blocking wait would be seen at the wait's end. The signal writes its number to a wakeup fd
#: (``signal.set_wakeup_fd``) whenever it comes; the wait is on that fd and the runner's pidfd.
#: SIGTERM and SIGHUP are taken the same way (unless ignored, as under ``nohup``): the runner
#: is stopped before recipe ends.
Wake = tuple[int, int, dict, int]  # read end, write end, previous handlers, previous fd
_TAKEN = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _catch_signals() -> Wake | None:
    """Note ^C, SIGTERM and SIGHUP on a wakeup fd until ``_release_interrupts``; None where
    they are not ours to take: outside the main thread, ignored, or handled outside Python."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None
    taken = [n for n in _TAKEN if signal.getsignal(n) not in (signal.SIG_IGN, None)]
    if not taken:
        return None
    wake, woken = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    fd = signal.set_wakeup_fd(woken, warn_on_full_buffer=False)  # first: no ^C goes unnoted
    previous: dict = {}
    try:
        for number in taken:
            previous[number] = signal.signal(number, _noted)
        return wake, woken, previous, fd
    except BaseException:  # a signal just now, before the runner started: raised as ever
        _release_interrupts(wake, woken, previous, fd)
        raise


def _noted(_signum: int, _frame: object) -> None:
    """The signal is in the wakeup fd already."""


def _release_interrupts(wake: int, woken: int, handlers: dict, fd: int) -> None:
    try:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    finally:  # first the handlers: a ^C from here on is raised, not lost
        signal.set_wakeup_fd(fd)
        os.close(wake)
        os.close(woken)


def _await_exit(pid: int, wake: Wake | None, deadline: float | None) -> int | str | None:
    """Block until ``pid`` has exited, without reaping it; None then, else what came first:
    a signal of ``_TAKEN`` (its number) or the deadline (``"timeout"``)."""
    import select
    import time

    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # a kernel before 5.3: look at the runner 20 times a second
        pidfd = -1
    watched = [fd for fd in (wake[0] if wake is not None else -1, pidfd) if fd >= 0]
    try:
        while not has_exited(pid):
            wait = None if pidfd >= 0 else 0.05
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timeout"
                wait = left if wait is None else min(wait, left)
            ready = select.select(watched, [], [], wait)[0]
            if wake is not None and wake[0] in ready:
                for number in _drain(wake[0]):  # other signals only woke us
                    if number in _TAKEN:
                        return number
        return None
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _drain(fd: int) -> bytes:
    data = b""
    try:
        while chunk := os.read(fd, 64):
            data += chunk
    except BlockingIOError:
        pass
    return data


def has_exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it: while it is a zombie its pid, and so
    its process group id, cannot be reused, which makes a following killpg safe."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def kill_group(pgid: int) -> None:
    """SIGKILL to the process group ``pgid``, if any of it is left."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
