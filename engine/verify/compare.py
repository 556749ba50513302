"""Judge an observation against a case's expectation, and render the differences as diffs.

Diffs are unified diffs over lines of *escaped* text: every byte a terminal would not show as
itself is written ``\\x00`` style (``\\t``, ``\\r``, ``\\\\`` for a backslash), invalid UTF-8 is
escaped byte by byte, and a missing final newline is marked as diff(1) does. Long diffs are cut.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass

from engine.documents.models import Case
from engine.documents.signals import signal_name, signal_number
from engine.verify.outcome import Observed, Status
from engine.verify.patterns import matches, normalize, redactions

WRITES_NOTE = ("a case may write only into its working folder and $TMPDIR; a write anywhere "
               "else fails with EACCES (Permission denied)")
DIFF_LINES = 60  # lines of a diff shown before it is cut
_WINDOW = 2000  # lines of each side handed to difflib; beyond, the diff would be cut anyway
_NO_EOL = "\\ No newline at end of file\n"
_CUT_MARK = "\\ (the rest is not shown)\n"
_DIFF_BYTES = 64 * 1024  # of each side, from just before the first difference, are diffed
_LINE_CHARS = 500  # an escaped line longer than this is cut in what is shown
_NAMED = {"\t": "\\t", "\r": "\\r", "\\": "\\\\"}
_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


@dataclass(frozen=True)
class Expected:
    """The bytes a case expects; None means unchecked. ``missing`` names absent golden files."""

    stdout: bytes | None
    stderr: bytes | None
    exit: int
    signal: int | None = None  # the process must die by this signal (``exit`` is then unused)
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
    return Expected(out, err, e.exit, e.signal, tuple(missing),
                    tuple(n for n, f in (("stdout", e.stdout_file), ("stderr", e.stderr_file))
                          if f in missing))


def with_newlines(case: Case, observed: Observed) -> Observed:
    """What is compared (and re-recorded): with ``newlines: lf``, ``\r\n`` printed is ``\n``."""
    if case.newlines != "lf":
        return observed
    return dataclasses.replace(observed, stdout=observed.stdout.replace(b"\r\n", b"\n"),
                               stderr=observed.stderr.replace(b"\r\n", b"\n"))


def compare(case: Case, observed: Observed, cap: int) -> tuple[Status, str, str]:
    """``(status, one-line message, detail)`` of an observation against the case's expectation."""
    observed = with_newlines(case, observed)
    want = expected(case)
    marks = redactions(case, observed)
    differs: list[str] = []
    details: list[str] = [f"{m} does not exist (re-record with --update)\n" for m in want.missing]
    for name, exp, got in (("stdout", want.stdout, observed.stdout),
                           ("stderr", want.stderr, observed.stderr)):
        if exp is not None and (not matches(exp, got, marks) or name in want.missing_streams):
            differs.append(name)
            # Lines a pattern still matches show as the pattern: only real changes differ.
            details.append(unified_diff(exp, normalize(got, exp, marks, substitute=False),
                                        name))
    if case.expect.files or case.expect.tree:
        from engine.verify import files_expect

        more, more_details = files_expect.compare(case, observed, marks)
        differs += more
        details += more_details
    exit_differs = want.signal is None and observed.exit is not None and \
        observed.exit != want.exit
    if exit_differs:
        differs.append("exit code")
        details.append(f"exit code: expected {want.exit}, got {observed.exit}\n")
    ending = _ending(want, observed)
    if ending:
        details.append(f"ended: expected {_said(want.exit, want.signal)}, got "
                       f"{_said(observed.exit, signal_number(observed.signal or ''))}\n")

    if observed.timed_out:
        message = f"timed out after {case.timeout:g}s"
    elif observed.capped:
        message = f"{observed.capped} exceeded {format_size(cap)}"
    elif observed.scratch_full:
        message = (f"its scratch folder exceeded {format_size(case.scratch_limit)} "
                   "(scratch_limit)")
    elif observed.wrote:
        more = f" (and {len(observed.wrote) - 1} more)" if len(observed.wrote) > 1 else ""
        if observed.wrote_alone:
            message = f"wrote into read-only {observed.wrote[0]}{more}"
        else:
            message = (f"read-only {observed.wrote[0]}{more} changed while it ran, by this case "
                       "or one running beside it")
    elif ending:
        message = ending + (f"; {_join(differs)} {'differs' if len(differs) == 1 else 'differ'}"
                            if differs and want.signal is not None else "")
    elif differs:
        verb = "differs" if len(differs) == 1 else "differ"
        message = f"{_join(differs)} {verb}"
        if exit_differs:
            message += f" (exit {observed.exit}, expected {want.exit})"
    else:
        return "passed", "", ""
    if observed.wrote:
        details.insert(0, "".join(f"changed: {p}\n" for p in observed.wrote[:20]))
    if want.stderr is None and observed.stderr:  # unchecked, but it likely says what went wrong
        shown = [_clip(line) for line in escape_lines(observed.stderr, _DIFF_BYTES)]
        details.append("stderr (unchecked):\n" + _cut(shown, 20))
    if b"Permission denied" in observed.stderr:  # likely a write the sandbox refused
        details.append(f"note: {WRITES_NOTE}\n")
    return "failed", message, "".join(details)


def _ending(want: Expected, observed: Observed) -> str:
    """Why the process did not end as expected, in words ("" when it did). An exit code and a
    signal are never mistaken for each other: a shell's 139 is not SIGSEGV."""
    got = signal_number(observed.signal) if observed.signal else None
    if want.signal is None:
        return f"killed by {observed.signal}" if observed.signal else ""
    if observed.signal is None:
        return f"exited with {observed.exit}, expected to be killed by {signal_name(want.signal)}"
    if got != want.signal:
        return f"killed by {observed.signal}, expected {signal_name(want.signal)}"
    return ""


def _said(exit: int | None, signal: int | None) -> str:
    if signal is None:
        return f"exit code {exit}"
    name = signal_name(signal)
    return name if name.startswith("signal ") else f"signal {name}"


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


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]
