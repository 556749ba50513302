"""Space kept in reserve for a full disk (Nix's gc-reserved-space).

The store keeps ``.recipe/reserve``, a file of ``RESERVE`` bytes. On a full file system every
command fails with one clear line, but a collection first gives the reserve back, so that the
database can open and record its deletions; the reserve is taken again once there is room.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from engine.store.db import Database, StoreFull, no_space

RESERVE = 256 * 1024


def open_database(state: Path, use_reserve: bool) -> Database:
    """The store's database; ``use_reserve``: for a collection, which may spend the reserve
    (and takes it back itself when it is done)."""
    reserve = state / "reserve"
    try:
        db = Database(state / "db.sqlite")
    except StoreFull:
        if not (use_reserve and reserve.exists()):
            raise
        reserve.unlink(missing_ok=True)
        db = Database(state / "db.sqlite")
    if not use_reserve:
        take_reserve(state)
    return db


def give_reserve(state: Path) -> None:
    """Before a collection deletes anything on a full disk: room for the database to write."""
    if no_space(state):
        with contextlib.suppress(OSError):
            (state / "reserve").unlink()


def take_reserve(state: Path) -> None:
    reserve = state / "reserve"
    if os.path.exists(reserve) and os.path.getsize(reserve) == RESERVE:
        return
    temp = state / "tmp" / f"{os.getpid()}-reserve"  # a dead writer's is cleaned with its tmp
    try:
        with open(temp, "wb") as f:
            f.write(bytes(RESERVE))
        os.replace(temp, reserve)
    except OSError:
        with contextlib.suppress(OSError):
            temp.unlink()  # no room yet: try again next time
