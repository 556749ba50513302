"""The error of a wrong document: YAML, schema, paths, references. Always carries a position."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from engine.errors import Pos, RecipeError

# What may not reach a terminal as is: C0 and C1 controls (NEL is a line break to some), the
# Unicode line and paragraph separators, and lone surrogates (they cannot be encoded).
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_LONG_WORD = re.compile(r"\S{121,}")
MAX_MESSAGE = 1000


class DocumentError(RecipeError):
    """A document is wrong: rendered as ``file:line:col: what; how to fix``, exit code 2."""

    def __init__(self, what: str, fix: str | None = None, *, pos: Pos | None = None) -> None:
        # Names and values quoted from a document may hold a newline or a tab, or be megabytes
        # long: keep one short line.
        super().__init__(printable(what), printable(fix) if fix else fix, pos=pos)


def printable(text: str) -> str:
    """``text`` on one line of reasonable length: control characters escaped (a tab becomes
    ``\\t``), very long words shortened in the middle, the whole cut at ``MAX_MESSAGE``."""
    text = _UNPRINTABLE.sub(lambda m: repr(m.group(0))[1:-1], text)
    text = _LONG_WORD.sub(lambda m: f"{m.group(0)[:80]}...{m.group(0)[-30:]}", text)
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 3] + "..."


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None when nothing is close."""
    if len(word) > 200:  # difflib is quadratic: a huge word is close to nothing anyway
        return None
    choices = list(choices)
    same = [c for c in choices if c.lower() == word.lower()]  # 'C' for 'c', 'Release'...
    close = same or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def one_of(choices: Iterable[str]) -> str:
    return ", ".join(sorted(choices))
