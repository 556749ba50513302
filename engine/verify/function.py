"""The function-case format: call the table's rows, judge every row.

A C or C++ project's rows are called by a table harness built for the case's target
(``engine.verify.harness``), on the host and through a foreign target's runner alike; so are a
Rust project's on a foreign target (the harness links its static library and the native
libraries rustc said it needs). A Rust project's rows are called on the host by the Python
worker (``engine.verify.table``) from its shared object: the project's own ``shared-library``
output when it has one; otherwise a *cases library* realised for it — a derivation of the
project as ``<name>-cases`` whose only output is ``lib<name>-cases.so``, built from every source
that does not define ``main`` (as the REPL library of ``engine.derive.repl_library``). Every
compile is position-independent, so its compiles are the project's own, found in the action
cache; only the link is new.

What the rows returned is cached as a process case's observation is (``function_cache``).
"""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import watch
from engine.derive.repl_library import library_sources
from engine.documents.data_rows import paused_gc
from engine.documents.models import Output, Plan
from engine.repl.runner import runner_key
from engine.store import Store
from engine.toolchain import flags
from engine.verify import harness, harness_source, runners
from engine.verify.function_cache import lookup_rows, record_rows, rows_key
from engine.verify.job import Job, Settings, not_run, remove_tree, target_runner
from engine.verify.outcome import Outcome
from engine.verify.process import new_scratch
from engine.verify.symbols import missing_symbol
from engine.verify.table import Results, TableError, call_rows, judge, plain

SUFFIX = "-cases"
_libraries: dict[tuple[str, ...], Path] = {}  # (store, plan, project, target) -> library
_guard = threading.Lock()
_locks: dict[tuple[str, ...], threading.Lock] = {}


def shared_library(plan: Plan, store: Any, project: str, target: str, path: Path) -> Path:
    """The shared object of ``project`` built for ``target`` (its store path is ``path``)."""
    own = next((o for o in plan.projects[project].outputs if o.kind == "shared-library"), None)
    if own is not None:
        return path / "lib" / f"lib{own.name}.so"
    key = (str(store.root), str(plan.file), project, target)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:  # cases run on several threads: the library is realised once
        if key not in _libraries:
            from engine.build.realise import realise

            variant, name = cases_plan(plan, project)
            result = realise(variant, store, [target], [name])
            _libraries[key] = result.paths[(name, target)] / "lib" / f"lib{name}.so"
        return _libraries[key]


def cases_plan(plan: Plan, name: str) -> tuple[Plan, str]:
    """The plan with the cases library of project ``name`` added, and its project name."""
    project = plan.projects[name]
    cases_name = name + SUFFIX
    output = Output(name=cases_name, kind="shared-library", sources=None, pos=project.pos)
    library = dataclasses.replace(project, name=cases_name, sources=library_sources(project),
                                  outputs=(output,), cases=[])
    return dataclasses.replace(plan, projects={**plan.projects, cases_name: library}), cases_name


def check_symbols(plan: Plan, store: Any, jobs: Sequence[Job]) -> None:
    """Before any case runs: every function a function case names is exported by its
    library (a TableError, exit 2, for the first that is not)."""
    for job in jobs:
        case = job.case
        if case.kind != "function" or case.signature is None or case.skip is not None:
            continue  # a skipped case's function may not be written yet
        if isinstance(runners.choose(plan.targets[job.target]), runners.NoRunner):
            continue  # not run there
        project = plan.projects[job.project]
        if not any(o.kind in ("shared-library", "static-library") for o in project.outputs) \
                and not library_sources(project):
            raise TableError(f"case '{case.name}': project '{job.project}' has no code to "
                             "call but in sources that define main",
                             "move the functions into a source of their own (the cases "
                             "library is built from every source that does not define "
                             "main)", pos=case.pos)
        if isinstance(store, Store) and harness.usable(plan, job.project, job.target):
            _, library = harness.spec_for(plan, store, job.project, job.target, job.path)
        elif plan.targets[job.target].triple != "host":
            continue  # not run there: a foreign target's harness needs the store
        else:
            library = shared_library(plan, store, job.project, job.target, job.path)
        watch.seen(library)  # a store file: a remembered verify misses when it is rebuilt
        check_export(job, library)


def check_export(job: Job, library: Path) -> None:
    """The function ``job``'s case names is exported by ``library`` (a TableError if not)."""
    case = job.case
    assert case.signature is not None
    if missing_symbol(library, case.signature.name):
        raise TableError(f"case '{case.name}': {library.name} of project '{job.project}' "
                         f"has no function '{case.signature.name}'",
                         "check the name in function:, and that the library exports it "
                         "(not static, extern \"C\" in C++, #[no_mangle] in Rust)",
                         pos=case.pos)


def run_function_case(job: Job, settings: Settings) -> Outcome:
    """The format of ``function:`` cases (see engine.verify.runner): through a table harness
    built for the target (C and C++ projects on every target a runner runs, Rust projects on
    foreign ones), else through the Python worker (on the host)."""
    start = time.monotonic()
    case = job.case
    assert job.plan is not None, "a function case needs the plan it comes from"
    chosen = target_runner(job, settings)
    if isinstance(chosen, runners.NoRunner):
        return not_run(job, chosen)
    store = settings.store
    if isinstance(store, Store) and harness.usable(job.plan, job.project, job.target):
        rows, cached = _harness_rows(job, settings, store, chosen)
    elif chosen is not None:
        language = job.plan.projects[job.project].language
        return not_run(job, runners.NoRunner(
            f"function cases of {language} projects run on a foreign target through a table "
            "harness, which is built into a store"))
    else:
        rows, cached = _worker_rows(job, settings)
    with paused_gc():
        failing, detail = judge(case, rows, settings.failing_rows)
    n = len(case.table)
    outcome = Outcome(job.project, job.target, case.name, "failed" if failing else "passed",
                      time.monotonic() - start, detail=detail, source=case,
                      message=f"{len(failing)} of {n} rows failed" if failing else f"{n} rows",
                      cached=cached)
    returns = case.signature.returns if case.signature else None
    outcome.rows = {i: plain(rows.values[i], returns) for i in failing
                    if i not in rows.problems}
    outcome.crashed = sorted(rows.problems)
    outcome.rows_shown = settings.failing_rows
    outcome.runner = chosen.name if chosen is not None else ""
    return outcome


def _harness_rows(job: Job, settings: Settings, store: Store,
                  chosen: runners.Runner | None) -> tuple[Results, bool]:
    """The rows' results, called by the case's harness (built, or found in the cache)."""
    assert job.plan is not None
    spec, _ = harness.spec_for(job.plan, store, job.project, job.target, job.path)
    code = harness_source.generate(job.case.signature, job.case.free, spec.title) \
        if job.case.signature is not None else ""
    on = (chosen.name, *chosen.prefix[1:]) if chosen is not None else ()
    key = rows_key(job.case, "harness:" + runner_key(spec, code), on)
    rows = lookup_rows(store, key) if key and settings.use_cache else None
    if rows is not None:
        return rows, True
    made, _ = harness.build(spec, store, job.case)
    scratch = new_scratch(store, "table")
    try:
        executable = made.executable
        if flags.object_format(job.plan.targets[job.target]) == "coff":  # wine wants .exe
            executable = executable.rename(executable.with_suffix(".exe"))
        with paused_gc():
            rows = harness.call_rows(job.case, executable, scratch, runner=chosen, cache=store,
                                     cap=settings.cap)
    finally:
        made.remove()
        remove_tree(scratch)
    if key:
        record_rows(store, key, rows, owner=spec.library)
    return rows, False


def _worker_rows(job: Job, settings: Settings) -> tuple[Results, bool]:
    """The rows' results, called by the Python worker from the project's shared library."""
    assert job.plan is not None
    case = job.case
    library = settings.library or shared_library(job.plan, settings.store, job.project,
                                                 job.target, job.path)
    owner = job.path.name if settings.library else library.parent.parent.name
    store = settings.store
    key = rows_key(case, owner) if store is not None else None
    waiting = settings.waiting.get((job.project, job.target, case.name))
    rows = lookup_rows(store, key) if store is not None and key and settings.use_cache else None
    if rows is not None:
        if waiting is not None:
            waiting.cancel()
        return rows, True
    scratch = new_scratch(store, "table") if waiting is None else waiting.scratch
    try:
        with paused_gc():
            rows = call_rows(case, library, scratch, cache=store, protect=[job.path],
                             waiting=waiting)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if store is not None and key:
        record_rows(store, key, rows, owner=owner)
    return rows, False
