"""What running a case gives: the raw observation of a process and the judged outcome.

An ``Outcome`` is what every reporter (table, JUnit, JSON) is fed; an ``Observed`` is what a
process did, before it is compared with the case's expectation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from engine.documents.models import Case

# xfailed: a case marked ``xfail`` failed, as expected; xpassed: it passed (lit's XPASS: the
# mark is stale, the run fails); skipped: a case marked ``skip`` was not run; "not run": nothing
# here runs the target's programs (never passed; see ``Outcome.ignored``).
Status = Literal["passed", "failed", "error", "xfailed", "xpassed", "skipped", "not run"]
STATUSES: tuple[Status, ...] = ("passed", "failed", "error", "xfailed", "xpassed", "skipped",
                                "not run")
# The outcomes that do not fail a run (a skipped case is still never counted as passed).
FINE: tuple[Status, ...] = ("passed", "xfailed", "skipped")


@dataclass(frozen=True)
class Observed:
    """What a process case did. ``exit`` is None when a signal ended the process."""

    stdout: bytes
    stderr: bytes
    exit: int | None
    signal: str | None = None  # e.g. "SIGSEGV"
    timed_out: bool = False
    capped: str | None = None  # "stdout" or "stderr" when that stream passed the cap
    scratch_full: bool = False  # its scratch folder passed the case's scratch_limit
    wrote: tuple[str, ...] = ()  # read-only paths it changed (seen where Landlock is missing)
    wrote_alone: bool = True  # no other case ran meanwhile: ``wrote`` is surely its doing
    # Where it ran: its scratch folder (``[ROOT]``) and the store folder (``[STORE]``); text
    # holding them differs per run and per machine, so it is matched and never recorded.
    root: str | None = None
    store: str | None = None
    # What it left in its working folder, for ``expect: files:`` (path -> bytes, None: no
    # file) and ``expect: tree:`` (every file it wrote); see ``files_expect``.
    files: tuple[tuple[str, bytes | None], ...] = ()
    tree: tuple[tuple[str, bytes | None], ...] | None = None

    @property
    def completed(self) -> bool:
        """The process ran to its own end, within its bounds: its observation may be cached
        and re-recorded."""
        return (not self.timed_out and self.capped is None and not self.scratch_full
                and not self.wrote)


@dataclass
class Outcome:
    """What a case gave: its status, and what to show of it."""

    project: str
    target: str
    case: str  # the case's name
    status: Status
    seconds: float = 0.0
    message: str = ""  # one line
    detail: str = ""  # diffs, a traceback
    cached: bool = False
    # Not reported; kept so that --update can re-record what was observed.
    observed: Observed | None = field(default=None, repr=False, compare=False)
    source: Case | None = field(default=None, repr=False, compare=False)
    # A function case's failing rows: row index -> what the function returned, and the rows
    # that crashed or hung (nothing to re-record for those).
    rows: dict[int, Any] = field(default_factory=dict, repr=False, compare=False)
    crashed: list[int] = field(default_factory=list, repr=False, compare=False)
    rows_shown: int = field(default=20, repr=False, compare=False)  # as the text report lists
    runner: str = ""  # what ran the program, when not the host itself (e.g. "qemu-aarch64")
    ignored: bool = False  # not run because the target says runner: none: no exit code
    # --update re-recorded its expectation from this run: it did not match, and now does.
    updated: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def ok(self) -> bool:
        """Whether it leaves the run green: passed, or failed as expected, or skipped."""
        return self.status in FINE or self.ignored  # ignored: the target says runner: none

    @property
    def ended(self) -> dict[str, Any] | None:
        """How the process ended: ``{"exit": 139}`` or ``{"signal": "SIGSEGV"}`` (None when no
        process ran to be observed)."""
        obs = self.observed
        if obs is None:
            return None
        return {"signal": obs.signal} if obs.signal else {"exit": obs.exit}

    @property
    def label(self) -> str:
        """The status as a summary shows it, e.g. ``passed (cached)``."""
        status = "updated" if self.updated else self.status
        return f"{status} (cached)" if self.cached else status

    @property
    def ident(self) -> str:
        return f"{self.project}/{self.target}: {self.case}"

    def as_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "target": self.target,
            "case": self.case,
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "message": self.message,
            "detail": self.detail,
            "cached": self.cached,
            "ended": self.ended,
            "reason": self.reason,
            **({"runner": self.runner} if self.runner else {}),
            **({"ignored": True} if self.ignored else {}),
            **({"updated": True} if self.updated else {}),
        }

    @property
    def reason(self) -> str | None:
        """The case's ``xfail`` or ``skip`` reason (a ``skip:`` map's, on a target it names)."""
        case = self.source
        if case is not None and self.status == "skipped" and case.skip is None:
            return self.message or None
        return None if case is None else case.skip or case.xfail
