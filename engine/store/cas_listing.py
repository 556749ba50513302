"""The CAS and the action cache listed for a collection (``store gc``, ``engine.store.gc``):
every entry with its size, its last use and, for an action result, the blobs it names."""

from __future__ import annotations

import functools
import os
import re
from collections import namedtuple
from pathlib import Path

from engine.store.cas import DIGEST, KEY, Cas, _json

#: An action result or a blob, as ``entries`` lists it: ``kind`` "action" or "blob"; ``name``,
#: the action key or the blob's hex digest; ``size`` in bytes; ``mtime`` (for an action, its
#: last use); ``outputs``, an action's blob digests; ``path``; ``held``, a compile manifest's
#: candidates, each ``(key, its outputs' digests)``: a candidate's blobs live while its own key
#: does (``engine.store.gc.cache_garbage``), not for as long as its manifest.
CacheEntry = namedtuple("CacheEntry", "kind name size mtime outputs path held")


def entries(cas: Cas, promised: list[str] | None = None) -> list[CacheEntry]:
    """Every action result and blob of ``cas``, in no particular order. Files that are
    neither (a stray note, a half-written temporary) are not the cache's: they are left alone;
    ``promised`` gets the paths of the results' promise files (``engine.store.promises``). One
    ``scandir`` per folder and plain strings: a ``Path`` joined and ``stat``-ed per entry cost
    90 % of a ``gc --dry-run`` of 100,000 blobs."""
    found: list[CacheEntry] = []
    for sub in _listdir(cas.actions):
        for file in _scan(f"{cas.actions}/{sub}"):
            name = file.name.removesuffix(".json")
            if not (file.name.endswith(".json") and KEY.fullmatch(name) and sub == name[:2]):
                if promised is not None and file.name.endswith(".promised"):
                    promised.append(file.path)
                continue
            try:
                st = file.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            own, held = _outputs(file.path)
            found.append(CacheEntry("action", name, st.st_size, st.st_mtime, own, file.path,
                                    held))
    entry = tuple.__new__  # a CacheEntry without namedtuple's __new__, a Python call
    for sub in _listdir(cas.blobs):
        if not _FAN_OUT.fullmatch(sub):
            continue
        files = _scan(f"{cas.blobs}/{sub}")
        names = [file.name for file in files]
        # One match over the folder's names, in C: a folder whose names are all blob names
        # of it (as always) skips checking them one by one (a tenth of the listing's time).
        every = _names(sub).fullmatch("\n".join(names)) is not None
        for file, name in zip(files, names, strict=True):
            if not every and not (DIGEST.fullmatch(name) and name[:2] == sub):
                continue
            try:
                st = file.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            found.append(entry(CacheEntry, ("blob", name, st.st_size, st.st_mtime, (),
                                            file.path, ())))
    return found


def remove(entry: CacheEntry) -> None:
    """Delete one listed entry (gone already: nothing to do)."""
    try:
        os.unlink(entry.path)
    except FileNotFoundError:
        pass


Held = tuple[str, tuple[str, ...]]


def _outputs(path: str) -> tuple[tuple[str, ...], tuple[Held, ...]]:
    """An action entry's own outputs and its candidates' (``CacheEntry.held``)."""
    try:
        with open(path, "rb") as f:
            result = _json().loads(f.read())
        outputs = result.get("outputs", {})
        own = tuple(d for d in outputs.values() if isinstance(d, str))
        return own, tuple(_held(result.get("candidates")))
    except (OSError, ValueError, AttributeError):
        return (), ()


def _held(candidates: object) -> list[Held]:
    held = []
    for c in candidates if isinstance(candidates, list) else ():
        outputs = c.get("outputs") if isinstance(c, dict) else None
        if isinstance(outputs, dict) and isinstance(c.get("key"), str):
            held.append((c["key"], tuple(d for d in outputs.values() if isinstance(d, str))))
    return held


_FAN_OUT = re.compile(r"[0-9a-f]{2}")


@functools.cache
def _names(sub: str) -> re.Pattern[str]:
    """Newline-separated blob names of the fan-out folder ``sub``, one or more."""
    one = f"{sub}[0-9a-f]{{62}}"
    return re.compile(f"{one}(?:\n{one})*")


def _scan(folder: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as listing:
            return list(listing)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _listdir(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
