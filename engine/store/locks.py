"""Advisory file locks (``fcntl.flock``) and the ownership of temporary entries.

A ``flock`` belongs to an open file description: two opens of one file exclude each other
even inside one process, so a lock taken per call is safe across threads as well as
processes, and the kernel releases it when its process dies. Taking a lock on the same file
twice from one thread deadlocks; callers do not nest them.

Temporary entries under ``.recipe/tmp`` are named ``<pid>-<random>-<label>``. Their owner
process holds an exclusive lock on ``.recipe/tmp/<pid>.owner`` for as long as it lives, so a
leftover is dead exactly when that lock can be taken. A pid check alone would not do: pids
are reused, often identically in containers that restart.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from engine import later

_held: set[str] = set()
_owners: dict[tuple[int, str], int] = {}
_taken: set[tuple[int, str]] = set()  # (pid, folder as given) whose owner lock is held
_guard = threading.Lock()
_TEMP_ENTRY = re.compile(r"(\d+)[-.]")


def acquire(path: Path, *, shared: bool = False, blocking: bool = True) -> int | None:
    """Lock ``path`` (created when missing); the open descriptor, or None when ``blocking``
    is false and another holder has it. Closing the descriptor releases the lock."""
    op = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if blocking else fcntl.LOCK_NB)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, op)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        # The file may have been unlinked by its last holder (owner files are) while we
        # waited: a lock on an unlinked inode excludes nobody, so start again.
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        here = os.fstat(fd)
        if current and (current.st_dev, current.st_ino) == (here.st_dev, here.st_ino):
            return fd
        os.close(fd)


@contextmanager
def locked(path: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``path``'s lock for the ``with`` block (blocking)."""
    fd = acquire(path, shared=shared)
    assert fd is not None
    key = os.path.realpath(path)
    if not shared:
        with _guard:
            _held.add(key)
    try:
        yield
    finally:
        if not shared:
            with _guard:
                _held.discard(key)
        os.close(fd)


def held_here(path: Path) -> bool:
    """Whether this process holds ``path``'s exclusive lock through :func:`locked`."""
    with _guard:
        return os.path.realpath(path) in _held


def own_temp(tmp: Path) -> str:
    """Take (once per process) the owner lock of this process's entries in ``tmp``; the name
    prefix those entries must carry. They are removed when the process exits normally; a
    killed process's are removed by the next :func:`clean_temp`."""
    pid = os.getpid()
    seen = (pid, str(tmp))
    if seen in _taken:  # the common case, without resolving the folder (several lstat)
        return f"{pid}-"
    key = (pid, os.path.realpath(tmp))
    with _guard:
        if key not in _owners:
            fd = acquire(tmp / f"{pid}.owner")
            assert fd is not None
            if not _owners:
                atexit.register(_release_all)
            _owners[key] = fd
        _taken.add(seen)
    return f"{pid}-"


def _release_all() -> None:
    """At exit (a served command: before it answers): remove this process's temporary
    entries, once the work beside that removes some has ended (``engine.later``: a build
    folder's removal), its owner file last (while it is held nobody else removes them), then
    let the lock go."""
    if later.putting_off():  # a served eval's new runner, cached after the answer from its
        later.after_answer(_release_all)  # folder (one of these entries): after it
        return
    later.wait()
    pid = os.getpid()
    with _guard:
        owned = [(tmp, fd) for (owner, tmp), fd in _owners.items() if owner == pid]
        _owners.clear()
        _taken.clear()
    for tmp, fd in owned:
        try:
            for name in os.listdir(tmp):
                if name.startswith((f"{pid}-", f"{pid}.")) and name != f"{pid}.owner":
                    try:
                        _remove(Path(tmp) / name)
                    except OSError:
                        pass  # the next clean_temp removes it
            os.unlink(Path(tmp) / f"{pid}.owner")
        except OSError:
            pass  # the next clean_temp removes what is left
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    """A file (a process's roots: all a no-op run leaves) without loading fsutil, or a tree."""
    try:
        os.unlink(path)
    except IsADirectoryError:
        from engine.store.fsutil import remove_tree

        remove_tree(path)


def clean_temp(tmp: Path) -> list[str]:
    """Remove the entries of ``tmp`` whose owner process is gone; their names."""
    from engine.store.fsutil import remove_leftover

    by_pid: dict[int, list[str]] = {}
    for name in os.listdir(tmp):
        if match := _TEMP_ENTRY.match(name):
            by_pid.setdefault(int(match[1]), []).append(name)
    removed = []
    for pid, names in sorted(by_pid.items()):
        with _guard:
            if (pid, os.path.realpath(tmp)) in _owners:
                continue  # ours
        owner = tmp / f"{pid}.owner"
        fd = acquire(owner, blocking=False)
        if fd is None:
            continue  # a live owner holds it
        try:
            left = False
            for name in names:
                if name != owner.name:
                    if remove_leftover(tmp / name):
                        removed.append(name)
                    else:
                        left = True  # tried again by the next clean
            if not left:
                owner.unlink(missing_ok=True)
        finally:
            os.close(fd)
    return removed
