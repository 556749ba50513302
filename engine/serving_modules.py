"""recipe's own modules and schemas as the server found them, and whether one changed since (an
upgrade, an edit of a checkout installed in place): then the server must not run another
command with what it imported, and leaves (``engine.serving``).

Every command a spare takes asks. A stat of each file (~180) took 0.9 ms of each command's
time; an inotify watch of their folders, set before the files are read and inherited by every
spare, tells in one non-blocking read that nothing happened since the last question, and only
an event (any: an upgrade's new file, a ``touch``, a full event queue) makes the spare compare
every file's stat data again. Where inotify cannot be had (a container's limit), every question
compares them, as before.
"""

from __future__ import annotations

import os
import time

import engine
from engine import watch

#: What may mark a module changed: its bytes, its stat data, its name, its folder's.
_EVENTS = ("MODIFY", "ATTRIB", "CLOSE_WRITE", "MOVED_FROM", "MOVED_TO", "CREATE", "DELETE",
           "DELETE_SELF", "MOVE_SELF")


class Modules:
    """Made by the server before it imports the commands' modules."""

    def __init__(self) -> None:
        files = _files()
        # The watch first: a change while the files are read shows.
        self._watch = _watch(sorted({os.path.dirname(file) for file in files}))
        self._taken = time.time_ns()
        self._stamps = _stamps(files)
        self._changed = False  # once changed, always (its event was read)

    def known(self, racy_ns: int) -> dict[str, watch.Stat]:
        """The stat data of the files last changed ``racy_ns`` or more before the server read
        it: a record of a run (``engine.memo``) takes them without a stat of its own. A later
        change shows both here (the server leaves) and in the stat data itself."""
        limit = self._taken - racy_ns
        return {file: stat for file, stat in self._stamps.items()
                if stat is not None and max(stat[2], stat[3]) < limit}

    def changed(self) -> bool:
        """Whether a module or schema changed since the server started."""
        if self._changed:
            return True
        if self._watch is not None:
            try:
                if not self._watch.read(timeout=0):
                    return False
            except (OSError, ValueError):  # the watch is unusable: compare, as without one
                self._watch = None
        self._changed = _stamps(list(self._stamps)) != self._stamps
        return self._changed


def _files() -> list[str]:
    """Every module and schema of recipe's, loaded or not: a child may import more. (An
    upgrade that only adds modules changes some that import them.)"""
    return [os.path.join(folder, name)
            for folder, _dirs, names in os.walk(os.path.dirname(engine.__file__))
            for name in names if name.endswith((".py", ".json"))]


def _watch(folders: list[str]) -> object | None:
    try:
        from inotify_simple import INotify, flags
    except ImportError:
        return None
    mask = 0
    for name in _EVENTS:
        mask |= getattr(flags, name)
    try:
        watch = INotify(nonblocking=True)
    except OSError:
        return None
    try:
        for folder in folders:
            watch.add_watch(folder, mask)
    except OSError:  # fs.inotify.max_user_watches reached, say
        watch.close()
        return None
    return watch


def _stamps(files: list[str]) -> dict[str, watch.Stat]:
    """Stat data of ``files`` as ``engine.watch`` has it (None: missing)."""
    return {file: watch.stat_of(file) for file in files}
