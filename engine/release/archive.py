"""Deterministic ``.tar.gz`` of a tree: the same tree gives the same bytes, always.

What a tarball holds and how, so that nothing of the machine, the clock, the user or the order
of a folder listing reaches it (the recipe of reproducible-builds.org's "Archive metadata"):

- entries: every file, folder and symlink of the tree below one top folder ``<prefix>/``, in
  ascending order of their path components (a folder before what it holds), POSIX.1-2001
  (pax) format, which Python writes with a fixed extended-header name;
- metadata: mtime ``SOURCE_DATE_EPOCH`` for every entry, uid and gid 0 with empty user and
  group names, modes normalised to 0755 (folders and executables: any x bit set) or 0644,
  symlinks 0777 with their target as it is;
- gzip: level 9, no file name and mtime 0 in the header (``gzip -n -9``); the header's OS byte
  is Python's fixed 255. The compressed bytes are zlib's: two machines with different zlib
  implementations may compress differently, the tar inside stays the same.
"""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from pathlib import Path

COMPRESS_LEVEL = 9


def write_tarball(tree: Path, dest: Path, prefix: str, mtime: int) -> None:
    """Write the tree at ``tree`` as ``dest`` (a ``.tar.gz``), every entry below ``prefix/``."""
    with open(dest, "wb") as raw, \
            gzip.GzipFile(filename="", mode="wb", compresslevel=COMPRESS_LEVEL,
                          fileobj=raw, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT,
                         encoding="utf-8") as tar:
        for rel in _entries(tree):
            path = tree / rel if rel else tree
            name = f"{prefix}/{rel}" if rel else prefix
            info = _info(path, name, mtime)
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)


def _entries(tree: Path) -> list[str]:
    """Paths below ``tree`` ("" for itself), "/"-separated, sorted component by component."""
    found = [""]
    for folder, dirs, files in os.walk(tree):
        rel = os.path.relpath(folder, tree)
        for name in (*dirs, *files):
            found.append(name if rel == "." else f"{rel}/{name}")
    return sorted(found, key=lambda p: [os.fsencode(part) for part in p.split("/")] if p else [])


def _info(path: Path, name: str, mtime: int) -> tarfile.TarInfo:
    st = os.lstat(path)
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif stat.S_ISLNK(st.st_mode):
        info.type, info.mode = tarfile.SYMTYPE, 0o777
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        info.mode = 0o755 if st.st_mode & 0o111 else 0o644
    else:
        raise ValueError(f"{path} is neither a file, a folder nor a symlink")
    return info
