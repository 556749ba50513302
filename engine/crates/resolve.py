"""Resolving the crates a plan's Rust projects name into one graph, as Cargo's resolver 2 does.

Versions: for each crate and semver-compatibility class (``1``, ``0.2``, ``0.0.3``) one
version, found as Cargo's resolver finds it: each choice takes the newest candidate first (with
a lock: only the locked ones, see ``lockfile.Honour``), and a conflict further on (a
requirement the version already chosen in its class does not meet, a feature the chosen
version does not define, two crates declaring the same ``links``) undoes the latest choice that
has an older candidate left and tries that, depth first, within ``MAX_ATTEMPTS``.
Platform: a dependency whose ``[target.<spec>]`` condition does not hold for the target
(``rustc --print cfg``) is not used. Features: unified per crate over
the whole graph, but the crates built for the host (build scripts' dependencies, proc-macros
and everything below them) form their own nodes with their own features, as resolver 2 keeps
them apart. Dev-dependencies are never part of a build. Features follow Cargo's syntax:
``feat`` (a feature of the crate, or the implicit feature of an optional dependency),
``dep:name`` (enables an optional dependency), ``name/feat`` (enables it and its feature) and
``name?/feat`` (the feature only if something else enables the dependency).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine.crates.cfg import CfgError, applies
from engine.crates.registry import DepSpec, Manifest, Registry, RegistryError
from engine.errors import Pos, RecipeError


class ResolveError(RecipeError):
    """A requirement the registry (or the lock) cannot satisfy, or a feature that is not
    defined: a fault of the documents (exit 2)."""


#: How many combinations of versions resolving tries before giving up on a graph: enough for
#: any real conflict, short of the hours a hopeless graph could take.
MAX_ATTEMPTS = 2000


class _Final(Exception):
    """An error no other choice of versions can cure (a lock mismatch): not backtracked."""

    def __init__(self, error: ResolveError) -> None:
        super().__init__(error.what)
        self.error = error


@dataclass
class Node:
    manifest: Manifest
    host: bool  # built for the host: a proc-macro, a build script's dependency, or below one
    features: set[str] = field(default_factory=set)
    enabled: set[str] = field(default_factory=set)  # optional dependencies turned on
    pending: dict[str, set[str]] = field(default_factory=dict)  # dep name -> its features
    edges: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, name) -> key

    @property
    def key(self) -> str:
        return node_key(self.manifest, self.host)


def node_key(manifest: Manifest, host: bool) -> str:
    return f"{manifest.id}{'-host' if host else ''}"


@dataclass(frozen=True)
class Root:
    """A project's ``crates:`` entry."""

    project: str
    spec: DepSpec
    pos: Pos


#: Which versions ``select`` may choose for a crate: given the crate's name, the requirement,
#: who asks and the versions the registry holds (newest first), the candidates in preference
#: order. The default takes them all; a lock narrows them (``engine.crates.lockfile``).
Chooser = Callable[[str, DepSpec, str, list[Manifest]], list[Manifest]]


def _all(name: str, spec: DepSpec, who: str, found: list[Manifest]) -> list[Manifest]:
    return found


@dataclass
class Graph:
    nodes: dict[str, Node]
    roots: dict[str, dict[str, str]]  # project -> {extern name: node key}

    def closure(self, keys: list[str]) -> list[str]:
        """The nodes reachable from ``keys`` (themselves included), dependencies first."""
        order: list[str] = []
        seen: set[str] = set()
        stack = [(k, False) for k in reversed(sorted(set(keys)))]
        while stack:
            key, done = stack.pop()
            if done:
                order.append(key)
                continue
            if key in seen:
                continue
            seen.add(key)
            stack.append((key, True))
            for child in sorted(set(self.nodes[key].edges.values()), reverse=True):
                if child not in seen:
                    stack.append((child, False))
        return order


def resolve(registry: Registry, roots: list[Root], triple: str, cfg: frozenset[str],
            choose: Chooser = _all) -> Graph:
    """The graph of ``roots``; a ``ResolveError`` naming the first conflict met when no
    combination of versions (within ``MAX_ATTEMPTS``) has none."""
    resolver = _Resolver(registry, triple, cfg, choose)
    first: ResolveError | None = None
    script: list[int] = []  # the candidate each choice takes, in order; later ones: the newest
    for _ in range(MAX_ATTEMPTS):
        try:
            return resolver.run(roots, script)
        except _Final as final:
            raise final.error from None
        except ResolveError as error:
            # The first conflict is the one to report: the one the newest versions meet.
            first = first or error
            retry = _backtrack(resolver.trail)
            if retry is None:
                if not script:  # there was no other choice to try
                    raise first from None
                raise _noting(first, "and no older choice of versions avoids it") from None
            script = retry
    assert first is not None
    raise _noting(first, f"no combination of versions found in {MAX_ATTEMPTS} tries")


def _noting(error: ResolveError, note: str) -> ResolveError:
    return ResolveError(f"{error.what} ({note})", error.fix, pos=error.pos)


def _backtrack(trail: list[tuple[int, int]]) -> list[int] | None:
    """The next script to try after a conflict, depth first: the latest choice with an older
    candidate left takes it, the choices before it stay, the ones after it are forgotten."""
    for i in range(len(trail) - 1, -1, -1):
        taken, count = trail[i]
        if taken + 1 < count:
            return [t for t, _ in trail[:i]] + [taken + 1]
    return None


class _Resolver:
    def __init__(self, registry: Registry, triple: str, cfg: frozenset[str],
                 choose: Chooser) -> None:
        self.registry, self.triple, self.cfg, self.choose = registry, triple, cfg, choose
        self.nodes: dict[str, Node] = {}
        self.chosen: dict[tuple[str, str], Manifest] = {}
        self.links: dict[str, Manifest] = {}  # a `links` value -> the crate declaring it
        self.script: list[int] = []
        self.trail: list[tuple[int, int]] = []  # each choice made: (candidate taken, of how many)
        self.pos: Pos | None = None  # the root entry being resolved, for errors

    def run(self, roots: list[Root], script: list[int]) -> Graph:
        """One attempt: the choices ``script`` names, then the newest candidates."""
        self.nodes, self.chosen, self.links, self.trail = {}, {}, {}, []
        self.script = script
        graph_roots: dict[str, dict[str, str]] = {}
        for root in roots:
            self.pos = root.pos
            node = self._enable(root.spec, host=False, who=f"project '{root.project}'",
                                root=True)
            graph_roots.setdefault(root.project, {})[root.spec.name] = node.key
        return Graph(self.nodes, graph_roots)

    def _select(self, spec: DepSpec, who: str, root: bool) -> Manifest:
        found = self.registry.versions(spec.package)
        # A project's own entry that no version in the registry meets: no choice of versions
        # elsewhere can cure that, so it is reported at once, without trying them.
        hopeless = root and not any(spec.req.matches(m.version) for m in found)
        if not found:
            error = ResolveError(f"unknown crate '{spec.package}' (wanted by {who}): the "
                                 f"registry {self.registry.path} has no such crate",
                                 "check the name, or add the crate to the registry (e.g. "
                                 f"apt install librust-{spec.package.replace('_', '-')}-dev)",
                                 pos=self.pos)
            raise _Final(error) if root else error
        for manifest in found:  # a version already in the graph, if it fits
            if self.chosen.get((spec.package, manifest.version.compat())) is manifest and \
                    spec.req.matches(manifest.version):
                return manifest
        try:
            chosen = self.choose(spec.package, spec, who, found)
        except ResolveError as error:
            error.pos = error.pos or self.pos  # the project entry that needs the crate
            raise _Final(error) from None
        candidates = [m for m in chosen if spec.req.matches(m.version)]
        candidates = [m for m in candidates
                      if (spec.package, m.version.compat()) not in self.chosen]
        # Cargo lets one crate of a graph declare a given `links` (one native library each).
        clashes = [self.links[m.links] for m in candidates
                   if m.links is not None and m.links in self.links]
        candidates = [m for m in candidates if m.links is None or m.links not in self.links]
        if not candidates:
            held = ", ".join(str(m.version) for m in found)
            taken = [str(m.version) for (n, _), m in self.chosen.items() if n == spec.package]
            also = f"; {', '.join(taken)} is already chosen" if taken else ""
            also += "".join(f"; {m.id} already declares links = '{m.links}'"
                            for m in dict.fromkeys(clashes))
            error = ResolveError(f"no version of crate '{spec.package}' matches '{spec.req}' "
                                 f"(wanted by {who}); the registry holds {held}{also}",
                                 "loosen the requirement, or add a matching version to the "
                                 "registry", pos=self.pos)
            raise _Final(error) if hopeless else error
        step = len(self.trail)
        pick = self.script[step] if step < len(self.script) else 0
        self.trail.append((pick, len(candidates)))
        manifest = candidates[pick]
        self.chosen[(spec.package, manifest.version.compat())] = manifest
        if manifest.links is not None:
            self.links[manifest.links] = manifest
        return manifest

    def _node(self, manifest: Manifest, host: bool) -> Node:
        key = node_key(manifest, host)
        node = self.nodes.get(key)
        if node is None:
            node = self.nodes[key] = Node(manifest, host)
            for dep in manifest.deps:
                if not dep.optional:
                    self._edge(node, dep)
        return node

    def _applies(self, node: Node, dep: DepSpec) -> bool:
        try:
            return applies(dep.target, self.triple, self.cfg)
        except CfgError as error:
            raise RegistryError(f"{node.manifest.folder / 'Cargo.toml'}: target condition "
                                f"'{dep.target}' ({error})", "repair that crate's manifest",
                                pos=self.pos) from None

    def _edge(self, node: Node, dep: DepSpec) -> None:
        if not self._applies(node, dep):
            return
        child = self._enable(dep, node.host or dep.kind == "build",
                             who=f"crate {node.manifest.id}")
        node.edges[(dep.kind, dep.name)] = child.key

    def _enable(self, dep: DepSpec, host: bool, who: str, root: bool = False) -> Node:
        manifest = self._select(dep, who, root)
        child = self._node(manifest, host or manifest.proc_macro)
        if dep.default_features:
            self._feature(child, "default", who)
        for feature in dep.features:
            self._feature(child, feature, who)
        return child

    def _feature(self, node: Node, feature: str, who: str) -> None:
        manifest = node.manifest
        if feature.startswith("dep:"):
            self._turn_on(node, feature[4:], who)
            return
        if "/" in feature:
            name, _, sub = feature.partition("/")
            weak = name.endswith("?")
            name = name.rstrip("?")
            deps = [d for d in manifest.deps if d.name == name]
            if not deps:
                raise self._unknown(node, feature, who)
            node.pending.setdefault(name, set()).add(sub)
            if not weak and any(d.optional for d in deps):
                if name in manifest.features:
                    self._feature(node, name, who)
                self._turn_on(node, name, who)
            for dep in deps:
                if (not dep.optional or name in node.enabled) and self._applies(node, dep):
                    child = self.nodes[node.edges[(dep.kind, dep.name)]]
                    self._feature(child, sub, f"crate {manifest.id}")
            return
        if feature in node.features:
            return
        if feature in manifest.features:
            node.features.add(feature)
            for item in manifest.features[feature]:
                self._feature(node, item, f"crate {manifest.id}")
        elif feature == "default":
            return  # a crate without a default feature
        elif self._implicit(manifest, feature):
            node.features.add(feature)
            self._turn_on(node, feature, who)
        else:
            raise self._unknown(node, feature, who)

    def _implicit(self, manifest: Manifest, name: str) -> bool:
        """An optional dependency is a feature of its own name unless a feature names it
        ``dep:name`` (Cargo's rule since namespaced features)."""
        optional = any(d.optional and d.name == name for d in manifest.deps)
        named = any(item == f"dep:{name}" for items in manifest.features.values()
                    for item in items)
        return optional and not named

    def _turn_on(self, node: Node, name: str, who: str) -> None:
        deps = [d for d in node.manifest.deps if d.name == name and d.optional]
        if not deps:
            raise self._unknown(node, f"dep:{name}", who)
        if name in node.enabled:
            return
        node.enabled.add(name)
        for dep in deps:
            self._edge(node, dep)
            key = node.edges.get((dep.kind, dep.name))
            if key is not None:
                for sub in sorted(node.pending.get(name, ())):
                    self._feature(self.nodes[key], sub, f"crate {node.manifest.id}")

    def _unknown(self, node: Node, feature: str, who: str) -> ResolveError:
        manifest = node.manifest
        defined = sorted(f for f in manifest.features if f != "default")
        defined += sorted(d.name for d in manifest.deps
                          if d.optional and self._implicit(manifest, d.name))
        listed = ", ".join(defined) if defined else "none"
        return ResolveError(f"crate {manifest.id} has no feature '{feature}' (asked for by "
                            f"{who}); its features: {listed}",
                            "name one of its features", pos=self.pos)
