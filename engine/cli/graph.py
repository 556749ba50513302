"""recipe graph PLAN [--format dot|svg|json]: the plan's projects x targets and what each
depends on, coloured by whether its store path is valid (built) or missing.

DOT is written here; SVG is DOT through Graphviz's ``dot -Tsvg`` (checked for before anything
is loaded or derived). An edge points from a derivation to one it links (a project's
``depends:``, on the same target).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from typing import Any

from engine.cli.common import add_selection, open_plan_and_store, print_json
from engine.errors import Failure, UsageError

FORMATS = ("dot", "svg", "json")
# Fill colours: green for a valid path, a light grey for one that would be built.
COLOURS = {True: "#b7e1a1", False: "#e6e6e6"}


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("graph", parents=[parent], help="the derivation graph: projects x "
                            "targets and their dependencies, as DOT, SVG or JSON")
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    add_selection(parser)
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="dot (default), svg (needs Graphviz's dot) or json (as --json)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.build.realise import derive

    form = args.format or ("json" if args.json else "dot")
    if args.json and form != "json":
        raise UsageError(f"--json and --format {form} ask for two formats", "pass one of them")
    dot = shutil.which("dot") if form == "svg" else None
    if form == "svg" and dot is None:
        raise UsageError("--format svg needs Graphviz's dot, which is not on PATH",
                         "install it (apt-get install graphviz) or pass --format dot")
    plan, store = open_plan_and_store(args)
    drvs = derive(plan, store, list(args.target or plan.default_targets), args.project)
    graph = _graph(drvs, store)
    if form == "json":
        print_json(graph)
        return 0
    text = to_dot(graph)
    if form == "dot":
        sys.stdout.write(text)
        return 0
    done = subprocess.run([dot, "-Tsvg"], input=text.encode(), capture_output=True)
    if done.returncode != 0:
        raise Failure(f"dot -Tsvg failed (exit {done.returncode}): "
                      f"{done.stderr.decode(errors='replace').strip()}")
    sys.stdout.buffer.write(done.stdout)
    return 0


def _graph(drvs: list[Any], store: Any) -> dict[str, Any]:
    """``{"nodes": [...], "edges": [...]}``: a node per derivation of the selection and its
    dependencies, an edge per direct dependency."""
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    for drv in drvs:
        for d in [*drv.deps, drv]:
            ident = f"{d.project.name}/{d.target.name}"
            if ident in nodes:
                continue
            nodes[ident] = {"id": ident, "project": d.project.name, "target": d.target.name,
                            "language": d.project.language, "name": d.name,
                            "valid": store.is_valid(d.name)}
            by_project = {dep.project.name: dep for dep in d.deps}
            edges += [{"from": ident, "to": f"{name}/{d.target.name}"}
                      for name in d.project.depends if name in by_project]
    return {"nodes": list(nodes.values()), "edges": edges}


def to_dot(graph: dict[str, Any]) -> str:
    """The graph in Graphviz's DOT: one cluster per target, a box per derivation."""
    lines = ["digraph recipe {", '  rankdir=LR; fontname="Helvetica";',
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];']
    targets = dict.fromkeys(n["target"] for n in graph["nodes"])
    for i, target in enumerate(targets):
        lines += [f"  subgraph cluster_{i} {{", f"    label={_quote(target)};"]
        for n in graph["nodes"]:
            if n["target"] == target:
                state = "valid" if n["valid"] else "missing"
                label = f"{n['project']}\\n{n['name'].split('-', 1)[0][:8]} {state}"
                lines.append(f"    {_quote(n['id'])} [label={_quote(label, escaped=True)}, "
                             f"fillcolor={_quote(COLOURS[n['valid']])}, "
                             f"tooltip={_quote(n['name'])}];")
        lines.append("  }")
    lines += [f"  {_quote(e['from'])} -> {_quote(e['to'])};" for e in graph["edges"]]
    return "\n".join([*lines, "}"]) + "\n"


def _quote(text: str, escaped: bool = False) -> str:
    """A DOT string; ``escaped``: ``text`` already holds DOT escapes (``\\n``) to keep."""
    body = text.replace('"', '\\"') if escaped else text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{body}"'
