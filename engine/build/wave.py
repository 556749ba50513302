"""A derivation's wave of actions, when some fail or an error cuts it short: what stops the
rest, what the failures say, and that nothing still runs when the build folder goes."""

from __future__ import annotations

import re
from concurrent.futures import Future, wait
from pathlib import Path

from engine.build.actions import ActionFailed, ActionRun, Buildable
from engine.derive.actions import Action
from engine.errors import Failure

MISSING_INCLUDE = re.compile(r"^(\S+?):\d+:\d+: fatal error: (\S+?): No such file or directory",
                             re.MULTILINE)


class StopFlag:
    """Set when an action fails: no new action starts unless the build keeps going."""

    def __init__(self, keep_going: bool) -> None:
        self.keep_going = keep_going
        self._stopped = False

    def failed(self) -> None:
        if not self.keep_going:
            self._stopped = True

    def is_set(self) -> bool:
        return self._stopped


class Many(ActionFailed):
    """Several actions of one derivation failed; their outputs are shown one after another."""

    def __init__(self, failures: list[Failure]) -> None:
        first = failures[0]
        detail = "\n".join(f.detail for f in failures if f.detail)
        super().__init__(f"{first.what} (and {len(failures) - 1} more)", detail, first.fix)


def settle(done: list[tuple[Action, ActionRun | Future[ActionRun]]]) -> None:
    """Before an error leaves a wave: its actions not started never start, and those running
    end first (the build folder they write in is removed next)."""
    running = [r for _, r in done if isinstance(r, Future) and not r.cancel()]
    wait(running)


def explain(drv: Buildable, action: Action, error: ActionFailed) -> ActionFailed:
    """A missing include that exists in the project but was not declared gets a fix."""
    match = MISSING_INCLUDE.search(error.detail)
    project = getattr(drv, "project", None)  # a recorded derivation has no documents
    if match and action.kind == "compile" and project is not None:
        name = match.group(2)
        hits = sorted(p.relative_to(project.dir).as_posix()
                      for p in project.dir.rglob(Path(name).name)
                      if p.as_posix().endswith(name))
        if hits:
            error.what = (f"{project.name}: {match.group(1)} includes '{name}', which the "
                          f"project does not declare ({hits[0]} is not in headers:)")
            error.fix = f"add {hits[0]} to headers: in {project.file.name}"
    return error
