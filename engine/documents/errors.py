"""The error of a wrong document: YAML, schema, paths, references. Always carries a position."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from engine.errors import Pos, RecipeError

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class DocumentError(RecipeError):
    """A document is wrong: rendered as ``file:line:col: what; how to fix``, exit code 2."""

    def __init__(self, what: str, fix: str | None = None, *, pos: Pos | None = None) -> None:
        # Names and values quoted from a document may hold a newline or a tab: keep one line.
        super().__init__(printable(what), printable(fix) if fix else fix, pos=pos)


def printable(text: str) -> str:
    """``text`` with control characters escaped (a tab becomes ``\\t``)."""
    return _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """``did you mean 'x'?`` for the closest choice, or None when nothing is close."""
    choices = list(choices)
    same = [c for c in choices if c.lower() == word.lower()]  # 'C' for 'c', 'Release'...
    close = same or difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def one_of(choices: Iterable[str]) -> str:
    return ", ".join(sorted(choices))
