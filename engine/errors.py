"""The one base error class. Each layer defines its own subclasses beside the code that raises
them; only ``engine.cli`` renders them and chooses exit codes (see ``engine/cli/main.py``)."""

from __future__ import annotations

import os
from collections import namedtuple

# Every command imports this module: a named tuple, not a dataclass, keeps a no-op run from
# importing dataclasses (and inspect) only for this.
_PosFields = namedtuple("_PosFields", ["file", "line", "col"], defaults=(0, 0))


class Pos(_PosFields):
    """A position in a document: ``file`` (a Path), 1-based ``line`` and ``col`` (0: unknown)."""

    __slots__ = ()

    def __str__(self) -> str:
        name = display_path(self.file)
        if self.line:
            return f"{name}:{self.line}:{self.col or 1}"
        return name


def display_path(path: os.PathLike[str] | str) -> str:
    """A path as the user should read it: relative to the working folder when below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


class RecipeError(Exception):
    """An error for the user: what is wrong, how to fix it, and where (when known).

    Rendered as one line: ``file:line:col: what; fix``.
    """

    def __init__(self, what: str, fix: str | None = None, *, pos: Pos | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.fix = fix
        self.pos = pos
        # Verbatim text shown before the line (a compiler's diagnostics), or None.
        self.detail: str | None = None

    def render(self) -> str:
        text = self.what if not self.fix else f"{self.what}; {self.fix}"
        return f"{self.pos}: {text}" if self.pos else text


class UsageError(RecipeError):
    """The command line asks for something that cannot be (unknown project, target, option)."""


class Failure(RecipeError):
    """Not a wrong input but work that failed: a compile error, a case that did not match.

    The command line maps these to exit code 1 and every other ``RecipeError`` to 2.
    """


class Terminated(BaseException):
    """SIGTERM or SIGHUP came while recipe had a submission running; it was stopped (with all it
    started). Like KeyboardInterrupt, not an Exception: nothing on the way may take it for an
    error to report and go on. The command exits 128 + ``signum``, as a shell says."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
