"""The two hashing primitives every layer shares: canonical JSON and file digests."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from engine import later, user_cache, watch

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def canonical(data: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: the form that gets hashed."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(data: Any) -> str:
    """Hex sha256 of the canonical JSON of ``data``."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def file_digest(path: Path | str) -> str:
    """``sha256:<hex>`` of a file's content, read in chunks."""
    # A small file is read whole: hashlib.file_digest zeroes a 256 KiB buffer per call, most of
    # what hashing a 10 KB source costs (engine.store.cas.sha256_file does the same).
    with open(path, "rb", buffering=0) as f:
        if os.fstat(f.fileno()).st_size <= 1 << 20:
            return "sha256:" + hashlib.sha256(f.read()).hexdigest()
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


#: The caches being written beside the build (``DigestCache.save``), by file: what waits for it.
_saving: dict[str, Callable[[], None]] = {}


class DigestCache:
    """File digests remembered against their stat data (size, mtime, ctime, inode), as git's
    index does, so that an unchanged source is not read again.

    A file changed within the clock's resolution of when its digest was recorded could keep
    its stat data ("racily clean" in git's words): such entries are never trusted, and are
    hashed again until they are old enough. Saved by rename, so concurrent runs never see half
    a file; the last writer wins, which at worst costs a re-hash.
    """

    VERSION = 1
    RACY_NS = 2_000_000_000

    def __init__(self, file: Path) -> None:
        self.file = file
        pending = _saving.pop(str(file), None)
        if pending is not None:  # this process's last save of it, still being written
            pending()
        self.changed = False
        self.hashed = 0  # files hashed anew (not answered from their stat data) by this run
        try:
            data = json.loads(file.read_text())
            valid = data.get("version") == self.VERSION
            self.entries: dict[str, list[Any]] = data["entries"] if valid else {}
            self.stamp: int = data["stamp"] if valid else 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries, self.stamp = {}, 0

    def digest(self, path: Path) -> str:
        key = os.path.abspath(path)
        watch.seen(key)
        st = os.stat(key)
        stat = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        entry = self.entries.get(key)
        if entry is not None and entry[:4] == stat and \
                max(st.st_mtime_ns, st.st_ctime_ns) < self.stamp - self.RACY_NS:
            return str(entry[4])
        digest = file_digest(key)
        self.entries[key] = [*stat, digest]
        self.changed = True
        self.hashed += 1
        return digest

    def save(self, beside: bool = False) -> None:
        """Write the cache if a digest was added; with ``beside``, on a thread of its own
        (``engine.later``: the bytes are taken now, so later digests go to a later save)."""
        if not self.changed:
            return
        data = {"version": self.VERSION, "stamp": time.time_ns(), "entries": self.entries}
        text = json.dumps(data, separators=(",", ":")).encode()
        self.changed = False
        if beside:
            _saving[str(self.file)] = later.soon(user_cache.write_cache, self.file, text)
        else:
            user_cache.write_cache(self.file, text)
