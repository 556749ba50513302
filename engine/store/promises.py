"""Action results promised: made, but written a little later by their maker.

A served command answers its caller first and writes its caches after (``engine.later``): a
REPL runner's action-cache entry, for one, is written once the compiler that made it has ended,
after the submission ran. A caller that runs the same submission at once must still find it
cached, not compile it again. So the maker promises the result before it answers: it holds an
exclusive ``flock`` on ``ac/<xx>/<key>.promised`` until the entry is written (``fulfil``),
and whoever misses that entry meanwhile waits for the lock (``wait``) and looks again.

The kernel lets the lock go when its holder dies: a killed maker's promise ends at once, with
no entry (its file stays: the next maker of that key takes it over, ``store gc`` removes it).
A miss costs one ``open`` that fails. The action cache's listing (``Cas.entries``) is not
theirs: it names them apart, for ``store gc``.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from engine.store import locks

#: The longest a miss waits for a promise (a maker stopped by a debugger, say): then it is a
#: miss, and the result is made again.
WAIT = 30.0


def promise(path: str) -> int | None:
    """Promise a result, whose promise file is ``path`` (``Store.promise_file``): the lock's
    descriptor, for ``fulfil``; None when another process promised it already, or the promise
    cannot be made (then the entry is only written late, as a cache may be)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return locks.acquire(Path(path), blocking=False)
    except OSError:
        return None


def fulfil(path: str, fd: int) -> None:
    """End the promise ``fd`` made at ``path`` (its entry written, or given up): whoever
    waits looks again."""
    try:
        os.unlink(path)  # first: a waiter woken next finds no promise to wait on
    except OSError:
        pass
    os.close(fd)


def wait(path: str) -> bool:
    """Wait while the result promised at ``path`` is promised by a live process (at most
    ``WAIT`` seconds); whether there was a promise to wait for (then look the entry up
    again)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:  # none: the usual miss
        return False
    try:
        deadline = time.monotonic() + WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.0005)
    finally:
        os.close(fd)


def clear(paths: list[str]) -> None:
    """Remove the promise files at ``paths`` that no live maker holds (``store gc``)."""
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its maker writes the entry yet
            os.close(fd)
            continue
        try:
            os.unlink(path)  # a maker that opens it now holds a lock on no name: a cache miss
        except OSError:
            pass
        os.close(fd)
