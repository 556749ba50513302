"""Golden files no case references: after a full ``verify`` they are named, and ``--prune``
deletes them.

A golden file is a file below a ``golden/`` folder beside a cases document (where ``--update``
puts them). It is referenced when some case of the plan names it — as ``stdout_file``,
``stderr_file``, ``stdin_file``, among its ``files`` (``from`` included), as its ``rows:``
data file, as an ``expect: files:`` golden file or inside its ``expect: tree:`` folder —
whichever project that case is in.
Folders are walked without following symlinks, and nothing outside the plan's folder is ever
listed or deleted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from engine import watch
from engine.documents.models import Case, Plan
from engine.documents.paths import below


def referenced(case: Case) -> list[Path]:
    """Every file below the case's folder that the case names."""
    e = case.expect
    names = [e.stdout_file, e.stderr_file, case.stdin_file, *case.files, e.tree,
             *(f.file for f in e.files.values()), case.rows_file,
             *(source for source, _ in case.copies)]
    return [case.folder / n for n in names if n]


def find(plan: Plan, projects: Iterable[str]) -> list[Path]:
    """The golden files below the cases folders of ``projects`` that no case of the plan
    references, sorted."""
    named: set[str] = set()
    for project in plan.projects.values():
        for case in project.cases:
            for path in referenced(case):
                watch.seen(path)
                named.add(os.path.realpath(path))
                if path.is_dir():  # a folder among `files`, or a tree: all it holds
                    named.update(os.path.realpath(p) for p in path.rglob("*"))
    root = os.path.realpath(plan.dir)
    folders = {c.folder / "golden" for p in projects for c in plan.projects[p].cases}
    found = []
    for folder in sorted(folders):
        watch.seen(folder)  # a remembered verify lists the orphans it found: one added shows
        if folder.is_symlink() or not folder.is_dir() or \
                not below(os.path.realpath(folder), root):
            continue
        for top, dirs, files in os.walk(folder):  # symlinks to folders are not entered
            dirs.sort()
            watch.seen(top)
            for name in sorted(files):
                path = Path(top) / name
                watch.seen(path)
                if os.path.realpath(path) not in named and str(path) not in named:
                    found.append(path)
    return found


def prune(paths: Iterable[Path], plan_dir: Path) -> list[Path]:
    """Delete ``paths`` (from :func:`find`; a symlink itself, not its target); the deleted."""
    root = os.path.realpath(plan_dir)
    gone = []
    for path in paths:
        if not below(os.path.realpath(path.parent), root):
            continue
        try:
            os.unlink(path)
        except FileNotFoundError:
            continue
        gone.append(path)
    return gone
