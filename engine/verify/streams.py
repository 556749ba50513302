"""Reading a case's stdout and stderr up to the output cap, with its exit as a third event and
the size of its scratch folder measured as it runs (``engine.verify.process`` runs the case)."""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

from engine.repl.child import has_exited

_POLL = 0.05  # seconds between exit checks where pidfd_open is missing
_SCRATCH_POLL = 0.05  # seconds between measures of the scratch folder (at least)


def disk_usage(folder: Path, most: int) -> int:
    """Bytes allocated below ``folder`` (sparse files count what they hold), counting stops
    once past ``most``; entries that vanish meanwhile count nothing."""
    total = 0
    stack = [str(folder)]
    while stack and total <= most:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                except OSError:
                    continue
                total += info.st_blocks * 512
    return total


class Watch:
    """Reads a child's stdout and stderr through one selector, with the exit as a third event."""

    def __init__(self, proc: subprocess.Popen[bytes], cap: int,
                 limit: tuple[Path, int] | None = None) -> None:
        self.proc, self.cap, self.limit = proc, cap, limit
        self.out = {"stdout": bytearray(), "stderr": bytearray()}
        self.timed_out = self.scratch_full = False
        self.next_measure = time.monotonic() + _SCRATCH_POLL
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
            if self.limit is not None:
                wait = max(0.0, min(wait, self.next_measure - time.monotonic()))
            exited = False
            for key, _ in self.sel.select(wait):
                if key.data == "exit":
                    exited = True
                elif not self._read(key):
                    return  # capped
            if exited or (self.pidfd is None and has_exited(self.proc.pid)):
                return
            if self.limit is not None and time.monotonic() >= self.next_measure:
                started = time.monotonic()
                if not self.measure():
                    return
                # A folder of many files takes long to measure: look less often, so that
                # measuring never takes more than a tenth of the time.
                spent = time.monotonic() - started
                self.next_measure = time.monotonic() + max(_SCRATCH_POLL, 9 * spent)

    def measure(self) -> bool:
        """Whether the scratch folder still holds no more than its limit (else noted)."""
        if self.limit is None or self.scratch_full:
            return not self.scratch_full
        folder, most = self.limit
        self.scratch_full = disk_usage(folder, most) > most
        return not self.scratch_full

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
