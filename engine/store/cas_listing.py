"""The CAS and the action cache listed for a collection (``store gc``, ``engine.store.gc``):
every entry with its size, its last use and, for an action result, the blobs it names."""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

from engine.store.cas import DIGEST, KEY, Cas, _json

#: An action result or a blob, as ``entries`` lists it: ``kind`` "action" or "blob"; ``name``,
#: the action key or the blob's hex digest; ``size`` in bytes; ``mtime`` (for an action, its
#: last use); ``outputs``, an action's blob digests; ``path``.
CacheEntry = namedtuple("CacheEntry", "kind name size mtime outputs path")


def entries(cas: Cas, promised: list[str] | None = None) -> list[CacheEntry]:
    """Every action result and blob of ``cas``, in no particular order. Files that are
    neither (a stray note, a half-written temporary) are not the cache's: they are left alone;
    ``promised`` gets the paths of the results' promise files (``engine.store.promises``). One
    ``scandir`` per folder and plain strings: a ``Path`` joined and ``stat``-ed per entry cost
    90 % of a ``gc --dry-run`` of 100,000 blobs."""
    found = []
    for folder, kind in ((cas.actions, "action"), (cas.blobs, "blob")):
        for sub in _listdir(folder):
            try:
                with os.scandir(f"{folder}/{sub}") as listing:
                    files = list(listing)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for file in files:
                if kind == "action":
                    name = file.name.removesuffix(".json")
                    ours = file.name.endswith(".json") and KEY.fullmatch(name)
                else:
                    name = file.name
                    ours = DIGEST.fullmatch(name)
                if not ours or sub != name[:2]:
                    if promised is not None and kind == "action" and \
                            file.name.endswith(".promised"):
                        promised.append(file.path)
                    continue
                try:
                    st = file.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                outputs = _outputs(file.path) if kind == "action" else ()
                found.append(CacheEntry(kind, name, st.st_size, st.st_mtime, outputs,
                                        file.path))
    return found


def remove(entry: CacheEntry) -> None:
    """Delete one listed entry (gone already: nothing to do)."""
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        pass


def _outputs(path: str) -> tuple[str, ...]:
    try:
        with open(path, "rb") as f:
            outputs = _json().loads(f.read()).get("outputs", {})
        return tuple(d for d in outputs.values() if isinstance(d, str))
    except (OSError, ValueError, AttributeError):
        return ()


def _listdir(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
