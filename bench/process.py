"""Timing a child process, and running one for its output."""

from __future__ import annotations

import os
import resource
import shutil
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
    client: float | None = None  # served: the native client's alone (the rest: the server's)


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
