"""Select cases, run each on every realised (project, target), and hand outcomes to an observer.

Each case kind is a *format*: one function ``(job, settings) -> Outcome``. A format that raises
gives an ``error`` outcome carrying the traceback; it never stops the run. The observer only
watches outcomes as they complete (in the calling thread, one at a time); it never drives the run.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from engine.documents.models import Plan
from engine.errors import RecipeError
from engine.verify import cache, runners
from engine.verify.compare import compare, with_newlines
from engine.verify.eval import run_eval_case
from engine.verify.function import run_function_case
from engine.verify.job import Job, Settings, not_run, remove_tree, target_runner
from engine.verify.job import outcome_of as _outcome
from engine.verify.outcome import Outcome
from engine.verify.process import CannotRun, kill_running, new_scratch

Observer = Callable[[Outcome], None]
__all__ = ["Job", "Settings", "execute", "matches", "not_run", "run_jobs", "select",
           "target_runner"]


Format = Callable[[Job, Settings], Outcome]
_DEFAULTS = Settings()


def matches(selector: str, patterns: Sequence[str]) -> bool:
    """``-k``: ``selector`` ("project/case name") holds one of the patterns (any, when none
    is given) and none of those written ``!pattern``."""
    wanted = [p for p in patterns if not p.startswith("!")]
    if wanted and not any(p in selector for p in wanted):
        return False
    return not any(p[1:] in selector for p in patterns if p.startswith("!"))


def select(plan: Plan, paths: Mapping[tuple[str, str], Path],
           patterns: Sequence[str] | str | None = None) -> list[Job]:
    """Every case of every realised (project, target) whose "project/case name" ``matches``
    the ``-k`` patterns; in plan order of projects, then targets, then cases."""
    if isinstance(patterns, str):
        patterns = [patterns]
    patterns = list(patterns or ())
    project_order = {name: i for i, name in enumerate(plan.projects)}
    target_order = {name: i for i, name in enumerate(plan.targets)}
    keys = sorted(paths, key=lambda k: (project_order.get(k[0], len(project_order)),
                                        target_order.get(k[1], len(target_order)), k))
    jobs = []
    for project, target in keys:
        for case in plan.projects[project].cases:
            job = Job(project, target, case, paths[(project, target)], plan.dir, plan)
            if matches(job.selector, patterns):
                jobs.append(job)
    return jobs


def run_jobs(jobs: Iterable[Job], settings: Settings = _DEFAULTS, *, workers: int = 1,
             observe: Observer | None = None) -> list[Outcome]:
    """Run the jobs on ``workers`` threads; outcomes come back in the order of ``jobs``."""
    jobs = list(jobs)
    outcomes: list[Outcome | None] = [None] * len(jobs)
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="case")
    try:
        futures = {pool.submit(execute, job, settings): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            outcome = future.result()  # execute() never raises but for interrupts
            outcomes[futures[future]] = outcome
            if observe is not None:
                observe(outcome)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        kill_running()
        raise
    pool.shutdown()
    return [o for o in outcomes if o is not None]


def execute(job: Job, settings: Settings) -> Outcome:
    """Run one job with the format of its case's kind; a crash becomes an ``error`` outcome.
    A ``skip`` case is not run; an ``xfail`` case's verdict is turned around (an error stays
    an error: the case could not be judged)."""
    start = time.monotonic()
    reason = job.case.skip
    if reason is None and job.case.skip_on:
        spec = job.plan.targets.get(job.target) if job.plan is not None else None
        reason = runners.skip_reason(job.case.skip_on, spec.triple if spec else "host")
    if reason is not None:
        return _outcome(job, "skipped", start, message=reason)
    try:
        kind = job.case.kind
        outcome = settings.formats.get(kind, FORMATS[kind])(job, settings)
    except RecipeError as error:  # a case that cannot run, said in recipe's words
        return _outcome(job, "error", start, message=error.render(),
                        detail=getattr(error, "detail", None) or "")
    except Exception as error:  # noqa: BLE001 - one broken case must not stop the others
        return _outcome(job, "error", start, message=f"{type(error).__name__}: {error}",
                        detail=traceback.format_exc())
    reason = job.case.xfail
    if reason is not None and outcome.status == "failed":
        outcome.status = "xfailed"
        outcome.message = f"xfail: {reason} ({outcome.message})"
    elif reason is not None and outcome.status == "passed":
        outcome.status = "xpassed"
        outcome.message = f"passed, but is marked xfail: {reason}; remove 'xfail:' if it is fixed"
    return outcome


def program(folder: Path, name: str) -> Path:
    """``bin/NAME``, or the name a target gives it: ``NAME.exe``, ``NAME.wasm``."""
    for candidate in (name, f"{name}.exe", f"{name}.wasm"):
        if (folder / candidate).is_file():
            return folder / candidate
    return folder / name


def run_process_case(job: Job, settings: Settings) -> Outcome:
    start = time.monotonic()
    case = job.case
    chosen = target_runner(job, settings)
    if isinstance(chosen, runners.NoRunner):
        return not_run(job, chosen)
    executable = program(job.path / "bin", case.run or "")
    if not case.run or not executable.is_file():
        return _outcome(job, "error", start,
                        message=f"no executable {case.run!r} in {job.path / 'bin'}")
    store = settings.store
    wrapper = runners.identity(chosen) if chosen is not None else ()
    key = cache.case_key(case, job.path, wrapper) if store is not None else None
    observed = None
    if store is not None and key is not None and settings.use_cache:
        observed = cache.lookup(settings.outcomes or store, key)
    cached = observed is not None
    if observed is None:
        scratch = new_scratch(store, "case")
        try:
            protect = [job.path] + ([job.plan_dir] if job.plan_dir is not None else [])
            on = {"runner": chosen} if chosen is not None else {}  # a foreign target's runner
            observed = settings.spawn(case, executable, scratch, cap=settings.cap,
                                      protect=protect, skip=[job.path.parent], cache=store, **on)
        except CannotRun as error:  # e.g. not an executable for this machine
            return _outcome(job, "error", start, message=str(error))
        finally:
            remove_tree(scratch)
        if store is not None and key is not None:
            cache.record(settings.outcomes or store, key, observed, owner=job.path.name)
    observed = dataclasses.replace(observed, store=str(job.path.parent))
    status, message, detail = compare(case, observed, settings.cap)
    outcome = _outcome(job, status, start, message=message, detail=detail, cached=cached)
    outcome.observed = with_newlines(case, observed)  # what --update records
    outcome.runner = chosen.name if chosen is not None else ""
    return outcome


FORMATS: dict[str, Format] = {
    "process": run_process_case,
    "eval": run_eval_case,
    "function": run_function_case,
}
