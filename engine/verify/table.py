"""Function cases: rows ``[args..., expected]`` against one function of a project's shared
library, called in batches by a worker process (``table_worker.py``), never in this process.

The worker runs under the containment of a process case (the reaper; Landlock or the write
guard). A row that crashes or hangs ends the worker; the row is failed with the signal's name
(or as timed out) and a fresh worker goes on with the rows that have no result yet, so every
other row passes or fails on its own. Results compare by type: integers and bool exactly,
floats within the case's ``tolerance`` (a ``float`` result against the expected value rounded
to float), strings as exact bytes (``null`` for NULL).
"""

from __future__ import annotations

import json
import marshal
import math
import signal
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from engine.documents.models import Case, CType
from engine.errors import RecipeError, display_path
from engine.verify import table_worker
from engine.verify.cache import ActionCache
from engine.verify.process import CAP, run_argv
from engine.verify.table_waiting import Waiting, environment, prepare
from engine.verify.table_waiting import argv as worker_argv
from engine.verify.table_waiting import files as worker_files

SHOWN_ROWS = 20  # failing rows a report lists by default (recipe verify --failing-rows N)
# The outer bound of one worker's run, past the per-row timeout its watchdog keeps; at most a
# week (poll() takes at most 2**31 - 1 ms: a million rows of 10 s would overflow it).
_GRACE = 30.0
_MAX_RUN = 7 * 86400.0


class TableError(RecipeError):
    """A function case cannot run at all: the function is not in the library."""


@dataclass
class Results:
    """What the rows gave: ``values[i]`` is row i's result unless ``problems`` has row i
    (why there is none: a crash, a timeout)."""

    values: list[Any]
    problems: dict[int, str]


def call_rows(case: Case, library: Path, scratch: Path, *, cache: ActionCache | None = None,
              protect: Sequence[Path] = (), waiting: Waiting | None = None) -> Results:
    """Call the case's function with every row's arguments (the first time by ``waiting``, a
    worker started in ``scratch`` before the library was there, when given)."""
    assert case.signature is not None
    sig = case.signature
    arguments = _arguments(case)
    values: list[Any] = [None] * len(case.table)
    problems: dict[int, str] = {}
    pending = list(range(len(case.table)))
    attempt = 0
    while pending:
        attempt += 1
        spec, results, progress = worker_files(scratch, attempt)
        rows = arguments if attempt == 1 else [arguments[i] for i in pending]
        limit = min(case.timeout * len(pending) + _GRACE, _MAX_RUN)
        data = {"library": str(library), "function": sig.name, "returns": _triple(sig.returns),
                "params": [_triple(p) for p in sig.params], "rows": rows,
                "timeout": case.timeout, "free": case.free}
        if attempt == 1 and waiting is not None:
            observed = waiting.send({**data, "limit": limit})
        else:
            prepare(scratch, attempt)
            with open(spec, "wb") as f:
                marshal.dump(data, f)
            observed = run_argv(worker_argv(scratch, attempt), cwd=scratch / "work",
                                env=environment(scratch), stdin=b"", timeout=limit, cap=CAP,
                                writable=[scratch], cache=cache)
        done = _read_results(results)
        if observed.exit == 0 and len(done) == len(pending) and attempt == 1:
            values = [done[p] for p in range(len(pending))]
            break
        for position, value in done.items():
            values[pending[position]] = value
        if observed.exit == 0 and len(done) == len(pending):
            break
        at = int.from_bytes(progress.read_bytes()[:8], sys.byteorder, signed=True)
        if at == table_worker.NOT_STARTED:  # loading failed: no row can run
            why = observed.stderr.decode(errors="replace").strip() or \
                _why(observed.signal, observed.exit, observed.timed_out, case.timeout)
            raise TableError(f"case '{case.name}': cannot call {sig.name}() in {library.name}: "
                             f"{why}", "check the function's name and that the library loads",
                             pos=case.pos)
        position = at if 0 <= at < len(pending) and at not in done else \
            next(p for p in range(len(pending)) if p not in done)
        problems[pending[position]] = _why(observed.signal, observed.exit, observed.timed_out,
                                           case.timeout)
        finished = {pending[p] for p in done} | {pending[position]}
        pending = [i for i in pending if i not in finished]
    return Results(values, problems)


def judge(case: Case, results: Results, shown: int = SHOWN_ROWS) -> tuple[list[int], str]:
    """The indexes of the failing rows, and one line for each of the first ``shown``: the
    call, what it gave (then how many more failed)."""
    assert case.signature is not None
    sig = case.signature
    returns, tolerance = sig.returns, case.tolerance
    exact = returns.kind == "int"
    if exact and not results.problems and \
            results.values == list(map(itemgetter(-1), case.table)) and \
            set(map(type, results.values)) == {int}:  # every row passed: no loop
        return [], ""
    failing = [i for i, (row, got) in enumerate(zip(case.table, results.values, strict=True))
               if i in results.problems or not (
                   (got == row[-1] and type(got) is int) if exact
                   else matches(returns, row[-1], got, tolerance))]
    lines = []
    for i in failing[:max(shown, 0)]:
        args, want = case.table[i][:-1], case.table[i][-1]
        call = f"{sig.name}({', '.join(show(v) for v in args)})"
        if i in results.problems:
            lines.append(f"{row_label(case, i)}: {call} {results.problems[i]}; "
                         f"expected {show(want)}")
        elif returns.kind == "json":
            lines.append(f"{row_label(case, i)}: {call} returned other JSON than expected:\n"
                         + json_diff(want, results.values[i]))
        else:
            lines.append(f"{row_label(case, i)}: {call} returned "
                         f"{show(plain(results.values[i]))}, expected {show(want)}")
    if len(failing) > shown:
        lines.append(more_rows(len(failing) - max(shown, 0)))
    return failing, "\n".join(lines)


def row_label(case: Case, index: int) -> str:
    """``row 7``, or ``row 7 (data/add.csv:9)`` for a row of a data file."""
    line = case.row_lines[index] if index < len(case.row_lines) else 0
    if not line or case.rows_file is None:
        return f"row {index + 1}"
    return f"row {index + 1} ({display_path(case.folder / case.rows_file)}:{line})"


def more_rows(count: int) -> str:
    return (f"... and {count} more failing row{'s' if count != 1 else ''} "
            "(--failing-rows N shows more)")


def matches(ctype: CType, want: Any, got: Any, tolerance: float) -> bool:
    if ctype.kind == "void":
        return True
    if ctype.kind == "json":
        parsed = parse_json(got)
        return parsed is not _INVALID and same_json(want, parsed, tolerance)
    if ctype.kind == "string":
        return got is None if want is None else got == want.encode()
    if ctype.kind == "char":
        return got == _argument(ctype, want)
    if ctype.kind == "bool":
        return got is bool(want) if isinstance(got, bool) else False
    if ctype.kind == "float":
        if ctype.bits == 32:
            want = struct.unpack("f", struct.pack("f", want))[0]
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return got == want or abs(got - want) <= tolerance
    return isinstance(got, int) and not isinstance(got, bool) and got == want


def plain(value: Any, ctype: CType | None = None) -> Any:
    """A result as a document writes it: bytes become text; JSON its value."""
    if ctype is not None and ctype.kind == "json":
        parsed = parse_json(value)
        if parsed is not _INVALID:
            return parsed
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


_INVALID = object()


def parse_json(raw: Any) -> Any:
    """A returned JSON text's value (NULL is null); ``_INVALID`` when it is not JSON."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return _INVALID


def same_json(want: Any, got: Any, tolerance: float) -> bool:
    """Structural equality: object key order does not matter; numbers compare by value
    (``1`` equals ``1.0``) within ``tolerance``; booleans are not numbers."""
    if isinstance(want, bool) or isinstance(got, bool):
        return want is got
    if isinstance(want, int | float) and isinstance(got, int | float):
        if math.isnan(want) or math.isnan(got):
            return math.isnan(want) and math.isnan(got)
        return want == got or abs(want - got) <= tolerance
    if isinstance(want, dict) and isinstance(got, dict):
        return want.keys() == got.keys() and all(same_json(want[k], got[k], tolerance)
                                                 for k in want)
    if isinstance(want, list) and isinstance(got, list):
        return len(want) == len(got) and all(same_json(w, g, tolerance)
                                             for w, g in zip(want, got, strict=True))
    return type(want) is type(got) and want == got


def json_diff(want: Any, raw: Any) -> str:
    """A unified diff of the expected and the returned JSON, both pretty-printed with sorted
    keys (so only real differences show); a result that is not JSON is shown as text."""
    import difflib

    got = parse_json(raw)
    got_text = json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) \
        if got is not _INVALID else f"(not JSON) {plain(raw)}"
    want_text = json.dumps(want, indent=2, sort_keys=True, ensure_ascii=False)
    return "\n".join(difflib.unified_diff(want_text.splitlines(), got_text.splitlines(),
                                           "expected", "returned", lineterm=""))


def show(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _arguments(case: Case) -> list[Any]:
    """Every row's arguments as ctypes takes them (only text needs converting)."""
    assert case.signature is not None
    params = case.signature.params
    converted = [c for c, p in enumerate(params) if p.kind in ("string", "char", "json")]
    if not converted:
        return [row[:-1] for row in case.table]
    return [[_argument(params[c], v) if c in converted else v for c, v in enumerate(row[:-1])]
            for row in case.table]


def _argument(ctype: CType, value: Any) -> Any:
    """A document value as ctypes takes it for ``ctype``."""
    if ctype.kind == "string":
        return None if value is None else value.encode()
    if ctype.kind == "json":
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    if ctype.kind == "char":
        return value.encode() if isinstance(value, str) else bytes([value & 0xFF])
    return value


def _triple(ctype: CType) -> tuple[str, int, bool]:
    return (ctype.kind, ctype.bits, ctype.signed)


def _read_results(file: Path) -> dict[int, Any]:
    """Position -> result of every batch the worker finished (a torn last one is dropped)."""
    found: dict[int, Any] = {}
    with open(file, "rb") as f:
        while True:
            try:
                first, values = marshal.load(f)
            except (EOFError, ValueError, TypeError):
                return found
            found.update(enumerate(values, first))


def _why(signal_name: str | None, exit_code: int | None, timed_out: bool,
         timeout: float) -> str:
    if timed_out or signal_name == signal.Signals.SIGALRM.name:
        return f"timed out after {timeout:g} s"
    if signal_name is not None:
        return f"crashed: {signal_name}"
    return f"ended the worker with exit code {exit_code}"
