"""The registry crates of a Rust project: which crates of the plan's graph it compiles against
(its own ``crates:`` and those of the Rust projects it depends on, with their closures), each
derived once per target (``engine.derive.crate_actions``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.crates.resolve import Graph, ResolveError
from engine.derive.crate_actions import CrateDerivation, link_name, plan_crate
from engine.derive.crate_graph import PlanCrates, platform
from engine.documents.models import Plan, Project, TargetSpec
from engine.hashing import DigestCache
from engine.semver import SemverError, Version
from engine.toolchain.detect import Toolchain
from engine.toolchain.rust import RustToolchain


class CrateDeriver:
    def __init__(self, plan: Plan, make_name: Any, digests: DigestCache,
                 memo: Path | None = None) -> None:
        self.plan_crates = PlanCrates(plan, memo)
        self.make_name, self.digests = make_name, digests
        self.derived: dict[tuple[str, str], CrateDerivation] = {}

    def for_project(self, project: Project, deps: list[Any], target: TargetSpec,
                    toolchain: Toolchain, rust: RustToolchain
                    ) -> tuple[list[CrateDerivation], list[str]]:
        """The crate derivations a Rust project's compiles read (dependencies first) and the
        flags that find them: ``--extern`` for its own crates, ``-L dependency=`` for all."""
        users = [project, *(d.project for d in deps if d.project.language == "rust")]
        if not any(p.crates for p in users):
            return [], []
        where = platform(rust, target.triple)
        graph = self.plan_crates.graph(where)
        keys = [k for p in users for k in graph.roots.get(p.name, {}).values()]
        order = graph.closure(keys)
        drvs = {k: self._derive(graph, k, target, where.triple, toolchain, rust) for k in order}
        flags = [a for name, key in sorted(graph.roots.get(project.name, {}).items())
                 for a in drvs[key].extern(name)]
        flags += [f"-Ldependency=../d/{link_name(k)}/lib" for k in order]
        return [drvs[k] for k in order], flags

    def _derive(self, graph: Graph, key: str, target: TargetSpec, triple: str,
                toolchain: Toolchain, rust: RustToolchain) -> CrateDerivation:
        memo = (target.name, key)
        if memo not in self.derived:
            node = graph.nodes[key]
            below = graph.closure(list(node.edges.values()))
            if key in below:
                raise ResolveError(f"the registry's crates depend on each other in a cycle: "
                                   f"{' -> '.join(_cycle(graph, key))}", "repair the registry: "
                                   "cargo cannot build such crates either",
                                   pos=self.plan_crates.pos)
            _check_rust_version(node.manifest, rust, target)
            deps = {k: self._derive(graph, k, target, triple, toolchain, rust) for k in below}
            self.derived[memo] = plan_crate(node, graph, deps, target, triple, toolchain,
                                            rust, self.digests, self.make_name)
        return self.derived[memo]


def _cycle(graph: Graph, start: str) -> list[str]:
    """A path of dependencies from ``start`` back to it (one is known to exist)."""
    todo, seen = [[start]], set()
    while todo:
        path = todo.pop(0)
        for child in sorted(set(graph.nodes[path[-1]].edges.values())):
            if child == start:
                return [*path, start]
            if child not in seen:
                seen.add(child)
                todo.append([*path, child])
    return [start, start]


def _check_rust_version(manifest: Any, rust: RustToolchain, target: TargetSpec) -> None:
    """A crate's ``rust-version`` is the oldest compiler it builds with: refuse it in one
    line before rustc fails on it with pages of errors."""
    if not manifest.rust_version:
        return
    try:
        wanted = Version.parse(_full(str(manifest.rust_version)))
        found = Version.parse(rust.release.split("-")[0])
    except (SemverError, StopIteration):
        return
    if found < wanted:
        raise ResolveError(f"crate {manifest.id} needs rustc {manifest.rust_version} or newer; "
                           f"target '{target.name}' has rustc {rust.release}",
                           "use a newer rustc (toolchain: {rustc: ...}), or lock an older "
                           "version of the crate", pos=target.pos)


def _full(version: str) -> str:
    parts = version.split(".")
    return ".".join(parts + ["0"] * (3 - len(parts)))
