"""The library a REPL submission links against, for a project that has no static library.

A project whose outputs are only executables (or a shared library) still has code a REPL
submission wants to call. For it the REPL realises one more derivation: a *REPL library*
project, ``<name>-repl``, whose only output is the static library ``lib<name>-repl.a`` built
from every source of the project and its outputs except those that define ``main``. Its
compiles have the same argument lists as the project's own, so they come out of the action
cache; only the archive is new. Nothing of the project's own derivation changes.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from engine.documents.models import Output, Plan, Project

SUFFIX = "-repl"

# A definition of main at file scope: `int main(`, `auto main(`, `int\nmain (` (GNU style).
_MAIN = re.compile(rb"\b(?:int|auto)\s+main\s*\(")
_COMMENT = re.compile(rb"/\*.*?\*/|//[^\n]*", re.DOTALL)
_STRING = re.compile(rb'"(?:\\.|[^"\\\n])*"')


def static_library(project: Project) -> Output | None:
    return next((o for o in project.outputs if o.kind == "static-library"), None)


def defines_main(path: Path) -> bool:
    """Whether a C or C++ source defines ``main`` (comments and string literals ignored)."""
    text = _STRING.sub(b'""', _COMMENT.sub(b" ", path.read_bytes()))
    return _MAIN.search(text) is not None


def library_sources(project: Project) -> tuple[str, ...]:
    """Every source of the project and of its outputs, but those that define ``main``."""
    sources = set(project.sources)
    for output in project.outputs:
        sources.update(output.sources or ())
    return tuple(sorted(s for s in sources if not defines_main(project.dir / s)))


def repl_plan(plan: Plan, name: str) -> tuple[Plan, str]:
    """The plan to realise for the REPL library of project ``name`` and the project to select
    in it: the plan itself when the project has a static library; else a copy with the REPL
    library project ``<name>-repl`` added after it (nothing depends on it)."""
    project = plan.projects[name]
    if static_library(project) is not None:
        return plan, name
    sources = library_sources(project)
    repl_name = name + SUFFIX
    output = Output(name=repl_name, kind="static-library", sources=None, pos=project.pos)
    library = dataclasses.replace(project, name=repl_name, sources=sources, outputs=(output,),
                                  cases=[])
    return dataclasses.replace(plan, projects={**plan.projects, repl_name: library}), repl_name
