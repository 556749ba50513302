"""engine.release.archive: the same tree gives the same tarball bytes whatever its metadata."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from engine.errors import UsageError
from engine.release.archive import write_tarball
from engine.release.release import source_date_epoch


def make_tree(root: Path, umask: int, mtime: int, reverse: bool = False) -> Path:
    """One tree, made with another umask, mtimes and creation order each time."""
    old = os.umask(umask)
    try:
        files = {"bin/tool": b"#!/bin/sh\n", "a.c": b"a\n", "a/z": b"z\n", "B": b"upper\n",
                 "lib/libx.a": b"!<arch>\n"}
        for rel, data in sorted(files.items(), reverse=reverse):
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (root / "bin/tool").chmod(0o700 if umask else 0o755)
        os.symlink("libx.a", root / "lib/libx.so")
        for folder, dirs, names in os.walk(root):
            for name in [*dirs, *names]:
                os.utime(os.path.join(folder, name), (mtime, mtime), follow_symlinks=False)
    finally:
        os.umask(old)
    return root


def test_same_tree_same_bytes_whatever_umask_mtime_and_creation_order(tmp_path: Path) -> None:
    one = make_tree(tmp_path / "one", 0o022, 1_000_000)
    two = make_tree(tmp_path / "elsewhere/two", 0o077, 2_000_000, reverse=True)
    write_tarball(one, tmp_path / "one.tar.gz", "x-1.0-release", 315532800)
    write_tarball(two, tmp_path / "two.tar.gz", "x-1.0-release", 315532800)
    assert (tmp_path / "one.tar.gz").read_bytes() == (tmp_path / "two.tar.gz").read_bytes()


def test_entries_are_sorted_and_normalised(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", 0o077, 5)
    dest = tmp_path / "x.tar.gz"
    write_tarball(tree, dest, "x", 1234)
    with tarfile.open(dest) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "x", "x/B", "x/a", "x/a/z", "x/a.c", "x/bin", "x/bin/tool", "x/lib", "x/lib/libx.a",
        "x/lib/libx.so"]  # bytes order per component: a folder right before what it holds
    modes = {m.name: (m.type, m.mode) for m in members}
    assert modes["x"] == modes["x/a"] == (tarfile.DIRTYPE, 0o755)
    assert modes["x/bin/tool"] == (tarfile.REGTYPE, 0o755)
    assert modes["x/a.c"] == (tarfile.REGTYPE, 0o644)
    assert modes["x/lib/libx.so"] == (tarfile.SYMTYPE, 0o777)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(1234, 0, 0, "", "")}
    assert next(m for m in members if m.issym()).linkname == "libx.a"


def test_gzip_header_has_no_name_and_no_time(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree", 0o022, 5)
    dest = tmp_path / "named.tar.gz"
    write_tarball(tree, dest, "x", 0)
    header = dest.read_bytes()[:10]
    assert header[:3] == b"\x1f\x8b\x08"
    assert header[3] == 0  # FLG: no FNAME, no FCOMMENT, no FEXTRA
    assert header[4:8] == b"\0\0\0\0"  # MTIME
    assert header[8] == 2  # XFL: maximum compression
    assert b"named" not in dest.read_bytes()
    assert gzip.decompress(dest.read_bytes())[:1]  # a valid stream


def test_source_date_epoch_from_the_environment() -> None:
    assert source_date_epoch({}) == 315532800
    assert source_date_epoch({"SOURCE_DATE_EPOCH": ""}) == 315532800
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "1700000000"}) == 1700000000
    for bad in ("-1", "1.5", "yesterday", "１２", str(8 ** 11)):
        with pytest.raises(UsageError, match="SOURCE_DATE_EPOCH"):
            source_date_epoch({"SOURCE_DATE_EPOCH": bad})
