"""Rows of a function case from a data file beside its cases document (``rows: data/add.csv``).

Two kinds, by the file's suffix:

- ``.csv``: one row per record, ``args..., expected``. An optional first row names the columns
  (the prototype's parameter names, or ``arg1``, ``arg2``..., and ``expected``, in any order).
  Fields are text read by the column's C type: decimal integers, numbers (``nan``, ``inf``),
  ``true``/``false`` (or 1/0), one character, text; ``\\N`` is NULL (a ``const char *``) and an
  empty field is an empty string (or nothing, for a ``void`` result).
- ``.jsonl``: one JSON array per line, ``[args..., expected]``, the values as an inline table
  writes them (``null`` for NULL).

Blank lines are skipped. Each row keeps its line in the file (the first line of a CSV record
that spans several): errors and failures name it, as ``data/add.csv:40213``. A bad row is a
DocumentError before anything runs; with several, the first ten and a count of the rest.

Reading a million rows must take about a second: columns are converted and checked whole
(``map``, ``min``/``max``), and a file that fails that is read again row by row, only to say
where.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
import operator
import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine import watch
from engine.documents.errors import DocumentError
from engine.documents.models import CType, Signature
from engine.documents.values import int_range, rows_fit, value_problem
from engine.errors import Pos

MAX_DATA_BYTES = 1 << 30  # 1 GiB: about 40 million rows of three integers
KINDS = (".csv", ".jsonl")
SHOWN = 10  # bad rows listed in one error; the rest are counted
NULL = "\\N"  # NULL in a CSV field (as PostgreSQL's COPY and MySQL write it)


class RowsError(DocumentError):
    """Bad rows of a data file: the first ``SHOWN`` on a line each, then a count of the rest."""

    def __init__(self, problems: list[tuple[Pos, str, str]], total: int) -> None:
        pos, what, fix = problems[0]
        super().__init__(what, fix, pos=pos)
        self.problems, self.total = problems, total

    def render(self) -> str:
        lines = [DocumentError(what, fix, pos=pos).render() for pos, what, fix in self.problems]
        more = self.total - len(self.problems)
        if more > 0:
            lines.append(f"{self.pos.file if self.pos else ''}: {more} more bad row"
                         f"{'s' if more != 1 else ''} (fix the ones above and read again)")
        return "\n".join(lines)


def read_rows(file: Path, shown: str, signature: Signature, pos: Pos) -> tuple[
        list[list[Any]], list[int]]:
    """The rows of the data file ``file`` (``shown`` as the document wrote it, for messages)
    and the line of each; ``pos``: where the document names it."""
    suffix = file.suffix.lower()
    if suffix not in KINDS:
        raise DocumentError(f"rows: '{shown}' is not a kind of data file recipe reads",
                            "name a .csv or a .jsonl file", pos=pos)
    text = _read(file, shown, pos)
    reader = _csv_rows if suffix == ".csv" else _jsonl_rows
    with paused_gc():
        return reader(file, text, signature)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cycle collection while millions of acyclic lists are made: each collection walks
    every object made so far, which more than doubled the time of reading a large table."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _read(file: Path, shown: str, pos: Pos) -> str:
    watch.seen(str(file))
    try:
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            raise DocumentError(f"rows: '{shown}' is not a regular file", "name a data file",
                                pos=pos)
        if info.st_size > MAX_DATA_BYTES:
            raise DocumentError(f"rows: '{shown}' is too large ({info.st_size / (1 << 30):.1f} "
                                f"GiB, the limit is {MAX_DATA_BYTES >> 30} GiB)",
                                "split the rows over several cases", pos=pos)
        with open(file, "rb") as f:
            return f.read(MAX_DATA_BYTES + 1).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text (byte {error.start})", "save the file as UTF-8",
                            pos=Pos(file)) from None
    except OSError as error:
        raise DocumentError(f"rows: cannot read '{shown}': {error.strerror}",
                            "check the file and its permissions", pos=pos) from None


# --- CSV ------------------------------------------------------------------------------------


def _csv_rows(file: Path, text: str, sig: Signature) -> tuple[list[list[Any]], list[int]]:
    want = len(sig.params) + 1
    types = (*sig.params, sig.returns)
    quick = _plain_csv(text, sig)
    if quick is not None:
        return quick
    records, lines = _records(file, text)
    order = list(range(want))
    if records and _is_header(records[0], sig):
        order = _header(file, lines[0], records[0], sig)
        records, lines = records[1:], lines[1:]
    if order != list(range(want)):  # columns in the header's order -> the prototype's
        records = [[r[j] for j in order] if len(r) == want else r for r in records]
    rows = _columns(records, types, want)
    if rows is None:
        _bad_rows(file, records, lines, sig, lambda c, v: _field(types[c], v))
        rows = [[_field(t, v)[0] for t, v in zip(types, r, strict=True)] for r in records]
    return rows, lines


def _records(file: Path, text: str) -> tuple[list[list[str]], list[int]]:
    """Every non-blank record and the line it starts on."""
    records, lines = [], []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    after = 0
    try:
        for record in reader:
            if record:  # a blank line
                records.append(record)
                lines.append(after + 1)
            after = reader.line_num
    except csv.Error as error:
        raise DocumentError(f"not CSV: {error}", "fix the quoting of this record",
                            pos=Pos(file, after + 1)) from None
    return records, lines


def _plain_csv(text: str, sig: Signature) -> tuple[list[list[Any]], list[int]] | None:
    """The common case at C speed: no quotes, no blank lines, every line ``want`` fields,
    every value right. None when anything is otherwise (``_records`` reads it, and says
    what is wrong)."""
    want = len(sig.params) + 1
    if '"' in text or "\0" in text or not text:
        return None
    newline = "\r\n" if "\r" in text else "\n"
    lines = text.split(newline)
    if lines[-1] == "":
        lines.pop()
    if text.count("\r") != text.count("\r\n") or "" in lines or not lines:
        return None
    first = 1
    if _is_header(lines[0].split(","), sig):
        try:
            if _header(Path(), 0, lines[0].split(","), sig) != list(range(want)):
                return None
        except DocumentError:  # said with its file and line by the slow way
            return None
        lines, first = lines[1:], 2
    if set(map(operator.methodcaller("count", ","), lines)) - {want - 1}:
        return None
    flat = ",".join(lines).split(",")
    rows = _convert([flat[c::want] for c in range(want)], (*sig.params, sig.returns))
    if rows is None:
        return None
    return rows, list(range(first, first + len(lines)))


def _convert(columns: list[Any], types: tuple[CType, ...]) -> list[list[Any]] | None:
    """Rows from text columns, each converted and checked whole, or None if any field is
    wrong."""
    values_by_column: list[list[Any]] = []
    for column, ctype in zip(columns, types, strict=True):
        try:
            if ctype.kind == "int":
                values = list(map(int, column))
                lo, hi = int_range(ctype)
                if values and (min(values) < lo or max(values) > hi):
                    return None
            elif ctype.kind == "float":
                values = list(map(float, column))
            else:
                converted = [_field(ctype, v) for v in column]
                if any(problem for _, problem in converted):
                    return None
                values = [v for v, _ in converted]
        except ValueError:
            return None
        values_by_column.append(values)
    return list(map(list, zip(*values_by_column, strict=True)))


def header_order(lines: list[str], sig: Signature) -> list[int]:
    """The column of each of (params..., expected) in a CSV file's ``lines`` (its header's
    order, or the prototype's without a header). The file was read without error."""
    want = len(sig.params) + 1
    first = next((line for line in lines if line.strip("\r\n")), "")
    try:
        record = next(csv.reader([first.rstrip("\r\n")]), [])
    except csv.Error:
        return list(range(want))
    if record and _is_header(record, sig):
        try:
            return _header(Path(), 0, record, sig)
        except DocumentError:
            pass
    return list(range(want))


def _is_header(record: list[str], sig: Signature) -> bool:
    names = set(_column_names(sig))
    return any(field.strip() in names for field in record)


def _column_names(sig: Signature) -> list[str]:
    """Every name a header may give each column: a parameter's name, argN, expected."""
    names = [f"arg{n}" for n in range(1, len(sig.params) + 1)]
    return [*names, *(n for n in sig.names if n), "expected"]


def _header(file: Path, line: int, record: list[str], sig: Signature) -> list[int]:
    """The column of each of (params..., expected) in ``record``, a header row."""
    want = len(sig.params) + 1
    columns: dict[int, int] = {}
    for j, raw in enumerate(record):
        name = raw.strip()
        index = _column_index(name, sig)
        if index is None:
            known = ", ".join(_column_names(sig))
            raise DocumentError(f"the header names '{name}', which is not a parameter of "
                                f"{sig.name}()", f"name the columns {known}",
                                pos=Pos(file, line))
        if index in columns:
            raise DocumentError(f"the header names column '{name}' twice",
                                "name each column once", pos=Pos(file, line))
        columns[index] = j
    if len(columns) != want:
        missing = [_column_names(sig)[i] if i < len(sig.params) else "expected"
                   for i in range(want) if i not in columns]
        raise DocumentError(f"the header has no column {', '.join(missing)}",
                            f"{sig.name}() needs {want - 1} argument"
                            f"{'s' if want != 2 else ''} and expected", pos=Pos(file, line))
    return [columns[i] for i in range(want)]


def _column_index(name: str, sig: Signature) -> int | None:
    if name == "expected":
        return len(sig.params)
    if name.startswith("arg") and name[3:].isdigit() and 1 <= int(name[3:]) <= len(sig.params):
        return int(name[3:]) - 1
    return sig.names.index(name) if name and name in sig.names else None


def _columns(records: list[list[str]], types: tuple[CType, ...],
             want: int) -> list[list[Any]] | None:
    """All rows converted column by column, or None if any field is wrong (then see which)."""
    if any(len(r) != want for r in records):
        return None
    if not records:
        return []
    return _convert(list(zip(*records, strict=True)), types)


def _field(ctype: CType, text: str) -> tuple[Any, str | None]:
    """A CSV field read as ``ctype``: (value, None), or (None, why it cannot be one)."""
    kind = ctype.kind
    if kind == "int":
        try:
            value = int(text)
        except ValueError:
            return None, f"'{text}' is not an integer"
        lo, hi = int_range(ctype)
        if not lo <= value <= hi:
            return None, f"{value} does not fit {ctype.spelling} ({lo}..{hi})"
        return value, None
    if kind == "float":
        try:
            return float(text), None
        except ValueError:
            return None, f"'{text}' is not a number"
    if kind == "bool":
        word = text.strip().lower()
        if word in ("true", "1", "false", "0"):
            return word in ("true", "1"), None
        return None, f"'{text}' is not true or false"
    if kind == "char":
        if len(text.encode("utf-8")) == 1:
            return text, None
        return None, f"'{text}' is not a single ASCII character"
    if kind == "string":
        return (None if text == NULL else text), None
    if kind == "void":
        return (None, None) if text in ("", NULL) else \
            (None, f"'{text}' is a value, but the function returns void")
    return None, f"cannot read '{text}'"


# --- JSON Lines -----------------------------------------------------------------------------


def _jsonl_rows(file: Path, text: str, sig: Signature) -> tuple[list[list[Any]], list[int]]:
    texts, lines = [], []
    # Lines as a CSV reader and --update count them: not at U+2028 and the like, as splitlines()
    for n, line in enumerate(re.split("\r\n|\r|\n", text), 1):
        if line.strip():
            texts.append(line)
            lines.append(n)
    rows: Any = None
    try:  # one parse of the whole file; a line that is not one array shows in the count
        rows = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        pass
    if rows is not None and len(rows) == len(texts) and rows_fit(sig, rows):
        return rows, lines
    parsed: list[Any] = []
    for line_text in texts:
        try:
            parsed.append(json.loads(line_text))
        except ValueError as error:
            parsed.append(_NotJson(str(error)))
    types = (*sig.params, sig.returns)

    def check(c: int, value: Any) -> tuple[Any, str | None]:
        problem = value_problem(types[c], value)
        return value, (problem.removeprefix("is ").replace(", not", " is not", 1)
                       if problem else None)

    _bad_rows(file, parsed, lines, sig, check)
    return parsed, lines


class _NotJson:
    def __init__(self, why: str) -> None:
        self.why = why


# --- errors ---------------------------------------------------------------------------------


def _bad_rows(file: Path, rows: list[Any], lines: list[int], sig: Signature,
              check: Callable[[int, Any], tuple[Any, str | None]]) -> None:
    """Raise a RowsError naming the first ``SHOWN`` bad rows and counting all of them."""
    want = len(sig.params) + 1
    names = [n or f"arg{i}" for i, n in enumerate(
        (*sig.names, *[None] * (want - 1 - len(sig.names))), 1)] + ["expected"]
    template = f"[{', '.join(names)}]" if file.suffix.lower() == ".jsonl" else \
        f"{want} fields: {','.join(names)}"
    problems: list[tuple[Pos, str, str]] = []
    total = 0
    for row, line in zip(rows, lines, strict=True):
        problem: tuple[str, str] | None = None
        if isinstance(row, _NotJson):
            problem = (f"not a JSON array: {row.why}", f"write {template} on one line")
        elif not isinstance(row, list):
            problem = ("not a JSON array", f"write {template} on one line")
        elif len(row) != want:
            problem = (f"{len(row)} value{'s' if len(row) != 1 else ''}, but {sig.name}() "
                       f"needs {want}", f"write {template}")
        else:
            for c, value in enumerate(row):
                _, why = check(c, value)
                if why:
                    role = "the expected result" if c == want - 1 else f"argument {c + 1}"
                    problem = (f"{role} of {sig.name}: {why}",
                               f"write {_spell((*sig.params, sig.returns)[c])}")
                    break
        if problem is not None:
            total += 1
            if len(problems) < SHOWN:
                problems.append((Pos(file, line), *problem))
    if problems:
        raise RowsError(problems, total)


def _spell(ctype: CType) -> str:
    return {"int": f"an integer that fits {ctype.spelling}", "float": "a number",
            "bool": "true or false", "char": "one ASCII character",
            "string": f"text (or {NULL} for NULL)", "void": "nothing"}[ctype.kind]
