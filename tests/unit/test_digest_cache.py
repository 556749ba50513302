"""Source digests remembered against stat data (engine.hashing.DigestCache), as git's index."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from engine.hashing import DigestCache, file_digest


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    src, cache_file = tmp_path / "a.c", tmp_path / "cache" / "digests.json"
    src.write_text("int a;\n")
    first = DigestCache(cache_file)
    assert first.digest(src) == file_digest(src)
    first.save()
    # Pretend the record is old enough to trust, and holds another digest: only a lookup by
    # stat data can return it.
    data = json.loads(cache_file.read_text())
    data["stamp"] = time.time_ns() + 10**10
    data["entries"][str(src)][4] = "sha256:" + "0" * 64
    cache_file.write_text(json.dumps(data))
    assert DigestCache(cache_file).digest(src) == "sha256:" + "0" * 64


def test_a_change_that_keeps_size_and_mtime_is_seen_through_ctime(tmp_path: Path) -> None:
    src, cache_file = tmp_path / "a.c", tmp_path / "digests.json"
    src.write_text("int a;\n")
    cache = DigestCache(cache_file)
    cache.digest(src)
    cache.save()
    data = json.loads(cache_file.read_text())
    data["stamp"] = time.time_ns() + 10**10  # trusted, were the stat data unchanged
    cache_file.write_text(json.dumps(data))
    st = src.stat()
    time.sleep(0.01)
    src.write_text("int b;\n")  # same size
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only ctime moved
    assert DigestCache(cache_file).digest(src) == file_digest(src)


def test_a_racily_clean_entry_is_hashed_again(tmp_path: Path) -> None:
    src, cache_file = tmp_path / "a.c", tmp_path / "digests.json"
    src.write_text("int a;\n")
    cache = DigestCache(cache_file)
    cache.digest(src)
    cache.save()  # recorded now: the file's times are within the racy window of the stamp
    data = json.loads(cache_file.read_text())
    data["entries"][str(src)][4] = "sha256:" + "0" * 64
    cache_file.write_text(json.dumps(data))
    assert DigestCache(cache_file).digest(src) == file_digest(src)


def test_a_damaged_cache_file_is_ignored(tmp_path: Path) -> None:
    src, cache_file = tmp_path / "a.c", tmp_path / "digests.json"
    src.write_text("int a;\n")
    cache_file.write_text("{not json")
    assert DigestCache(cache_file).digest(src) == file_digest(src)
