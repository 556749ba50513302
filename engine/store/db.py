"""The store's database: it alone runs SQL, the statements of ``engine.store.sql``.

SQLite in WAL mode (readers never wait for the writer), a busy timeout for writers that meet
each other, explicit transactions (``BEGIN IMMEDIATE`` for writes, so two writers queue at
the start rather than fail at commit), one connection per thread. ``PRAGMA user_version`` is
the schema version; a newer one is refused. ``PRAGMA application_id`` marks the file as a
recipe store so that another program's SQLite file is never taken for one.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Set
from contextlib import contextmanager
from pathlib import Path

from engine.store import sql
from engine.store.errors import StoreError

TYPE_CHECKING = False  # not typing's: a no-op realise imports this module, and not typing
if TYPE_CHECKING:  # constructed in the methods that return them: ``peek`` needs neither
    from engine.store.nar import Entry
    from engine.store.records import PathInfo

SCHEMA_VERSION = 2
APPLICATION_ID = int.from_bytes(b"rcpe", "big")
BUSY_TIMEOUT_MS = 60_000

_FREE_SPACE = "free space on the store's file system, then run the command again"


class StoreFull(StoreError):
    """The store's file system has no space left."""


def no_space(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _to_wal(conn: sqlite3.Connection) -> None:
    """Switch the database to WAL (persistent; not allowed in a transaction). The switch
    takes an exclusive lock, and SQLite answers "database is locked" at once, without its busy
    handler, to a connection that meets another one switching: a recipe that found the new
    database file of another recipe creating the store at the same moment. Wait as a busy
    handler would."""
    deadline, delay = time.monotonic() + BUSY_TIMEOUT_MS / 1000, 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(2 * delay, 0.05)


class Database:
    """The store's SQLite database, opened (and created or checked) at construction."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        try:
            self._prepare()
        except (sqlite3.DatabaseError, StoreError) as error:
            self.close()
            if no_space(file.parent):
                raise StoreFull(f"cannot open the store database {file}: its file system "
                                "is full", "free space on it ('recipe store gc' can run on a "
                                "full disk), then run the command again") from None
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"{file} is not a usable store database ({error})",
                             "point --store at a recipe store, or at an empty folder") from None

    def close(self) -> None:
        with self._guard:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    # -- connections and transactions -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transactions; every one below is explicit.
            conn = sqlite3.connect(self.file, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False,
                                   cached_statements=64)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints under WAL
            self._local.conn = conn
            with self._guard:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            # SQLITE_FULL, SQLITE_IOERR, SQLITE_READONLY, SQLITE_CORRUPT: nothing happened.
            _rollback(conn)
            raise StoreError(f"cannot write the store database {self.file}: {error}",
                             _FREE_SPACE if no_space(self.file.parent) else
                             "check the store's file system and permissions") from None

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several queries."""
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _prepare(self) -> None:
        conn = self._conn()
        # A store of this version, as every open but its first finds it: nothing to create
        # or upgrade, and its journal has been WAL (a persistent setting) since it was made.
        # Two reads, not a write transaction (which waits for the write lock).
        if conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID and \
                conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
            return
        _to_wal(conn)
        with self._write() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            app = c.execute("PRAGMA application_id").fetchone()[0]
            tables = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app != APPLICATION_ID and (app or tables):
                raise StoreError(f"{self.file} is an SQLite database of another program",
                                 "point --store at a recipe store, or at an empty folder")
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store database {self.file} has schema version {version}, newer than "
                    f"this recipe understands ({SCHEMA_VERSION})",
                    "use the newer recipe that wrote it, or another store folder")
            if version == 0:
                for statement in sql.SCHEMA:
                    c.execute(statement)
                c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            elif version == 1:
                for statement in sql.KEEPS:
                    c.execute(statement)
            if version < SCHEMA_VERSION:
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- paths ------------------------------------------------------------------------------

    def is_valid(self, name: str) -> bool:
        return self._conn().execute(sql.ID, (name,)).fetchone() is not None

    def info(self, name: str) -> PathInfo | None:
        with self._read() as c:
            row = c.execute(sql.PATH, (name,)).fetchone()
            if row is None:
                return None
            refs = tuple(r for (r,) in c.execute(sql.REFS_OF, (row[0],)))
        from engine.store.records import PathInfo
        return PathInfo(name, row[1], row[2], row[3], refs)

    def infos(self) -> list[PathInfo]:
        with self._read() as c:
            return _infos(c)

    def history(self) -> list[tuple[str, str]]:
        """(name, derivation) of every valid path, the most recently registered first."""
        return self._conn().execute(sql.HISTORY).fetchall()

    def count(self) -> int:
        return int(self._conn().execute(sql.COUNT).fetchone()[0])

    def names(self) -> set[str]:
        # Only the name: read from its unique index alone, a quarter of the time that
        # reading every row took (``Store.open`` asks, to clean what dead builds left).
        return {name for (name,) in self._conn().execute(sql.NAMES)}

    def add_path(self, info: PathInfo, entries: Iterable[Entry], log: bytes,
                 keeps: Iterable[str] = ()) -> None:
        """Make ``info`` valid with its references, manifest, log and the cache items it keeps
        alive, all or nothing."""
        with self._write() as c:
            if c.execute(sql.ID, (info.name,)).fetchone():
                raise StoreError(f"{info.name} is already a valid store path",
                                 "a valid path never changes; register under another name")
            ref_ids = []
            for ref in info.references:
                if ref != info.name:
                    row = c.execute(sql.ID, (ref,)).fetchone()
                    if row is None:
                        raise StoreError(f"{info.name} refers to {ref}, which is not valid",
                                         "register the paths it refers to first")
                    ref_ids.append(row[0])
            cur = c.execute(sql.INSERT_PATH, (info.name, info.derivation, info.nar_hash, info.size))
            path_id = cur.lastrowid
            if info.name in info.references:
                ref_ids.append(path_id)
            c.executemany(sql.INSERT_REF, ((path_id, ref) for ref in ref_ids))
            c.executemany(sql.INSERT_FILE, ((path_id, *entry) for entry in entries))
            c.execute(sql.INSERT_LOG, (path_id, log))
            c.executemany(sql.INSERT_KEEP, ((path_id, item) for item in keeps))

    def add_keeps(self, name: str, keeps: Iterable[str]) -> None:
        """Let valid path ``name`` keep more cache items alive (nothing when it is not valid)."""
        with self._write() as c:
            row = c.execute(sql.ID, (name,)).fetchone()
            if row is not None:
                c.executemany(sql.INSERT_KEEP, ((row[0], item) for item in keeps))

    def kept(self, names: Set[str] | None = None) -> tuple[set[str], set[str]]:
        """The action keys and the blob digests that a valid path (of ``names``, when given)
        keeps alive."""
        found: tuple[set[str], set[str]] = (set(), set())
        for kind, into in zip(("action:", "blob:"), found, strict=True):
            for name, items in self._conn().execute(sql.KEPT, (kind,)):
                if names is None or name in names:
                    into.update(items.split("\n"))
        return found

    def remove_path(self, name: str) -> None:
        """Make ``name`` invalid. Its referrers must be gone first (the keys say so)."""
        with self._write() as c:
            row = c.execute(sql.ID, (name,)).fetchone()
            if row is not None:
                for statement in sql.DELETE:
                    c.execute(statement, row)

    def manifest(self, name: str) -> list[Entry]:
        with self._read() as c:
            row = c.execute(sql.ID, (name,)).fetchone()
            if row is None:
                return []
            from engine.store.nar import Entry
            return [Entry(*r) for r in c.execute(sql.FILES, row)]

    def valid_names(self) -> list[str]:
        """Every valid path's name, in the order of their ids."""
        count, names = self._conn().execute(sql.VALID).fetchone()
        found = names.split("\n") if count else []
        if len(found) != count:  # a name with a newline: not one the store registered
            found = [name for name, in self._conn().execute(sql.NAMES + " ORDER BY id")]
        return found

    def nar_hashes(self) -> dict[str, str]:
        """Every valid path's NAR hash, by name."""
        count, names, nars = self._conn().execute(sql.RECORDED).fetchone()
        names, nars = (names.split("\n"), nars.split("\n")) if count else ([], [])
        if len(names) != count or len(nars) != count:  # a newline in one: not the store's
            return dict(self._conn().execute("SELECT name, nar_hash FROM paths").fetchall())
        return dict(zip(names, nars, strict=True))

    def all_shapes(self) -> str:
        """Every manifest's shape (``fingerprint``'s text), concatenated in the order of the
        paths' ids."""
        return self._conn().execute(sql.ALL_SHAPES).fetchone()[0] or ""

    def shapes(self) -> dict[str, str]:
        """Each valid path's shape, for a store whose shapes differ from its fingerprints."""
        return dict(self._conn().execute(sql.SHAPES).fetchall())

    def log(self, name: str) -> bytes | None:
        row = self._conn().execute(sql.LOG, (name,)).fetchone()
        return None if row is None else bytes(row[0])

    # -- roots ------------------------------------------------------------------------------

    def set_roots(self, roots: dict[str, str]) -> None:
        """Point each root at its path, all or nothing."""
        with self._write() as c:
            for root, name in roots.items():
                row = c.execute(sql.ID, (name,)).fetchone()
                if row is None:
                    raise StoreError(f"cannot root {name}: it is not a valid store path",
                                     "realise it first")
                c.execute(sql.SET_ROOT, (root, row[0]))

    def remove_root(self, root: str) -> int:
        """Remove the root ``root`` and every root below it (``root/...``); how many."""
        with self._write() as c:
            return c.execute(sql.DELETE_ROOT, (root,)).rowcount

    def roots(self) -> dict[str, str]:
        return dict(self._conn().execute(sql.ROOTS).fetchall())

    def graph(self) -> tuple[dict[str, int], dict[str, set[str]], dict[str, str]]:
        """One snapshot of sizes by name, references by name, and roots."""
        with self._read() as c:
            sizes = {name: size for _id, name, _d, _n, size in c.execute(sql.PATHS)}
            refs: dict[str, set[str]] = {name: set() for name in sizes}
            for referrer, reference in c.execute(sql.ALL_REFS):
                refs[referrer].add(reference)
            roots = dict(c.execute(sql.ROOTS).fetchall())
        return sizes, refs, roots


def _infos(c: sqlite3.Connection) -> list[PathInfo]:
    """Every valid path, read in the caller's transaction."""
    rows = c.execute(sql.PATHS).fetchall()
    refs: dict[str, list[str]] = {}
    for referrer, reference in c.execute(sql.ALL_REFS):
        refs.setdefault(referrer, []).append(reference)
    from engine.store.records import PathInfo
    return [PathInfo(name, drv, nar, size, tuple(sorted(refs.get(name, ()))))
            for _id, name, drv, nar, size in rows]


def peek(file: Path, names: Iterable[str], roots: dict[str, str]) -> bool:
    """Without writing anything: whether ``file`` is a store database of this schema in which
    every name in ``names`` is valid and every root in ``roots`` points at its name. Any
    surprise answers False; the caller then opens the store the usual way, which explains it."""
    names = list(names)
    try:
        # mode=rw: never create a database here (a read-only open could not use the WAL index)
        conn = sqlite3.connect(f"{file.absolute().as_uri()}?mode=rw", uri=True,
                               timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID or \
                conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            return False
        conn.execute("BEGIN")  # one snapshot for both questions
        marks = ",".join("?" * len(names))
        valid = {n for (n,) in conn.execute(f"SELECT name FROM paths WHERE name IN ({marks})",
                                            names)}
        marks = ",".join("?" * len(roots))
        found = dict(conn.execute(f"SELECT r.name, p.name FROM roots r JOIN paths p "
                                  f"ON p.id = r.path WHERE r.name IN ({marks})", list(roots)))
        conn.execute("COMMIT")
        return valid == set(names) and found == roots
    except sqlite3.Error:
        return False
    finally:
        conn.close()
