"""The interactive part of ``recipe repl`` that prints nothing: reading a submission (a
trailing ``\\`` continues it on the next line), the ``%`` commands, and the history file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

PROMPT, CONTINUE = "recipe> ", "   ...> "
HISTORY_LENGTH = 1000

HELP = """\
Type C or C++ statements; each submission is compiled in the project's scope and run in a
block inside main(). End a line with \\ to continue the submission on the next line.
State that must outlive a submission goes to files below $RECIPE_WORKS (getenv("RECIPE_WORKS")).
  %help    this text
  %quit    leave (so does Ctrl-D)
Ctrl-C stops a running submission and returns to the prompt."""

COMMANDS = ("%help", "%quit")


def read_submission(read: Callable[[str], str]) -> str:
    """One submission from ``read(prompt)`` (``input``); EOFError at the end of input."""
    lines: list[str] = []
    prompt = PROMPT
    while True:
        line = read(prompt)
        if line.endswith("\\"):
            lines.append(line[:-1])
            prompt = CONTINUE
            continue
        lines.append(line)
        return "\n".join(lines)


def command(text: str) -> str | None:
    """The ``%`` command a submission is (``%help``, ``%quit``, or an unknown one), else None."""
    stripped = text.strip()
    return stripped if stripped.startswith("%") else None


class History:
    """readline's history, read from and written to ``file`` (when readline is there)."""

    def __init__(self, file: Path) -> None:
        self.file = file
        try:
            import readline
        except ImportError:  # no line editing: input() still works
            self.readline = None
            return
        self.readline = readline
        readline.set_history_length(HISTORY_LENGTH)
        try:
            readline.read_history_file(file)
        except OSError:
            pass  # none yet, or unreadable: start empty

    def save(self) -> None:
        if self.readline is None:
            return
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(self.file)
        except OSError:
            pass  # the history is a convenience: never fail a session for it
