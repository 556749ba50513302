"""What a runner is, apart from the choice of one (``engine.verify.runners``), so that the
modules of each kind can build them without importing the module that imports them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import RecipeError
from engine.verify.outcome import Observed


class RunnerMissing(RecipeError):
    """A runner the target names is not installed (a wrong input: exit 2)."""


@dataclass(frozen=True)
class Runner:
    name: str  # what reports show, e.g. "qemu-aarch64"
    prefix: tuple[str, ...]  # the command before the program and its arguments
    factor: float = 1.0  # a case's timeout is multiplied by it
    env: dict[str, str] = field(default_factory=dict)
    writable: tuple[Path, ...] = ()  # folders it writes besides the case's scratch folder
    clean: Callable[[Observed], Observed] | None = None  # its own words removed
    prepare: Callable[[], None] | None = None  # once, before its first case

    def wrap(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *argv]


@dataclass(frozen=True)
class NoRunner:
    """Nothing here runs the target: its cases are not run."""

    reason: str  # e.g. "no runner for aarch64-macos (nothing runs macOS programs here)"
    declared: bool = False  # the target says runner: none: the exit code ignores its cases
