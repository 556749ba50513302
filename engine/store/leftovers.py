"""What dead processes left in a store, and finished build folders: found, and removed without
touching what a live process holds (``Store.clean``, ``Store.remove_leftover``,
``Store.discard``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from pathlib import Path

from engine import later
from engine.store import fsutil, locks
from engine.store.names import NAME


def clean(root: Path, state: Path, lock_file: Callable[[str], Path],
          is_valid: Callable[[str], bool], valid: Callable[[], Collection[str]] | None) -> None:
    """Remove temporary entries of dead processes, and folders at ``root/<name>`` that are not
    valid and whose lock nobody holds: a process killed while it registered left the name in
    ``pending`` (``engine/store/register.py``). With ``valid`` (every valid name), look at every
    name in the store, not only those (a collection does: a folder put there by hand, or left
    by a version of recipe that noted nothing). Then the build folders no build holds."""
    locks.clean_temp(state / "tmp")
    pending = state / "pending"
    for name in _listdir(pending):
        if NAME.fullmatch(name):
            _remove_unlocked(state, root / name, lock_file(name), is_valid, pending / name)
    if valid is not None:
        names = valid()
        for name in os.listdir(root):
            if name not in names and NAME.fullmatch(name):
                _remove_unlocked(state, root / name, lock_file(name), is_valid)
    for name in _listdir(state / "build"):
        if NAME.fullmatch(name):
            _remove_unlocked(state, state / "build" / name, lock_file(name), None)


def _remove_unlocked(state: Path, path: Path, lock: Path,
                     is_valid: Callable[[str], bool] | None, note: Path | None = None) -> None:
    """Remove what a dead process left at ``path``, and the ``note`` of it, unless someone
    holds the name's ``lock`` (it is being built right now), or (asked under the lock, where
    no registration can be under way) ``is_valid`` says the path is valid: under the lock, so
    that a new registration's note is never taken for the dead one's."""
    if locks.held_here(lock):
        return
    fd = locks.acquire(lock, blocking=False)
    if fd is None:
        return
    try:
        if is_valid is None or not is_valid(path.name):
            remove_leftover(state, path)
        if note is not None:
            note.unlink(missing_ok=True)
    finally:
        os.close(fd)


def remove_leftover(state: Path, path: Path) -> bool:
    """Remove a dead build's folder (the caller holds its name's lock). One that cannot be
    removed now (an orphan still writing into it) is moved into tmp/ under this process's name,
    so that the name is free: removed when this process exits, or by a later ``open``. Never
    raises; False when the folder could be neither removed nor moved."""
    if fsutil.remove_leftover(path):
        return True
    tmp = state / "tmp"
    try:
        os.rename(path, tmp / f"{locks.own_temp(tmp)}{os.urandom(6).hex()}-leftover")
        return True
    except OSError:
        return not os.path.lexists(path)


def discard(state: Path, path: Path, beside: bool = True) -> None:
    """Remove a finished build's folder (the caller holds its name's lock): moved into tmp/
    under this process's name at once, so that the name is free, and removed by a thread of
    its own while the caller goes on (a one-file edit's build folder holds hundreds of links:
    0.4 to 1.5 ms). The process waits for that thread before it exits, a served command before
    it answers (``engine.later``); what a killed one left is removed by a later ``open``."""
    import shutil  # here: a no-op run, which opens the store, removes nothing

    if not beside and _remove_shallow(path):
        return
    tmp = state / "tmp"
    trash = tmp / f"{locks.own_temp(tmp)}{os.urandom(6).hex()}-discarded"
    try:
        os.rename(path, trash)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return
    later.soon(shutil.rmtree, trash, True)  # ignore_errors


def _remove_shallow(path: Path) -> bool:
    """Remove a folder of links and empty folders (what a build folder is once its inputs and
    objects were kept): one system call an entry, where ``rmtree`` takes several (~0.4 ms
    for three folders); whether it is gone (False: something deeper, left to ``rmtree``)."""
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    os.rmdir(entry.path)
                else:
                    os.unlink(entry.path)
        os.rmdir(path)
    except OSError:
        return False
    return True


def discard_all(state: Path, folder: Path) -> None:
    """``discard`` every entry of ``folder`` (one taken meanwhile is left to its taker)."""
    for name in _listdir(folder):
        discard(state, folder / name)


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []
