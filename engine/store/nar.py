"""The canonical serialisation of a tree, its hash, and its per-file manifest.

A store path's content hash is sha256 over this byte string, which is Nix's NAR format
(``nix-store --dump``), so ``nix hash path --type sha256`` of the same tree gives the same
digest::

    str(s)    = u64le(len(s)) s pad(s)         pad: zero bytes up to a multiple of 8
    archive   = str("nix-archive-1") node
    node      = str("(") str("type") body str(")")
    body      = str("regular") [ str("executable") str("") ] str("contents") str(<file bytes>)
              | str("symlink") str("target") str(<link target bytes, not followed>)
              | str("directory") { entry }
    entry     = str("entry") str("(") str("name") str(<name>) str("node") node str(")")

Entries of a directory come in ascending order of their names' bytes. A regular file is
executable when any of its x bits is set; no other metadata (owner, mtime, other mode bits,
extended attributes) is serialised. Other file types (fifos, sockets, devices) cannot be
serialised. Every field is length-prefixed, so two different trees never serialise to the
same bytes. The size returned with the hash is the length of the archive (Nix's narSize).

The manifest is the same walk seen file by file: for each entry its path relative to the
tree ("" for the tree itself, "/"-separated), its type, its permission bits, the sha256 of a
regular file's content or the target of a symlink, and a regular file's size. ``verify``
compares a manifest recorded at registration with one taken now to name the damaged file.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from engine.store.errors import StoreError

_CHUNK = 1 << 20
MAGIC = b"nix-archive-1"


class Entry(NamedTuple):
    """One entry of a manifest. ``type`` is ``directory``, ``regular``, ``symlink``, or
    ``other`` (only seen by a tolerant scan); ``sha256`` is "" when not a readable file."""

    file: str
    type: str
    mode: int
    sha256: str = ""
    target: str = ""
    size: int = 0


@dataclass
class Scan:
    """A tree's NAR hash, size and entries."""

    nar_hash: str
    size: int
    entries: list[Entry] = field(default_factory=list)


class _Archive:
    """Feeds the archive's bytes to sha256 and counts them, without keeping them."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.size = 0

    def raw(self, data: bytes) -> None:
        self.hash.update(data)
        self.size += len(data)

    def str(self, data: bytes) -> None:
        self.raw(struct.pack("<Q", len(data)))
        self.raw(data)
        self.pad(len(data))

    def pad(self, length: int) -> None:
        if length % 8:
            self.raw(b"\0" * (8 - length % 8))


def tree_hash(path: Path) -> tuple[str, int]:
    """``("sha256:<hex>", archive size)`` of the tree at ``path`` (see the module docstring)."""
    result = scan(path)
    return result.nar_hash, result.size


def scan(path: Path, *, strict: bool = True) -> Scan:
    """Hash the tree and take its manifest in one pass.

    ``strict`` (registration) raises ``StoreError`` on a file type or name a store path cannot
    hold and on an unreadable file; otherwise (verification) such entries are recorded as
    ``other`` or with an empty ``sha256`` and the walk goes on.
    """
    archive = _Archive()
    entries: list[Entry] = []
    archive.str(MAGIC)
    _node(archive, os.fsencode(path), "", entries, strict)
    return Scan(f"sha256:{archive.hash.hexdigest()}", archive.size, entries)


def _node(out: _Archive, path: bytes, rel: str, entries: list[Entry], strict: bool) -> None:
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    out.str(b"(")
    out.str(b"type")
    if stat.S_ISREG(st.st_mode):
        out.str(b"regular")
        if st.st_mode & 0o111:
            out.str(b"executable")
            out.str(b"")
        out.str(b"contents")
        digest = _contents(out, path, st.st_size, strict)
        entries.append(Entry(rel, "regular", mode, digest, "", st.st_size))
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        out.str(b"symlink")
        out.str(b"target")
        out.str(target)
        entries.append(Entry(rel, "symlink", mode, "", _text(target, rel, strict)))
    elif stat.S_ISDIR(st.st_mode):
        out.str(b"directory")
        entries.append(Entry(rel, "directory", mode))
        for name in sorted(os.listdir(path)):
            child = f"{rel}/{_text(name, rel, strict)}" if rel else _text(name, rel, strict)
            out.str(b"entry")
            out.str(b"(")
            out.str(b"name")
            out.str(name)
            out.str(b"node")
            _node(out, os.path.join(path, name), child, entries, strict)
            out.str(b")")
    elif strict:
        raise StoreError(f"{os.fsdecode(path)} is a {_kind(st.st_mode)}",
                         "a store path can hold only files, folders and symlinks")
    else:
        entries.append(Entry(rel, "other", mode))
    out.str(b")")


def _contents(out: _Archive, path: bytes, size: int, strict: bool) -> str:
    """Stream a file into the archive (length, bytes, padding); return its own sha256."""
    own = hashlib.sha256()
    out.raw(struct.pack("<Q", size))
    done = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                own.update(chunk)
                out.raw(chunk)
                done += len(chunk)
    except OSError as error:
        if strict:
            raise StoreError(f"cannot read {os.fsdecode(path)}: {error.strerror}",
                             "make the build's outputs readable") from error
        return ""
    if done != size:
        if strict:
            raise StoreError(f"{os.fsdecode(path)} changed while it was being hashed",
                             "make sure nothing writes to a tree being registered")
        return ""
    out.pad(size)
    return own.hexdigest()


def _text(name: bytes, where: str, strict: bool) -> str:
    # The manifest lives in SQLite as text; a name that is not UTF-8 cannot be recorded.
    try:
        return name.decode("utf-8")
    except UnicodeDecodeError:
        if strict:
            raise StoreError(f"{name!r} in {where or 'the tree'} is not a UTF-8 name",
                             "give the build's outputs UTF-8 names") from None
        return name.decode("utf-8", "replace")


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return "special file"
