"""Garbage collection's graph work: what roots reach, and the order to delete the rest in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set


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
