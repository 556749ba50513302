"""``--update``: re-record the expectations of the cases that did not match.

The cases files are edited in place by a ruamel.yaml round trip, so comments, key order and the
style of every untouched scalar stay; a replaced scalar keeps its quoting or block style when the
new text can be written in it, and becomes double-quoted otherwise. An output over 2 KiB or not
valid UTF-8 goes to ``golden/<slug>.stdout`` (or ``.stderr``) beside the cases file. Files with
nothing to change are not written at all.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.util import load_yaml_guess_indent

from engine.documents.models import Case
from engine.errors import Failure, Pos
from engine.verify.compare import expected
from engine.verify.outcome import Observed, Outcome

INLINE_LIMIT = 2048  # bytes; a longer output goes to a golden file
Rows = dict[int, Any]  # a function case's failing rows: index -> what the function returned


class UpdateError(Failure):
    """A cases file cannot be re-recorded (it changed during the run, or is not writable)."""


@dataclass
class Recorded:
    case: Case
    fields: list[str]  # what was re-recorded: "stdout", "stderr", "exit"


@dataclass
class UpdateResult:
    recorded: list[Recorded] = field(default_factory=list)
    refused: list[tuple[Case, str]] = field(default_factory=list)  # (case, why not)

    def all_match(self, outcomes: Sequence[Outcome]) -> bool:
        """Whether every outcome passed or had its case re-recorded."""
        fixed = {(r.case.file, r.case.index) for r in self.recorded}
        return all(o.passed or o.ignored or (o.source is not None and
                                             (o.source.file, o.source.index) in fixed)
                   for o in outcomes)


def update(outcomes: Sequence[Outcome]) -> UpdateResult:
    """Re-record every case with a failed outcome whose process ran to its end and whose every
    target observed the same thing; refuse (and leave alone) the others."""
    result = UpdateResult()
    by_case: dict[tuple[Path, int], list[Outcome]] = {}
    for o in outcomes:
        if o.source is not None and o.status != "not run":  # nothing was observed
            by_case.setdefault((o.source.file, o.source.index), []).append(o)
    edits: dict[Path, list[tuple[Case, Observed | Rows]]] = {}
    for runs in by_case.values():
        if all(o.passed for o in runs):
            continue
        case = runs[0].source
        assert case is not None
        why = _why_not_rows(runs) if case.kind == "function" else _why_not(runs)
        if why:
            result.refused.append((case, why))
        elif case.kind == "function":
            edits.setdefault(case.file, []).append((case, runs[0].rows))
        else:
            assert runs[0].observed is not None
            edits.setdefault(case.file, []).append((case, runs[0].observed))
    for file, cases in edits.items():
        result.recorded += rewrite(file, cases)
    return result


def _why_not(runs: list[Outcome]) -> str | None:
    for o in runs:
        if o.status == "error":
            return o.message
        obs = o.observed
        if obs is None or not obs.completed or obs.signal:
            return o.message
    case = runs[0].source
    assert case is not None
    checks_stderr = case.expect.stderr is not None or case.expect.stderr_file is not None

    def recorded(obs: Observed | None) -> tuple[object, ...]:
        assert obs is not None
        return obs.stdout, obs.exit, obs.stderr if checks_stderr else None

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


def rewrite(file: Path, cases: Sequence[tuple[Case, Observed | Rows]]) -> list[Recorded]:
    """Record each (case, observation) into the cases document ``file``; write it if changed."""
    text = file.read_text(encoding="utf-8")
    yaml = _round_trip(text)
    doc = yaml.load(text)
    unchanged = io.StringIO()
    yaml.dump(doc, unchanged)
    entries = doc.get("cases") if isinstance(doc, dict) else None
    taken = _golden_files(entries or [])
    for case, _ in cases:  # all checked before anything is written
        if not isinstance(entries, list) or case.index >= len(entries) \
                or not isinstance(entries[case.index], dict) \
                or entries[case.index].get("name") != case.name:
            raise UpdateError(f"case {case.name!r} is no longer at its place",
                              "the file changed during the run; run verify --update again",
                              pos=Pos(file))
    assert isinstance(entries, list)
    recorded = []
    for case, observed in cases:
        fields = _record_rows(entries[case.index], observed) if isinstance(observed, dict) \
            else _record(entries[case.index], case, observed, taken)
        if fields:
            recorded.append(Recorded(case, fields))
    if recorded:
        out = io.StringIO()
        yaml.dump(doc, out)
        _write(file, splice(text, unchanged.getvalue(), out.getvalue()).encode("utf-8"))
    return recorded


def splice(original: str, before: str, after: str) -> str:
    """Carry the edits that turned ``before`` into ``after`` over to ``original``.

    ``before`` is the document dumped unchanged; a round trip may still respell a scalar it
    did not touch (an escape like ``\\u00A0`` becomes the character itself), so only the lines
    of the edits are taken from the dump. When an edit touches a line the round trip changed,
    the whole dump is taken instead.
    """
    if before == original:
        return after
    o, b, a = (t.splitlines(keepends=True) for t in (original, before, after))
    at: dict[int, int] = {}  # line of `before` -> the same line of `original`
    for tag, i1, i2, j1, _ in SequenceMatcher(None, o, b, autojunk=False).get_opcodes():
        if tag == "equal":
            at.update({j1 + k: i1 + k for k in range(i2 - i1)})
    edits = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, b, a, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        # The lines around the edit (and those it replaces) must all be where they were.
        lines = range(max(i1 - 1, 0), min(i2 + 1, len(b)))
        mapped = [at.get(i) for i in lines]
        if None in mapped or any(y - x != 1 for x, y in zip(mapped, mapped[1:], strict=False)):
            return after
        start = at[i1] if i1 < len(b) else (at[i1 - 1] + 1 if i1 else 0)
        edits.append((start, start + (i2 - i1), a[j1:j2]))
    for start, end, new in reversed(edits):
        o[start:end] = new
    return "".join(o)


def _record(entry: CommentedMap, case: Case, observed: Observed, taken: set[str]) -> list[str]:
    if not isinstance(entry.get("expect"), dict):
        entry["expect"] = CommentedMap()
    expect = entry["expect"]
    want = expected(case)
    fields = []
    if want.stdout != observed.stdout or case.expect.stdout_file in want.missing:
        _set_stream(expect, "stdout", observed.stdout, case, taken)
        fields.append("stdout")
    has_stderr = "stderr" in expect or "stderr_file" in expect
    if has_stderr and (want.stderr != observed.stderr
                       or case.expect.stderr_file in want.missing):
        _set_stream(expect, "stderr", observed.stderr, case, taken)
        fields.append("stderr")
    assert observed.exit is not None
    if observed.exit != want.exit and (observed.exit != 0 or "exit" in expect):
        expect["exit"] = observed.exit
        fields.append("exit")
    return fields


def _record_rows(entry: CommentedMap, rows: Rows) -> list[str]:
    """The expected result (last cell) of each row that returned something else; the rows'
    flow style and comments stay."""
    table = entry.get("table")
    changed = [i for i in sorted(rows) if isinstance(table, list) and i < len(table)
               and isinstance(table[i], list) and table[i]]
    for i in changed:
        table[i][-1] = rows[i]
    return [f"table row {i + 1}" for i in changed]


def _set_stream(expect: CommentedMap, name: str, data: bytes, case: Case,
                taken: set[str]) -> None:
    file_key = f"{name}_file"
    if file_key in expect:  # already a golden file: rewrite it, keep the reference
        _write(case.folder / str(expect[file_key]), data)
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and len(data) <= INLINE_LIMIT:
        expect[name] = styled(expect.get(name), text)
        return
    rel = _golden_name(case, name, taken)
    _write(case.folder / rel, data)
    if name in expect:  # replace `stdout:` by `stdout_file:` at the same place, with its comment
        at = list(expect.keys()).index(name)
        comment = expect.ca.items.pop(name, None)
        del expect[name]
        expect.insert(at, file_key, rel)
        if comment is not None:
            expect.ca.items[file_key] = comment
    else:
        expect[file_key] = rel


def styled(old: Any, text: str) -> str:
    """``text`` as a scalar in the style of ``old`` when it can be written so, else
    double-quoted. A new scalar is a literal block when it has several lines, else quoted."""
    printable = all(c == "\n" or c.isprintable() for c in text)
    fits_block = printable and text.endswith("\n") and text.strip() != ""
    if isinstance(old, LiteralScalarString | FoldedScalarString):
        # folding needs positions we do not have; a literal block is the closest style
        return LiteralScalarString(text) if fits_block else DoubleQuotedScalarString(text)
    if isinstance(old, SingleQuotedScalarString):
        one_line = printable and "\n" not in text
        return SingleQuotedScalarString(text) if one_line else DoubleQuotedScalarString(text)
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(text)
    if isinstance(old, str):  # plain: ruamel quotes it itself when it must
        return text if printable and "\n" not in text else DoubleQuotedScalarString(text)
    if fits_block and text.count("\n") > 1:
        return LiteralScalarString(text)
    return DoubleQuotedScalarString(text)


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


def _round_trip(text: str) -> YAML:
    """A round-trip YAML that writes with the indentation the document already uses."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 20  # never re-wrap a line
    _, seq_indent, seq_offset = load_yaml_guess_indent(text)
    mapping = _mapping_indent(text)
    yaml.indent(mapping=mapping, sequence=seq_indent or mapping, offset=seq_offset or 0)
    return yaml


def _mapping_indent(text: str) -> int:
    """The indent of a nested block mapping: a ``key:`` line and the key line below it."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for line, below in zip(lines, lines[1:], strict=False):
        body = line.lstrip(" -")
        if body.rstrip().endswith(":") and not below.lstrip().startswith("-"):
            depth = len(line) - len(body)
            inner = len(below) - len(below.lstrip())
            if inner > depth:
                return inner - depth
    return 2


def _write(path: Path, data: bytes) -> None:
    """Write beside and rename into place, keeping the mode of a file that was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
