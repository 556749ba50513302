"""The bundled example projects in ``recipes/`` are valid code with correct manifests and cases.

No part of ``recipe`` is involved: each project's manifest is read with ruamel.yaml, its patterns
are expanded with pathspec, its translation units are compiled with gcc or g++ directly, warning-
free at -O0 and -O2, and every file a unit includes from the repository must be one its project
declares in ``headers`` (or one of its dependencies' ``public_headers``), as a build in the store
would demand. The executables are then linked and every process case is run the way a case runs
(a scratch working folder holding the case's ``files``, a clean environment), and its output must
match the expectation exactly. When one of these fails, the example is wrong, not the engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pathspec
import pytest
from ruamel.yaml import YAML

RECIPES = Path(__file__).resolve().parent.parent / "recipes"
OPT_LEVELS = ("-O0", "-O2")
CASE_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC", "HOME": "/nonexistent"}
WARNINGS = ["-Wall", "-Wextra", "-Werror"]


def _load(path: Path) -> dict:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _expand(folder: Path, patterns: list[str]) -> list[Path]:
    """Files under folder that gitignore-style patterns select, sorted."""
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    return sorted(folder / name for name in spec.match_tree_files(folder))


@dataclass
class Project:
    name: str
    dir: Path
    doc: dict

    @property
    def language(self) -> str:
        return self.doc["language"]

    def files(self, key: str) -> list[Path]:
        return _expand(self.dir, self.doc.get(key, []))

    def compile_args(self) -> list[str]:
        std = [f"-std={self.doc['standard']}"] if "standard" in self.doc else []
        defines = [
            f"-D{k}" if v in ("", None) else f"-D{k}={v}"
            for k, v in self.doc.get("defines", {}).items()
        ]
        return std + self.doc.get("flags", {}).get("compile", []) + defines

    def include_args(self) -> list[str]:
        return [f"-I{self.dir / d}" for d in self.doc.get("include_dirs", [])]


def _projects() -> dict[str, Project]:
    plan = _load(RECIPES / "plan.yaml")
    found = {}
    for path in _expand(RECIPES, plan["projects"]):
        doc = _load(path)
        found[doc["name"]] = Project(doc["name"], path.parent, doc)
    return found


PROJECTS = _projects()


def _closure(project: Project) -> list[Project]:
    """The project's dependencies, transitively, each before its dependents."""
    order: list[Project] = []

    def visit(p: Project) -> None:
        for name in p.doc.get("depends", []):
            dep = PROJECTS[name]
            if dep not in order:
                visit(dep)
                order.append(dep)

    visit(project)
    return order


def _compiler(language: str) -> str:
    name = "g++" if language == "c++" else "gcc"
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def _included_files(depfile: Path, cwd: Path) -> set[Path]:
    """Every file a make-style dependency file lists after its target."""
    words = depfile.read_text().replace("\\\n", " ").split()
    return {(cwd / w).resolve() for w in words[1:] if not w.endswith(":")}


def _compile(project: Project, source: Path, obj: Path, opt: str) -> None:
    deps = _closure(project)
    argv = [_compiler(project.language), "-c", opt, *WARNINGS, *project.compile_args()]
    argv += project.include_args()
    for dep in deps:
        argv += dep.include_args()
    depfile = obj.with_suffix(".d")
    argv += ["-MD", "-MF", str(depfile), "-o", str(obj), str(source)]
    result = subprocess.run(argv, cwd=project.dir, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, (
        f"{project.name}: {source.relative_to(RECIPES)} does not compile cleanly at {opt}:\n"
        f"{result.stderr}"
    )
    allowed = set(project.files("headers"))
    for dep in deps:
        allowed |= set(dep.files("public_headers"))
    undeclared = (
        {p for p in _included_files(depfile, project.dir) if p.is_relative_to(RECIPES)}
        - allowed
        - {source.resolve()}
    )
    assert not undeclared, (
        f"{project.name}: {source.relative_to(RECIPES)} includes undeclared "
        f"{sorted(str(p.relative_to(RECIPES)) for p in undeclared)}; add them to headers"
    )


def _compile_all(jobs: list[tuple[Project, Path, Path]], opt: str) -> None:
    """Compile (project, source, object) jobs in parallel: g++ on <ranges> takes a while."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for future in [pool.submit(_compile, p, src, obj, opt) for p, src, obj in jobs]:
            future.result()


def _object(out: Path, project: Project, source: Path, prefix: str = "") -> Path:
    flat = source.relative_to(project.dir).as_posix().replace("/", "__")
    return out / project.name / f"{prefix}{flat}.o"


def build(project: Project, out: Path, opt: str) -> dict[str, Path]:
    """Compile the project and its dependencies into out; link its executables by name."""
    deps = _closure(project)
    libs = {
        p.name: [(p, source, _object(out, p, source)) for source in p.files("sources")]
        for p in [project, *deps]
    }
    exe_jobs = {
        output["name"]: [
            (project, s, _object(out, project, s, output["name"] + "__"))
            for s in _expand(project.dir, output["sources"])
        ]
        for output in project.doc["outputs"]
        if output["kind"] == "executable" and "sources" in output
    }
    jobs = [job for group in [*libs.values(), *exe_jobs.values()] for job in group]
    for _, _, obj in jobs:
        obj.parent.mkdir(parents=True, exist_ok=True)
    _compile_all(jobs, opt)

    def objects(name: str) -> list[str]:
        return [str(obj) for _, _, obj in libs[name]]

    # Link order: the project's library, then each dependency before what it depends on.
    archive_order = [project.name, *(d.name for d in reversed(deps))]
    link_flags = [
        f for name in archive_order for f in PROJECTS[name].doc.get("flags", {}).get("link", [])
    ]
    linker = _compiler("c++" if any(p.language == "c++" for p in [project, *deps]) else "c")
    exes = {}
    for output in project.doc["outputs"]:
        if output["kind"] != "executable":
            continue
        own = [str(obj) for _, _, obj in exe_jobs.get(output["name"], [])]
        exe = out / project.name / output["name"]
        argv = [linker, opt, "-o", str(exe), *own, *(o for n in archive_order for o in objects(n))]
        result = subprocess.run([*argv, *link_flags], capture_output=True, text=True)
        assert result.returncode == 0, (
            f"{project.name}: linking {output['name']} failed:\n{result.stderr}"
        )
        exes[output["name"]] = exe
    return exes


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], dict[str, Path]]:
    """The executables of a project built at an opt level, by name; built once per module."""
    cache: dict[tuple[str, str], dict[str, Path]] = {}
    root = tmp_path_factory.mktemp("recipes")

    def get(name: str, opt: str) -> dict[str, Path]:
        if (name, opt) not in cache:
            cache[(name, opt)] = build(PROJECTS[name], root / opt, opt)
        return cache[(name, opt)]

    return get


def test_the_plan_bundles_three_projects() -> None:
    assert sorted(PROJECTS) == ["histogram", "strutil", "wordcount"]


@pytest.mark.parametrize("opt", OPT_LEVELS)
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_project_compiles_warning_free(name: str, opt: str, built) -> None:
    exes = built(name, opt)
    assert exes, f"{name} has no executable to run its cases"


def _cases(project: Project) -> list[tuple[Path, dict]]:
    patterns = project.doc.get("cases", ["cases/*.yaml"])
    paths = _expand(project.dir, patterns)
    return [(path, case) for path in paths for case in _load(path)["cases"]]


CASES = [
    pytest.param(name, path, case, id=f"{name}: {case['name']}")
    for name, project in sorted(PROJECTS.items())
    for path, case in _cases(project)
]


def test_every_project_has_process_cases_with_unique_names() -> None:
    for name, project in PROJECTS.items():
        cases = [case for _, case in _cases(project)]
        assert cases, f"{name} has no cases"
        assert all("run" in c and "eval" not in c and "function" not in c for c in cases), name
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), f"{name}: case names repeat"


@pytest.mark.parametrize(("name", "path", "case"), CASES)
def test_case_matches(name: str, path: Path, case: dict, built, tmp_path: Path) -> None:
    exe = built(name, "-O2")[case["run"]]
    folder = path.parent
    for src in _expand(folder, case.get("files", [])):
        dest = tmp_path / src.relative_to(folder)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    if "stdin_file" in case:
        stdin = (folder / case["stdin_file"]).read_bytes()
    else:
        stdin = case.get("stdin", "").encode()
    result = subprocess.run(
        [str(exe), *map(str, case.get("args", []))],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        env={**CASE_ENV, **{k: str(v) for k, v in case.get("env", {}).items()}},
        timeout=case.get("timeout", 10),
    )
    expect = case["expect"]
    actual = {
        "exit": result.returncode,
        "stdout": result.stdout.decode(errors="replace"),
        "stderr": result.stderr.decode(errors="replace"),
    }
    wanted = {"exit": expect.get("exit", 0)}
    for stream in ("stdout", "stderr"):
        if stream in expect:
            wanted[stream] = expect[stream]
    assert {k: actual[k] for k in wanted} == wanted, f"{path.relative_to(RECIPES)}: {case['name']}"
