"""engine/'s imports point one way, downward, and go round in no circle (DESIGN.md section 6;
the placement of each package is written in docs/architecture.md, "Layering").

Every module under engine/ is read with ``ast`` and every import counts: at the top, inside
functions (the lazy ones a cycle hides behind) and under ``TYPE_CHECKING``. Imports by name
through ``importlib`` are not seen (cli/main.py's command table, store's and documents' lazy
attributes): those name modules below the importer by construction.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "engine"

#: Lowest first. A module may import from its own layer or from one below it. The first part of
#: a module's name under engine/ (a package or a top-level module) names its place.
LAYERS: list[set[str]] = [
    # no recipe in them
    {"engine", "errors", "faults", "hashing", "watch", "semver", "user_cache", "later"},
    {"store"},
    {"documents", "toolchain", "memo"},
    {"derive", "crates"},
    {"build", "executors", "remote"},
    {"verify", "repl", "release", "scaffold"},
    {"cli", "pytest_plugin", "server", "serving", "serving_modules", "serving_pages",
     "serving_ledger", "client"},
]

#: Import edges that close a cycle, allowed for now. Each names why; none may be added without
#: an issue to remove it.
CYCLE_ALLOWED: set[tuple[str, str]] = set()  # empty: keep it so

#: Imports that run up a layer, allowed for now, with why. Empty: keep it so.
UP_ALLOWED: set[tuple[str, str]] = set()


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The engine modules ``name`` imports: ``from a.b import c`` imports ``a.b.c`` when that is
    a module, else ``a.b``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(head + ([base] if base else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    edges = set()
    for target in found:
        while target and target not in MODULES:  # import engine.a.b.c where c is a name
            target = target.rpartition(".")[0]
        if target and target.startswith("engine") and target != name:
            edges.add(target)
    return edges


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _place(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(name: str) -> int:
    place = _place(name)
    for index, members in enumerate(LAYERS):
        if place in members:
            return index
    raise AssertionError(f"{name}: engine/{place} has no layer: add it to LAYERS and to "
                         "docs/architecture.md")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_graph_is_read() -> None:
    # A reader that saw nothing would pass everything: it sees what is certainly there.
    assert "engine.store" in GRAPH["engine.build.builder"]
    assert "engine.verify.files_expect" in GRAPH["engine.verify.compare"]  # inside a function
    assert len(MODULES) > 100


def test_every_module_has_a_layer() -> None:
    for name in MODULES:
        _layer(name)


def test_no_import_runs_up_a_layer() -> None:
    up = sorted(f"{name} (layer {_place(name)}) imports {target} (layer {_place(target)})"
                for name, targets in GRAPH.items() for target in targets
                if _layer(target) > _layer(name) and (name, target) not in UP_ALLOWED)
    assert not up, "\n".join(up)


def test_no_import_cycle_between_modules() -> None:
    graph = {name: {t for t in targets if (name, t) not in CYCLE_ALLOWED}
             for name, targets in GRAPH.items()}
    assert not _cycles(graph), _cycles(graph)


def test_no_cycle_between_packages_of_one_layer() -> None:
    # verify may use repl, or repl verify, not both: a layer's packages are ordered too.
    graph: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        graph.setdefault(_place(name), set()).update(
            _place(t) for t in targets if (name, t) not in CYCLE_ALLOWED)
    graph = {place: targets - {place} for place, targets in graph.items()}
    assert not _cycles(graph), _cycles(graph)


def test_the_allow_lists_are_still_needed() -> None:
    # An allowance whose import is gone must go too, or it would let the import back in.
    for name, target in CYCLE_ALLOWED | UP_ALLOWED:
        assert target in GRAPH[name], f"{name} no longer imports {target}: drop the allowance"


def test_the_layers_are_documented() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Layering", 1)[1].split("\n## ", 1)[0]
    for members in LAYERS:
        for place in members - {"engine"}:
            assert re.search(rf"`{re.escape(place)}(\.py|/)?`", section), \
                f"docs/architecture.md's Layering does not place {place}"
