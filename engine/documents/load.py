"""Loading documents: a whole plan (every project, cases file and reference cross-checked), or
one project, cases or targets file on its own (``recipe validate``)."""

from __future__ import annotations

import functools
import heapq
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from engine.documents.cases import Context, load_cases_doc
from engine.documents.data_rows import paused_gc
from engine.documents.errors import DocumentError, did_you_mean
from engine.documents.models import Case, Plan, Project, TargetSpec
from engine.documents.paths import Tree
from engine.documents.project import load_project_doc
from engine.documents.schema import check_schema
from engine.documents.yaml_load import Doc, read_doc
from engine.errors import Pos

DEFAULT_PROJECTS = "*/project.yaml"
_T = TypeVar("_T")


def _no_gc(load: Callable[..., _T]) -> Callable[..., _T]:
    """Loading makes a list per table row and collects no garbage cycles: no cycle collection
    meanwhile (a quarter of the time of a large table)."""
    @functools.wraps(load)
    def loading(*args: Any, **kwargs: Any) -> _T:
        with paused_gc():
            return load(*args, **kwargs)
    return loading


@_no_gc
def load_plan(path: Path, *, allow_missing_goldens: bool = False) -> Plan:
    """Load and cross-check the plan at ``path``; raise DocumentError for the first problem.

    ``allow_missing_goldens``: a missing ``stdout_file``/``stderr_file`` is not an error (for
    ``recipe verify --update``, which records them).
    """
    doc = read_doc(Path(path), "plan")
    return _plan(doc, allow_missing_goldens)


@_no_gc
def load_project_file(path: Path) -> Project:
    """A project and its cases on their own; paths may not leave the project's folder."""
    doc = read_doc(Path(path), "project")
    return _project_alone(doc)


@_no_gc
def load_cases_file(path: Path) -> list[Case]:
    """A cases file on its own (``run:`` unchecked); paths may not leave its folder, but
    ``files: [{from: ...}]`` may reach into the project it sits in."""
    doc = read_doc(Path(path), "cases")
    return _cases_alone(doc)


def _cases_alone(doc: Doc) -> list[Case]:
    """The nearest folder above holding a project.yaml is the cases file's project."""
    here = doc.file.parent.absolute()
    project = next((folder for folder in (here, *here.parents)
                    if (folder / "project.yaml").is_file()), here)
    return load_cases_doc(doc, Context(Tree(project)), project_dir=project)


@_no_gc
def validate_file(path: Path) -> str:
    """Check one document by its kind (a plan: everything it loads); return the kind."""
    doc = read_doc(Path(path))
    if doc.kind == "plan":
        _plan(doc, False)
    elif doc.kind == "project":
        _project_alone(doc)
    elif doc.kind == "cases":
        _cases_alone(doc)
    else:
        check_schema(doc)
    return doc.kind


def _project_alone(doc: Doc) -> Project:
    return load_project_doc(doc, Context(Tree(doc.file.parent)))[0]


def _plan(doc: Doc, allow_missing_goldens: bool) -> Plan:
    check_schema(doc)
    d = doc.data
    folder = Path(os.path.realpath(doc.file.parent))
    store = Path(os.path.normpath(folder / d["store"])) if "store" in d else None
    # The store may sit inside the plan's folder: never walk it looking for projects.
    ctx = Context(Tree(folder, skip=[store or folder / "store"]), allow_missing_goldens)
    targets = _targets(doc, d.get("targets"))
    defaults = _default_targets(doc, targets)
    if "projects" in d:
        patterns = [(text, doc.pos(["projects", j])) for j, text in enumerate(d["projects"])]
        files = ctx.tree.expand(patterns, doc.file.parent)
    else:
        files = ctx.tree.expand([(DEFAULT_PROJECTS, doc.pos())], doc.file.parent,
                                allow_empty=True)
        if not files:
            raise DocumentError(f"no project found: the default pattern '{DEFAULT_PROJECTS}' "
                                "matches no file", "add projects: [...] naming project files",
                                pos=doc.pos())
    projects: dict[str, Project] = {}
    depends_at: dict[str, dict[str, Pos]] = {}
    for rel in files:
        pdoc = read_doc(doc.file.parent / rel, "project",
                        "the plan's projects: patterns must select only project files")
        project, depends_at[project.name] = load_project_doc(pdoc, ctx)
        first = projects.get(project.name)
        if first is not None:
            raise DocumentError(f"duplicate project name '{project.name}' (first at {first.pos})",
                                "give every project of the plan its own name", pos=project.pos)
        projects[project.name] = project
    _check_depends(projects, depends_at)
    ordered = _dependency_order(projects)
    registry = Path(os.path.normpath(folder / d["registry"])) if "registry" in d else None
    return Plan(file=doc.file, dir=folder, store=store,
                projects={name: projects[name] for name in ordered},
                targets=targets, default_targets=defaults, registry=registry,
                registry_pos=doc.pos(["registry"]) if "registry" in d else None,
                remote_cache=_remote_cache(doc))


def _remote_cache(doc: Doc) -> tuple[str, str | None, Pos] | None:
    """The plan's shared cache, as written (checked, with its position, where it is used)."""
    raw = doc.data.get("remote_cache")
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw, None, doc.pos(["remote_cache"])
    return raw["url"], raw.get("token_env"), doc.pos(["remote_cache", "url"])


def _targets(doc: Doc, raw: dict[str, Any] | None) -> dict[str, TargetSpec]:
    if raw is None:  # no targets: one implicit release build for the host
        return {"release": TargetSpec(name="release", opt="release")}
    targets = {}
    for name, spec in raw.items():
        toolchain = spec.get("toolchain", "system")
        targets[name] = TargetSpec(
            name=name, triple=spec.get("triple", "host"),
            toolchain=dict(toolchain) if isinstance(toolchain, dict) else toolchain,
            opt=spec.get("opt", "release"), strip=spec.get("strip", False),
            lto=spec.get("lto", False), cpu=spec.get("cpu"),
            features=tuple(spec.get("features", ())), pos=doc.pos(["targets", name]),
            runner=_runner(spec.get("runner")), timeout_factor=spec.get("timeout_factor"),
            key_pos={key: doc.pos(["targets", name, key]) for key in spec})
    return targets


def _runner(raw: str | list[str] | None) -> str | tuple[str, ...] | None:
    return tuple(raw) if isinstance(raw, list) else raw


def _default_targets(doc: Doc, targets: dict[str, TargetSpec]) -> tuple[str, ...]:
    if "default_targets" not in doc.data:
        return (next(iter(targets)),)  # the first target written (or the implicit release)
    for j, name in enumerate(doc.data["default_targets"]):
        if name not in targets:
            fix = did_you_mean(name, targets) or (
                f"name one of {', '.join(targets)}" if "targets" in doc.data
                else "define it under targets: (without targets: only 'release' exists)")
            raise DocumentError(f"unknown target '{name}' in default_targets", fix,
                                pos=doc.pos(["default_targets", j]))
    return tuple(doc.data["default_targets"])


def _check_depends(projects: dict[str, Project], depends_at: dict[str, dict[str, Pos]]) -> None:
    """Every dependency names a project of the plan, and there is no cycle."""
    for project in projects.values():
        for dep in project.depends:
            if dep not in projects:
                fix = did_you_mean(dep, projects) or \
                    f"the plan's projects are {', '.join(sorted(projects))}"
                raise DocumentError(f"unknown project '{dep}' in depends", fix,
                                    pos=depends_at[project.name][dep])
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(projects):
        if root in state:
            continue
        # Depth first with an explicit stack: a chain of thousands of projects must not reach
        # Python's recursion limit.
        state[root], path, todo = 1, [root], [iter(projects[root].depends)]
        while todo:
            dep = next(todo[-1], None)
            if dep is None:
                state[path.pop()] = 2
                todo.pop()
            elif state.get(dep) == 1:
                cycle = [*path[path.index(dep):], dep]
                raise DocumentError(f"dependency cycle: {' -> '.join(cycle)}",
                                    "remove one of these dependencies",
                                    pos=depends_at[cycle[0]][cycle[1]])
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                todo.append(iter(projects[dep].depends))


def _dependency_order(projects: dict[str, Project]) -> list[str]:
    """Dependencies first, ties by name (Kahn's algorithm over a heap)."""
    waiting = {name: len(set(p.depends)) for name, p in projects.items()}
    users: dict[str, list[str]] = {name: [] for name in projects}
    for name, project in projects.items():
        for dep in set(project.depends):
            users[dep].append(name)
    ready = [name for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        name = heapq.heappop(ready)
        order.append(name)
        for user in users[name]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, user)
    return order
