"""``--update``, one cases document: record observations into its entries, as it is now.

The document is edited by a ruamel.yaml round trip (see ``engine.verify.update``): a case is
found by its name, and its expectation is rewritten only if it is still the one the run compared
against. Outputs over ``INLINE_LIMIT`` or not valid UTF-8 go to golden files beside it.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError

from engine.documents.models import Case, Expect
from engine.documents.signals import SIGNALS, signal_number
from engine.verify import files_expect
from engine.verify.compare import Expected, expected
from engine.verify.outcome import Observed
from engine.verify.patterns import Redactions, leak, matches, normalize, redactions
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
class FileEdit:
    """What one cases file's re-recording will write: golden files, then the file itself."""

    writes: list[tuple[Path, bytes | None, Case]] = field(default_factory=list)  # None: delete
    recorded: list[Recorded] = field(default_factory=list)
    refused: list[tuple[Case, str]] = field(default_factory=list)


def leaks(case: Case, observed: Observed, texts: tuple[object, ...],
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


def edit(file: Path, cases: Sequence[tuple[Case, Observed | Rows]]) -> FileEdit:
    """Record each (case, observation) into the cases document ``file`` as it is now: what to
    write (nothing when nothing changed), what was recorded and what was refused."""
    out = FileEdit()
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
            out: FileEdit) -> tuple[list[str] | None, str | None]:
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
    why = leaks(case, observed, (texts.get("stdout"), None, texts.get("stderr")))
    for text in files.texts if files else []:
        why = why or leaks(case, observed, (text, None, None), what="a file it wrote")
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
                taken: set[str], out: FileEdit) -> None:
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
