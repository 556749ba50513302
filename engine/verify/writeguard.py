"""Where Landlock is unavailable: notice, after the run, that a case wrote where it must not.

The folders a case must leave alone (the store paths it runs from, the plan's folder) are
snapshotted before and after the case: every entry's type, mode, size, inode, mtime and ctime.
What appeared, disappeared or changed is reported, and the case fails. This detects rather than
prevents, cannot see the store's own state folder (recipe writes its outcome cache there during
the run), and cannot tell which of the cases running at the same time made a change: each of
them fails, and ``Guard.alone`` says whether the blame is certain. It is the fallback only.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

_SKIP_NAMES = {".git", ".hg", ".svn"}  # version control data is not a project's sources

Entry = tuple[int, int, int, int, int]  # mode, size, inode, mtime_ns, ctime_ns

_running: dict[int, bool] = {}  # guards of the cases running now -> another case ran meanwhile
_running_lock = threading.Lock()


class Guard:
    """Watch folders over one case's run: ``Guard(...)`` before it starts, ``changes()`` once
    it has ended."""

    def __init__(self, roots: Sequence[Path], skip: Sequence[Path] = ()) -> None:
        self.roots, self.skip = roots, skip
        self.alone = True  # no other watched case ran at any time during this one
        with _running_lock:  # registered before the snapshot: a neighbour's write is seen
            for key in _running:
                _running[key] = True
            _running[id(self)] = bool(_running)
        self.before = Snapshot(roots, skip)

    def changes(self) -> list[str]:
        try:
            return self.before.changes(Snapshot(self.roots, self.skip))
        finally:
            with _running_lock:
                self.alone = not _running.pop(id(self))


class Snapshot:
    """The state of every entry below some folders, skipping the folders ``skip``."""

    def __init__(self, roots: Iterable[Path], skip: Iterable[Path] = ()) -> None:
        self.entries: dict[str, Entry] = {}
        skipped = {os.path.abspath(p) for p in skip}
        for root in roots:
            self._walk(os.path.abspath(root), skipped)

    def changes(self, later: Snapshot) -> list[str]:
        """The paths that appeared, disappeared or changed between this snapshot and ``later``.
        A folder whose times alone moved is listed only when no entry below it is (a file was
        created and removed again)."""
        changed, touched = [], []
        for path in sorted(self.entries.keys() | later.entries.keys()):
            before, after = self.entries.get(path), later.entries.get(path)
            if before == after:
                continue
            if before is not None and after is not None and stat.S_ISDIR(before[0]) \
                    and stat.S_ISDIR(after[0]) and before[:3] == after[:3]:
                touched.append(path)
            else:
                changed.append(path)
        for folder in touched:
            if not any(path.startswith(folder + os.sep) for path in changed):
                changed.append(folder)
        return sorted(changed)

    def _walk(self, path: str, skipped: set[str]) -> None:
        try:
            info = os.lstat(path)
        except OSError:
            return
        self.entries[path] = _entry(info)
        if not stat.S_ISDIR(info.st_mode):
            return
        try:
            with os.scandir(path) as it:
                children = [(e.name, e.path) for e in it]
        except OSError:
            return
        for name, child in children:
            if name in _SKIP_NAMES or child in skipped:
                continue
            self._walk(child, skipped)


def _entry(info: os.stat_result) -> Entry:
    size = 0 if stat.S_ISDIR(info.st_mode) else info.st_size
    return (info.st_mode, size, info.st_ino, info.st_mtime_ns, info.st_ctime_ns)
