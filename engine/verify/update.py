"""``--update``: re-record the expectations of the cases that did not match.

The cases files are edited in place by a ruamel.yaml round trip, so comments, key order and the
style of every untouched scalar stay; a replaced scalar keeps its quoting or block style when the
new text can be written in it, and becomes double-quoted otherwise. An output over 2 KiB or not
valid UTF-8 goes to ``golden/<slug>.stdout`` (or ``.stderr``) beside the cases file. Files with
nothing to change are not written at all.

Several runs may update one plan at once. Each cases file is read, edited and written (golden
files first, the cases file last) under its lock (see ``plan_writes``), and the edits are
applied to the file *as it is then*, not as the run loaded it, as git applies a change to its
index: a case is found by its name, and its expectation is rewritten only if it is still the
one the run compared against. One that already holds what this run observed (another run
recorded it) is *already recorded*; one changed to something else (edited by hand during the
run) is left alone and named with the reason. Every write must land inside the plan's folder,
checked for all of them before the first is made. Editing one cases document is
``engine.verify.update_cases``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.documents.models import Case
from engine.verify import plan_writes
from engine.verify.compare import expected
from engine.verify.outcome import Observed, Outcome
from engine.verify.patterns import normalize, redactions
from engine.verify.update_cases import (
    EDITED,
    INLINE_LIMIT,
    FileEdit,
    Recorded,
    Rows,
    edit,
    leaks,
    slug,
)
from engine.verify.update_rows import edit_rows

# Importable from here as before the split: the names a caller of --update may use.
__all__ = ["EDITED", "INLINE_LIMIT", "QUIT", "SKIPPED", "Recorded", "Review", "Rows",
           "UpdateResult", "edit", "slug", "update"]


@dataclass
class UpdateResult:
    recorded: list[Recorded] = field(default_factory=list)
    refused: list[tuple[Case, str]] = field(default_factory=list)  # (case, why not)

    def all_match(self, outcomes: Sequence[Outcome]) -> bool:
        """Whether every outcome passed or had its case re-recorded."""
        fixed = {(r.case.file, r.case.index) for r in self.recorded}
        return all(o.ok or (o.source is not None and (o.source.file, o.source.index) in fixed)
                   for o in outcomes)

    def mark(self, outcomes: Sequence[Outcome]) -> None:
        """Mark the outcomes of the cases re-recorded (or found recorded) as ``updated``."""
        fixed = {(r.case.file, r.case.index) for r in self.recorded}
        for o in outcomes:
            if not o.ok and o.source is not None and (o.source.file, o.source.index) in fixed:
                o.updated = True


#: ``review(case, what would be recorded)``: "accept", "skip", "all" (this and the rest) or
#: "quit" (neither this nor the rest); see ``engine.verify.review``.
Review = Callable[[Case, "Observed | Rows"], str]
SKIPPED = "skipped in review; run verify --update again to record it"
QUIT = "not reviewed (review ended); run verify --update again to record it"


def update(outcomes: Sequence[Outcome], plan_dir: Path,
           review: Review | None = None) -> UpdateResult:
    """Re-record every case with a failed outcome whose process ran to its end and whose every
    target observed the same thing; refuse (and leave alone) the others. Every file written
    lies inside ``plan_dir`` (else ``OutsidePlanError`` before anything is written).
    ``review``: asked about each case before anything is written; only what it accepts is."""
    result = UpdateResult()
    by_case: dict[tuple[Path, int], list[Outcome]] = {}
    for o in outcomes:
        if o.source is not None and o.status != "not run":  # nothing was observed
            by_case.setdefault((o.source.file, o.source.index), []).append(o)
    edits: dict[Path, list[tuple[Case, Observed | Rows]]] = {}
    data_edits: dict[Path, list[tuple[Case, Rows]]] = {}
    for runs in by_case.values():
        if all(o.ok for o in runs):  # passed, xfailed (never re-recorded) or skipped
            continue
        case = runs[0].source
        assert case is not None
        if case.xfail is not None:  # xpassed: only a person can say the bug is gone
            result.refused.append((case, f"it passes, but is marked xfail ({case.xfail}); "
                                   "remove 'xfail:' if it is fixed"))
            continue
        why = _why_not_rows(runs) if case.kind == "function" else _why_not(runs)
        if why:
            result.refused.append((case, why))
        elif case.kind == "function" and case.rows_file is None:
            edits.setdefault(case.file, []).append((case, runs[0].rows))
        elif case.kind == "function":  # the inline rows (first), then the data file's
            inline = case.row_lines.count(0)
            rows = {i: v for i, v in runs[0].rows.items() if i < inline}
            if rows:
                edits.setdefault(case.file, []).append((case, rows))
            data = {i: v for i, v in runs[0].rows.items() if i >= inline}
            if data:
                data_edits.setdefault(case.folder / case.rows_file, []).append((case, data))
        else:
            assert runs[0].observed is not None
            edits.setdefault(case.file, []).append((case, runs[0].observed))
    if review is not None:
        edits, data_edits = _reviewed(edits, data_edits, review, result)
    with plan_writes.locked_files(plan_dir, [*edits, *data_edits]):
        planned = [edit(file, cases) for file, cases in edits.items()] + \
            [_edit_data(file, cases) for file, cases in data_edits.items()]
        checked = [[(plan_writes.destination(plan_dir, path, case.pos), data, case.pos)
                    for path, data, case in e.writes] for e in planned]
        for e, writes in zip(planned, checked, strict=True):
            for real, data, pos in writes:
                if data is None:  # a file a golden tree no longer holds
                    plan_writes.remove(plan_dir, real, pos)
                else:
                    plan_writes.write(plan_dir, real, data, pos)
            result.recorded += e.recorded
            result.refused += e.refused
    return result


Edits = dict[Path, list[tuple[Case, "Observed | Rows"]]]
DataEdits = dict[Path, list[tuple[Case, Rows]]]


def _reviewed(edits: Edits, data_edits: DataEdits, review: Review,
              result: UpdateResult) -> tuple[Edits, DataEdits]:
    """The edits ``review`` accepts, asked once per case in the order of the cases (a function
    case's rows in its cases file and in its data file together); the others refused."""
    asked: dict[tuple[Path, int], tuple[Case, Any]] = {}
    for file_edits in (edits, data_edits):
        for cases in file_edits.values():
            for case, data in cases:
                key = (case.file, case.index)
                if key in asked and isinstance(data, dict):
                    asked[key] = (case, {**asked[key][1], **data})
                else:
                    asked.setdefault(key, (case, data))
    accepted = set()
    answer = "accept"
    for key, (case, data) in asked.items():
        if answer not in ("all", "quit"):
            answer = review(case, data)
        if answer in ("accept", "all"):
            accepted.add(key)
        else:
            result.refused.append((case, QUIT if answer == "quit" else SKIPPED))

    def keep(file_edits: dict[Path, list[Any]]) -> dict[Path, list[Any]]:
        kept = {file: [(c, d) for c, d in cases if (c.file, c.index) in accepted]
                for file, cases in file_edits.items()}
        return {file: cases for file, cases in kept.items() if cases}

    return keep(edits), keep(data_edits)


def _edit_data(file: Path, cases: Sequence[tuple[Case, Rows]]) -> FileEdit:
    """As ``edit``, for a data file of rows (``update_rows``)."""
    data, recorded, refused = edit_rows(file, cases)
    out = FileEdit(refused=list(refused))
    out.recorded = [Recorded(case, fields or [], already=fields is None)
                    for case, fields in recorded]
    if data is not None:
        out.writes.append((file, data, cases[0][0]))
    return out


def _why_not(runs: list[Outcome]) -> str | None:
    for o in runs:
        if o.status == "error":
            return o.message
        obs = o.observed
        if obs is None or not obs.completed:
            return o.message
    case = runs[0].source
    assert case is not None
    crash = next((o.observed.signal for o in runs if o.observed and o.observed.signal), None)
    if crash and case.expect.signal is None:  # a crash is a bug until a person says otherwise
        return (f"killed by {crash}: a signal is re-recorded only for a case that expects one; "
                f"write expect: {{signal: {crash}}} if it must die so")
    checks_stderr = case.expect.stderr is not None or case.expect.stderr_file is not None
    want = expected(case)

    def recorded(obs: Observed | None) -> tuple[object, ...]:
        assert obs is not None
        marks = redactions(case, obs)
        return (normalize(obs.stdout, want.stdout or b"", marks), obs.exit,
                normalize(obs.stderr, want.stderr or b"", marks) if checks_stderr else None,
                obs.files, obs.tree, obs.signal)

    for o in runs:
        assert o.observed is not None
        why = leaks(case, o.observed, recorded(o.observed))
        if why:
            return why
    if len({recorded(o.observed) for o in runs}) > 1:
        return "the targets disagree on its output"
    return None


def _why_not_rows(runs: list[Outcome]) -> str | None:
    """A function case is re-recorded when every failing row returned (none crashed or hung)
    and every target returned the same."""
    for o in runs:
        if o.status == "error":
            return o.message
        if o.crashed:
            return (f"row {o.crashed[0] + 1} crashed or hung: it has no result to record; "
                    "fix the function, or the row by hand")
    if any(o.rows != runs[0].rows for o in runs):
        return "the targets disagree on its results"
    return None


