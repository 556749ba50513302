"""Whether a store still holds some paths valid and rooted, without opening it.

``Store.open`` creates the layout, opens (and migrates) the database and cleans what dead
processes left: right for a command that builds, too much for one that only needs to learn that
nothing is to be done. ``hold_valid`` is the reading half of a realise, with the same protocol
as ``Store.add_temp_roots``: temporary roots first, under the shared gc lock, validity second.
It never writes the database. ``LazyStore`` reads the action cache and the blobs the same way,
and opens the store only when something is to be written.
"""

from __future__ import annotations

from pathlib import Path

from engine.store import db, locks, temproots
from engine.store.cas import Cas
from engine.store.names import STATE


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


class LazyStore:
    """The store at ``root``: action results and blobs are read through its CAS alone; any
    other attribute is the opened store's (``Store.open``, on first use)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state = self.root / STATE
        self._cas = Cas(self.state, self._temp)
        self._store: object = None

    def get_action(self, key: str) -> dict | None:
        return self._cas.get_action(key)

    def promise_file(self, key: str) -> str:
        return self._cas.promise_file(key)

    def read_blob(self, digest: str) -> bytes:
        return self._cas.read_blob(digest)

    def copy_blob(self, digest: str, dest: Path, executable: bool = False) -> None:
        self._cas.copy_blob(digest, Path(dest), executable)

    def temp_dir(self, label: str) -> Path:
        """A new empty folder in the store's temporary folder, as ``Store.temp_dir`` makes
        one, without opening the store (whose next ``open`` removes it once we are gone)."""
        import tempfile

        tmp = self.state / "tmp"
        return Path(tempfile.mkdtemp(prefix=locks.own_temp(tmp), suffix=f"-{label}", dir=tmp))

    def __getattr__(self, name: str) -> object:
        if self._store is None:
            from engine.store import Store

            self._store = Store.open(self.root)
        return getattr(self._store, name)

    def _temp(self, suffix: str) -> tuple[int, str]:
        raise AssertionError("LazyStore writes through the opened store")


def describe(root: Path) -> dict[str, int] | None:
    """``{"schema": version, "paths": valid paths, "bytes": size on disk}`` of the store at
    ``root``, read without opening it (nothing is created, migrated or cleaned); None when there
    is no store there. ``recipe doctor`` shows it."""
    import os
    import sqlite3

    file = Path(root) / STATE / "db.sqlite"
    if not file.is_file():
        return None
    conn = sqlite3.connect(f"{file.absolute().as_uri()}?mode=ro", uri=True, timeout=10)
    try:
        schema = conn.execute("PRAGMA user_version").fetchone()[0]
        try:
            paths = conn.execute("SELECT count(*) FROM paths").fetchone()[0]
        except sqlite3.DatabaseError:  # not (yet) a recipe database: doctor says its schema
            paths = 0
    finally:
        conn.close()
    size = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                size += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:
                pass  # removed meanwhile (a collection, a build's temporary file)
    return {"schema": schema, "paths": paths, "bytes": size}
