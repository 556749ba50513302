"""Documents + toolchains -> derivations.

A derivation is the canonical JSON object (sorted keys, no insignificant whitespace) of everything
that can change a project x target's output. Its sha256, truncated to 160 bits, names the store
path ``<32 base-32 chars>-<name>-<version>-<target>``. The object, format ``recipe-derivation-1``:

  format        "recipe-derivation-1"
  project       {name, version, language, standard}
  target        {name, spec: {triple, toolchain, opt, strip, lto, cpu, features}}
  inputs        {path in the project: "sha256:<hex>"} for every declared source and header
  public        {path in the project: path under include/} for public headers
  toolchain     the identity: resolved drivers, version output, digest of every program it runs
  depends       {project: store path name} for the whole dependency closure
  actions       [{kind, argv, inputs, outputs}] with @STAGING@/@STORE@ placeholders

Nothing else (no clock, no absolute path of the sources or the store, no environment) enters it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from engine.derive.actions import Action, DepLib, output_file, plan_actions
from engine.documents.models import Plan, Project, TargetSpec
from engine.errors import RecipeError, UsageError
from engine.hashing import DigestCache, canonical
from engine.toolchain import flags
from engine.toolchain.detect import Toolchain, check_spec, resolve

# Rust, its registry crates and its cross targets are imported by the plans that have a Rust
# project (``Deriver.crates``, ``check_selection``): tomllib, the semver and resolver modules
# and the rest cost a C plan's one-unit edit about 40 M instructions.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.derive.crate_actions import CrateDerivation
    from engine.derive.crates import CrateDeriver
    from engine.toolchain.rust import RustToolchain

FORMAT = "recipe-derivation-1"


@dataclass
class Derivation:
    """A project x target: its derivation object, store path name and actions."""

    project: Project
    target: TargetSpec
    toolchain: Toolchain
    name: str  # the store path name
    data: dict[str, Any]  # the derivation object
    deps: list[Derivation]  # the whole dependency closure, dependencies first
    actions: list[Action]
    # Rust: the registry crates its crate and its Rust dependencies use, dependencies first
    crates: list[CrateDerivation] = field(default_factory=list)
    # Declared inputs this run hashed anew (edited since the last one): the actions reading
    # them are likely misses, which the builder looks up first, to start them first.
    edited: frozenset[str] = frozenset()
    # ``data``'s canonical JSON, which the name hashes (made once: 0.5 ms for 100 units)
    text: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.project.name, self.target.name)

    @property
    def fingerprint(self) -> str:
        return self.text or canonical(self.data)

    @property
    def title(self) -> str:
        return f"{self.project.name} ({self.target.name})"

    @property
    def sources(self) -> Path | None:
        """Where the declared inputs are read from: the project's folder."""
        return self.project.dir


@dataclass
class Recorded:
    """A derivation read back from the store's database: everything a build needs, without
    the documents (its inputs come from the store's CAS). What ``store verify --repair``
    rebuilds from."""

    name: str
    data: dict[str, Any]
    actions: list[Action]
    sources: None = None

    @classmethod
    def load(cls, name: str, fingerprint: str) -> Recorded:
        try:
            data = json.loads(fingerprint)
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
            for key in ("project", "target", "inputs", "public", "toolchain", "depends"):
                if not isinstance(data[key], dict):
                    raise ValueError(f"{key} is not an object")
            if not isinstance(data["project"].get("name"), str) or \
                    not isinstance(data["target"].get("name"), str):
                raise ValueError("its project or target has no name")
            actions = [Action.from_json(a) for a in data["actions"]]
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise RecipeError(f"the recorded derivation of {name} cannot be read ({error})",
                              "realise it from its plan instead") from None
        return cls(name, data, actions)

    @property
    def fingerprint(self) -> str:
        return canonical(self.data)

    @property
    def title(self) -> str:
        return f"{self.data['project']['name']} ({self.data['target']['name']})"


def declared_files(project: Project) -> list[str]:
    files = {*project.sources, *project.headers, *project.public_headers}
    for output in project.outputs:
        files.update(output.sources or ())
    return sorted(files)


def public_layout(project: Project) -> dict[str, str]:
    """Where each public header lands under ``include/``: relative to the first include dir
    that holds it, else at its path in the project."""
    layout = {}
    for header in project.public_headers:
        rel = header
        for folder in project.include_dirs:
            prefix = PurePosixPath(folder)
            if prefix != PurePosixPath(".") and PurePosixPath(header).is_relative_to(prefix):
                rel = str(PurePosixPath(header).relative_to(prefix))
                break
        layout[header] = rel
    return layout


def closure(plan: Plan, name: str) -> list[str]:
    """The dependency closure of a project, dependencies first (plan order is topological)."""
    seen: set[str] = set()
    todo = list(plan.projects[name].depends)
    while todo:  # iterative: a chain of a thousand projects is a valid plan
        dep = todo.pop()
        if dep not in seen:
            seen.add(dep)
            todo.extend(plan.projects[dep].depends)
    return [n for n in plan.projects if n in seen]


class Deriver:
    """Computes derivations for a plan, each project x target once."""

    def __init__(self, plan: Plan, make_name: Any, cache_dir: Path) -> None:
        self.plan = plan
        self.make_name = make_name  # Store.make_name: (fingerprint, label) -> store path name
        self.cache_dir = cache_dir
        self.toolchains: dict[str, Toolchain] = {}
        self.rust: dict[str, RustToolchain] = {}
        self.derived: dict[tuple[str, str], Derivation] = {}
        self.digests = DigestCache(cache_dir / "digests.json")
        self._crates: CrateDeriver | None = None

    @property
    def crates(self) -> CrateDeriver:
        if self._crates is None:
            from engine.derive.crates import CrateDeriver

            self._crates = CrateDeriver(self.plan, self.make_name, self.digests,
                                        self.cache_dir / "manifests.pickle")
        return self._crates

    def toolchain(self, target: TargetSpec) -> Toolchain:
        if target.name not in self.toolchains:
            self.toolchains[target.name] = resolve(target, self.cache_dir)
        return self.toolchains[target.name]

    def rust_toolchain(self, target: TargetSpec) -> RustToolchain:
        if target.name not in self.rust:
            from engine.toolchain.rust import resolve_rustc

            self.rust[target.name] = resolve_rustc(target, self.cache_dir)
        return self.rust[target.name]

    def derive(self, project_name: str, target_name: str) -> Derivation:
        key = (project_name, target_name)
        if key in self.derived:
            return self.derived[key]
        project = self.plan.projects[project_name]
        target = self.plan.targets[target_name]
        toolchain = self.toolchain(target)
        deps = [self.derive(dep, target_name) for dep in closure(self.plan, project_name)]
        dep_libs = [lib for dep in reversed(_linked(project, deps)) for lib in _libraries(dep)]
        cxx = any(p.language == "c++" for p in [project, *(d.project for d in deps)])
        crate_drvs: list[CrateDerivation] = []
        if project.language == "rust":
            from engine.derive.rust_actions import plan_rust_actions, rust_crates

            rust = self.rust_toolchain(target)
            crates = rust_crates(project, [d.project for d in deps])
            crate_drvs, registry_flags = self.crates.for_project(project, deps, target,
                                                                 toolchain, rust)
            actions = plan_rust_actions(project, target, toolchain, rust, dep_libs, cxx,
                                        crates, registry_flags)
        else:
            actions = plan_actions(project, target, toolchain, [d.project.name for d in deps],
                                   dep_libs, cxx)
        inputs, edited = {}, []
        for f in declared_files(project):
            hashed = self.digests.hashed
            inputs[f] = self.digests.digest(project.dir / f)
            if self.digests.hashed != hashed:
                edited.append(f"w/{f}")
        data = {
            "format": FORMAT,
            "project": {"name": project.name, "version": project.version,
                        "language": project.language, "standard": project.standard},
            "target": {"name": target.name, "spec": target.as_json()},
            "inputs": inputs,
            "public": public_layout(project),
            "toolchain": toolchain.identity,
            "depends": {d.project.name: d.name for d in deps},
            "actions": [a.as_json() for a in actions],
        }
        if project.language == "rust":  # C and C++ derivations keep their exact form
            data["rust"] = self.rust_toolchain(target).identity
        if crate_drvs:  # the resolved graph: crate, version, checksum, features
            from engine.derive.crate_actions import link_name

            data["depends"].update({link_name(c.node): c.name for c in crate_drvs})
            data["crates"] = [{"node": c.node, **c.data["crate"]} for c in crate_drvs]
        label = f"{project.name}-{project.version}-{target.name}"
        text = canonical(data)
        drv = Derivation(project, target, toolchain, self.make_name(text, label),
                         data, deps, actions, crate_drvs, frozenset(edited), text)
        self.derived[key] = drv
        return drv

    def derive_all(self, targets: list[str], projects: list[str] | None) -> list[Derivation]:
        """The selected project x target derivations, in plan order within each target."""
        check_selection(self.plan, targets, projects, self.cache_dir)
        chosen = [p for p in self.plan.projects if not projects or p in projects]
        needed = set(chosen).union(*(closure(self.plan, c) for c in chosen))
        for t in targets:
            # Dependencies first, in plan order (topological), so that ``derive`` finds them
            # derived and never recurses deeper than one level.
            for p in self.plan.projects:
                if p in needed:
                    self.derive(p, t)
        if self._crates is not None:
            self._crates.plan_crates.finish()
        self.digests.save(beside=True)  # a cache: written while the build runs
        return [self.derive(p, t) for t in targets for p in chosen]


def check_selection(plan: Plan, targets: list[str], projects: list[str] | None,
                    cache_dir: Path | None = None) -> None:
    """Targets and projects named on the command line must exist in the plan."""
    for target in targets:
        if target not in plan.targets:
            raise UsageError(f"unknown target '{target}'",
                             f"the plan has: {', '.join(plan.targets)}")
    for name in projects or ():
        if name not in plan.projects:
            raise UsageError(f"unknown project '{name}'",
                             f"the plan has: {', '.join(plan.projects)}")
    for target in targets:
        check_spec(plan.targets[target], cache_dir)
    for name in projects or plan.projects:
        project = plan.projects[name]
        if project.language != "rust":
            continue
        from engine.derive.rust_actions import LIB_ROOT
        from engine.toolchain import rust_cross

        for target in targets:
            if plan.targets[target].triple != "host":
                rust_cross.check(plan.targets[target], name)
        for dep in closure(plan, name):
            other = plan.projects[dep]
            if other.language == "rust" and LIB_ROOT not in other.sources:
                raise UnsupportedLanguage(
                    f"project '{name}' depends on the rust project '{dep}', which has no "
                    f"library crate ({LIB_ROOT} is not in its sources)",
                    f"add {LIB_ROOT} to the sources of '{dep}', or drop the dependency",
                    pos=project.pos)


class UnsupportedLanguage(RecipeError):
    """A combination of languages this version cannot build."""


def _linked(project: Project, deps: list[Derivation]) -> list[Derivation]:
    """The dependencies whose libraries a project links. A Rust project uses its Rust
    dependencies' rlibs (by ``--extern``), not their static or shared libraries; any project
    links a Rust dependency of another Rust dependency through that one (a Rust static or
    shared library holds its whole crate graph), never twice."""
    inside = {n for d in deps if d.project.language == "rust" for n in d.data["depends"]}
    return [d for d in deps if d.project.language != "rust"
            or (project.language != "rust" and d.project.name not in inside)]


def _libraries(dep: Derivation) -> list[DepLib]:
    """The library a dependent links from a dependency: its static library, else its shared
    one (found at run time through an $ORIGIN-relative rpath, so the store stays relocatable)."""
    outputs = dep.project.outputs
    for kind in ("static-library", "shared-library"):
        for output in outputs:
            if output.kind == kind:
                file = output_file(output, dep.target).removeprefix("out/")
                if file.endswith(".dll"):  # a DLL is linked through its import library
                    file = flags.import_library(f"out/{file}").removeprefix("out/")
                native = ""
                if dep.project.language == "rust" and kind == "static-library":
                    from engine.derive.rust_actions import native_libs_file  # Rust plans only
                    native = native_libs_file(output.name).removeprefix("out/")
                return [DepLib(dep.name, dep.project.name, file, kind == "shared-library",
                               native)]
    return []
