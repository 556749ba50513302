"""Garbage collection's policy: what roots reach, the order to delete the rest in, and which
action-cache entries and blobs go with them."""

from __future__ import annotations

import gc as cyclic
import heapq
import os
from collections.abc import Iterable, Mapping, Set
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from engine.store import fsutil, leftovers, locks, promises, space, temproots
from engine.store.cas import PINNED, Cas
from engine.store.cas_listing import CacheEntry, entries, remove
from engine.store.db import Database
from engine.store.records import GcReport


class Locking(Protocol):
    """What a collection needs of the store (``Store`` is one; naming it would be a cycle)."""

    root: Path
    state: Path

    def gc_exclusive(self, shared: bool = False) -> AbstractContextManager[None]: ...

    def lock(self, name: str) -> AbstractContextManager[None]: ...


def collect(store: Locking, db: Database, cas: Cas, dry_run: bool,
            max_size: int | None) -> GcReport:
    """``Store.gc``: under ``gc.lock`` (exclusive; shared for a dry run), read the roots and
    temporary roots, delete the paths they do not reach, then the cache entries no remaining
    path or temporary root keeps."""
    # Python's cycle collector off meanwhile: a store of a million blobs makes millions of
    # small objects, none in a cycle, and its full passes over them took a third of a
    # ``gc --dry-run`` (more than linear in the store).
    enabled = cyclic.isenabled()
    cyclic.disable()
    try:
        return _collect(store, db, cas, dry_run, max_size)
    finally:
        if enabled:
            cyclic.enable()


def _collect(store: Locking, db: Database, cas: Cas, dry_run: bool,
             max_size: int | None) -> GcReport:
    state = store.state
    # Listed before the lock, so builders do not wait while every result is read; what is
    # written later has an mtime of at least ``since`` (the file system's own clock) and is kept.
    since = file_clock(state / "tmp")
    promised: list[str] = []
    listed = entries(cas, promised)
    if not dry_run:
        space.give_reserve(state)
    with store.gc_exclusive(shared=dry_run):
        temp = temproots.read_all(state / "tmp")
        sizes, refs, roots = db.graph()
        live = closure([*roots.values(), *temp["path"]], refs)
        report = GcReport()
        for name in deletion_order(sizes.keys() - live, refs):
            if not dry_run:
                with store.lock(name):
                    # Invalid first: a collection killed here leaves an unregistered folder,
                    # which the next open removes, never a valid path with holes.
                    db.remove_path(name)
                    fsutil.remove_tree(store.root / name)
            report.deleted.append(name)
            report.freed += sizes[name]
        # After the deletions every valid path is live, including any registered since the
        # snapshot; a dry run deleted nothing, so it asks for the live ones.
        actions, blobs = db.kept(None if not dry_run else live)
        actions |= temp["action"]
        actions |= {e.name for e in listed if e.kind == "action" and e.name.startswith(PINNED)}
        blobs |= temp["blob"]
        for entry in cache_garbage(listed, actions, blobs, since, max_size):
            if not dry_run:
                remove(entry)
            report.actions += entry.kind == "action"
            report.blobs += entry.kind == "blob"
            report.cache_freed += entry.size
        if not dry_run:  # what killed makers promised: no one waits on those files
            promises.clear(promised)
            drop_kept_inputs(state)
        if max_size is not None:
            remaining = sum(e.size for e in listed) - report.cache_freed
            report.cache_freed += state_caches(state, max_size - remaining, dry_run)
    if not dry_run:
        space.take_reserve(state)
    return report


def state_caches(state: Path, budget: int, dry_run: bool) -> int:
    """With ``--max-size``: the caches that layers above keep in the store's state
    (``Store.state_folder``, e.g. a cross compiler's libraries) are removed whole, least
    recently changed first, while they do not fit in what the action cache left of the size;
    one in use (its lock held) is skipped. Making them again only costs time. Bytes freed."""
    folders = [f for f in (state / "caches").glob("*") if f.is_dir()]
    sized = sorted(((f.stat().st_mtime, f, _tree_size(f)) for f in folders),
                   key=lambda t: (t[0], t[1].name), reverse=True)
    freed = 0
    for _mtime, folder, size in sized:  # newest first: they are the ones kept
        if size <= budget:
            budget -= size
            continue
        fd = locks.acquire(state / "locks" / f"cache-{folder.name}.lock", blocking=False)
        if fd is None:
            continue  # being filled or used right now
        try:
            if not dry_run:
                fsutil.remove_tree(folder)
            freed += size
        finally:
            os.close(fd)
    return freed


def drop_kept_inputs(state: Path) -> None:
    """Remove the inputs builds kept for the next build of their label (``Store.kept_inputs``):
    their links keep the bytes of blobs collected since on disk. Each is moved into ``tmp``
    first (``leftovers.discard``: a build taking it meanwhile finds none and stages anew)."""
    leftovers.discard_all(state, state / "inputs")


def _tree_size(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def file_clock(tmp: Path) -> float:
    """Now, as the file system stamps files: the mtime of a file made and removed in ``tmp``.
    Every file written after this call has an mtime at least this, whatever the clock's
    granularity (the kernel stamps files from a coarse clock that lags ``time.time()``), so it
    tells written-since from written-before without a guessed margin (a margin of 0.1 s kept
    what a build wrote just before the collection, and ``--max-size`` left more than asked)."""
    clock = tmp / f"{locks.own_temp(tmp)}gc-clock"
    fd = os.open(clock, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        return os.fstat(fd).st_mtime
    finally:
        os.close(fd)
        os.unlink(clock)


def closure(start: Iterable[str], refs: Mapping[str, Set[str]]) -> set[str]:
    """Every path reachable from ``start`` through references, ``start`` included."""
    seen: set[str] = set()
    todo = [name for name in start if name in refs]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(refs[name] - seen)
    return seen


#: How ``Store.why`` names a temporary root: a running process's, followed by the path.
TEMP_ROOT = "temporary:"


def root_chains(name: str, refs: Mapping[str, Set[str]],
                roots: Mapping[str, str]) -> list[list[str]]:
    """For each root that reaches ``name``, the shortest chain of references from it:
    ``[root, path the root names, ..., name]``, sorted by root (``nix why-depends`` /
    ``nix-store -q --roots`` in one answer). One search backwards from ``name`` over
    referrers serves every root."""
    referrers: dict[str, set[str]] = {}
    for referrer, references in refs.items():
        for ref in references - {referrer}:
            referrers.setdefault(ref, set()).add(referrer)
    toward = {name: ""}  # each path that reaches name -> the next path on a shortest chain
    frontier = [name]
    while frontier:  # breadth first, in name order: shortest chains, the same each time
        following = []
        for path in frontier:
            for referrer in sorted(referrers.get(path, ())):
                if referrer not in toward:
                    toward[referrer] = path
                    following.append(referrer)
        frontier = following
    chains = []
    for root, start in sorted(roots.items()):
        if start in toward:
            chain = [root, start]
            while chain[-1] != name:
                chain.append(toward[chain[-1]])
            chains.append(chain)
    return chains


def deletion_order(dead: Set[str], refs: Mapping[str, Set[str]]) -> list[str]:
    """``dead`` ordered so that a path comes before every path it refers to.

    The dead set is closed under "is referred to by" (a live referrer would make its
    references live), so deleting in this order never leaves a dangling reference, even when
    a collection is interrupted halfway. A dead path may refer to a live one, which is not
    ordered. Ties are broken by name, for a stable report: the smallest ready name first, from
    a heap (a list sorted again after each name took time quadratic in the dead paths).
    """
    referrers = dict.fromkeys(dead, 0)
    for name in dead:
        for ref in refs[name]:
            if ref != name and ref in referrers:
                referrers[ref] += 1
    ready = [name for name, count in referrers.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for ref in refs[name]:
            if ref != name and ref in referrers:
                referrers[ref] -= 1
                if referrers[ref] == 0:
                    heapq.heappush(ready, ref)
    return order


def cache_garbage(entries: Iterable[CacheEntry], actions: Set[str], blobs: Set[str],
                  since: float, max_size: int | None = None) -> list[CacheEntry]:
    """The action-cache entries and blobs to delete.

    ``actions`` and ``blobs`` are live (kept by a live path or a temporary root); everything
    else older than ``since`` (when the collection started) is garbage, and so is every blob
    no surviving action names. A compile manifest that survives names its candidates' blobs
    only for the candidates whose own keys are live (all of them, when it was written since):
    the objects of a header set no live path was built from go with that path. With
    ``max_size``, surviving actions are then evicted least recently used first, live ones
    too, until they and the blobs only they name fit in it.
    Blobs that paths keep (their sources, part of the paths as Nix's sources are) do not
    count, and entries written since the collection started are never evicted.
    """
    # One pass to split them, no copy of the live sets: with a million blobs, each extra set or
    # dict of them cost ~0.1 s, and their hash tables' cache misses made a collection grow
    # faster than the store (15 x the time for 10 x the blobs).
    recent: set[str] = set()
    kept: list[CacheEntry] = []
    dropped: list[CacheEntry] = []
    blob_list: list[CacheEntry] = []
    for e in entries:
        if e.mtime >= since:
            recent.add(e.name)
        if e.kind == "blob":
            blob_list.append(e)
        elif e.name in actions or e.mtime >= since:
            kept.append(e)
        else:
            dropped.append(e)
    refs: dict[str, int] = {}
    named: dict[str, tuple[str, ...]] = {}
    for entry in kept:
        outputs = entry.outputs
        if entry.held:
            recent_entry = entry.mtime >= since
            outputs = (*outputs, *(d for key, held in entry.held
                                   if recent_entry or key in actions for d in held))
            named[entry.name] = outputs
        for digest in outputs:
            refs[digest] = refs.get(digest, 0) + 1
    evicted: set[str] = set()
    if max_size is not None:
        size_of = {e.name: e.size for e in blob_list if e.name in refs}
        total = sum(e.size for e in kept) + sum(
            size for name, size in size_of.items() if name not in blobs and name not in recent)
        for entry in sorted(kept, key=lambda e: (e.mtime, e.name)):
            if total <= max_size:
                break
            if entry.name in recent:
                continue
            evicted.add(entry.name)
            total -= entry.size
            for digest in named.get(entry.name, entry.outputs):
                refs[digest] -= 1
                if refs[digest] == 0 and digest not in blobs and digest not in recent:
                    total -= size_of.get(digest, 0)
    garbage = dropped + [e for e in kept if e.name in evicted]
    garbage += [e for e in blob_list if not refs.get(e.name) and e.name not in blobs
                and e.name not in recent]
    return garbage
