"""The eval-case format: a REPL submission (``eval:``) compiled in the project's scope and run
like a process case — stdout, stderr and exit code compared, ``--update`` re-records.

The runner comes from ``engine.repl`` (content-addressed: an unchanged case does not compile);
it runs through ``process.run_argv`` with the same containment as a process case (the reaper,
Landlock or the write check, a timeout, output caps) in a fresh scratch folder whose ``works``
is the case's ``RECIPE_WORKS``: empty at the start of every case, so cases stay independent.

Outcome cache key: sha256 (hex) of the canonical JSON of
``{"v": 2, "kind": "eval-case", "runner": <the runner's key>}`` (version 2: the runner sees
the project's name as ``argv[0]`` and the project's ``bin/`` first on ``PATH``; the runner
key covers the submission, the scope, the library's store path name, flags and toolchain);
the result is an observation as for process cases (``cache.py``), attached to the library's
store path.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from engine.documents.models import Plan
from engine.errors import RecipeError
from engine.hashing import canonical_hash
from engine.repl import child
from engine.repl.runner import CompileError, build, runner_key
from engine.repl.rust import RustScope
from engine.repl.scope import Scope, prepare
from engine.store import Store
from engine.verify import cache, files_expect, landlock, runners
from engine.verify.compare import compare, with_newlines
from engine.verify.job import Job, Settings, not_run, remove_tree, target_runner
from engine.verify.outcome import Observed, Outcome, Status
from engine.verify.process import CannotRun, captured, new_scratch, run_argv
from engine.verify.writeguard import Guard

# (id(plan), id(store), project, target) -> (plan, store, scope): holding the plan and the
# store keeps their ids from being reused by a later run in the same process.
_scopes: dict[tuple[int, int, str, str], tuple[Plan, Store, Scope | RustScope]] = {}
_preparing: dict[tuple[int, int, str, str], threading.Lock] = {}
_guard = threading.Lock()


def run_eval_case(job: Job, settings: Settings, run: Callable[..., Observed] | None = None
                  ) -> Outcome:
    """Compile (or find) the case's runner, run it contained (``run``: ``_run``, here; or on
    a cluster, ``engine.verify.distributed``), compare."""
    start = time.monotonic()
    store, plan = settings.store, job.plan
    if not isinstance(store, Store) or plan is None:
        return _outcome(job, "error", start, "eval cases need the plan and its store")
    code = job.case.code or ""
    chosen = target_runner(job, settings)
    if isinstance(chosen, runners.NoRunner):
        return not_run(job, chosen)
    try:
        scope = _scope(plan, store, job.project, job.target)
        spec = scope.spec()
        runner_id, owner = runner_key(spec, code), scope.library
        make = partial(build, spec, store, code)
        capture = files_expect.capture_key(job.case)
        key = canonical_hash({"v": 2, "kind": "eval-case", "runner": runner_id,
                              **({"on": list(runners.identity(chosen))}
                                 if chosen is not None else {}),
                              **({"capture": capture} if capture else {})})
        outcomes = settings.outcomes or store
        observed = cache.lookup(outcomes, key) if settings.use_cache else None
        cached = observed is not None
        if observed is None:
            runner = make()
            try:
                observed = (run or _run)(job, runner.executable, store, settings.cap, chosen)
            finally:
                runner.remove()
            cache.record(outcomes, key, observed, owner=owner)
        observed = dataclasses.replace(observed, store=str(job.path.parent))
    except CompileError as error:
        return _outcome(job, "failed", start, "the submission does not compile",
                        detail=error.detail or "")
    except (RecipeError, CannotRun) as error:
        text = error.render() if isinstance(error, RecipeError) else str(error)
        return _outcome(job, "error", start, text, detail=getattr(error, "detail", "") or "")
    status, message, detail = compare(job.case, observed, settings.cap)
    outcome = _outcome(job, status, start, message, detail=detail, cached=cached)
    outcome.observed = with_newlines(job.case, observed)  # what --update records
    outcome.runner = chosen.name if chosen is not None else ""
    return outcome


def _scope(plan: Plan, store: Store, project: str, target: str) -> Scope | RustScope:
    """Each project x target is prepared once per run, however many cases and threads ask."""
    key = (id(plan), id(store), project, target)
    with _guard:
        lock = _preparing.setdefault(key, threading.Lock())
    with lock:
        if key not in _scopes:
            _scopes[key] = (plan, store, prepare(plan, store, project, target))
        return _scopes[key][2]


def _run(job: Job, executable: Path, store: Store, cap: int,
         on: runners.Runner | None = None, via: list[str] | None = None) -> Observed:
    """``via``: the loader and its arguments that start the runner (on a worker: the ELF
    interpreter with ``--library-path``, ``engine.verify.distributed``)."""
    scratch = new_scratch(store, "case")
    works, tmp = scratch / "works", scratch / "tmp"
    works.mkdir()
    tmp.mkdir()
    protect = [job.path] + ([job.plan_dir] if job.plan_dir is not None else [])
    guard = Guard(protect, [job.path.parent]) if landlock.abi() == 0 else None
    try:
        env = child.environment(works, tmp)
        env["PATH"] = f"{job.path / 'bin'}:{env['PATH']}"  # the project's programs, by name
        # argv[0] is the project's name: the runner's own path is a temporary folder's (a
        # foreign runner gets the path, as it must, and the name where it can say it: qemu)
        argv, program = [job.project], str(executable)
        if via is not None:
            argv, program = [*via, str(executable)], via[0]
        timeout, writable = job.case.timeout, [scratch]
        restrict: list[Path] | None = writable
        if on is not None:  # a program of the target, run by its runner
            timeout, writable = timeout * on.factor, [scratch, *on.writable]
            argv, program = on.wrap([str(executable)], writable, job.project), None
            env = {**env, **on.env}
            restrict = None if on.confines else writable
        observed = run_argv(argv, cwd=works, env=env, stdin=b"", timeout=timeout, cap=cap,
                            writable=restrict, cache=store,
                            limit=(scratch, job.case.scratch_limit), executable=program)
        if on is not None and on.clean is not None:
            observed = on.clean(observed)
        extra = captured(job.case, works, cap)  # files it wrote, before the folder goes
    finally:
        wrote = guard.changes() if guard is not None else []
        remove_tree(scratch)  # a case may leave its folder read-only
    if wrote:
        assert guard is not None
        observed = dataclasses.replace(observed, wrote=tuple(wrote), wrote_alone=guard.alone)
    return dataclasses.replace(observed, root=str(scratch), **extra)


def _outcome(job: Job, status: Status, start: float, message: str, *,
             detail: str = "", cached: bool = False) -> Outcome:
    return Outcome(job.project, job.target, job.case.name, status,
                   seconds=time.monotonic() - start, message=message, detail=detail,
                   cached=cached, source=job.case)
