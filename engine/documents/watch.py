"""What loading a plan looked at: every document read, folder listed and path checked.

The loader reports each of them here; ``engine.documents.cached`` keeps a loaded plan together
with the stat data of all of them, and trusts it for as long as none has changed (as git's
index trusts stat data). Nothing is recorded unless a recording is open.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

# (mode, size, mtime_ns, ctime_ns, inode), or None for a path that does not exist
Stat = tuple[int, int, int, int, int] | None

_recording: dict[str, Stat] | None = None


def stat_of(path: str) -> Stat:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def seen(path: str | os.PathLike[str]) -> None:
    """The loader read, listed or checked ``path`` (a file, a folder, a symlink, or nothing)."""
    if _recording is not None:
        key = os.path.abspath(path)
        if key not in _recording:
            _recording[key] = stat_of(key)


@contextmanager
def recording() -> Iterator[dict[str, Stat]]:
    global _recording
    outer, _recording = _recording, {}
    try:
        yield _recording
    finally:
        _recording = outer
