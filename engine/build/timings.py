"""How long each action's tool took when it last ran: which tool of a wave to start first.

A wave's actions are independent, and the wave ends when its last tool does: started in the
plan's order, a long compile that comes last leaves the other cores idle while it runs (make's
order). Started longest first (LPT; ninja's critical-path scheduler was proposed with its
build log's durations as weights), the tools that end the wave are the short ones. The
durations are kept per derivation (its name without the hash: the same project, version and
target from one edit to the next) in a cache of the store's state,
``state/caches/timings/<name>.json``:

    {"format": 1, "seconds": {"compile src/a.c": 0.081, "link app": 0.024}}

They only choose an order of tools that read nothing of one another: no output, log or key
depends on them, and a file that is missing, damaged or written by two builds at once costs
only the order (an action with no record goes first, in the plan's order, as all do in a
first build). A build that ran a tool writes the file when a duration changed by a fifth or
more.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from engine import user_cache
from engine.derive.actions import Action
from engine.store import Store
from engine.store.names import label_of

FORMAT = 1
#: The weight of a new measurement against the recorded one: one slow run (a busy machine)
#: moves a unit's place only half way.
NEW = 0.5
#: The relative change of a recorded duration worth writing the file again for.
CHANGE = 0.2


def name(action: Action) -> str:
    """An action's entry: its kind and label (a compile's source, a link's output)."""
    return f"{action.kind} {action.label}"


class Timings:
    """The recorded durations of one derivation's tools, read when first asked, and the ones
    measured by this build."""

    def __init__(self, store: Store, drv_name: str) -> None:
        self._store, self._drv_name = store, drv_name
        self._recorded: dict[str, float] | None = None
        self._measured: dict[str, float] = {}
        self._lock = threading.Lock()

    def priority(self, action: Action) -> float:
        """Smaller first: the longest recorded tool, and before all an action with no record."""
        seconds = self._read().get(name(action))
        return -math.inf if seconds is None else -seconds

    def measured(self, action: Action, seconds: float) -> None:
        """This build's tool for ``action`` took ``seconds``."""
        with self._lock:
            self._measured[name(action)] = seconds

    def save(self, actions: list[Action]) -> None:
        """Record what was measured, for the actions of the derivation (entries of actions it
        no longer has are dropped); not when that would change no entry by more than
        ``CHANGE``: the order those durations give is the same, and a file not written costs
        a one-file edit nothing (a create and a rename cost up to a millisecond on a busy file
        system)."""
        if self._measured:
            self._write([name(a) for a in actions])

    def _write(self, names: list[str]) -> None:
        old = self._read()
        with self._lock:
            measured = dict(self._measured)
        seconds = {}
        for entry in names:
            if entry in measured:
                now = measured[entry]
                before = old.get(entry)
                seconds[entry] = round(now if before is None else before + NEW * (now - before),
                                       4)
            elif entry in old:
                seconds[entry] = old[entry]
        if seconds.keys() == old.keys() and all(
                abs(value - old[entry]) <= CHANGE * old[entry] for entry, value in seconds.items()):
            return
        path = self._path()
        if path is not None:
            user_cache.write_json(path, {"format": FORMAT, "seconds": seconds})

    def _read(self) -> dict[str, float]:
        if self._recorded is None:
            self._recorded = _load(self._path())
        return self._recorded

    def _path(self) -> Any:
        try:
            folder = self._store.state_folder("timings")
        except OSError:
            return None  # a read-only store: no order to keep
        return folder / f"{label_of(self._drv_name)}.json"


def _load(path: Any) -> dict[str, float]:
    if path is None:
        return {}
    try:
        with open(path, "rb") as f:
            import json  # here: a build that runs no tool reads no timings

            data = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    seconds = data.get("seconds") if isinstance(data, dict) and \
        data.get("format") == FORMAT else None
    if not isinstance(seconds, dict):
        return {}
    found = {}
    for entry, value in seconds.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer no float holds: a damaged file
                continue
            if math.isfinite(value) and value >= 0:
                found[entry] = value
    return found
