"""``store verify --repair``: rebuild damaged paths from their recorded derivations.

A registered path records its derivation (the canonical JSON, with every action) and keeps its
inputs in the CAS, so it can be rebuilt without the documents that made it, as Nix rebuilds
from a ``.drv``. The rebuilt tree must hash to what was registered; only then does it take the
damaged tree's place (an atomic exchange), under the path's lock.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from engine.build.builder import DerivationBuild, StopFlag
from engine.build.events import Silent
from engine.build.inputs import CannotRebuild, input_blobs
from engine.build.wave import Tools
from engine.derive.derivation import Recorded
from engine.store import Damage, Store, StoreError
from engine.toolchain.detect import changed_programs


def repair(store: Store, damage: list[Damage], jobs: int | None = None) -> list[str]:
    """Rebuild every damaged path, its damaged build dependencies first; the names repaired,
    in that order."""
    recorded: dict[str, Recorded] = {}
    for name in sorted({d.name for d in damage}):
        info = store.info(name)
        if info is None:
            raise StoreError(f"cannot repair {name}: it is no longer a valid path",
                             "run 'recipe store verify' again")
        recorded[name] = Recorded.load(name, info.derivation)
    # Build dependencies, not run-time references: a static library is linked in, not
    # referred to, and a dependent must not be relinked against a damaged one.
    deps = {n: set(r.data["depends"].values()) for n, r in recorded.items()}
    order = _dependencies_first({n: d & recorded.keys() for n, d in deps.items()})
    store.add_temp_roots(paths=[*order, *(d for ds in deps.values() for d in ds)],
                         blobs=[b for r in recorded.values() for b in input_blobs(r)])
    for name in order:
        missing = sorted(d for d in deps[name] if not store.is_valid(d))
        if missing:
            raise CannotRebuild(f"cannot repair {name}: its build dependency {missing[0]} is "
                                "no longer in the store", "realise its plan again first")
        changed = changed_programs(recorded[name].data["toolchain"])
        if changed:
            raise CannotRebuild(f"cannot repair {name}: its toolchain changed since it was "
                                f"built ({changed[0]})", "repair it where that toolchain is")
    tools = Tools(jobs or os.cpu_count() or 1)
    with ThreadPoolExecutor(2 * tools.jobs, thread_name_prefix="repair") as pool:
        for name in order:
            with store.lock(name):
                DerivationBuild(store, recorded[name], pool, Silent(), StopFlag(False),
                                tools=tools).run(repair=True)
    return order


def _dependencies_first(deps: dict[str, set[str]]) -> list[str]:
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dep in sorted(deps[name]):
                visit(dep)
            order.append(name)

    for name in sorted(deps):
        visit(name)
    return order
