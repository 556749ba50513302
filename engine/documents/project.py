"""``kind: project`` documents -> models.Project: file lists expanded, outputs, cases loaded."""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

from engine.documents.cases import Context, load_cases_doc
from engine.documents.errors import DocumentError
from engine.documents.models import CrateReq, Output, Project
from engine.documents.paths import check_relative
from engine.documents.schema import check_schema
from engine.documents.yaml_load import Doc, read_doc
from engine.errors import Pos
from engine.semver import Requirement, SemverError

# Passed to gcc as -std= (the GNU dialects keep GNU extensions and leave __STRICT_ANSI__
# undefined); Rust: the edition.
STANDARDS = {"c": ("c89", "c99", "c11", "c17", "c23", "gnu89", "gnu99", "gnu11", "gnu17",
                   "gnu23"),
             "c++": ("c++11", "c++14", "c++17", "c++20", "c++23", "gnu++11", "gnu++14",
                     "gnu++17", "gnu++20", "gnu++23"),
             "rust": ("2018", "2021", "2024")}
DEFAULT_CASES = "cases/*.yaml"


def load_project_doc(doc: Doc, ctx: Context) -> tuple[Project, dict[str, Pos]]:
    """The project of ``doc`` with its cases, and the position of each ``depends`` entry."""
    check_schema(doc)
    d = doc.data
    base = doc.file.parent

    def patterns(*path: str | int) -> list[tuple[str, Pos]]:
        node: Any = d
        for elem in path:
            node = node[elem]
        return [(text, doc.pos([*path, j])) for j, text in enumerate(node)]

    def expand(*path: str | int) -> tuple[str, ...]:
        return ctx.tree.expand(patterns(*path), base)

    language = d["language"]
    standard = None if "standard" not in d else str(d["standard"])
    if standard is not None and standard not in STANDARDS[language]:
        raise DocumentError(f"standard '{standard}' does not fit language {language}",
                            f"use one of {', '.join(STANDARDS[language])}",
                            pos=doc.pos(["standard"]))
    sources = expand("sources") if "sources" in d else ()
    public = expand("public_headers") if "public_headers" in d else ()
    headers = expand("headers") if "headers" in d else ()
    headers = tuple(sorted(set(headers) | set(public)))  # a public header is a header too
    include_dirs = tuple(
        ctx.tree.check_path(text, base, pos, what="folder", within=base)
        for text, pos in (patterns("include_dirs") if "include_dirs" in d else []))
    outputs = _outputs(doc, ctx, sources)
    if language == "rust":
        _check_rust(doc, sources, outputs)
    scope = tuple(d.get("repl", {}).get("scope", ()))
    if language != "rust":
        _check_scope(doc, scope, headers)
    flags = d.get("flags", {})
    depends = tuple(d.get("depends", ()))
    cases_patterns = patterns("cases") if "cases" in d else [(DEFAULT_CASES, doc.pos())]
    seen: dict[str, Pos] = {}
    cases = []
    for rel in ctx.tree.expand(cases_patterns, base, allow_empty="cases" not in d):
        cases_doc = read_doc(base / rel, "cases", "the project's cases: patterns must select "
                             "only cases files")
        cases.extend(load_cases_doc(cases_doc, ctx, outputs=outputs, seen=seen,
                                    project_dir=base))
    project = Project(
        name=d["name"], version=d["version"], language=language, standard=standard,
        dir=Path(os.path.realpath(base)), file=doc.file, pos=doc.pos(["name"]),
        sources=sources, headers=headers, public_headers=public, include_dirs=include_dirs,
        defines={k: define_value(v) for k, v in d.get("defines", {}).items()},
        compile_flags=tuple(flags.get("compile", ())), link_flags=tuple(flags.get("link", ())),
        depends=depends, outputs=outputs, repl_scope=scope, cases=cases,
        crates=_crates(doc))
    return project, {dep: doc.pos(["depends", j]) for j, dep in enumerate(depends)}


def _check_rust(doc: Doc, sources: tuple[str, ...], outputs: tuple[Output, ...]) -> None:
    """Cargo's layout: a library output is built from src/lib.rs; an executable output names
    its one crate root."""
    for j, output in enumerate(outputs):
        if output.kind != "executable" and "src/lib.rs" not in sources:
            raise DocumentError(f"output '{output.name}' is a {output.kind}, but the rust "
                                "project's sources have no src/lib.rs (the library crate root)",
                                "add src/lib.rs to sources:, or drop the output",
                                pos=doc.pos(["outputs", j]))
        if output.kind == "executable" and len(output.sources or ()) != 1:
            raise DocumentError(f"executable '{output.name}' of a rust project needs exactly one "
                                "source: its crate root", "write sources: [src/main.rs] (other "
                                "modules go in the project's sources:)",
                                pos=doc.pos(["outputs", j]))


def _crates(doc: Doc) -> tuple[CrateReq, ...]:
    """``crates:``, Rust only, each requirement in Cargo's syntax."""
    raw = doc.data.get("crates", {})
    if raw and doc.data["language"] != "rust":
        raise DocumentError(f"crates: is for rust projects, not {doc.data['language']}",
                            "drop crates:, or make the project language: rust",
                            pos=doc.pos(["crates"], key=True))
    crates = []
    for name, spec in raw.items():
        spec = {"version": spec} if isinstance(spec, str) else spec
        try:
            Requirement.parse(spec["version"])
        except SemverError as error:
            raise DocumentError(f"crate '{name}': {error}", "write a requirement such as "
                                '"1", "^1.2", "~0.3.1" or ">=1.2, <2"',
                                pos=doc.pos(["crates", name])) from None
        crates.append(CrateReq(name, spec["version"], tuple(spec.get("features", ())),
                               spec.get("default-features", True),
                               doc.pos(["crates", name], key=True)))
    return tuple(crates)


def define_value(value: str | int | bool | None) -> str:
    """A define's value as it follows ``-DNAME=``: true is 1, false is 0, null is bare."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _outputs(doc: Doc, ctx: Context, sources: tuple[str, ...]) -> tuple[Output, ...]:
    outputs: list[Output] = []
    # bin/<name> and lib/lib<name>.*: an executable and a library may share a name, two
    # executables or two libraries (even a static and a shared one) may not.
    names: dict[tuple[str, str], Pos] = {}
    for i, raw in enumerate(doc.data["outputs"]):
        name, pos = raw["name"], doc.pos(["outputs", i, "name"])
        role = "executable" if raw["kind"] == "executable" else "library"
        if (role, name) in names:
            raise DocumentError(f"duplicate {role} name '{name}' (first at "
                                f"{names[(role, name)]})",
                                f"give every {role} its own name (an executable and a library "
                                "may share one)", pos=pos)
        names[(role, name)] = pos
        own = None
        if "sources" in raw:
            own = ctx.tree.expand([(text, doc.pos(["outputs", i, "sources", j]))
                                   for j, text in enumerate(raw["sources"])], doc.file.parent)
        if not (own if own is not None else sources):
            raise DocumentError(f"output '{name}' has no sources",
                                "add sources: to the project or to the output",
                                pos=doc.pos(["outputs", i]))
        outputs.append(Output(name=name, kind=raw["kind"], sources=own,
                              pos=doc.pos(["outputs", i])))
    return tuple(outputs)


def _check_scope(doc: Doc, scope: tuple[str, ...], headers: tuple[str, ...]) -> None:
    """A C or C++ REPL scope names headers of the project (the REPL build sees nothing else)."""
    for j, text in enumerate(scope):
        pos = doc.pos(["repl", "scope", j])
        rel = posixpath.normpath(check_relative(text, pos))
        if rel not in headers:
            raise DocumentError(f"REPL scope header '{text}' is not one of the project's headers",
                                "add it to headers or public_headers", pos=pos)
