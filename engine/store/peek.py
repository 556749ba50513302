"""Whether a store still holds some paths valid and rooted, without opening it.

``Store.open`` creates the layout, opens (and migrates) the database and cleans what dead
processes left: right for a command that builds, too much for one that only needs to learn that
nothing is to be done. ``hold_valid`` is the reading half of a realise, with the same protocol
as ``Store.add_temp_roots``: temporary roots first, under the shared gc lock, validity second.
It never writes the database.
"""

from __future__ import annotations

from pathlib import Path

from engine.store import db, locks, temproots

STATE = ".recipe"  # the store's state folder (see engine/store/store.py)


def hold_valid(root: Path, names: list[str], roots: dict[str, str]) -> bool:
    """Keep ``names`` from any collection for as long as this process lives, then tell
    whether all of them are valid and each root in ``roots`` points at its name. False when
    anything is unusual (no store there, another schema, a lock that cannot be taken)."""
    state = Path(root) / STATE
    if not (state / "db.sqlite").is_file():
        return False
    try:
        with locks.locked(state / "gc.lock", shared=True):
            temproots.TempRoots(state / "tmp").add("path", names)
    except OSError:
        return False
    return db.peek(state / "db.sqlite", names, roots)
