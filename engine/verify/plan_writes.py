"""Where ``--update`` may write, and the lock that serialises its edits of one cases file.

**The lock.** A run that re-records a cases file holds an exclusive ``flock`` on
``<plan>/.recipe/locks/update-<key>.lock`` from before it reads the file until its last
rename, where ``<key>`` is a hash of the file's real path relative to the plan's folder. The
lock is not taken on the cases file itself (a rename replaces that inode, so a lock on it
would exclude nobody) nor on a ``<cases>.lock`` beside it (that would leave a stray file in
the user's sources); the plan's ``.recipe/`` folder is already recipe's own state, ignored by
version control. Lock files are never deleted: removing one while another process waits on
it would let a third take a fresh one alongside (the store's locks are kept for the same
reason). Several files' locks are taken in the order of their paths, so two runs never wait
on each other in a cycle.

**Confinement.** Every write lands on a real path inside the plan's folder: the destination
is resolved (a symlink inside the plan is followed, so its target is what gets rewritten) and
refused unless it lies inside; then, at the moment of writing, every folder on the way from
the plan's folder is opened with ``O_NOFOLLOW``, so a symlink swapped in after the check is
refused too, and the file is written beside its destination and renamed over it.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

from engine.documents.paths import below
from engine.errors import Pos, RecipeError, display_path
from engine.store.locks import locked

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class OutsidePlanError(RecipeError):
    """``--update`` would write outside the plan's folder (through a symlink): exit 2."""


def lock_file(plan_dir: Path, file: Path) -> Path:
    """The lock serialising the re-recording of the cases file ``file``."""
    rel = os.path.relpath(os.path.realpath(file), os.path.realpath(plan_dir))
    key = hashlib.sha256(os.fsencode(rel)).hexdigest()[:24]
    return plan_dir / ".recipe" / "locks" / f"update-{key}.lock"


@contextmanager
def locked_files(plan_dir: Path, files: Sequence[Path]) -> Iterator[None]:
    """Hold the update lock of every file in ``files`` (blocking) for the ``with`` block."""
    paths = sorted({lock_file(plan_dir, f) for f in files})  # a file named twice: one lock
    with ExitStack() as stack:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(locked(path))
        yield


def destination(plan_dir: Path, path: Path, pos: Pos) -> str:
    """The real path a write to ``path`` lands on; refused unless it is inside the plan."""
    real = os.path.realpath(path)
    if not below(real, os.path.realpath(plan_dir)):
        raise _outside(path, real, pos)
    return real


def write(plan_dir: Path, real: str, data: bytes, pos: Pos) -> None:
    """Write ``data`` to ``real`` (from :func:`destination`): beside it, then renamed into
    place, keeping the mode of a file that was there. Missing folders are created."""
    fd, name = _folder(plan_dir, real, pos, create=True)
    try:
        _replace(fd, name, data)
    finally:
        os.close(fd)


def remove(plan_dir: Path, real: str, pos: Pos) -> None:
    """Delete the file ``real`` (from :func:`destination`), walking the folders on the way as
    :func:`write` does; a file already gone is fine."""
    try:
        fd, name = _folder(plan_dir, real, pos, create=False)
    except FileNotFoundError:
        return
    try:
        os.unlink(name, dir_fd=fd)  # a symlink itself, never its target
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _folder(plan_dir: Path, real: str, pos: Pos, create: bool) -> tuple[int, str]:
    """An open descriptor of the folder ``real`` is in and its last name, reached from the plan
    folder one name at a time without following a symlink (one swapped in after
    :func:`destination` is refused); ``create``: make missing folders on the way."""
    root = os.path.realpath(plan_dir)
    parts = os.path.relpath(real, root).split(os.sep)
    if not below(real, root) or not parts or ".." in parts or parts == ["."]:
        raise _outside(Path(real), real, pos)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts[:-1]:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o777, dir_fd=fd)
            try:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):  # became a symlink or a file
                    raise _outside(Path(real), real, pos) from None
                raise
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def _replace(folder: int, name: str, data: bytes) -> None:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        mode = stat.S_IMODE(info.st_mode) if stat.S_ISREG(info.st_mode) else 0o644
    except FileNotFoundError:
        mode = 0o644
    tmp = f".{name}.{secrets.token_hex(6)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), mode)
        # Renaming replaces the entry: a symlink put there meanwhile is replaced, not followed.
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        os.unlink(tmp, dir_fd=folder)
        raise


def _outside(path: Path, real: str, pos: Pos) -> OutsidePlanError:
    return OutsidePlanError(
        f"--update would write {display_path(path)} outside the plan's folder (to {real}, "
        "through a symlink)", "replace the symlink by a folder or file inside the plan", pos=pos)
