"""What a run depended on: every file read, folder listed and path checked, by stat data.

Loading a plan and deriving from it report each such path here (documents, folders scanned for
sources, sources hashed, compilers and the ``PATH`` folders searched for them; for a verify,
golden files and folders, case inputs, and the runners found, by ``which``). A cache of the
result (``engine.documents.cached``: the loaded plan; ``engine.memo``: a whole no-op realise,
a verify whose outcomes were all cached, a prepared REPL session) keeps the stat data of all
of them and is trusted for as long as none has changed, as git trusts its index. Nothing is
recorded unless a recording is open; a recording opened inside another hands what it saw to
the outer one too.
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
    except (OSError, ValueError):  # ValueError: a name with a NUL, such as ``unknowable``'s
        return None
    return (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def seen(path: str | os.PathLike[str]) -> None:
    """The run read, listed or checked ``path`` (a file, a folder, a symlink, or nothing)."""
    if _recording is not None:
        key = os.path.abspath(path)
        if key not in _recording:
            _recording[key] = stat_of(key)


def which(program: str) -> str | None:
    """``shutil.which(program)``, with what its answer depends on seen: each ``PATH`` folder
    searched (a program put in one searched first changes it), and the program found, and the
    file it links to. A name with a ``/`` is that path alone."""
    import shutil

    if _recording is not None:
        if os.sep in program:
            seen(program)
        else:
            for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
                seen(folder or ".")
    found = shutil.which(program)
    if found is not None and _recording is not None:
        seen(found)
        seen(os.path.realpath(found))
    return found


#: The stat data of something that has none: a recording holding it is never "unchanged".
UNKNOWABLE: Stat = (-1, -1, -1, -1, -1)


def unknowable(what: str) -> None:
    """The run relied on something no stat data tells the change of (the kernel's answer to a
    probe): nothing that recorded it may be remembered."""
    if _recording is not None:
        _recording[f"\0{what}"] = UNKNOWABLE


def merge(recorded: dict[str, Stat]) -> None:
    """What an earlier recording saw, validated unchanged by a cache that answered from it."""
    if _recording is not None:
        for key, stat in recorded.items():
            _recording.setdefault(key, stat)


@contextmanager
def recording() -> Iterator[dict[str, Stat]]:
    global _recording
    outer, _recording = _recording, {}
    try:
        yield _recording
    finally:
        inner, _recording = _recording, outer
        if outer is not None:
            for key, stat in inner.items():
                outer.setdefault(key, stat)


def unchanged(recorded: dict[str, Stat], stamp_ns: int, racy_ns: int) -> bool:
    """Every path still has its recorded stat data, and none was changed so close to
    ``stamp_ns`` (when the recording began) that a later change could keep the same data."""
    limit = stamp_ns - racy_ns
    for path, stat in recorded.items():
        if stat_of(path) != stat:
            return False
        if stat is not None and max(stat[2], stat[3]) >= limit:
            return False
    return True
