"""Running a runner: its own process group, our stdout and stderr, a clean environment.

The child writes straight to the descriptors it is given (by default ours), so its output
appears as it produces it, with nothing in between. It runs in its own process group, in the
background of the terminal: a ^C reaches recipe only, which then kills the whole group (the
submission and anything it started) and says so; the same kill removes what is left of the
group when the submission ends. It works in its workspace (``RECIPE_WORKS``) with a private
``TMPDIR``; where the caller passes a confinement (Landlock, see ``engine/verify/landlock.py``)
it can write nowhere else: not into the store, not into the plan's sources.
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
    (``SIGSEGV``), ``interrupted`` when recipe stopped it on ^C."""

    __slots__ = ("exit", "signal", "signum", "interrupted")

    def __init__(self, exit: int | None, signal: str | None = None, signum: int = 0,
                 interrupted: bool = False) -> None:
        self.exit, self.signal, self.signum, self.interrupted = exit, signal, signum, interrupted

    def __repr__(self) -> str:
        return f"Ended(exit={self.exit}, signal={self.signal}, interrupted={self.interrupted})"

    @property
    def code(self) -> int:
        """An exit code as a shell reports it: the submission's, or 128 + the signal."""
        return self.exit if self.exit is not None else 128 + self.signum


def environment(works: Path, tmp: Path) -> dict[str, str]:
    return {**ENV, "TMPDIR": str(tmp), "RECIPE_WORKS": str(works)}


def run(executable: Path, works: Path, tmp: Path, *, stdin: int | IO[bytes] | None = None,
        stdout: int | IO[bytes] | None = None, stderr: int | IO[bytes] | None = None,
        confine: Confine | None = None, argv0: str | None = None) -> Ended:
    """Run ``executable`` in the workspace ``works`` until it ends or ^C; ``stdin`` defaults
    to /dev/null (the terminal belongs to recipe). ``argv0``: the name it sees as
    ``argv[0]`` (the project's), not the runner's temporary path."""
    works.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)

    def start() -> Popen:
        return subprocess.Popen([argv0 or str(executable)], executable=str(executable),
                                cwd=works, env=environment(works, tmp),
                                stdin=subprocess.DEVNULL if stdin is None else stdin,
                                stdout=stdout, stderr=stderr, process_group=0)

    wake = _catch_interrupts()
    try:
        proc = confine([works, tmp], start) if confine is not None else start()
        try:
            interrupted = _await_exit(proc.pid, wake)
        finally:
            kill_group(proc.pid)  # on ^C all of it, else leftovers; the leader is not reaped
            proc.wait()            # yet, so the id is still ours
    finally:
        if wake is not None:
            _release_interrupts(*wake)
    code = proc.returncode
    if code >= 0:
        return Ended(exit=code, interrupted=interrupted)
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return Ended(exit=None, signal=name, signum=-code, interrupted=interrupted)


#: While a runner runs, ^C is noted, never raised: a KeyboardInterrupt can strike between two
#: bytecodes, say between starting the runner and holding it, and leave it running. Nor can the
#: handler itself be waited on: Python runs it between bytecodes, so a ^C that comes just before
#: a blocking wait would be seen at the wait's end. The signal writes its number to a wakeup fd
#: (``signal.set_wakeup_fd``) whenever it comes; the wait is on that fd and the runner's pidfd.
Wake = tuple[int, int, object, int]  # read end, write end, previous handler, previous fd


def _catch_interrupts() -> Wake | None:
    """Note ^C on a wakeup fd until ``_release_interrupts``; None where ^C is not ours to
    take: outside the main thread, ignored, or handled outside Python."""
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, None):
        return None
    wake, woken = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    fd = signal.set_wakeup_fd(woken, warn_on_full_buffer=False)  # first: no ^C goes unnoted
    try:
        return wake, woken, signal.signal(signal.SIGINT, _noted), fd
    except BaseException:  # a ^C just now, before the runner started: raised as ever
        signal.set_wakeup_fd(fd)
        os.close(wake)
        os.close(woken)
        raise


def _noted(_signum: int, _frame: object) -> None:
    """The ^C is in the wakeup fd already."""


def _release_interrupts(wake: int, woken: int, handler: object, fd: int) -> None:
    try:
        signal.signal(signal.SIGINT, handler)  # type: ignore[arg-type]
    finally:  # first the handler: a ^C from here on is raised, not lost
        signal.set_wakeup_fd(fd)
        os.close(wake)
        os.close(woken)


def _await_exit(pid: int, wake: Wake | None) -> bool:
    """Block until ``pid`` has exited, without reaping it, or ^C came; whether ^C came."""
    import select

    if wake is None:
        try:
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        except ChildProcessError:
            pass
        return False
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # a kernel before 5.3: look at the runner 20 times a second
        pidfd = -1
    watched = [wake[0], pidfd] if pidfd >= 0 else [wake[0]]
    try:
        while not has_exited(pid):
            ready = select.select(watched, [], [], None if pidfd >= 0 else 0.05)[0]
            if wake[0] in ready and signal.SIGINT in _drain(wake[0]):  # else another signal
                return True
        return False
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
