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
        confine: Confine | None = None) -> Ended:
    """Run ``executable`` in the workspace ``works`` until it ends or ^C; ``stdin`` defaults
    to /dev/null (the terminal belongs to recipe)."""
    works.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(parents=True, exist_ok=True)

    def start() -> Popen:
        return subprocess.Popen([str(executable)], cwd=works, env=environment(works, tmp),
                                stdin=subprocess.DEVNULL if stdin is None else stdin,
                                stdout=stdout, stderr=stderr, process_group=0)

    proc = confine([works, tmp], start) if confine is not None else start()
    interrupted = False
    try:
        while True:
            try:
                _await_exit(proc.pid)
                break
            except KeyboardInterrupt:
                interrupted = True
                _kill_group(proc.pid)
    finally:
        _kill_group(proc.pid)  # leftovers; the leader is not reaped yet, so the id is ours
        proc.wait()
    code = proc.returncode
    if code >= 0:
        return Ended(exit=code, interrupted=interrupted)
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    return Ended(exit=None, signal=name, signum=-code, interrupted=interrupted)


def _await_exit(pid: int) -> None:
    """Block until ``pid`` has exited, without reaping it."""
    try:
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
