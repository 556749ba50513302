"""Garbage collection's policy: what roots reach, the order to delete the rest in, and which
action-cache entries and blobs go with them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

from engine.store.cas import CacheEntry


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


def deletion_order(dead: Set[str], refs: Mapping[str, Set[str]]) -> list[str]:
    """``dead`` ordered so that a path comes before every path it refers to.

    The dead set is closed under "is referred to by" (a live referrer would make its
    references live), so deleting in this order never leaves a dangling reference, even when
    a collection is interrupted halfway. Ties are broken by name, for a stable report.
    """
    referrers = {name: 0 for name in dead}
    for name in dead:
        for ref in refs[name] - {name}:
            referrers[ref] += 1
    ready = sorted(name for name, count in referrers.items() if count == 0)
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for ref in sorted(refs[name] - {name}):
            referrers[ref] -= 1
            if referrers[ref] == 0:
                ready.append(ref)
        ready.sort()
    return order


def cache_garbage(entries: Iterable[CacheEntry], actions: Set[str], blobs: Set[str],
                  since: float, max_size: int | None = None) -> list[CacheEntry]:
    """The action-cache entries and blobs to delete.

    ``actions`` and ``blobs`` are live (kept by a live path or a temporary root); everything
    else older than ``since`` (when the collection started) is garbage, and so is every blob
    no surviving action names. With ``max_size``, surviving actions are then evicted least
    recently used first, live ones too, until the cache fits; blobs that paths keep (their
    sources) and entries written since the collection started are never evicted.
    """
    entries = list(entries)
    recent = {e.name for e in entries if e.mtime >= since}
    kept = [e for e in entries if e.kind == "action" and (e.name in actions or e.name in recent)]
    refs: dict[str, int] = {}
    for entry in kept:
        for digest in entry.outputs:
            refs[digest] = refs.get(digest, 0) + 1
    blob_list = [e for e in entries if e.kind == "blob"]
    pinned = blobs | recent
    size_of = {e.name: e.size for e in blob_list}
    evicted: set[str] = set()
    if max_size is not None:
        total = sum(e.size for e in kept) + sum(
            e.size for e in blob_list if e.name in pinned or refs.get(e.name))
        for entry in sorted(kept, key=lambda e: (e.mtime, e.name)):
            if total <= max_size:
                break
            if entry.name in recent:
                continue
            evicted.add(entry.name)
            total -= entry.size
            for digest in entry.outputs:
                refs[digest] -= 1
                if refs[digest] == 0 and digest not in pinned:
                    total -= size_of.get(digest, 0)
    alive = {e.name for e in kept} - evicted
    garbage = [e for e in entries if e.kind == "action" and e.name not in alive]
    garbage += [e for e in blob_list if e.name not in pinned and not refs.get(e.name)]
    return garbage
