"""The store: immutable, content-hashed paths registered in a database, plus a CAS.

Layout of a store folder ``root``::

    root/<32 base-32 chars>-<label>/   store paths, read-only, every mtime 1
    root/.recipe/db.sqlite             valid paths, references, manifests, logs, roots
    root/.recipe/tmp/                  temporary entries: <pid>-<random>-<label>, and each
                                       process's temporary roots <pid>.roots
    root/.recipe/build/<name>/         the fixed build folder of <name>, used under its lock
    root/.recipe/locks/<name>.lock     one lock per store path (never deleted)
    root/.recipe/gc.lock               shared by builders, exclusive for a collection
    root/.recipe/cas/aa/<sha256>       blobs;  root/.recipe/ac/<k[:2]>/<key>.json  actions
    root/.recipe/logs/                 free for logs of builds that never registered

A path becomes valid in this order (``engine.store.register``): built in ``tmp``, normalised,
hashed, renamed to ``root/<name>``, sealed, and only then inserted in the database (one
transaction), all under the path's lock. A process killed at any step leaves either a temporary
entry (removed once its owner is gone) or an unregistered ``root/<name>`` (removed by the next
``open`` that can take its lock); nothing half-made is ever valid. Names and labels:
``engine.store.names``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from engine.store import check, gc, leftovers, locks, space, temproots
from engine.store import register as registration
from engine.store.base32 import nix_base32
from engine.store.cas import Cas
from engine.store.db import Database
from engine.store.errors import StoreError
from engine.store.names import NAME as _NAME
from engine.store.names import STATE, label_of
from engine.store.names import checked as _checked
from engine.store.names import label as _label
from engine.store.records import Damage, GcReport, PathInfo

_LAYOUT = ("tmp", "locks", "cas", "ac", "logs", "build", "pending", "inputs")
_KEEP_FILES = {".gitkeep", ".gitignore", ".keep"}
_FIX_FOLDER = "pass --store with a recipe store, or with a new or empty folder"


class Store:
    """A store folder. Make one with :meth:`Store.open`."""

    def __init__(self, root: Path, db: Database) -> None:
        self.root = root
        self.state = root / STATE
        self._tmp = self.state / "tmp"  # its str is made once: a temporary file per action
        self._db = db
        self._cas = Cas(self.state, self._temp_file)
        self._nonce, self._serial = os.urandom(4).hex(), itertools.count()
        self._temp_roots = temproots.TempRoots(self.state / "tmp")

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(cls, root: Path, create: bool = True, use_reserve: bool = False) -> Store:
        """Open the store at ``root``, creating it when ``create`` and it is missing or empty,
        and clean what dead builds left behind. ``use_reserve``: on a full disk, give back
        the space kept in reserve so that a collection can run."""
        root = Path(root).absolute()
        state = root / STATE
        new = not (state / "db.sqlite").is_file()
        if new:
            if not create:
                raise StoreError(f"there is no store at {root}",
                                 "check --store and $RECIPE_STORE; a store is made by the "
                                 "first build into it")
            # The database is the first file another recipe creating this store at the same
            # moment makes: with it there, the folder is a store, not somebody's files.
            if root.exists() and not _creatable(root) and not (state / "db.sqlite").is_file():
                raise StoreError(f"{root} is not a recipe store (it holds other files and no "
                                 f"{STATE}/db.sqlite)", _FIX_FOLDER)
        try:
            for sub in ("", *_LAYOUT):
                (state / sub).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot create the store at {root}: {error.strerror}",
                             _FIX_FOLDER) from None
        for folder in (root, state, state / "tmp"):
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StoreError(f"the store folder {folder} is not writable",
                                 "fix its permissions, or pass another --store")
        if new:
            # Creators of one store take turns: SQLite answers "database is locked" at once,
            # without waiting, to a second connection switching a new database to WAL.
            with locks.locked(state / "locks" / "create.lock"):
                database = space.open_database(state, use_reserve)
        else:
            database = space.open_database(state, use_reserve)
        store = cls(root, database)
        store.clean()
        return store

    def close(self) -> None:
        self._db.close()
        self._temp_roots.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def clean(self, every: bool = False) -> None:
        """Remove what dead processes left (``engine.store.leftovers.clean``); ``every``: look
        at every name in the store, not only the names noted as being registered."""
        leftovers.clean(self.root, self.state, self._lock_file, self._db.is_valid,
                        self._db.names if every else None)

    def remove_leftover(self, path: Path) -> bool:
        """Remove a dead build's folder, the caller holding its name's lock (``leftovers``)."""
        return leftovers.remove_leftover(self.state, path)

    def discard(self, path: Path, beside: bool = True) -> None:
        """Remove a finished build's folder, the caller holding its name's lock: moved aside at
        once, removed on a thread (``leftovers.discard``); not ``beside``: now (a folder of a
        few entries, whose removal costs less than a thread's start and the wait for it)."""
        leftovers.discard(self.state, path, beside)

    # -- names ------------------------------------------------------------------------------

    def make_name(self, fingerprint: str, label: str) -> str:
        """``<nix-base-32 of the first 160 bits of sha256(fingerprint)>-<label>``."""
        _label(label)
        digest = hashlib.sha256(fingerprint.encode("utf-8")).digest()
        return f"{nix_base32(digest[:20])}-{label}"

    def path(self, name: str) -> Path:
        return self.root / _checked(name)

    def is_valid(self, name: str) -> bool:
        return bool(_NAME.fullmatch(name)) and self._db.is_valid(name)

    def info(self, name: str) -> PathInfo | None:
        return self._db.info(name) if _NAME.fullmatch(name) else None

    def paths(self) -> list[PathInfo]:
        return self._db.infos()

    def count(self) -> int:
        """How many valid paths there are."""
        return self._db.count()

    def history(self) -> list[tuple[str, str]]:
        """(name, derivation) of every valid path, the most recently registered first."""
        return self._db.history()

    def log(self, name: str) -> bytes:
        log = self._db.log(_checked(name))
        if log is None:
            raise StoreError(f"{name} is not a valid store path",
                             "see 'recipe store ls' for the valid paths")
        return log

    # -- locks and temporary folders --------------------------------------------------------

    def _lock_file(self, name: str) -> Path:
        return self.state / "locks" / f"{name}.lock"

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock of store path ``name`` (blocking; not re-entrant).

        Lock order: ``gc_shared()`` first, then path locks, as ``gc`` takes them."""
        with locks.locked(self._lock_file(_checked(name))):
            yield

    @contextmanager
    def gc_shared(self) -> Iterator[None]:
        """Keep a collection from running while the block realises or reads paths."""
        with locks.locked(self.state / "gc.lock", shared=True):
            yield

    def gc_exclusive(self, shared: bool = False) -> AbstractContextManager[None]:
        """The collection's side of ``gc.lock``."""
        return locks.locked(self.state / "gc.lock", shared=shared)

    def add_temp_roots(self, paths: Iterable[str] = (), actions: Iterable[str] = (),
                       blobs: Iterable[str] = ()) -> None:
        """Keep these from any collection for as long as this process lives. Add a path's
        root *before* checking that it is valid; then a collection either saw the root or
        finished before it, and the path, if valid, stays valid.

        Lock order: call it without holding a path lock."""
        names = [_checked(name) for name in paths]
        blobs = list(blobs)
        if names or blobs:
            # Blobs too: a source blob may be old and kept only by a path being collected.
            with self.gc_shared():
                self._temp_roots.add("path", names)
                self._temp_roots.add("blob", blobs)
        self._temp_roots.add("action", actions)

    def state_folder(self, name: str) -> Path:
        """A folder of the store's state where a layer above keeps a cache of its own (e.g. a
        cross compiler's built libraries). The store never reads it; it is no input of any
        path. Take ``state_lock(name)`` around work that must not run twice at once."""
        folder = self.state / "caches" / _label(name)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def state_lock(self, name: str) -> AbstractContextManager[None]:
        """The exclusive lock of ``state_folder(name)`` (blocking)."""
        return locks.locked(self.state / "locks" / f"cache-{_label(name)}.lock")

    def build_dir(self, name: str) -> Path:
        """The fixed folder where ``name`` is built; use it only while holding ``lock(name)``.
        Whatever a killed build left there is removed by the next ``open``."""
        return self.state / "build" / _checked(name)

    def kept_inputs(self, name: str) -> Path:
        """Where the inputs a build of ``name`` staged (and, once it registered, its objects)
        are kept for the next build of its label (``engine.build.kept_inputs``); ``store gc``
        removes them."""
        return self.state / "inputs" / label_of(_checked(name))

    def temp_dir(self, label: str) -> Path:
        """A new empty folder on the store's file system, removed by a later ``open`` once
        this process is gone if it was not registered."""
        prefix = locks.own_temp(self.state / "tmp")
        return Path(tempfile.mkdtemp(prefix=prefix, suffix=f"-{_label(label)}",
                                     dir=self.state / "tmp"))

    def _temp_file(self, suffix: str) -> tuple[int, str]:
        """A new file in tmp/, open for writing (its descriptor, and its path), named
        ``<pid>-<nonce><n><suffix>``: a counter, not ``mkstemp``'s random name, and one open
        (a build makes hundreds; the nonce, drawn once per store, keeps a reused pid's
        leftover from colliding, and ``O_EXCL`` catches what remains)."""
        tmp = self._tmp
        prefix = locks.own_temp(tmp)
        while True:
            name = f"{tmp}/{prefix}{self._nonce}{next(self._serial)}{suffix}"
            try:
                fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                continue
            return fd, name

    # -- registration -----------------------------------------------------------------------

    def register(self, name: str, tree: Path, derivation: str, references: Iterable[str],
                 log: bytes = b"", actions: Iterable[str] = (),
                 blobs: Iterable[str] = (), expected: str | None = None) -> PathInfo:
        """Move ``tree`` to ``root/name`` read-only and make it valid; while it is valid, it
        keeps the action-cache entries ``actions`` and the blobs ``blobs`` from collection.
        With ``expected`` (a tree fetched from elsewhere, as Nix's substituters give one with
        its narinfo), only if its content hash is that: else ``StoreError`` and nothing valid.
        The caller holds ``lock(name)``; when this process does not, it is taken here."""
        keeps = _keeps(actions, blobs)
        if locks.held_here(self._lock_file(_checked(name))):
            return registration.register(self.root, self._db, name, Path(tree), derivation,
                                     references, log, keeps, expected)
        with self.lock(name):
            return registration.register(self.root, self._db, name, Path(tree), derivation,
                                     references, log, keeps, expected)

    def replace(self, name: str, tree: Path) -> None:
        """Put ``tree`` in place of the damaged valid path ``name`` (repair). It must be
        identical to what was registered: same content hash, so the record stays true. The
        caller holds ``lock(name)``."""
        registration.replace(self.root, self._db, _checked(name), Path(tree), self.temp_dir)

    # -- content-addressed blobs and actions ------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        return self._cas.put_blob(data)

    def put_file(self, path: Path | str) -> str:
        return self._cas.put_file(path)

    def take_file(self, path: Path | str, digest: str | None = None) -> str:
        """Store a finished file that will only be read from now on by hard-linking it into
        the CAS, read-only (no copy); its digest. See ``Cas.take_file``."""
        return self._cas.take_file(path, digest)

    def has_blob(self, digest: str) -> bool:
        return self._cas.has_blob(digest)

    def read_blob(self, digest: str) -> bytes:
        return self._cas.read_blob(digest)

    def copy_blob(self, digest: str, dest: Path | str, executable: bool = False) -> None:
        self._cas.copy_blob(digest, Path(dest), executable)

    def link_blob(self, digest: str, dest: Path | str) -> None:
        self._cas.link_blob(digest, dest)

    def is_linked_blob(self, path: str, digest: str, st: os.stat_result) -> bool:
        return self._cas.is_linked_blob(path, digest, st)

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self._cas.get_action(key)

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        self._cas.put_action(key, result)

    def promise_file(self, key: str) -> str:
        return self._cas.promise_file(key)

    def attach(self, name: str, actions: Iterable[str] = (), blobs: Iterable[str] = ()) -> None:
        """Let valid path ``name`` keep more action-cache entries and blobs alive (the outcomes
        of cases run against it, for example)."""
        self._db.add_keeps(_checked(name), _keeps(actions, blobs))

    # -- roots, collection, verification ----------------------------------------------------

    def add_root(self, root: str, name: str) -> None:
        self.set_roots({root: name})

    def set_roots(self, roots: dict[str, str]) -> None:
        """Point each root at its path, in one transaction; none when all already do (a
        no-op realise writes nothing)."""
        if any(not root for root in roots):
            raise StoreError("a root needs a name", "name the root")
        current = self._db.roots()
        changed = {r: _checked(n) for r, n in roots.items() if current.get(r) != n}
        if changed:
            self._db.set_roots(changed)

    def remove_root(self, root: str) -> int:
        """Remove root ``root`` and the roots below it (``root/<project>/<target>``)."""
        return self._db.remove_root(root)

    def roots(self) -> dict[str, str]:
        return self._db.roots()

    def gc(self, dry_run: bool = False, max_size: int | None = None) -> GcReport:
        """Delete every valid path that no root (named or temporary) reaches through
        references, then every action-cache entry and blob that no remaining path or
        temporary root keeps; with ``max_size`` (bytes), evict least recently used action
        results until the cache fits. See ``engine/store/gc.py``."""
        if not dry_run:
            self.clean(every=True)  # what a crash of an older recipe left unnoted too
        return gc.collect(self, self._db, self._cas, dry_run, max_size)

    def why(self, name: str) -> list[list[str]]:
        """What keeps valid path ``name`` alive: for each root (named or temporary) that
        reaches it, the shortest chain ``[root, path, ..., name]``; empty when the next
        collection would delete it. See ``engine/store/gc.py``."""
        if not self.is_valid(name):
            raise StoreError(f"{name} is not a valid store path",
                             "see 'recipe store ls' for the valid paths")
        _sizes, refs, roots = self._db.graph()
        temp = temproots.read_all(self.state / "tmp")["path"]
        roots.update({f"{gc.TEMP_ROOT}{path}": path for path in temp if path in refs})
        return gc.root_chains(name, refs, roots)

    def verify(self) -> list[Damage]:
        """Recompute every valid path against what was recorded when it was registered."""
        with self.gc_shared():
            return check.check_paths(self.root, self._db.valid_names(), self._db.nar_hashes,
                                     self._db.all_shapes, self._db.shapes, self._db.manifest)


def _keeps(actions: Iterable[str], blobs: Iterable[str]) -> list[str]:
    return [*(f"action:{key}" for key in actions), *(f"blob:{digest}" for digest in blobs)]


def _creatable(root: Path) -> bool:
    """An empty folder (but for files that keep an empty folder in version control), or
    one holding only the state folder of a store whose creation was interrupted before its
    database existed."""
    if not root.is_dir():
        return False
    entries = set(os.listdir(root)) - _KEEP_FILES
    if not entries:
        return True
    state = root / STATE
    return entries == {STATE} and state.is_dir() and set(os.listdir(state)) <= set(_LAYOUT)
