"""Timing a child process, and running one for its output."""

from __future__ import annotations

import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class BenchError(Exception):
    """A step failed, or a scenario did not do what it says (wrong units rebuilt, ...)."""


@dataclass(frozen=True)
class Sample:
    seconds: float  # wall clock, time.perf_counter around the child
    cpu: float  # user + system time of the child and everything it waited for


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Sample:
    """Run ``argv`` with stdout and stderr discarded; its wall and CPU time. A failure is run
    again with its output captured, for the error message."""
    cpu = _children_cpu()
    start = time.perf_counter()
    code = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    sample = Sample(time.perf_counter() - start, _children_cpu() - cpu)
    if code != 0:
        output(argv, cwd, env)  # raises with the words of the failure, if it fails again
        raise BenchError(f"{' '.join(argv)} (in {cwd}) exited {code}")
    return sample


def output(argv: Sequence[str], cwd: Path, env: Mapping[str, str], ok: Sequence[int] = (0,),
           stream: str = "stdout") -> str:
    """Run ``argv`` (not timed) and return its ``stream`` (stdout or stderr); an exit code
    not in ``ok`` is an error that quotes stderr."""
    done = subprocess.run(list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)
    if done.returncode not in ok:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise BenchError(f"{' '.join(argv)} (in {cwd}) exited {done.returncode}:\n{tail}")
    return done.stdout if stream == "stdout" else done.stderr


def progress(line: str) -> None:
    """A line of the bench's progress, on stderr (stdout is the table)."""
    print(line, file=sys.stderr, flush=True)


def in_work_folder(prefix: str, keep: bool, measure: Callable[[Path], T]) -> T | None:
    """``measure(work)`` in a new temporary folder, removed afterwards unless ``keep``; None
    when the bench stopped (a ``BenchError``, said on stderr)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return measure(work)
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return None
    finally:
        if keep:
            progress(f"kept {work}")
        else:
            remove_tree(work)


def remove_tree(path: Path) -> None:
    """Remove ``path`` entirely, read-only store folders included."""

    def writable(func, name, _exc):  # type: ignore[no-untyped-def]
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, stat.S_IRWXU)
        func(name)

    if path.exists():
        shutil.rmtree(path, onerror=writable)


class ServerCpu:
    """CPU seconds of a running recipe server and of every process it forks meanwhile (the
    spare child that takes a command, the command, what it starts), counted by ``perf stat``
    (task-clock, which forks inherit) while the block runs; ``seconds`` is None without perf, or
    when perf may not count them (``perf_event_paranoid``).

    A served command's CPU reaches no rusage the bench can read: the server lets the kernel
    reap its children (SIGCHLD ignored), so their times are added to no parent's. The server's
    children already forked (its spare, waiting for the next command) are attached too."""

    _WAIT = 10.0  # seconds for perf to answer on its control fifo

    def __init__(self, server_pid: int, work: Path) -> None:
        self.server = server_pid
        self.work = work
        self.seconds: float | None = None
        self._perf: subprocess.Popen[bytes] | None = None
        self._fds: tuple[int, int] | None = None

    def __enter__(self) -> ServerCpu:
        perf = shutil.which("perf")
        if perf is None:
            return self
        self.work.mkdir(parents=True, exist_ok=True)
        ctl, ack = self.work / "perf-ctl", self.work / "perf-ack"
        for fifo in (ctl, ack):
            if not fifo.exists():
                os.mkfifo(fifo)
        # A child of the server listed a moment ago may be gone (a spare that took a
        # connection), and perf refuses a pid that is: list them again and retry.
        for _attempt in range(3):
            # Both ends held here (O_RDWR does not wait for perf to open them): a perf that
            # fails before it opens them never blocks the bench.
            self._fds = (os.open(ctl, os.O_RDWR), os.open(ack, os.O_RDWR))
            # Counting starts disabled (-D -1) and is switched on over the control fifo, whose
            # "ack" says perf has attached: nothing of the command is missed.
            pids = [self.server, *_children(self.server)]
            self._perf = subprocess.Popen(
                [perf, "stat", "-e", "task-clock", "-x,", "-o", str(self.work / "perf.out"),
                 "-D", "-1", f"--control=fifo:{ctl},{ack}", "-p", ",".join(map(str, pids))],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._say("enable"):
                return self
            self._end()
        return self

    def _say(self, word: str) -> bool:
        """Send ``word`` to perf; whether it acknowledged it ("ack\n\0")."""
        assert self._fds is not None and self._perf is not None
        os.write(self._fds[0], word.encode() + b"\n")
        got = b""
        deadline = time.monotonic() + self._WAIT
        while b"ack" not in got and self._perf.poll() is None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fds[1]], [], [], min(left, 0.1))[0]:
                if left <= 0:
                    return False
                continue
            got += os.read(self._fds[1], 64)
        return b"ack" in got

    def _end(self) -> None:
        if self._perf is not None:
            if self._perf.poll() is None:
                self._perf.send_signal(signal.SIGINT)  # perf writes its counts and exits
            self._perf.wait()
            self._perf = None
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None

    def __exit__(self, *_exc: object) -> None:
        if self._perf is None:
            return
        counted = self._say("disable")
        self._end()
        if not counted:
            return
        for line in (self.work / "perf.out").read_text().splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[2].startswith("task-clock") and fields[1] == "msec":
                try:
                    self.seconds = float(fields[0]) / 1000
                except ValueError:  # "<not counted>": nothing of theirs ran meanwhile
                    self.seconds = None


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (/proc/PID/task/*/children is not always built in)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat_line = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat_line.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found
