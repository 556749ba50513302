"""What every case format shares: the job (one case on one realised project x target), the
run's settings, the runner of a job's target, and the small helpers the formats use.

The formats (``process``, ``eval``, ``function``) and ``runner`` (which dispatches to them)
import this module; it imports none of them, so no format needs a lazy import back.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.documents.models import Case, Plan
from engine.verify import cache, runners
from engine.verify.outcome import Outcome, Status
from engine.verify.process import CAP, run_process
from engine.verify.table import SHOWN_ROWS


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
    """How cases run and where their outcomes are kept."""

    store: cache.ActionCache | None = None  # None: no outcome cache at all
    #: where outcomes are looked up and recorded, when not in ``store`` alone (a shared cache)
    outcomes: cache.ActionCache | None = None
    #: how a process case runs: here (``run_process``), or on a cluster
    #: (``engine.verify.distributed``), with the same arguments and the same containment
    spawn: Callable[..., Any] = run_process
    #: per case kind, the format that replaces ``runner.FORMATS``' (a cluster's eval and
    #: function cases, ``engine.verify.distributed.on_cluster``; each runs here what it cannot
    #: ship)
    formats: Mapping[str, Callable[..., Outcome]] = field(default_factory=dict)
    use_cache: bool = True  # False: run everything (results are still recorded)
    cap: int = CAP
    failing_rows: int = SHOWN_ROWS  # of a function case, listed in the report
    #: a function case's shared object, when it is called before its store path is registered
    #: (the same bytes, from the build folder: engine.verify.early); None: the store path's
    library: Path | None = None
    #: function case -> its worker started while the library was built, with its scratch
    #: folder (engine.verify.table_waiting); taken by the case that uses it
    waiting: Mapping[tuple[str, str, str], Any] = field(default_factory=dict)


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


def outcome_of(job: Job, status: Status, start: float, *, message: str = "", detail: str = "",
               cached: bool = False) -> Outcome:
    return Outcome(job.project, job.target, job.case.name, status,
                   seconds=time.monotonic() - start, message=message, detail=detail,
                   cached=cached, source=job.case)


def not_run(job: Job, chosen: runners.NoRunner) -> Outcome:
    outcome = outcome_of(job, "not run", time.monotonic(), message=chosen.reason)
    outcome.ignored = chosen.declared
    return outcome


def remove_tree(path: Path) -> None:
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
