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
checked for all of them before the first is made.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from engine.documents.models import Case, Expect
from engine.documents.signals import SIGNALS, signal_number
from engine.verify import files_expect, plan_writes
from engine.verify.compare import Expected, expected
from engine.verify.outcome import Observed, Outcome
from engine.verify.patterns import Redactions, leak, matches, normalize, redactions
from engine.verify.update_rows import edit_rows
from engine.verify.yaml_edit import round_trip, splice, styled

INLINE_LIMIT = 2048  # bytes; a longer output goes to a golden file
Rows = dict[int, Any]  # a function case's failing rows: index -> what the function returned
_EXPECT_KEYS = ("stdout", "stdout_file", "stderr", "stderr_file", "exit", "signal", "files",
                "tree")
EDITED = ("its expectation was changed during the run, and not to what this run observed; "
          "left as it is: run verify --update again to record over it")


@dataclass
class Recorded:
    case: Case
    fields: list[str]  # re-recorded: "stdout", "stderr", "exit", "signal", "table row N"
    already: bool = False  # the file held what was observed already (another run recorded it)


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


@dataclass
class _Edit:
    """What one cases file's re-recording will write: golden files, then the file itself."""

    writes: list[tuple[Path, bytes | None, Case]] = field(default_factory=list)  # None: delete
    recorded: list[Recorded] = field(default_factory=list)
    refused: list[tuple[Case, str]] = field(default_factory=list)


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


def _edit_data(file: Path, cases: Sequence[tuple[Case, Rows]]) -> _Edit:
    """As ``edit``, for a data file of rows (``update_rows``)."""
    data, recorded, refused = edit_rows(file, cases)
    out = _Edit(refused=list(refused))
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
        why = _leaks(case, o.observed, recorded(o.observed))
        if why:
            return why
    if len({recorded(o.observed) for o in runs}) > 1:
        return "the targets disagree on its output"
    return None


def _leaks(case: Case, observed: Observed, texts: tuple[object, ...],
           what: str = "") -> str | None:
    """Why what would be recorded cannot be: it holds the store or the scratch folder, which
    differ per machine and per run (a suggested spelling with the built-in placeholder)."""
    marks = redactions(case, observed)
    for stream, text in (("stdout", texts[0]), ("stderr", texts[2])):
        if not isinstance(text, bytes):
            continue
        name = leak(text, marks)
        if name is None:
            continue
        folder = observed.store if name == "[STORE]" else observed.root
        line = next(x for x in text.splitlines() if leak(x, marks))
        for spelled in dict(marks.paths)[name]:
            line = line.replace(spelled, name.encode())
        shown = line.decode("utf-8", "replace")
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        place = "the store folder" if name == "[STORE]" else "the case's scratch folder"
        differs = "per machine" if name == "[STORE]" else "per run"
        return (f"{what or 'its ' + stream} holds {place} ({folder}), which differs {differs}: not "
                f"recorded; write {name} where it shows, e.g. {shown!r}")
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


def edit(file: Path, cases: Sequence[tuple[Case, Observed | Rows]]) -> _Edit:
    """Record each (case, observation) into the cases document ``file`` as it is now: what to
    write (nothing when nothing changed), what was recorded and what was refused."""
    out = _Edit()
    try:
        text = file.read_text(encoding="utf-8")
        yaml = round_trip(text)
        doc = yaml.load(text)
    except (OSError, UnicodeError, YAMLError) as error:  # gone, or no longer YAML
        why = f"its cases file can no longer be read ({type(error).__name__}); run verify again"
        out.refused = [(case, why) for case, _ in cases]
        return out
    unchanged = io.StringIO()
    yaml.dump(doc, unchanged)
    entries = doc.get("cases") if isinstance(doc, dict) else None
    entries = entries if isinstance(entries, list) else []
    taken = _golden_files(entries)
    changed = False
    for case, observed in cases:
        entry = _find(entries, case)
        if entry is None:
            out.refused.append((case, "it is no longer in its file (renamed or removed during "
                                      "the run); run verify --update again"))
            continue
        if isinstance(observed, dict):
            fields, why = _record_rows(entry, case, observed)
        else:
            fields, why = _record(entry, case, observed, taken, out)
        if why:
            out.refused.append((case, why))
        else:
            out.recorded.append(Recorded(case, fields or [], already=fields is None))
            changed = changed or fields is not None
    if changed:
        dumped = io.StringIO()
        yaml.dump(doc, dumped)
        data = splice(text, unchanged.getvalue(), dumped.getvalue()).encode("utf-8")
        out.writes.append((file, data, cases[0][0]))
    return out


def _find(entries: list[Any], case: Case) -> CommentedMap | None:
    """The case's entry: at its place, or moved (found by its name, unique in a project)."""
    at = entries[case.index] if case.index < len(entries) else None
    if isinstance(at, dict) and at.get("name") == case.name:
        return at
    return next((e for e in entries if isinstance(e, dict) and e.get("name") == case.name), None)


def _record(entry: CommentedMap, case: Case, observed: Observed, taken: set[str],
            out: _Edit) -> tuple[list[str] | None, str | None]:
    """(fields re-recorded, or None when already recorded; why refused, or None)."""
    expect = entry.get("expect", {})
    now = _expected_now(case, expect)
    if now is None:
        return None, EDITED
    marks = redactions(case, observed)
    fields = _differing(now, expect, observed, marks)
    files = files_expect.record(expect, case, observed, marks, f"golden/{slug(case.name)}") \
        if files_expect.wanted(case) and isinstance(expect, dict) else None
    if files is not None and files.edited:
        return None, EDITED
    if not fields and not (files and files.fields):
        return None, None
    if _expect_keys(expect) != _expect_keys(case.raw.get("expect", {})):
        return None, EDITED
    # Placeholders whose text still matches stay; literal text only where the output changed.
    texts = {stream: normalize(getattr(observed, stream), getattr(now, stream) or b"", marks)
             for stream in ("stdout", "stderr") if stream in fields}
    why = _leaks(case, observed, (texts.get("stdout"), None, texts.get("stderr")))
    for text in files.texts if files else []:
        why = why or _leaks(case, observed, (text, None, None), what="a file it wrote")
    if why:
        return None, why
    if files:
        files.apply()
        out.writes += [(path, data, case) for path, data in files.writes]
        fields += files.fields
    if not isinstance(entry.get("expect"), dict):
        entry["expect"] = CommentedMap()
    expect = entry["expect"]
    for stream, text in texts.items():
        _set_stream(expect, stream, text, case, taken, out)
    if "signal" in fields:
        name = observed.signal or ""
        spelt = expect.get("signal")  # keep the case's way of writing it: a name or a number
        expect["signal"] = signal_number(name) if isinstance(spelt, int) or \
            name.startswith("signal ") else name
    if "exit" in fields and "signal" in expect:  # it no longer dies by a signal: it exits
        at = list(expect.keys()).index("signal")
        del expect["signal"]
        if observed.exit != 0:
            expect.insert(at, "exit", observed.exit)
    elif "exit" in fields:
        expect["exit"] = observed.exit
    return fields, None


def _expected_now(case: Case, expect: Any) -> Expected | None:
    """What the entry ``expect`` of the file as it is now expects (golden files read now), or
    None when it is no expectation a case could have (edited into something else)."""
    if not isinstance(expect, dict):
        return None
    try:
        streams = {k: expect[k].encode("utf-8") for k in ("stdout", "stderr") if k in expect}
        files = {k: str(expect[k]) for k in ("stdout_file", "stderr_file") if k in expect}
        code = expect.get("exit", 0)
        if not isinstance(code, int) or isinstance(code, bool):
            return None
        spelt = expect.get("signal")
        signal = spelt if isinstance(spelt, int) and not isinstance(spelt, bool) else \
            SIGNALS.get(spelt) if isinstance(spelt, str) else None
        if spelt is not None and signal is None:
            return None
        return expected(replace(case, expect=Expect(**streams, **files, exit=int(code),
                                                    signal=signal)))
    except (AttributeError, TypeError, OSError, UnicodeError):
        return None


def _differing(want: Expected, expect: dict[str, Any], observed: Observed,
               marks: Redactions) -> list[str]:
    """The fields of ``expect`` that re-recording ``observed`` would change."""
    fields = []
    if not matches(want.stdout or b"", observed.stdout, marks) or \
            "stdout" in want.missing_streams:
        fields.append("stdout")
    has_stderr = "stderr" in expect or "stderr_file" in expect
    if has_stderr and (not matches(want.stderr or b"", observed.stderr, marks) or
                       "stderr" in want.missing_streams):
        fields.append("stderr")
    if observed.signal:  # only a case that expects a signal gets here (see _why_not)
        if signal_number(observed.signal) != want.signal:
            fields.append("signal")
        return fields
    assert observed.exit is not None
    if want.signal is not None:  # it exits now
        fields.append("exit")
    elif observed.exit != want.exit and (observed.exit != 0 or "exit" in expect):
        fields.append("exit")
    return fields


def _expect_keys(expect: Any) -> Any:
    """An expectation as written, comparable between the loader's and ruamel's reading."""
    if not isinstance(expect, dict):
        return _plain(expect)
    return {k: _plain(expect[k]) for k in _EXPECT_KEYS if k in expect}


def _plain(value: Any) -> str:
    """A canonical spelling of plain data (ruamel's scalar types read as the plain ones;
    True and 1, 1 and 1.0 stay apart)."""
    return json.dumps(value, sort_keys=True, default=repr)


def _record_rows(entry: CommentedMap, case: Case,
                 rows: Rows) -> tuple[list[str] | None, str | None]:
    """The expected result (last cell) of each row that returned something else; the rows'
    flow style and comments stay. A row changed during the run refuses the whole case."""
    table, was = entry.get("table"), case.raw.get("table")
    changed = []
    for i in sorted(rows):
        if not (isinstance(table, list) and i < len(table) and isinstance(table[i], list)
                and table[i]):
            return None, EDITED
        if _plain(table[i][-1]) == _plain(rows[i]):
            continue  # already recorded
        if not (isinstance(was, list) and i < len(was) and _plain(table[i]) == _plain(was[i])):
            return None, EDITED
        changed.append(i)
    if not changed:
        return None, None
    for i in changed:
        table[i][-1] = rows[i]
    return [f"table row {i + 1}" for i in changed], None


def _set_stream(expect: CommentedMap, name: str, data: bytes, case: Case,
                taken: set[str], out: _Edit) -> None:
    file_key = f"{name}_file"
    if file_key in expect:  # already a golden file: rewrite it, keep the reference
        out.writes.append((case.folder / str(expect[file_key]), data, case))
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and len(data) <= INLINE_LIMIT:
        expect[name] = styled(expect.get(name), text)
        return
    rel = _golden_name(case, name, taken)
    out.writes.append((case.folder / rel, data, case))
    if name in expect:  # replace `stdout:` by `stdout_file:` at the same place, with its comment
        at = list(expect.keys()).index(name)
        comment = expect.ca.items.pop(name, None)
        del expect[name]
        expect.insert(at, file_key, rel)
        if comment is not None:
            expect.ca.items[file_key] = comment
    else:
        expect[file_key] = rel


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "case"


def _golden_name(case: Case, stream: str, taken: set[str]) -> str:
    base = f"golden/{slug(case.name)}"
    rel = f"{base}.{stream}"
    n = 2
    while rel in taken:  # another case of this file already uses that name
        rel, n = f"{base}-{n}.{stream}", n + 1
    taken.add(rel)
    return rel


def _golden_files(entries: list[Any]) -> set[str]:
    taken = set()
    for entry in entries:
        expect = entry.get("expect") if isinstance(entry, dict) else None
        if isinstance(expect, dict):
            taken.update(str(expect[k]) for k in ("stdout_file", "stderr_file") if k in expect)
    return taken
