"""What a runner is, apart from the choice of one (``engine.verify.runners``), so that the
modules of each kind can build them without importing the module that imports them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RecipeError
from engine.verify.outcome import Observed


class RunnerMissing(RecipeError):
    """A runner the target names is not installed (a wrong input: exit 2)."""


@dataclass(frozen=True)
class Runner:
    """How a program built for another machine runs here."""

    name: str  # what reports show, e.g. "qemu-aarch64"
    prefix: tuple[str, ...]  # the command before the program and its arguments
    factor: float = 1.0  # a case's timeout is multiplied by it
    env: dict[str, str] = field(default_factory=dict)
    writable: tuple[Path, ...] = ()  # folders it writes besides the case's scratch folder
    clean: Callable[[Observed], Observed] | None = None  # its own words removed
    prepare: Callable[[], None] | None = None  # once, before its first case
    # A command that sets up the process's namespaces (qemu's private binfmt_misc), restricts
    # it to the folders it may write (given after it as --write DIR), then runs the rest.
    namespace: tuple[str, ...] = ()
    argv0: str | None = None  # its option naming the program's argv[0] (qemu's -0)

    def wrap(self, argv: list[str], writable: Sequence[Path] | None = None,
             name: str | None = None) -> list[str]:
        """The runner's command for ``argv``, the program's path first. ``name``: the
        program's argv[0] (as natively: its name, not its store path), where the runner can
        say it. With ``writable``, through its namespace command, which then restricts writes
        itself (the caller must not: see ``confines``)."""
        named = [self.argv0, name] if self.argv0 and name else []
        command = [*self.prefix, *named, *argv]
        if not self.namespace or writable is None:
            return command
        return [*self.namespace, *(a for w in writable for a in ("--write", str(w))), "--",
                *command]

    @property
    def confines(self) -> bool:
        """Its namespace command applies the write restriction (after mounting, which a
        restricted process may not do): the caller starts it unrestricted."""
        return bool(self.namespace)


@dataclass(frozen=True)
class NoRunner:
    """Nothing here runs the target: its cases are not run."""

    reason: str  # e.g. "no runner for aarch64-macos (nothing runs macOS programs here)"
    declared: bool = False  # the target says runner: none: the exit code ignores its cases
