"""``store verify --repair``: rebuild damaged paths from their recorded derivations.

A registered path records its derivation (the canonical JSON, with every action) and keeps its
inputs in the CAS, so it can be rebuilt without the documents that made it, as Nix rebuilds
from a ``.drv``. The rebuilt tree must hash to what was registered; only then does it take the
damaged tree's place, under the path's lock.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from engine.build.builder import DerivationBuild, StopFlag
from engine.build.events import Silent
from engine.derive.derivation import Recorded
from engine.store import Damage, Store, StoreError


def repair(store: Store, damage: list[Damage], jobs: int | None = None) -> list[str]:
    """Rebuild every damaged path, dependencies first; the names repaired, in that order."""
    damaged = {d.name for d in damage}
    infos = {}
    for name in sorted(damaged):
        info = store.info(name)
        if info is None:
            raise StoreError(f"cannot repair {name}: it is no longer a valid path",
                             "run 'recipe store verify' again")
        infos[name] = info
    order = _dependencies_first(
        {n: set(i.references) & damaged - {n} for n, i in infos.items()})
    store.add_temp_roots(paths=[*order, *(r for i in infos.values() for r in i.references)])
    with ThreadPoolExecutor(jobs or os.cpu_count() or 1, thread_name_prefix="repair") as pool:
        for name in order:
            recorded = Recorded.load(name, infos[name].derivation)
            with store.lock(name):
                DerivationBuild(store, recorded, pool, Silent(), StopFlag(False)).run(
                    repair=True)
    return order


def _dependencies_first(refs: dict[str, set[str]]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for ref in sorted(refs[name]):
                visit(ref)
            order.append(name)

    for name in sorted(refs):
        visit(name)
    return order
