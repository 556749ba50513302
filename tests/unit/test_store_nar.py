"""The canonical tree serialisation: Nix's NAR, hashed."""

import hashlib
import os
import struct
from pathlib import Path

import pytest

from engine.store import StoreError, tree_hash
from engine.store.nar import scan


def _str(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + data + b"\0" * (-len(data) % 8)


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "run").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "run").chmod(0o755)
    (root / "data.txt").write_bytes(b"hello")
    (root / "link").symlink_to("bin/run")
    return root


def test_single_file_matches_nix(tmp_path: Path) -> None:
    # `nix hash path` of a file holding "hello" (no newline): sha256-CkMIecJm+LV/QJKg...
    file = tmp_path / "hello.txt"
    file.write_bytes(b"hello")
    file.chmod(0o644)
    digest, size = tree_hash(file)
    assert digest == "sha256:0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969"
    assert size == 120


def test_directory_follows_the_written_grammar(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    run = (_str(b"(") + _str(b"type") + _str(b"regular") + _str(b"executable") + _str(b"")
           + _str(b"contents") + _str(b"#!/bin/sh\n") + _str(b")"))
    bin_ = (_str(b"(") + _str(b"type") + _str(b"directory") + _str(b"entry") + _str(b"(")
            + _str(b"name") + _str(b"run") + _str(b"node") + run + _str(b")") + _str(b")"))
    data = (_str(b"(") + _str(b"type") + _str(b"regular") + _str(b"contents") + _str(b"hello")
            + _str(b")"))
    link = (_str(b"(") + _str(b"type") + _str(b"symlink") + _str(b"target") + _str(b"bin/run")
            + _str(b")"))

    def entry(name: bytes, node: bytes) -> bytes:
        return _str(b"entry") + _str(b"(") + _str(b"name") + _str(name) + _str(b"node") + node \
            + _str(b")")

    archive = (_str(b"nix-archive-1") + _str(b"(") + _str(b"type") + _str(b"directory")
               + entry(b"bin", bin_) + entry(b"data.txt", data) + entry(b"link", link)
               + _str(b")"))
    assert tree_hash(root) == (f"sha256:{hashlib.sha256(archive).hexdigest()}", len(archive))


@pytest.mark.parametrize("sizes", [(0, 1, 7, 8, 9), (65_535, 65_536, 65_537),
                                   ((1 << 20) - 3, 1 << 20, (1 << 20) + 5, 3 << 20),
                                   tuple(range(300, 900, 7))])
def test_files_of_every_size_follow_the_grammar(tmp_path: Path, sizes: tuple[int, ...]) -> None:
    # Small pieces are gathered in a buffer and big ones hashed as they come: the archive is
    # the same byte string whatever the sizes around the buffer's limits.
    root = tmp_path / "t"
    root.mkdir()
    entries = b""
    for i, size in enumerate(sizes):
        name, data = f"f{i:03d}".encode(), bytes([i % 251]) * size
        (root / name.decode()).write_bytes(data)
        node = (_str(b"(") + _str(b"type") + _str(b"regular") + _str(b"contents") + _str(data)
                + _str(b")"))
        entries += _str(b"entry") + _str(b"(") + _str(b"name") + _str(name) + _str(b"node") \
            + node + _str(b")")
    archive = (_str(b"nix-archive-1") + _str(b"(") + _str(b"type") + _str(b"directory")
               + entries + _str(b")"))
    assert tree_hash(root) == (f"sha256:{hashlib.sha256(archive).hexdigest()}", len(archive))
    found = {e.file: e.sha256 for e in scan(root).entries if e.type == "regular"}
    assert found == {f"f{i:03d}": hashlib.sha256(bytes([i % 251]) * size).hexdigest()
                     for i, size in enumerate(sizes)}


def test_stable_across_copies_times_and_other_mode_bits(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one")
    two = _tree(tmp_path / "two")
    os.utime(two / "data.txt", (5, 5))
    (two / "data.txt").chmod(0o600)  # no x bit either way
    assert tree_hash(one) == tree_hash(two)


@pytest.mark.parametrize("change", ["content", "exec bit", "link target", "name", "new file"])
def test_sensitive_to(tmp_path: Path, change: str) -> None:
    root = _tree(tmp_path / "t")
    before = tree_hash(root)
    if change == "content":
        (root / "data.txt").write_bytes(b"hellO")
    elif change == "exec bit":
        (root / "data.txt").chmod(0o744)
    elif change == "link target":
        (root / "link").unlink()
        (root / "link").symlink_to("bin/Run")
    elif change == "name":
        (root / "data.txt").rename(root / "data.TXT")
    else:
        (root / "bin" / "empty").write_bytes(b"")
    assert tree_hash(root) != before


def test_no_ambiguity_between_file_boundaries(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_bytes(b"ab")
    (a / "y").write_bytes(b"c")
    (b / "x").write_bytes(b"a")
    (b / "y").write_bytes(b"bc")
    assert tree_hash(a) != tree_hash(b)


def test_manifest_names_every_entry(tmp_path: Path) -> None:
    entries = {e.file: e for e in scan(_tree(tmp_path / "t")).entries}
    assert set(entries) == {"", "bin", "bin/run", "data.txt", "link"}
    assert entries["data.txt"].sha256 == hashlib.sha256(b"hello").hexdigest()
    assert entries["link"].target == "bin/run"
    assert entries["bin"].type == "directory"


def test_other_file_types_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    os.mkfifo(root / "pipe")
    with pytest.raises(StoreError, match="fifo"):
        tree_hash(root)
    assert any(e.type == "other" for e in scan(root, strict=False).entries)
