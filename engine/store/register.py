"""Making a path valid, and putting a repaired one in place of a damaged one.

A path becomes valid in this order: built in ``tmp``, normalised, hashed, renamed to
``root/<name>``, sealed, and only then inserted in the database (one transaction), all under
the path's lock (taken by ``Store.register``). A process killed at any step leaves either a
temporary entry or an unregistered ``root/<name>`` (its name noted in ``.recipe/pending``,
where the next ``Store.open`` finds it); nothing half-made is ever valid.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from engine import faults
from engine.store import fsutil, nar
from engine.store.db import Database
from engine.store.errors import StoreError
from engine.store.names import NAME
from engine.store.records import PathInfo

#: Where the names being registered are noted (below the store's root).
PENDING = ".recipe/pending"


def register(root: Path, db: Database, name: str, tree: Path, derivation: str,
             references: Iterable[str], log: bytes, keeps: list[str],
             expected: str | None = None) -> PathInfo:
    """``Store.register`` once the lock of ``name`` is held."""
    if db.is_valid(name):
        raise StoreError(f"{name} is already a valid store path",
                         "a valid path never changes; register under another name")
    refs = tuple(sorted(set(references)))
    for ref in refs:
        if ref != name and not (NAME.fullmatch(ref) and db.is_valid(ref)):
            raise StoreError(f"{name} refers to {ref}, which is not a valid store path",
                             "register the paths it refers to first")
    if not os.path.lexists(tree):
        raise StoreError(f"cannot register {name}: {tree} does not exist",
                         "build into a folder made by temp_dir()")
    if os.lstat(tree).st_dev != os.stat(root).st_dev:
        raise StoreError(f"cannot register {name}: {tree} is on another file system",
                         "build into a folder made by temp_dir()")
    target = root / name
    # Noted before the rename, gone after the commit: a process killed in between leaves its
    # name here, and the next ``Store.open`` removes the unregistered folder by it (without
    # listing the whole store: a store keeps thousands of paths).
    pending = root / PENDING / name
    try:
        pending.touch()
    except OSError as error:
        raise StoreError(f"cannot register {name}: {error}",
                         "check the permissions and the space of the store") from None
    try:
        return _register(root, db, name, tree, derivation, refs, log, keeps, expected, target)
    finally:
        pending.unlink(missing_ok=True)


def _register(root: Path, db: Database, name: str, tree: Path, derivation: str,
              refs: tuple[str, ...], log: bytes, keeps: list[str], expected: str | None,
              target: Path) -> PathInfo:
    try:
        result = scan_normalised(tree)
        if expected is not None and result.nar_hash != expected:
            raise StoreError(f"cannot register {name}: its content hash is "
                             f"{result.nar_hash}, not the expected {expected}",
                             "build it instead of fetching it")
        fsutil.remove_tree(target)  # a stale, unregistered attempt: we hold the lock
        os.rename(tree, target)
        fsutil.seal(target)
        faults.point("register:after-rename")
    except OSError as error:
        raise StoreError(f"cannot register {name}: {error}",
                         "check the permissions and the space of the store") from None
    info = PathInfo(name, derivation, result.nar_hash, result.size, refs)
    try:
        db.add_path(info, result.entries, bytes(log), keeps)
    except BaseException:
        if not db.is_valid(name):
            fsutil.remove_tree(target)  # never leave a folder that looks valid but is not
        raise
    return info


def replace(root: Path, db: Database, name: str, tree: Path,
            temp_dir: Callable[[str], Path]) -> None:
    """``Store.replace``: ``tree`` in place of the damaged valid path ``name``, identical to
    what was registered (same content hash). The caller holds the lock of ``name``."""
    info = db.info(name)
    if info is None:
        raise StoreError(f"cannot repair {name}: it is not a valid store path",
                         "realise it instead")
    target = root / name
    try:
        result = scan_normalised(tree)
    except OSError as error:
        raise StoreError(f"cannot repair {name}: {error}",
                         "check the permissions and the space of the store") from None
    if result.nar_hash != info.nar_hash:
        raise StoreError(f"cannot repair {name}: the rebuilt tree differs from the "
                         f"registered one ({result.nar_hash}, registered {info.nar_hash})",
                         "its build is not reproducible; delete it with 'recipe store gc' "
                         "after removing its roots, and realise it again")
    try:
        if not os.path.lexists(target):
            os.rename(tree, target)
        else:
            if stat.S_ISDIR(os.lstat(target).st_mode):
                # Moving a folder rewrites its '..': it must be writable. Never chmod
                # through a symlink: a damaged path may be one, pointing anywhere.
                os.chmod(target, 0o755)
            if not fsutil.exchange(tree, target):
                aside = temp_dir("damaged")  # no atomic swap: a short gap
                os.rename(target, aside / "tree")
                os.rename(tree, target)
            faults.point("replace:after-exchange")
            fsutil.remove_tree(tree)  # now the damaged tree
        fsutil.seal(target)
    except OSError as error:
        raise StoreError(f"cannot repair {name}: {error}",
                         "check the permissions and the space of the store") from None


def scan_normalised(tree: Path) -> nar.Scan:
    """Normalise ``tree`` and hash it, recording the top with the mode it will have once it
    is sealed in place (until then it stays writable, to be renamed)."""
    fsutil.normalise(tree)
    result = nar.scan(tree)
    top = result.entries[0]
    result.entries[0] = top._replace(mode=fsutil.canonical_mode(os.lstat(tree).st_mode))
    return result
