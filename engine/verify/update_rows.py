"""``--update`` of a function case's data file (``rows:``): the expected column rewritten in
place, only on the rows that returned something else.

The file is edited as text, line by line, as it is when the update runs (under the same lock as
a cases file): every other byte stays, a CSV file keeps its header, its quoting and its line
endings, a JSON Lines file its other lines. A row is found by its line; it is rewritten only if
it still holds what the run called (else the case is refused as edited during the run), and
one that already holds the result is *already recorded*. A CSV record that spans several lines
is refused (re-record it by hand).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.documents.data_rows import NULL, header_order
from engine.documents.models import Case

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n|$)")
EDITED = ("its data file was changed during the run, and not to what this run observed; "
          "left as it is: run verify --update again to record over it")
SHOWN = 10  # rows named in what was recorded


def edit_rows(file: Path, cases: Sequence[tuple[Case, dict[int, Any]]]) -> tuple[
        bytes | None, list[tuple[Case, list[str] | None]], list[tuple[Case, str]]]:
    """Record each case's results into its data file ``file``: the new content (None when
    nothing changed), (case, fields recorded or None when already recorded), (case, why not)."""
    recorded: list[tuple[Case, list[str] | None]] = []
    refused: list[tuple[Case, str]] = []
    try:
        text = file.read_bytes().decode("utf-8")
    except (OSError, UnicodeError) as error:
        why = f"its data file can no longer be read ({type(error).__name__}); run verify again"
        return None, [], [(case, why) for case, _ in cases]
    lines = _LINE.findall(text)
    if lines and lines[-1] == "":
        lines.pop()
    changed_any = False
    for case, rows in cases:
        new_lines = list(lines)
        changed, why = [], None
        for i in sorted(rows):
            line_no = case.row_lines[i]
            if not 0 < line_no <= len(new_lines):
                why = EDITED
                break
            old = new_lines[line_no - 1]
            if file.suffix.lower() == ".jsonl":
                new, why = _jsonl_line(old, case.table[i], rows[i])
            else:
                new, why = _csv_line(old, case, i, rows[i], lines)
            if why:
                break
            if new != old:
                new_lines[line_no - 1] = new
                changed.append(line_no)
        if why:
            refused.append((case, why))
            continue
        lines = new_lines
        changed_any = changed_any or bool(changed)
        shown = [f"{case.rows_file}:{n}" for n in changed[:SHOWN]]
        if len(changed) > SHOWN:
            shown.append(f"and {len(changed) - SHOWN} more rows")
        recorded.append((case, shown or None))
    return ("".join(lines).encode("utf-8") if changed_any else None), recorded, refused


def _jsonl_line(old: str, called: list[Any], result: Any) -> tuple[str, str | None]:
    body = old.rstrip("\r\n")
    try:
        now = json.loads(body)
    except ValueError:
        return old, EDITED
    if not isinstance(now, list) or not now:
        return old, EDITED
    if _same(now[-1], result):
        return old, None
    if not _same(now, called):
        return old, EDITED
    spaced = ", " in body
    new = json.dumps([*now[:-1], result], ensure_ascii=False,
                     separators=(", ", ": ") if spaced else (",", ":"))
    return new + old[len(body):], None


def _csv_line(old: str, case: Case, index: int, result: Any,
              lines: list[str]) -> tuple[str, str | None]:
    from engine.documents.data_rows import _field

    assert case.signature is not None
    sig = case.signature
    body = old.rstrip("\r\n")
    try:
        records = list(csv.reader([body], strict=True))
    except csv.Error:
        return old, "row spans several lines of its CSV file: re-record it by hand"
    if len(records) != 1:
        return old, EDITED
    order = header_order(lines, sig)
    fields = records[0]
    if len(fields) != len(order):
        return old, EDITED
    types = (*sig.params, sig.returns)
    values = [_field(t, fields[j])[0] for t, j in zip(types, order, strict=True)]
    if _same(values[-1], result):
        return old, None
    if not _same(values, case.table[index]):
        return old, EDITED
    spans = _spans(body)
    start, end = spans[order[-1]]
    quoted = body[start:end].startswith('"')
    return body[:start] + _csv_text(result, quoted) + body[end:] + old[len(body):], None


def _spans(line: str) -> list[tuple[int, int]]:
    """(start, end) of each field of one CSV record on one line (default dialect)."""
    spans, start, i, quoted = [], 0, 0, False
    while i < len(line):
        char = line[i]
        if quoted:
            if char == '"':
                if line[i + 1:i + 2] == '"':
                    i += 1
                else:
                    quoted = False
        elif char == '"':
            quoted = True
        elif char == ",":
            spans.append((start, i))
            start = i + 1
        i += 1
    spans.append((start, len(line)))
    return spans


def _csv_text(value: Any, quoted: bool) -> str:
    if value is None:
        text = NULL
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = repr(value)
    else:
        text = str(value)
    if quoted or any(c in text for c in ',"\r\n') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def _same(a: Any, b: Any) -> bool:
    """Equal as plain data: True and 1, 1 and 1.0 stay apart."""
    return json.dumps(a, sort_keys=True, default=repr) == json.dumps(b, sort_keys=True,
                                                                     default=repr)
