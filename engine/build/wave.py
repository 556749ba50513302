"""A derivation's waves of actions: their order, the actions a file needs, how many tools run at
once, and, when some fail
or an error cuts a wave short, what stops the rest, what the failures say, and that nothing still
runs when the build folder goes."""

from __future__ import annotations

import queue
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


class Tools:
    """At most ``jobs`` tools at once over every derivation built together (make's ``-j``).
    The builds' pool has more threads than that: a thread finishing an action (hashing its
    outputs into the CAS, recording its result) holds no slot, so the next tool starts as
    soon as one ends."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        # A queue of slots: taking and giving one back is C (a semaphore is a Python
        # condition: its own lock and a waiter lock made per wait, for every tool)
        self._free: queue.SimpleQueue[None] = queue.SimpleQueue()
        for _ in range(jobs):
            self._free.put(None)

    def __enter__(self) -> None:
        self._free.get()

    def __exit__(self, *_exc: object) -> None:
        self._free.put(None)


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


def order(actions: list[Action], producers: dict[str, Action]) -> list[list[int]]:
    """Actions (by index) grouped so that each reads only what earlier groups made: compiles,
    then archives and links (for Rust: the rlib, then what uses it). Actions come producers
    first, so one pass finds each one's depth."""
    index = {id(a): i for i, a in enumerate(actions)}
    depth: list[int] = []
    for action in actions:
        made_by = [index[id(producers[p])] for p in action.inputs if p in producers]
        depth.append(1 + max((depth[i] for i in made_by), default=-1))
    return [[i for i, d in enumerate(depth) if d == level]
            for level in range(max(depth, default=-1) + 1)]


def making(actions: list[Action], producers: dict[str, Action], files: list[str]) -> set[int]:
    """The actions (by index) that make ``files``, those that make their inputs, and so on."""
    index = {id(a): i for i, a in enumerate(actions)}
    needed: set[int] = set()
    todo = [producers[f] for f in files if f in producers]
    while todo:
        action = todo.pop()
        if index[id(action)] not in needed:
            needed.add(index[id(action)])
            todo.extend(producers[p] for p in action.inputs if p in producers)
    return needed
