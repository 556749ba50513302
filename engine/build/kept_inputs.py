"""The declared inputs a build staged, kept for the next build of the same project and target.

Staging links every declared input out of the CAS into the build folder's ``w/`` (110 links,
each checked against its blob's mark: ~3 ms of a one-file edit's 15 before gcc starts), and
the edit that follows needs all of them again but one. So a build's ``w/`` is not removed with
its folder: it is kept in the store's ``.recipe/inputs/<name>-<version>-<target>`` (``give``),
and the next build of that label takes it (``take``: a rename, so two builds never share one)
and keeps of it exactly what it would have linked itself: a file at the place of a declared
input that *is* that input's blob — the same inode as the CAS's file of the digest the
derivation names, whose mark says it was hashed to that digest and is untouched since
(``engine.store.marks``, as a link out of the CAS is checked). Everything else in it goes: a
file of another digest, an input no longer declared (an undeclared header still fails), a
folder no input is in, anything that is not a plain file. What is missing is staged as before.
So the folder a tool sees is the one a fresh staging makes, for three system calls a kept input
(two stats and the mark) and no link.

The kept folder holds the build folder's ``w/`` and, after a build that registered its path,
the objects its actions wrote (``o/``: links of their blobs): removing them with the build
folder (a hundred unlinks, ~1.5 ms on this file system) would delay the command's answer; the
next build of the label removes them on a thread while its first tool runs.

A build with a build script is neither given one nor keeps its own: a script may write in
``w/``. ``store gc`` drops every kept folder (their links would keep collected blobs' bytes on
disk).
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from engine.store import Store

#: Where ``take`` leaves the rest of the kept folder in the build folder.
REST = ".kept"


def take(store: Store, name: str, staging: str) -> bool:
    """Move the inputs kept for the label of derivation ``name`` to ``staging/w`` (which must
    not exist); False if none are kept (or another build took them first), or if what was
    there is no folder of its own (a link to one elsewhere is removed, never walked: sorting
    it out deletes files). The rest of what was kept (the last build's objects) is left in
    ``staging/.kept``, for ``discard_rest`` once this build's first tool runs."""
    kept = f"{staging}/{REST}"
    if not _take(store.kept_inputs(name), kept):
        return False
    return _take(f"{kept}/w", f"{staging}/w")


def discard_rest(store: Store, staging: str) -> None:
    """Remove what ``take`` left of the kept folder, on a thread while a tool runs (~100 links:
    beside staging, it delayed the first tool by ~1 ms)."""
    if os.path.lexists(f"{staging}/{REST}"):
        store.discard(Path(staging, REST))


def _take(source: str, target: str) -> bool:
    try:
        os.rename(source, target)
    except OSError:
        return False
    try:
        if stat.S_ISDIR(os.lstat(target).st_mode):
            return True
        os.unlink(target)
    except OSError:
        pass
    return False


def sort_out(store: Store, w: str, inputs: dict[str, str]) -> tuple[set[str], set[str]]:
    """Remove from the taken folder ``w`` everything a fresh staging of ``inputs`` (relative
    path -> hex digest) would not put there; the inputs that stay, and the folders (as
    ``w/rel`` paths) that are there."""
    kept: set[str] = set()
    folders: set[str] = set()
    needed = {os.path.dirname(rel) for rel in inputs}
    needed |= {parent for rel in needed for parent in _parents(rel)}
    try:
        _sort(store, w, "", inputs, needed, kept, folders)
    except OSError:  # something in it that cannot be read or removed: staged anew instead,
        store.discard(Path(w))  # into a new folder (this one moved into tmp/ at once)
        return set(), set()
    return kept, folders


def _sort(store: Store, w: str, at: str, inputs: dict[str, str], needed: set[str],
          kept: set[str], folders: set[str]) -> None:
    folders.add(f"{w}/{at}".rstrip("/"))
    with os.scandir(f"{w}/{at}" if at else w) as entries:
        listed = list(entries)
    for entry in listed:
        rel = f"{at}/{entry.name}" if at else entry.name
        if entry.is_dir(follow_symlinks=False):
            if rel in needed:
                _sort(store, w, rel, inputs, needed, kept, folders)
            else:
                shutil.rmtree(entry.path)
        elif rel in inputs and entry.is_file(follow_symlinks=False) and \
                store.is_linked_blob(entry.path, inputs[rel], entry.stat(follow_symlinks=False)):
            kept.add(rel)
        else:
            os.unlink(entry.path)


def give(store: Store, name: str, staging: str, objects: bool) -> bool:
    """Keep the finished build's ``w/`` for the next build of the label of ``name``, and with
    ``objects`` (a build that registered its path) the files its actions wrote outside the
    output tree: put together and renamed into place whole. Whether they were kept: not when
    some are kept already (the build folder's removal takes them)."""
    bundle = f"{staging}/.give"
    try:
        os.mkdir(bundle)
        for entry in os.listdir(staging) if objects else ["w"]:
            if entry not in ("out", "tmp", "d", ".give", REST):
                os.rename(f"{staging}/{entry}", f"{bundle}/{entry}")
        os.rename(bundle, store.kept_inputs(name))
    except OSError:
        return False
    return True


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]
