"""Differences rendered as text: unified diffs over lines of *escaped* text.

Every byte a terminal would not show as itself is written ``\\x00`` style (``\\t``, ``\\r``,
``\\\\`` for a backslash), invalid UTF-8 is escaped byte by byte, and a missing final newline is
marked as diff(1) does. Long diffs are cut.
"""

from __future__ import annotations

import difflib
import re

DIFF_LINES = 60  # lines of a diff shown before it is cut
_WINDOW = 2000  # lines of each side handed to difflib; beyond, the diff would be cut anyway
_NO_EOL = "\\ No newline at end of file\n"
_CUT_MARK = "\\ (the rest is not shown)\n"
_DIFF_BYTES = 64 * 1024  # of each side, from just before the first difference, are diffed
_LINE_CHARS = 500  # an escaped line longer than this is cut in what is shown
_NAMED = {"\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def unified_diff(expected: bytes, observed: bytes, name: str, limit: int = DIFF_LINES) -> str:
    """A unified diff of two byte strings as escaped text, cut after ``limit`` lines."""
    # Escaping runs per character and difflib is quadratic at worst, while outputs may be as
    # large as the cap: skip the common head in bytes, diff a window of each side from three
    # lines before the first difference, then put the skipped lines back into the hunk numbers.
    begin = expected.rfind(b"\n", 0, _common_prefix(expected, observed)) + 1
    for _ in range(3):
        if begin:
            begin = expected.rfind(b"\n", 0, begin - 1) + 1
    skipped = expected.count(b"\n", 0, begin)
    a = escape_lines(expected[begin:], _DIFF_BYTES)[:_WINDOW]
    b = escape_lines(observed[begin:], _DIFF_BYTES)[:_WINDOW]
    lines = list(difflib.unified_diff(a, b, f"expected {name}", f"observed {name}"))
    if skipped:
        lines = [_shift(line, skipped) for line in lines]
    return _cut([_clip(line) for line in lines], limit)


def escaped(data: bytes, limit: int) -> str:
    """``data`` as escaped text, each line clipped, cut after ``limit`` lines."""
    return _cut([_clip(line) for line in escape_lines(data, _DIFF_BYTES)], limit)


def escape_lines(data: bytes, limit: int | None = None) -> list[str]:
    """``data`` as escaped lines, each ending in a newline; an unterminated last line is marked.
    With ``limit``, only the first ``limit`` bytes, and the last line says the rest is cut."""
    cut = limit is not None and len(data) > limit
    text = "".join(_escape_char(c) for c in data[:limit].decode("utf-8", "surrogateescape"))
    lines = text.splitlines(keepends=True)
    if cut:
        lines[-1] = lines[-1].removesuffix("\n") + "\n" + _CUT_MARK
    elif lines and not lines[-1].endswith("\n"):
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


def _common_prefix(a: bytes, b: bytes) -> int:
    """The length of the common head of ``a`` and ``b``, compared a block at a time."""
    n, i, step = min(len(a), len(b)), 0, 4096
    while i + step <= n and a[i:i + step] == b[i:i + step]:
        i += step
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _clip(line: str) -> str:
    """A diff line (its first physical line) cut to ``_LINE_CHARS`` characters."""
    head, sep, rest = line.partition("\n")
    if len(head) <= _LINE_CHARS:
        return line
    return f"{head[:_LINE_CHARS]}... (line cut){sep}{rest}"


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
