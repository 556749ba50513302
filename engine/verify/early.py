"""Function cases started while their project's store path is still being built.

A Rust project's function cases on the host call its own ``shared-library`` output through the
Python worker (engine.verify.function). That file is final as soon as the action that links it
has run: the path registers those very bytes, and the path's other outputs (its programs,
linked after the rlib) change nothing the cases call. So a ``recipe verify`` that builds such a
path starts the cases on the library from the build folder (hard-linked out of it, read-only to
the worker as the store is) while the rest of the path builds, instead of after it is
registered; an edit to a generated function no longer waits for the project's programs to link
before its verdict.

Nothing a user sees changes: the outcomes are reported when the build has ended, in the order of
the cases, as if run after it; the library's functions are checked as ``check_symbols`` does,
its error raised after the build; the rows' results are cached under the store path's name,
attached to the path once it is valid; a build that fails reports its failure and no outcome.
Only a library an action really ran to make is announced: a path whose actions were all cached
builds in no time, and its cases run after it, as before.

When every case ``-k`` selects in the project is such a function case (``Early.only``), the
path's other outputs are not waited for at all: realise builds the library's actions alone
(``library_first``, engine/build/realise.py) and registers nothing; the cases' outcomes are those
of the very bytes the path will hold once built whole, by the next command that needs it (the
library's actions found in the cache: only the programs link).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.documents.models import Plan
from engine.errors import RecipeError
from engine.verify import harness, runner
from engine.verify.function import check_export
from engine.verify.function_cache import rows_key
from engine.verify.job import Job, Settings, remove_tree
from engine.verify.outcome import Outcome
from engine.verify.process import kill_running, new_scratch
from engine.verify.table_waiting import Waiting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.build.events import Reporter


def _libraries(plan: Plan, targets: list[str], projects: list[str] | None,
               patterns: list[str] | None) -> dict[tuple[str, str], str]:
    """(project, target) -> the output-tree path of the shared library whose function cases
    may start early: Rust projects with a ``shared-library`` output, on the host, that have
    function cases ``-k`` selects."""
    wanted: dict[tuple[str, str], str] = {}
    for name, project in plan.projects.items():
        if projects and name not in projects or project.language != "rust":
            continue
        own = next((o for o in project.outputs if o.kind == "shared-library"), None)
        if own is None or not any(c.kind == "function" and
                                  runner.matches(f"{name}/{c.name}", patterns or [])
                                  for c in project.cases):
            continue
        for target in targets:
            if target in plan.targets and plan.targets[target].triple == "host" and \
                    not harness.usable(plan, name, target):
                wanted[(name, target)] = f"lib/lib{own.name}.so"
    return wanted


class Early:
    """A build reporter (passing everything on to ``reporter``) that starts the function cases
    of a library as soon as it is announced (``output_ready``); ``take`` hands their outcomes
    over once the build has ended."""

    def __init__(self, plan: Plan, store: Any, settings: Settings, reporter: Reporter,
                 targets: list[str], projects: list[str] | None,
                 patterns: list[str] | None, workers: int) -> None:
        self.plan, self.store, self.settings, self.reporter = plan, store, settings, reporter
        self.patterns = patterns
        self.wanted = _libraries(plan, targets, projects, patterns)
        # the paths of which these cases need nothing but the library: every case -k selects
        # in the project is a function case (realise's ``library_first``)
        self.only = {key: rel for key, rel in self.wanted.items()
                     if all(c.kind == "function" for c in plan.projects[key[0]].cases
                            if runner.matches(f"{key[0]}/{c.name}", patterns or []))}
        self.lock = threading.Lock()
        self.checks: list[Future[None]] = []
        self.futures: dict[tuple[str, str, str], Future[Outcome]] = {}
        self.folders: list[Path] = []
        self.problem: RecipeError | None = None
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="early-case") \
            if self.wanted else None
        self.workers = workers
        self.waiting: dict[tuple[str, str, str], Waiting] = {}

    # -- the reporter's side (build threads) --------------------------------------------------

    def __getattr__(self, name: str) -> Any:  # action_started, derivation_finished, ...
        return getattr(self.reporter, name)

    def derivation_started(self, drv: Any) -> None:
        """A library's path starts building: its cases' workers start now (Python's start
        overlaps the compile) and wait for what to call (engine/verify/table_waiting.py)."""
        key = getattr(drv, "key", None)
        if self.pool is not None and key in self.wanted and self.store is not None:
            jobs = [job for job in runner.select(self.plan, {key: self.store.path(drv.name)},
                                                 self.patterns)
                    if job.case.kind == "function" and job.case.skip is None
                    and job.case.signature is not None]
            with self.lock:
                for job in jobs[:self.workers - len(self.waiting)]:
                    self.waiting[_id(job)] = Waiting(new_scratch(self.store, "table"),
                                                     self.store)
        self.reporter.derivation_started(drv)

    def output_ready(self, drv: Any, rel: str, file: Path) -> None:
        key = getattr(drv, "key", None)
        if self.pool is None or getattr(drv, "project", None) is None or \
                self.wanted.get(key) != rel:
            return
        path = self.store.path(drv.name)
        jobs = [job for job in runner.select(self.plan, {key: path}, self.patterns)
                if job.case.kind == "function"]
        folder = new_scratch(self.store, "early")
        library = folder / Path(rel).name
        try:
            os.link(file, library)  # the build folder's file: the bytes the path registers
        except OSError:
            remove_tree(folder)
            return  # the cases run after the build, as they always did
        with self.lock:
            self.folders.append(folder)
            # nm and the cases on the pool: this thread goes on building the path
            self.checks.append(self.pool.submit(self._start, jobs, library))

    def _start(self, jobs: list[Job], library: Path) -> None:
        """The cases (on the workers started for them, when there are), and beside them the
        check that the library exports their functions: when it does not, ``take`` raises its
        error and no outcome is reported (a case calling a missing function fails in its
        worker meanwhile)."""
        assert self.pool is not None
        settings = dataclasses.replace(self.settings, library=library,
                                       waiting=dict(self.waiting))
        with self.lock:
            for job in jobs:
                self.futures[_id(job)] = self.pool.submit(runner.execute, job, settings)
        try:
            self._check(jobs, library)
        except RecipeError as error:
            with self.lock:
                self.problem = self.problem or error

    def _check(self, jobs: list[Job], library: Path) -> None:
        """``function.check_symbols`` for these jobs, on the library they will call."""
        for job in jobs:
            if job.case.signature is not None and job.case.skip is None:
                check_export(job, library)

    # -- the verify's side (its thread, after the build) --------------------------------------

    def take(self, jobs: list[Job]) -> tuple[list[Job], dict[int, Outcome]]:
        """The jobs still to run, and the outcomes of those that ran early (by index in
        ``jobs``); raises the early symbol check's error, as ``check_symbols`` would."""
        for check in list(self.checks):
            check.result()
        if self.problem is not None:
            raise self.problem
        with self.lock:
            futures = dict(self.futures)
        rest, done = [], {}
        for i, job in enumerate(jobs):
            future = futures.get(_id(job))
            if future is None:
                rest.append(job)
                continue
            outcome = done[i] = future.result()
            if not outcome.cached and self.store is not None:
                # recorded before the path was valid, so no path kept it: the path does now
                key = rows_key(job.case, job.path.name)
                if key and self.store.get_action(key) is not None:
                    self.store.attach(job.path.name, actions=[key])
        return rest, done

    def close(self, failed: bool) -> None:
        """Stop (``failed``: the build failed or was interrupted) or wait for the cases, and
        remove the libraries' folders."""
        if self.pool is not None:
            if failed:
                self.pool.shutdown(wait=False, cancel_futures=True)
                kill_running()
            self.pool.shutdown(wait=True)
        for waiting in self.waiting.values():  # those no case took
            try:
                waiting.cancel()
            except OSError:
                pass  # its scratch folder is gone: so is the worker
            remove_tree(waiting.scratch)
        for folder in self.folders:
            remove_tree(folder)


def _id(job: Job) -> tuple[str, str, str]:
    return (job.project, job.target, job.case.name)
