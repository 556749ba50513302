"""File-system helpers: canonical metadata for a tree, and removal of read-only trees."""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
from pathlib import Path

from engine.store.errors import StoreError

#: Like Nix: mtime 1 (not 0, which some tools read as "missing").
MTIME = 1
FILE_MODE, EXEC_MODE, DIR_MODE = 0o444, 0o555, 0o555


def canonical_mode(st_mode: int) -> int:
    """The permission bits a store path gives an entry of this type and mode."""
    if stat.S_ISDIR(st_mode):
        return DIR_MODE
    if stat.S_ISLNK(st_mode):
        return stat.S_IMODE(st_mode)  # a link's own mode is not settable on Linux
    return EXEC_MODE if st_mode & 0o111 else FILE_MODE


def normalise(path: Path, *, top: bool = True) -> None:
    """Give every entry of the tree its canonical mode and mtime ``MTIME``.

    The top directory keeps its mode (owner-writable) so that it can still be renamed into
    place: moving a folder to another parent rewrites its ``..`` entry, which needs write
    permission; :func:`seal` finishes it after the rename.
    """
    st = os.lstat(path)
    if stat.S_ISDIR(st.st_mode):
        if st.st_mode & 0o700 != 0o700:
            os.chmod(path, stat.S_IMODE(st.st_mode) | 0o700)
        for name in os.listdir(path):
            normalise(path / name, top=False)
        if not top:
            os.chmod(path, DIR_MODE)
    elif stat.S_ISREG(st.st_mode):
        if st.st_nlink > 1:
            # A hard link shares its inode with a file outside the tree: changing the mode
            # would change that file too, so the tree gets its own copy.
            _unshare(path)
        os.chmod(path, canonical_mode(st.st_mode))
    elif not stat.S_ISLNK(st.st_mode):
        raise StoreError(f"{path} is not a file, folder or symlink",
                         "a store path can hold only files, folders and symlinks")
    os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def seal(path: Path) -> None:
    """Finish :func:`normalise` on the top entry once it is in its final place."""
    st = os.lstat(path)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, canonical_mode(st.st_mode))
    os.utime(path, (MTIME, MTIME), follow_symlinks=False)


def _unshare(path: Path) -> None:
    copy = path.with_name(f".{path.name}.unshare")
    shutil.copyfile(path, copy, follow_symlinks=False)
    shutil.copymode(path, copy)
    os.replace(copy, path)


def remove_tree(path: Path) -> None:
    """Delete a file, link or folder, read-only or not; nothing when it does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink(missing_ok=True)
        return
    # Removing an entry needs write permission on its folder, not on the entry itself.
    os.chmod(path, 0o755)
    for folder, dirs, _files in os.walk(path):
        os.chmod(folder, 0o755)
        for name in dirs:
            child = os.path.join(folder, name)
            if not os.path.islink(child):
                os.chmod(child, 0o755)
    shutil.rmtree(path, ignore_errors=False, onerror=_ignore_missing)


def remove_leftover(path: Path) -> bool:
    """Remove what a dead process left at ``path``; never raises; whether it is gone.
    Something may still be writing into it (an orphan of a killed build: ``rmtree`` then fails
    with "Directory not empty"), so a failure is retried a few times, for up to a second."""
    import time

    for pause in (0.05, 0.2, 0.7, 0):
        try:
            remove_tree(path)
            return True
        except OSError:
            if pause:
                time.sleep(pause)
    return False


def _ignore_missing(_func: object, _path: str, exc_info: tuple) -> None:
    # Two cleaners may race on the same leftover; what the other removed is not an error.
    if not issubclass(exc_info[0], FileNotFoundError):
        raise exc_info[1]


_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def exchange(a: Path, b: Path) -> bool:
    """Swap two entries atomically (``renameat2(RENAME_EXCHANGE)``): at every instant each
    name holds one whole tree. False when the kernel or file system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))
