"""Select cases, run each on every realised (project, target), and hand outcomes to an observer.

Each case kind is a *format*: one function ``(job, settings) -> Outcome``. A format that raises
gives an ``error`` outcome carrying the traceback; it never stops the run. The observer only
watches outcomes as they complete (in the calling thread, one at a time); it never drives the run.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import stat
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.documents.models import Case, Plan
from engine.verify import cache, runners
from engine.verify.compare import compare, with_newlines
from engine.verify.eval import run_eval_case
from engine.verify.function import run_function_case
from engine.verify.outcome import Outcome, Status
from engine.verify.process import CAP, CannotRun, kill_running, new_scratch, run_process
from engine.verify.table import SHOWN_ROWS

Observer = Callable[[Outcome], None]


@dataclass(frozen=True)
class Job:
    """One case to run against one realised (project, target)."""

    project: str
    target: str
    case: Case
    path: Path  # the store path of the (project, target)
    plan_dir: Path | None = None  # read-only to the case, as the store is
    # the plan the case comes from: an eval case prepares the project's REPL scope from it
    plan: Plan | None = field(default=None, compare=False, repr=False)

    @property
    def selector(self) -> str:
        """What ``-k PATTERN`` is matched against."""
        return f"{self.project}/{self.case.name}"


@dataclass(frozen=True)
class Settings:
    store: cache.ActionCache | None = None  # None: no outcome cache at all
    #: where outcomes are looked up and recorded, when not in ``store`` alone (a shared cache)
    outcomes: cache.ActionCache | None = None
    #: how a process case runs: here (``run_process``), or on a cluster
    #: (``engine.verify.distributed``), with the same arguments and the same containment
    spawn: Callable[..., Any] = run_process
    #: per case kind, the format that replaces ``FORMATS``' (a cluster's eval and function
    #: cases, ``engine.verify.distributed.on_cluster``; each runs here what it cannot ship)
    formats: Mapping[str, Format] = field(default_factory=dict)
    use_cache: bool = True  # False: run everything (results are still recorded)
    cap: int = CAP
    failing_rows: int = SHOWN_ROWS  # of a function case, listed in the report


Format = Callable[[Job, Settings], Outcome]


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


def run_jobs(jobs: Iterable[Job], settings: Settings = Settings(), *, workers: int = 1,
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
    if job.case.skip is not None:
        return _outcome(job, "skipped", start, message=job.case.skip)
    try:
        kind = job.case.kind
        outcome = settings.formats.get(kind, FORMATS[kind])(job, settings)
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


def target_runner(job: Job, settings: Settings) -> runners.Choice:
    """The runner of the job's target (None: the host runs it), prepared once per run."""
    if job.plan is None or job.target not in job.plan.targets:
        return None
    state_folder = getattr(settings.store, "state_folder", None)
    state = state_folder("wine") if state_folder is not None else None
    chosen = runners.choose(job.plan.targets[job.target], state)
    if isinstance(chosen, runners.Runner) and chosen.prepare is not None:
        with _prepared_lock:
            if chosen.name not in _prepared:
                chosen.prepare()
                _prepared.add(chosen.name)
    return chosen


_prepared: set[str] = set()
_prepared_lock = threading.Lock()


def not_run(job: Job, chosen: runners.NoRunner) -> Outcome:
    outcome = _outcome(job, "not run", time.monotonic(), message=chosen.reason)
    outcome.ignored = chosen.declared
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
    wrapper = (chosen.name, *chosen.prefix[1:]) if chosen is not None else ()
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
            _remove_tree(scratch)
        if store is not None and key is not None:
            cache.record(settings.outcomes or store, key, observed, owner=job.path.name)
    observed = dataclasses.replace(observed, store=str(job.path.parent))
    status, message, detail = compare(case, observed, settings.cap)
    outcome = _outcome(job, status, start, message=message, detail=detail, cached=cached)
    outcome.observed = with_newlines(case, observed)  # what --update records
    outcome.runner = chosen.name if chosen is not None else ""
    return outcome


def run_function_case_on_target(job: Job, settings: Settings) -> Outcome:
    """Function cases call the library from a Python worker: on the host only, for now. On
    another target they are reported not run (never passed)."""
    chosen = target_runner(job, settings)
    if isinstance(chosen, runners.NoRunner):
        return not_run(job, chosen)
    if chosen is not None:
        triple = job.plan.targets[job.target].triple if job.plan is not None else job.target
        return not_run(job, runners.NoRunner(
            f"function cases do not run on {triple} yet (they need a harness built for the "
            "target); run them on a host target"))
    return run_function_case(job, settings)


FORMATS: dict[str, Format] = {
    "process": run_process_case,
    "eval": run_eval_case,
    "function": run_function_case_on_target,
}


def _outcome(job: Job, status: Status, start: float, *, message: str = "", detail: str = "",
             cached: bool = False) -> Outcome:
    return Outcome(job.project, job.target, job.case.name, status,
                   seconds=time.monotonic() - start, message=message, detail=detail,
                   cached=cached, source=job.case)


def _remove_tree(path: Path) -> None:
    """Delete a scratch folder, even one the case left read-only."""
    def make_writable(func: Callable[..., object], name: str, _exc: object) -> None:
        os.chmod(os.path.dirname(name), stat.S_IRWXU)
        if os.path.isdir(name) and not os.path.islink(name):
            os.chmod(name, stat.S_IRWXU)
        func(name)

    try:
        shutil.rmtree(path, onerror=make_writable)
    except OSError:
        pass  # best effort: a leftover in the temporary folder must not fail the case
