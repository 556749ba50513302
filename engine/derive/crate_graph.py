"""The crate graph of a plan: its Rust projects' ``crates:`` resolved against its registry,
under its lock (``recipe.lock`` beside the plan).

One graph per platform, for all the plan's projects at once (as a Cargo workspace: a crate's
features are unified over every project that uses it, so a project and the projects depending
on it see the same compiled crate). Building honours the lock and writes it only when there is
none; ``recipe lock`` re-resolves, keeping the locked versions that still fit, and ``--update``
lets all or some crates move to the newest version the registry holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.crates import lockfile
from engine.crates.registry import DepSpec, Registry
from engine.crates.resolve import Graph, ResolveError, Root, resolve
from engine.documents.models import Plan
from engine.semver import Requirement
from engine.toolchain.rust import RustToolchain


@dataclass
class Platform:
    triple: str
    cfg: frozenset[str]


def roots(plan: Plan) -> list[Root]:
    found = []
    for project in plan.projects.values():
        for crate in project.crates:
            spec = DepSpec(crate.name, crate.name, Requirement.parse(crate.version),
                           crate.features, crate.default_features)
            found.append(Root(project.name, spec, crate.pos))
    return found


def uses_crates(plan: Plan) -> bool:
    return any(p.crates for p in plan.projects.values())


def lock_path(plan: Plan) -> Path:
    return plan.dir / lockfile.NAME


def registry(plan: Plan, memo: Path | None = None) -> Registry:
    if plan.registry is None:
        first = next(c for p in plan.projects.values() for c in p.crates)
        raise ResolveError("the plan names no registry for the crates its projects use",
                           "add registry: PATH to the plan (a `cargo vendor` folder, or "
                           "/usr/share/cargo/registry for Debian's librust-*-dev crates)",
                           pos=first.pos)
    return Registry(plan.registry, plan.registry_pos, memo)


def platform(rust: RustToolchain, triple: str) -> Platform:
    return Platform(rust.host if triple == "host" else triple, rust.cfg)


class PlanCrates:
    """The plan's crate graphs, one per platform, resolved on first use under the lock."""

    def __init__(self, plan: Plan, memo: Path | None = None) -> None:
        self.plan, self.memo = plan, memo  # memo: where the registry's manifests are kept
        self.pos = plan.registry_pos
        self.fresh: list[Graph] = []  # graphs resolved without a lock, to be written
        self.graphs: dict[str, Graph] = {}
        self._registry: Registry | None = None
        self._locked: dict[str, list[lockfile.Locked]] | None = None
        self._read = False

    def graph(self, where: Platform) -> Graph:
        if where.triple not in self.graphs:
            if self._registry is None:
                self._registry = registry(self.plan, self.memo)
            path = lock_path(self.plan)
            if not self._read:
                self._locked, self._read = lockfile.read(path), True
            if self._locked is not None:
                graph = resolve(self._registry, roots(self.plan), where.triple, where.cfg,
                                lockfile.Honour(path, self._locked))
            else:
                # No lock yet: resolve, and write it once everything derived (``finish``), as
                # cargo writes Cargo.lock on first use.
                graph = resolve(self._registry, roots(self.plan), where.triple, where.cfg)
                self.fresh.append(graph)
            self.graphs[where.triple] = graph
        return self.graphs[where.triple]

    def finish(self) -> None:
        """Write the lock of what was resolved without one: only after every derivation
        succeeded, so that a failing input leaves no lock behind."""
        if self.fresh:
            lockfile.write(lock_path(self.plan), lockfile.text(self.fresh))
            self.fresh = []
        if self._registry is not None:
            self._registry.save()


def relock(plan: Plan, platforms: list[Platform], update: set[str] | None) -> tuple[str, bool]:
    """``recipe lock``: resolve for every platform (keeping what the lock has, unless
    ``update``: all crates when empty, else those named) and write the lock. Returns its path
    as text and whether it changed; an error writes nothing."""
    reg = registry(plan) if uses_crates(plan) else None
    path = lock_path(plan)
    locked = lockfile.read(path) or {}
    for name in sorted(update or ()):
        if name not in locked and reg is not None and not reg.versions(name):
            raise ResolveError(f"cannot update crate '{name}': it is neither in {path} nor in "
                               "the registry", "name a crate the plan uses")
    graphs = [resolve(reg, roots(plan), p.triple, p.cfg, lockfile.Prefer(locked, update))
              for p in platforms] if reg is not None else []
    return str(path), lockfile.write(path, lockfile.text(graphs))


def lock_plan(plan: Plan, update: set[str] | None) -> tuple[str, bool] | None:
    """``recipe lock`` for a whole plan: every target's platform (its rustc's host and cfg).
    None when no project names crates (nothing is written)."""
    from engine.toolchain.rust import resolve_rustc

    if not uses_crates(plan):
        return None
    registry(plan)  # a missing registry is reported before any compiler is run
    cache = plan.file.parent / ".recipe" / "cache"
    platforms: dict[str, Platform] = {}
    for spec in plan.targets.values():
        where = platform(resolve_rustc(spec, cache), spec.triple)
        platforms.setdefault(where.triple, where)
    return relock(plan, list(platforms.values()), update)
