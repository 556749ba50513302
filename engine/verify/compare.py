"""Judge an observation against a case's expectation, and render the differences as diffs.

Diffs are unified diffs over lines of *escaped* text: every byte a terminal would not show as
itself is written ``\\x00`` style (``\\t``, ``\\r``, ``\\\\`` for a backslash), invalid UTF-8 is
escaped byte by byte, and a missing final newline is marked as diff(1) does. Long diffs are cut.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from engine.documents.models import Case
from engine.verify.outcome import Observed, Status

DIFF_LINES = 60  # lines of a diff shown before it is cut
_WINDOW = 2000  # lines of each side handed to difflib; beyond, the diff would be cut anyway
_NO_EOL = "\\ No newline at end of file\n"
_NAMED = {"\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


@dataclass(frozen=True)
class Expected:
    """The bytes a case expects; None means unchecked. ``missing`` names absent golden files."""

    stdout: bytes | None
    stderr: bytes | None
    exit: int
    missing: tuple[str, ...] = ()  # golden files that do not exist
    missing_streams: tuple[str, ...] = ()  # the streams they stand for: always a mismatch


def expected(case: Case) -> Expected:
    """Read the expectation, following ``stdout_file`` / ``stderr_file`` beside the cases file."""
    missing: list[str] = []

    def stream(inline: bytes | None, file: str | None) -> bytes | None:
        if inline is not None or file is None:
            return inline
        try:
            return (case.folder / file).read_bytes()
        except FileNotFoundError:
            missing.append(file)
            return b""

    e = case.expect
    # DESIGN 1.2: stdout is always compared (absent means empty); stderr only when given.
    out = stream(e.stdout, e.stdout_file)
    if out is None:
        out = b""
    err = stream(e.stderr, e.stderr_file)
    return Expected(out, err, e.exit, tuple(missing),
                    tuple(n for n, f in (("stdout", e.stdout_file), ("stderr", e.stderr_file))
                          if f in missing))


def compare(case: Case, observed: Observed, cap: int) -> tuple[Status, str, str]:
    """``(status, one-line message, detail)`` of an observation against the case's expectation."""
    want = expected(case)
    differs: list[str] = []
    details: list[str] = [f"{m} does not exist (re-record with --update)\n" for m in want.missing]
    for name, exp, got in (("stdout", want.stdout, observed.stdout),
                           ("stderr", want.stderr, observed.stderr)):
        if exp is not None and (exp != got or name in want.missing_streams):
            differs.append(name)
            details.append(unified_diff(exp, got, name))
    exit_differs = observed.exit is not None and observed.exit != want.exit
    if exit_differs:
        differs.append("exit code")
        details.append(f"exit code: expected {want.exit}, got {observed.exit}\n")

    if observed.timed_out:
        message = f"timed out after {case.timeout:g}s"
    elif observed.capped:
        message = f"{observed.capped} exceeded {format_size(cap)}"
    elif observed.signal:
        message = f"killed by {observed.signal}"
    elif differs:
        verb = "differs" if len(differs) == 1 else "differ"
        message = f"{_join(differs)} {verb}"
        if exit_differs:
            message += f" (exit {observed.exit}, expected {want.exit})"
    else:
        return "passed", "", ""
    if want.stderr is None and observed.stderr:  # unchecked, but it likely says what went wrong
        details.append("stderr (unchecked):\n" + _cut(escape_lines(observed.stderr), 20))
    return "failed", message, "".join(details)


def unified_diff(expected: bytes, observed: bytes, name: str, limit: int = DIFF_LINES) -> str:
    """A unified diff of two byte strings as escaped text, cut after ``limit`` lines."""
    a, b = escape_lines(expected), escape_lines(observed)
    # difflib is quadratic at worst: skip the common head and diff a window from there, then
    # put the skipped lines back into the hunk line numbers.
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    start = max(0, start - 3)
    a_win, b_win = a[start:start + _WINDOW], b[start:start + _WINDOW]
    lines = list(difflib.unified_diff(a_win, b_win, f"expected {name}", f"observed {name}"))
    if start:
        lines = [_shift(line, start) for line in lines]
    return _cut(lines, limit)


def escape_lines(data: bytes) -> list[str]:
    """``data`` as escaped lines, each ending in a newline; an unterminated last line is marked."""
    text = "".join(_escape_char(c) for c in data.decode("utf-8", "surrogateescape"))
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n" + _NO_EOL  # one element: a changed final newline shows as a change
    return lines


def visible(text: str) -> str:
    """Text for a terminal: control characters escaped, newlines kept, backslashes left as they
    are (so that already escaped diff text passes unchanged)."""
    return "".join(c if c == "\n" or c == "\\" else _escape_char(c) for c in text)


def format_size(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


def _escape_char(c: str) -> str:
    if c == "\n":
        return c
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that was not valid UTF-8
        return f"\\x{code - 0xDC00:02x}"
    if c.isprintable():
        return c
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _shift(line: str, by: int) -> str:
    match = _HUNK.match(line)
    if not match:
        return line
    a, a_len, b, b_len = match.groups()
    head = f"@@ -{int(a) + by}{a_len or ''} +{int(b) + by}{b_len or ''} @@"
    return head + line[match.end():]


def _cut(lines: list[str], limit: int) -> str:
    if len(lines) <= limit:
        return "".join(lines)
    return "".join(lines[:limit]) + f"... {len(lines) - limit} more lines cut\n"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
