"""Matching outputs against expectation patterns, and re-recording patterns (``--update``).

The syntax is ``engine.documents.patterns``: ``[..]`` within a line, ``...`` lines, declared
redactions ``[NAME]`` and the built-ins ``[ROOT]`` (the case's scratch folder) and
``[STORE]`` (the store folder). An expectation without any is compared as exact bytes.

Matching compiles the whole expectation into one regular expression over bytes. Re-recording
(:func:`normalize`, after snapbox's ``normalize_to_pattern``, which gives up at the first
changed line; this one picks up again after it) walks the expectation's lines and the
observed lines together: a pattern line that still matches its observed line is kept as it is,
placeholders and all; a ``...`` line is kept and absorbs observed lines up to the one the next
pattern line matches; where they part, the nearest pair of lines that match again is found
(within ``_RESYNC`` lines; lines before a ``...`` that changed are replaced one for one),
and the observed lines in between are written literally, with the
case's declared redactions put in place of what they match (as insta applies redactions to
every snapshot). The result always matches the observation: if it would not, the observation
itself (redacted, else as it is) is recorded.

Matching runs on the ``regex`` module (the dialect of Python's ``re``, which checks the
expressions when a document is read), for its time bound: a redaction written so that some text
can be matched in exponentially many ways (``(a|a)+``) would otherwise hold a case, and verify,
for ever. One call of ``matches``, ``normalize`` or ``redact`` gets ``MATCH_SECONDS`` in all;
past that it raises ``PatternTooSlow``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import regex

from engine.documents.models import Case
from engine.documents.patterns import ANY, ELIDE, TOKEN, is_pattern
from engine.errors import RecipeError
from engine.verify.outcome import Observed

_RESYNC = 200  # lines looked ahead on each side for where expectation and output agree again
_LINE = rb"[^\n]*"
#: Seconds one comparison may spend matching: a large output against a sane pattern takes a
#: small part of one.
MATCH_SECONDS = 10.0


class PatternTooSlow(RecipeError):
    """Matching an output against a case's patterns ran past ``MATCH_SECONDS``: a redaction that
    backtracks without end."""


class _Clock:
    """The time one call has left; each regex call gets what remains."""

    def __init__(self, r: Redactions) -> None:
        self.end = time.monotonic() + MATCH_SECONDS
        self.names = sorted(r.names)

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.too_slow()
        return left

    def too_slow(self) -> PatternTooSlow:
        which = ", ".join(self.names) or "none"
        return PatternTooSlow(
            f"matching the output against the case's patterns took over {MATCH_SECONDS:g}s "
            f"(declared redactions: {which}): an expression that can match the same text in "
            "very many ways, such as (a|a)+, backtracks without end",
            "rewrite it so that each text matches in one way (no repeated group whose parts "
            "overlap), or use [..]")

    def run(self, call: Callable[..., Any], *args: Any) -> Any:
        try:
            return call(*args, timeout=self.left())
        except TimeoutError:
            raise self.too_slow() from None


@dataclass(frozen=True)
class Redactions:
    """What the placeholders of one case stand for, for one observation."""

    named: tuple[tuple[str, bytes], ...] = ()  # declared: (name, expression)
    paths: tuple[tuple[str, tuple[bytes, ...]], ...] = ()  # built-ins: (name, spellings)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n for n, _ in self.named)

    def regex(self, name: str) -> bytes | None:
        """The regular expression a placeholder stands for; None when it is unknown."""
        for n, expression in self.named:
            if n == name:
                return b"(?:" + expression + b")"
        for n, spellings in self.paths:
            if n == name:
                return b"(?:" + b"|".join(re.escape(s) for s in spellings) + b")" if spellings \
                    else None
        return None


def redactions(case: Case, observed: Observed | None = None) -> Redactions:
    """The case's declared redactions, and the built-ins as ``observed`` ran."""
    named = tuple((n, e.encode("utf-8")) for n, e in case.redact.items())
    paths = []
    for name, folder in (("[ROOT]", observed.root if observed else None),
                         ("[STORE]", observed.store if observed else None)):
        spellings = _spellings(folder)
        paths.append((name, spellings))
    return Redactions(named, tuple(paths))


def _spellings(folder: str | None) -> tuple[bytes, ...]:
    """A folder as given and as resolved (``getcwd`` gives the latter): longest first."""
    if not folder:
        return ()
    forms = {os.fsencode(folder), os.fsencode(os.path.realpath(folder))}
    return tuple(sorted(forms, key=len, reverse=True))


def uses_patterns(expected: bytes, r: Redactions) -> bool:
    return is_pattern(expected, r.names)


def matches(expected: bytes, observed: bytes, r: Redactions) -> bool:
    """Whether ``observed`` is what ``expected`` (exact bytes, or a pattern) allows."""
    if not uses_patterns(expected, r):
        return expected == observed
    clock = _Clock(r)
    return clock.run(_compile(expected, r).fullmatch, observed) is not None


def _compile(expected: bytes, r: Redactions) -> Any:
    lines = _lines(expected)
    parts = []
    for n, line in enumerate(lines):
        if _is_elide(line):
            last = n == len(lines) - 1
            parts.append(rb"(?s:.*)" if last else rb"(?:[^\n]*\n)*?")
        else:
            parts.append(_line_regex(line, r))
    return regex.compile(b"".join(parts))


def _line_regex(line: bytes, r: Redactions) -> bytes:
    out, at = [], 0
    for m in TOKEN.finditer(line):
        token = m.group()
        rx = rb"[^\n]*?" if token == ANY else r.regex(token.decode())
        if rx is None:
            continue  # not a placeholder here: literal text
        out += [re.escape(line[at:m.start()]), rx]
        at = m.end()
    out.append(re.escape(line[at:]))
    return b"".join(out)


def _lines(text: bytes) -> list[bytes]:
    return text.splitlines(keepends=True) if b"\r" not in text else _split_lf(text)


def _split_lf(text: bytes) -> list[bytes]:
    """Lines ending in ``\\n`` only (``splitlines`` also splits at ``\\r`` and others)."""
    parts = text.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    return lines + [parts[-1]] if parts[-1] else lines


def _is_elide(line: bytes) -> bool:
    return line.rstrip(b"\n") == ELIDE


def redact(text: bytes, r: Redactions, clock: _Clock | None = None) -> bytes:
    """``text`` with every match of a declared redaction replaced by its name."""
    clock = clock or _Clock(r)
    for name, expression in r.named:
        text = clock.run(regex.compile(expression).sub, name.encode().replace(b"\\", b"\\\\"),
                         text)
    return text


def normalize(observed: bytes, expected: bytes, r: Redactions, *, substitute: bool = True) -> bytes:
    """What to record for ``observed`` in place of ``expected``: ``expected``'s lines where they
    still match, the observed lines where the output changed (redacted when ``substitute``).
    Also what a diff shows: only real changes differ from the expectation."""
    clock = _Clock(r)
    if not uses_patterns(expected, r):
        new = redact(observed, r, clock) if substitute else observed
        return new if new != observed and matches(new, observed, r) else observed
    pattern = _lines(expected)
    got = _lines(observed)
    rx = [None if _is_elide(p) else regex.compile(_line_regex(p, r)) for p in pattern]

    def fits(i: int, j: int) -> bool:
        line = rx[i]
        return line is not None and j < len(got) and clock.run(line.fullmatch, got[j]) is not None

    def fresh(lines: list[bytes]) -> list[bytes]:
        return [redact(x, r, clock) for x in lines] if substitute else list(lines)

    out: list[bytes] = []
    i = j = 0
    while i < len(pattern):
        if rx[i] is None:  # a `...` line
            if i + 1 == len(pattern):
                out.append(pattern[i])
                j = len(got)
            elif rx[i + 1] is None:
                pass  # two `...` in a row: the next one does the work
            else:
                k = next((k for k in range(j, len(got)) if fits(i + 1, k)), j)
                out.append(pattern[i])
                j = k
            i += 1
        elif fits(i, j):
            out.append(pattern[i])
            i, j = i + 1, j + 1
        else:
            again = _resync(i, j, rx, len(got), fits)
            if again is None:
                barrier = next((e for e in range(i, len(pattern)) if rx[e] is None), None)
                if barrier is None:
                    break
                # The lines before a `...` changed in place: as many observed lines take
                # their place (before where the line after the `...` matches); the `...`
                # goes on absorbing the rest.
                end = len(got) if barrier + 1 == len(pattern) else next(
                    (k for k in range(j, len(got)) if fits(barrier + 1, k)), len(got))
                taken = min(barrier - i, end - j)
                out += fresh(got[j:j + taken])
                i, j = barrier, j + taken
                continue
            di, dj = again
            out += fresh(got[j:j + dj])
            i, j = i + di, j + dj
    out += fresh(got[j:])
    result = b"".join(out)
    if matches(result, observed, r):
        return result
    whole = fresh([observed])[0]
    return whole if matches(whole, observed, r) else observed


def _resync(i: int, j: int, rx: list[Any], n_got: int,
            fits: Callable[[int, int], bool]) -> tuple[int, int] | None:
    """The nearest ``(di, dj)`` after a mismatch at ``(i, j)`` where a pattern line (before
    the next ``...``) matches an observed line again."""
    stop = next((e for e in range(i, len(rx)) if rx[e] is None), len(rx))
    for d in range(1, 2 * _RESYNC):
        for di in range(0, min(d, stop - i - 1, _RESYNC) + 1):
            dj = d - di
            if dj > _RESYNC or j + dj > n_got:
                continue
            if i + di < stop and fits(i + di, j + dj):
                return di, dj
    return None


def leak(text: bytes, r: Redactions) -> str | None:
    """The built-in placeholder whose folder ``text`` holds literally (it differs per run or
    per machine, so it must never be recorded), or None."""
    for name, spellings in r.paths:
        if any(s and s in text for s in spellings):
            return name
    return None
