"""``recipe init``: a new plan with one project, or one more project in an existing plan.

Nothing here prints; ``engine.cli.init`` renders what ``init`` returns. Every file is checked
first and then created exclusively (``open(..., "x")``), so an existing file is never touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from engine.errors import RecipeError
from engine.scaffold import templates as t

LANGUAGES = ("c", "c++", "rust")
PLAN_FILE = "plan.yaml"
# A project name (the schema's) that is also a C identifier or Rust crate name once '-' and
# '.' become '_': it must start with a letter.
_NAME = re.compile(r"[a-z][a-z0-9._-]{0,63}")


class InitError(RecipeError):
    """``recipe init`` cannot write what it was asked to (a file exists, a name is unusable)."""


@dataclass
class Created:
    plan: Path  # the plan file, new or existing
    project: str
    language: str
    new_plan: bool
    project_dir: Path
    files: list[Path] = field(default_factory=list)  # in the order written
    # when the plan's projects: patterns do not select the new project: where to add what
    add_pattern: str | None = None
    add_at: str | None = None  # the plan's position, e.g. "plan.yaml:3:1"


def project_name(folder: Path, name: str | None) -> str:
    """``name``, or the folder's name, checked to name a project, a C function and a crate."""
    chosen = name if name is not None else Path(os.path.abspath(folder)).name
    if not _NAME.fullmatch(chosen):
        given = "--name" if name is not None else f"the folder name {chosen!r}"
        raise InitError(f"{given} {chosen!r} cannot name a project" if name is not None
                        else f"{given} cannot name a project",
                        "pass --name NAME: lowercase letters, digits, '.', '_' or '-', "
                        "starting with a letter, at most 64 characters")
    return chosen


def init(folder: Path, language: str, name: str | None, lib: bool) -> Created:
    """Write into ``folder`` a plan with one project (in ``folder/<name>/``); or, when
    ``folder`` holds a plan.yaml, one more project of that plan in ``folder/<name>/``; or, when
    the folder above ``folder`` holds one, one more project of that plan in ``folder``."""
    if language not in LANGUAGES:
        raise InitError(f"--lang {language} is not a language recipe builds",
                        "pass --lang c, c++ or rust")
    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} is not a folder", "name a folder (new or existing) to init")
    above = Path(os.path.abspath(folder)).parent / PLAN_FILE
    if (folder / PLAN_FILE).exists():
        plan, new_plan = folder / PLAN_FILE, False
        if name is None:
            raise InitError(f"{folder} already holds a plan: a project added to it needs a "
                            "name", "pass --name NAME")
        chosen = project_name(folder, name)
        project_dir = folder / chosen
        if project_dir.exists():
            raise InitError(f"{project_dir} already exists", "pass another --name, or remove it")
    elif above.is_file():  # a folder of a plan's folder, as cargo new adds a workspace member
        plan, new_plan = above, False
        chosen = project_name(folder, name)
        project_dir = folder
    else:
        plan, new_plan = folder / PLAN_FILE, True
        chosen = project_name(folder, name)
        project_dir = folder / chosen
    files = {project_dir / rel: text for rel, text in project_files(chosen, language, lib)}
    if new_plan:
        files = {plan: t.PLAN, folder / ".gitignore": t.GITIGNORE, **files}
    for path in files:
        if os.path.lexists(path):
            raise InitError(f"{path} already exists",
                            "recipe init writes only new files: init another folder, or "
                            "remove it")
    created = Created(plan, chosen, language, new_plan, project_dir)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
        created.files.append(path)
    if not new_plan:
        rel = Path(os.path.relpath(os.path.abspath(project_dir), os.path.abspath(plan.parent)))
        missing = _missing_pattern(plan, f"{rel.as_posix()}/project.yaml")
        if missing is not None:
            created.add_pattern, created.add_at = missing
    return created


def project_files(name: str, language: str, lib: bool) -> list[tuple[str, str]]:
    """(path below the project's folder, text) of one project's files."""
    ident = name.replace("-", "_").replace(".", "_")
    program = f"{name}-cli" if lib else name
    values = {"name": name, "ident": ident, "guard": ident.upper() + "_H", "program": program,
              "language": language, "standard": "c17" if language == "c" else "c++20"}

    def fill(text: str) -> str:
        return Template(text).substitute(values)

    if language == "rust":
        outputs = [f"  - {{name: {name}, kind: static-library}}     # lib{name}.a"] if lib else []
        outputs.append(f"  - {{name: {program}, kind: executable, sources: [src/main.rs]}}")
        values["outputs"] = "\n".join(outputs)
        return [("project.yaml", fill(t.RUST_PROJECT)), ("src/lib.rs", fill(t.RUST_LIBRARY)),
                ("src/main.rs", fill(t.RUST_MAIN)), (f"cases/{name}.yaml", fill(t.CASES))]
    ext = "c" if language == "c" else "cpp"
    if lib:
        values["sources"] = f'["src/*.{ext}", "!src/main.{ext}"]   # the library'
        values["outputs"] = (f"  - {{name: {name}, kind: static-library}}     # lib{name}.a\n"
                             f"  - {{name: {program}, kind: executable, "
                             f"sources: [src/main.{ext}]}}")
    else:
        values["sources"] = f'["src/*.{ext}"]'
        values["outputs"] = f"  - {{name: {program}, kind: executable}}"
    library, main = (t.C_LIBRARY, t.C_MAIN) if language == "c" else (t.CXX_LIBRARY, t.CXX_MAIN)
    return [("project.yaml", fill(t.C_PROJECT)), (f"include/{name}.h", fill(t.C_HEADER)),
            (f"src/{name}.{ext}", fill(library)), (f"src/main.{ext}", fill(main)),
            (f"cases/{name}.yaml", fill(t.CASES))]


def _missing_pattern(plan: Path, file: str) -> tuple[str, str] | None:
    """The ``projects:`` entry to add when the plan's patterns do not select the new project
    (they are gitignore-style, as the loader reads them; its default is ``*/project.yaml``)."""
    import pathspec

    from engine.documents.load import DEFAULT_PROJECTS
    from engine.documents.yaml_load import read_doc

    doc = read_doc(plan, "plan")
    patterns = doc.data.get("projects", [DEFAULT_PROJECTS])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        return None  # the plan is wrong anyway: recipe validate will say how
    if pathspec.GitIgnoreSpec.from_lines(patterns).match_file(file):
        return None
    at = doc.pos(["projects"]) if "projects" in doc.data else doc.pos()
    return file, str(at)
