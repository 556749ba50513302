"""Realising a plan: every selected project x target becomes a valid store path.

Scheduling: derivations that are already valid cost one database lookup. Each missing one gets a
coordinator thread that waits for its dependencies, takes the derivation's lock and builds; all
actions of all derivations share one pool of ``jobs`` workers, so compiles of independent
projects and targets overlap. Coordinators only wait; pool workers never wait on each other, so
the pool cannot deadlock. A lone missing derivation (a one-file edit's) is built by the calling
thread itself.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from engine.build.builder import Cancelled, DerivationBuild, StopFlag
from engine.build.cache import LocalCache, PathCache
from engine.build.events import Reporter, Silent
from engine.build.inputs import input_blobs
from engine.build.substitute import substitute
from engine.build.wave import Tools
from engine.derive.derivation import Derivation, Deriver
from engine.documents.models import Plan
from engine.errors import Failure
from engine.store import Store


class BuildFailed(Failure):
    """One or more derivations failed to build; ``failures`` holds each one's error."""

    def __init__(self, failures: list[Failure]) -> None:
        first = failures[0]
        more = f" (and {len(failures) - 1} more failures)" if len(failures) > 1 else ""
        super().__init__(first.what + more, first.fix)
        self.failures = failures
        # A failure with nothing verbatim to show (a source changed while building) has none.
        self.detail = "\n".join(f.detail for f in failures if f.detail).rstrip("\n")


@dataclass
class RealiseResult:
    """What a realise selected, built and rooted."""

    derivations: list[Derivation]  # the selected ones, in order
    paths: dict[tuple[str, str], Path] = field(default_factory=dict)  # (project, target) -> path
    built: list[str] = field(default_factory=list)  # store path names built by this run
    # ``library_first`` paths whose library had to be built: it was, the path was not
    partial: list[str] = field(default_factory=list)
    closure: list[str] = field(default_factory=list)  # the selected names and their deps
    roots: dict[str, str] = field(default_factory=dict)  # root -> store path name, as set


def derive(plan: Plan, store: Store, targets: list[str],
           projects: list[str] | None = None) -> list[Derivation]:
    # Stat caches (source digests, toolchain identities) belong to the checkout, beside the
    # plan, as git's index does: a new store does not hash the sources and compilers again.
    deriver = Deriver(plan, store.make_name, plan.file.parent / ".recipe" / "cache")
    return deriver.derive_all(targets, projects)


def realise(plan: Plan, store: Store, targets: list[str] | None = None,
            projects: list[str] | None = None, jobs: int | None = None,
            keep_going: bool = False, keep_failed: bool = False,
            reporter: Reporter | None = None, root_prefix: str | None = None,
            named_root: str | None = None, cache: PathCache | None = None,
            library_first: dict[tuple[str, str], str] | None = None) -> RealiseResult:
    """Build what is missing; register a root for every selected path, named
    ``<root_prefix>/<project>/<target>`` (by default after the plan's file: realising the
    plan again moves it) and, with ``named_root``, ``<named_root>/<project>/<target>`` too
    (a pin that stays until it is removed). A missing path is taken from ``cache`` when it
    holds it whole, else built, its actions looked up in ``cache`` (default: the store's own
    action cache); a path built is offered to it.

    ``library_first``: (project, target) -> a file of its output tree (``lib/libX.so``) that
    is all the caller needs of that path (a verify whose selected cases only call that
    library). When a selected path no other one depends on is missing and an action that
    makes the file must run, only those actions run: the file is announced to ``reporter``
    (``output_ready``), the path is neither registered nor rooted (``result.partial``); when
    they are all cached, the whole path is built, as without it."""
    selected = derive(plan, store, list(targets or plan.default_targets), projects)
    result = RealiseResult(selected)
    reporter = reporter or Silent()
    everything = _with_dependencies(selected)
    result.closure = [d.name for d in everything]
    # Temporary roots first, validity second: a collection running meanwhile either saw
    # the roots or finished before they were added (see engine/store/temproots.py).
    store.add_temp_roots(paths=[d.name for d in everything])
    missing = [d for d in everything if not store.is_valid(d.name)]
    if missing:
        # Only a build stages sources; one gone meanwhile is put into the CAS again.
        store.add_temp_roots(blobs=[b for d in missing for b in input_blobs(d)])
        depended = {d.name for e in everything for d in [*e.crates, *e.deps]}
        first = {d.name: f"out/{library_first[d.key]}" for d in selected
                 if library_first and d.key in library_first and d.name not in depended}
        result.built, result.partial = _build(store, missing, jobs or os.cpu_count() or 1,
                                              keep_going, keep_failed, reporter,
                                              cache or LocalCache(store), first)
    prefixes = [root_prefix or f"realise:{plan.file}", *([named_root] if named_root else [])]
    result.roots = {f"{prefix}/{drv.project.name}/{drv.target.name}": drv.name
                    for drv in selected for prefix in prefixes if drv.name not in result.partial}
    store.set_roots(result.roots)
    for drv in selected:
        result.paths[drv.key] = store.path(drv.name)
    return result


def _with_dependencies(selected: list[Derivation]) -> list[Derivation]:
    ordered: dict[str, Derivation] = {}
    for drv in selected:
        # Registry crates first (nothing below them), of every Rust project of the closure:
        # a C program's Rust library dependency needs its crates too.
        for d in [*(c for u in [*drv.deps, drv] for c in u.crates), *drv.deps, drv]:
            ordered.setdefault(d.name, d)
    return list(ordered.values())


def _build(store: Store, missing: list[Derivation], jobs: int, keep_going: bool,
           keep_failed: bool, reporter: Reporter, cache: PathCache,
           first: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    # The thread that waits on a tool (its action's runner) must get Python back soon after
    # the tool ends, or after a lookup thread is done with it: within 0.5 ms, not the default
    # 5 (a one-file edit's compile started ~3 ms later while the other 99 were looked up).
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 0.0005))
    try:
        return _build_all(store, missing, jobs, keep_going, keep_failed, reporter, cache,
                          first or {})
    finally:
        sys.setswitchinterval(switch)


def _build_all(store: Store, missing: list[Derivation], jobs: int, keep_going: bool,
               keep_failed: bool, reporter: Reporter, cache: PathCache,
               first: dict[str, str]) -> tuple[list[str], list[str]]:
    """The names built, and those whose build stopped after its ``first`` file."""
    stop = StopFlag(keep_going)
    futures: dict[str, Future[str]] = {}
    failures: list[Failure] = []
    tools = Tools(jobs)  # the pool's other threads finish actions while tools run
    with ThreadPoolExecutor(2 * jobs, thread_name_prefix="action") as pool, \
            ThreadPoolExecutor(len(missing), thread_name_prefix="drv") as coordinators:

        def realise_one(drv: Derivation, waits: list[Future[str]]) -> str:
            for wait in waits:
                wait.result()  # a failed dependency fails this one too
            if stop.is_set():
                raise Cancelled(f"{drv.name}: cancelled")
            with store.lock(drv.name):
                if store.is_valid(drv.name) or substitute(store, drv, cache):
                    return ""  # another process built it meanwhile, or a cache had it
                reporter.derivation_started(drv)
                whole = DerivationBuild(store, drv, pool, reporter, stop, keep_failed, cache,
                                        tools).run(first=[first[drv.name]]
                                                   if drv.name in first else None)
                reporter.derivation_finished(drv, True)
            if not whole:
                return "partial"
            cache.offer_path(drv.name)
            return "built"

        def here(drv: Derivation) -> Future[str]:
            """A lone missing derivation (a one-file edit's) is built by this thread: no
            coordinator to start, and the store's connection this thread has already serves it
            (a thread's first query opens one of its own: ~0.5 ms before its compile)."""
            future: Future[str] = Future()
            try:
                future.set_result(realise_one(drv, []))
            except Exception as error:  # noqa: BLE001 - read from the future, as a coordinator's
                future.set_exception(error)
            return future

        for drv in missing:  # dependencies come first, so their futures exist
            waits = [futures[d.name] for d in [*drv.crates, *drv.deps] if d.name in futures]
            futures[drv.name] = here(drv) if len(missing) == 1 else \
                coordinators.submit(realise_one, drv, waits)
        built: dict[str, list[str]] = {"built": [], "partial": [], "": []}
        for name, future in futures.items():
            try:
                built[future.result()].append(name)
            except Cancelled:
                continue
            except Failure as error:
                # A dependency's failure reaches its dependents' futures too: report it once.
                if not any(error is f for f in failures):
                    failures.append(error)
    if failures:
        raise BuildFailed(failures)
    return built["built"], built["partial"]
