"""A store path's NAR hash and the shape of its manifest, taken with as little Python and as
few system calls as a walk allows: what ``recipe store verify`` computes for every valid path
(``engine/store/check.py``).

The archive is the one ``engine/store/nar.py`` defines (the same hash; the tests compare
them). The framing is gathered in a short byte string (an entry's head and tail looked up by
its name's length, not packed), and each file's contents are read by one ``readv`` into a
preallocated buffer right behind the framing before them, both hashed by one ``update`` per
file (``open``, ``fstat``, ``readv``, ``close`` per file; ``scandir`` gives every entry's type
without a ``stat``, and Linux gives every symlink mode 0777, so neither a file nor a symlink is
``lstat``-ed). ``nar.scan``'s per-entry ``lstat``, buffered ``open`` and reads to EOF cost it
50 system calls for a path of the bench's shape (four files and a symlink in four folders),
this walk 41 (``strace -c``). What is left besides sha256 is mostly those calls: on 4,000
such paths, 76 µs a path of the 92 went to the same calls made with as little Python as can
make them, and hashing took 67 µs a path (``mmap`` instead of ``readv`` cost more: a page
fault per 16 pages, and ``mmap``/``munmap`` per file).

The shape is what the archive does not record, as the database gives it (``Database
.all_shapes``): each entry's path and mode bits, ``file NUL mode NUL``, in ascending order of
the path (no name can hold a NUL byte; built as bytes, sorted, then decoded once: UTF-8 keeps
the order of the code points). The NAR hash covers the names, types, executable bits,
contents and link targets. Whatever this walk does not expect (an unreadable file, one whose
size changes while it is read, a name that is not UTF-8, a file type a store path cannot
hold, a vanished path) gives no fingerprint: the caller then runs the thorough
``check.check_path``, which names what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import struct
from operator import attrgetter

from engine.store.nar import (
    _CLOSE,
    _DIRECTORY,
    _ENTRY,
    _EXECUTABLE_FILE,
    _FILE,
    _NODE,
    _OPEN,
    _SYMLINK,
    MAGIC,
    _frame,
)

#: Bytes read at once: a file bigger than this (with its framing) is hashed a buffer at a
#: time; small enough to stay in the core's L2 cache between ``readv`` and ``update``.
BUFFER = 256 << 10
_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK
_HEAD = _frame(MAGIC) + _OPEN
_ZEROS = bytes(8)
_NAME = attrgetter("name")
_SIZE = struct.Struct("<Q").pack
_IFMT, _IFREG, _IFDIR, _IFLNK = 0o170000, 0o100000, 0o040000, 0o120000
_CLOSE_TWICE = _CLOSE + _CLOSE
#: An entry's framing up to its name, and from its name to its node's type, by the name's
#: length (a name has at most 255 bytes on Linux; a longer one is framed as it comes).
_HEADS = [_ENTRY + _SIZE(n) for n in range(256)]
_TAILS = [_ZEROS[:-n % 8] + _NODE + _OPEN for n in range(256)]
_PADS = [_ZEROS[:-n % 8] for n in range(8)]  # by a file's size modulo 8
_KINDS = (_FILE, _EXECUTABLE_FILE)


class _Modes(dict[int, bytes]):
    """A shape's ``NUL mode NUL`` by mode, made on first use (a store has a few modes)."""

    def __missing__(self, mode: int) -> bytes:
        text = self[mode] = b"\0%d\0" % mode
        return text


_MODES = _Modes()
_LINK = _MODES[0o777]
_open, _close, _fstat, _readv, _readlink, _scandir = (os.open, os.close, os.fstat, os.readv,
                                                     os.readlink, os.scandir)


class Unexpected(Exception):
    """Something the thorough check must look at."""


class Fingerprinter:
    """Fingerprints paths one after another with one buffer (one per thread or process)."""

    def __init__(self, size: int = BUFFER) -> None:
        self._buffer = bytearray(size)
        self._view = memoryview(self._buffer)
        self._size = size
        self._hash = hashlib.sha256()

    def fingerprint(self, path: bytes) -> tuple[str, str] | None:
        """``("sha256:<hex>", shape)`` of the tree at ``path``, or None when the thorough
        check must look at it."""
        self._hash = digest = hashlib.sha256()
        shape: list[bytes] = []
        try:
            mode = os.lstat(path).st_mode
            kind = mode & _IFMT
            if kind == _IFDIR:
                pending = self._directory(path, mode, b"", shape, _HEAD)
            elif kind == _IFREG:
                fd = _open(path, _FLAGS)
                try:
                    st = _fstat(fd)
                    mode, size = st.st_mode, st.st_size
                    self._file(fd, mode, size, _HEAD + _KINDS[mode & 0o111 != 0] + _SIZE(size))
                finally:
                    _close(fd)
                shape.append(_MODES[mode & 0o7777])
                pending = _PADS[size % 8] + _CLOSE
            elif kind == _IFLNK:
                target = _readlink(path)
                shape.append(_LINK)
                pending = _HEAD + _SYMLINK + _frame(target) + _CLOSE
            else:
                return None
            shape.sort()  # each record starts with its path and a NUL: sorted by path
            text = b"".join(shape).decode()
        except (OSError, Unexpected, UnicodeDecodeError):
            return None
        digest.update(pending)
        return f"sha256:{digest.hexdigest()}", text

    def _directory(self, path: bytes, mode: int, rel: bytes, shape: list[bytes],
                   pending: bytes) -> bytes:
        """Frames the directory at ``path`` after ``pending`` (the framing not yet hashed,
        up to its type) and hashes its files; returns the framing not yet hashed. A regular
        file, most of a store path's entries, is taken here without a call (``_file`` for one
        that does not fit the buffer)."""
        shape.append(rel + _MODES[mode & 0o7777])
        pending += _DIRECTORY
        with _scandir(path) as found:
            children = sorted(found, key=_NAME)
        prefix = rel + b"/" if rel else b""
        update, buffer, view, capacity = self._hash.update, self._buffer, self._view, self._size
        for child in children:
            name = child.name
            n = len(name)
            if n < 256:
                pending += _HEADS[n] + name + _TAILS[n]
            else:
                pending += _ENTRY + _frame(name) + _NODE + _OPEN
            if child.is_file(follow_symlinks=False):
                fd = _open(child.path, _FLAGS)
                try:
                    st = _fstat(fd)
                    mode, size = st.st_mode, st.st_size
                    pending += _KINDS[mode & 0o111 != 0] + _SIZE(size)
                    n = len(pending)
                    if n + size >= capacity or mode & _IFMT != _IFREG:
                        self._file(fd, mode, size, pending)
                    else:
                        buffer[:n] = pending
                        if _readv(fd, [view[n:n + size + 1]]) != size:
                            raise Unexpected  # it changed since its fstat
                        update(view[:n + size])
                finally:
                    _close(fd)
                shape.append(prefix + name + _MODES[mode & 0o7777])
                pending = _PADS[size % 8] + _CLOSE_TWICE
            elif child.is_dir(follow_symlinks=False):
                pending = self._directory(child.path, child.stat(follow_symlinks=False).st_mode,
                                          prefix + name, shape, pending) + _CLOSE
            elif child.is_symlink():
                target = _readlink(child.path)
                shape.append(prefix + name + _LINK)
                pending += _SYMLINK + _frame(target) + _CLOSE_TWICE
            else:
                raise Unexpected
        return pending + _CLOSE

    def _file(self, fd: int, mode: int, size: int, pending: bytes) -> None:
        """Hashes ``pending`` and the open file ``fd``'s contents, a buffer at a time: exactly
        the ``fstat``'s size to EOF (one more byte is asked for)."""
        if mode & _IFMT != _IFREG:
            raise Unexpected
        update, view, capacity = self._hash.update, self._view, self._size
        update(pending)
        left = size + 1
        while left:
            got = _readv(fd, [view[:min(left, capacity)]])
            if got == 0:
                break
            update(view[:got])
            left -= got
        if left != 1:
            raise Unexpected  # shorter or longer than its fstat said
