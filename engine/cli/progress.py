"""Build progress on stderr: a live status line on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:  # annotations only: a no-op run should not import what it does not use
    from engine.derive.actions import Action
    from engine.derive.derivation import Derivation


class Progress:
    """Observes a build. On a terminal one line is redrawn (done, running, the latest action);
    elsewhere one line per derivation built, so logs stay readable."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and not quiet
        self.quiet = quiet
        self.lock = threading.Lock()
        self.done = self.cached = 0
        self.running: dict[int, str] = {}
        self.last_draw = 0.0

    def action_started(self, drv: Derivation, action: Action) -> None:
        with self.lock:
            self.running[id(action)] = f"{action.kind} {drv.title}: {action.label}"
            self._draw()

    def action_finished(self, drv: Derivation, action: Action, cached: bool) -> None:
        with self.lock:
            self.running.pop(id(action), None)
            self.done += 1
            self.cached += cached
            self._draw()

    def derivation_started(self, drv: Derivation) -> None:
        if not self.live and not self.quiet:
            with self.lock:
                print(f"building {drv.name}", file=self.stream, flush=True)

    def derivation_finished(self, drv: Derivation, built: bool) -> None:
        pass

    def close(self) -> None:
        if self.live and self.last_draw:  # nothing drawn, nothing to clear
            with self.lock:
                self.stream.write("\r\x1b[K")
                self.stream.flush()

    def _draw(self) -> None:
        if not self.live:
            return
        now = time.monotonic()
        if now - self.last_draw < 0.05 and self.running:
            return  # redrawing for every action would cost more than the actions
        self.last_draw = now
        latest = next(reversed(self.running.values()), "")
        line = f"[{self.done} done, {self.cached} cached, {len(self.running)} running] {latest}"
        self.stream.write("\r\x1b[K" + line[:160])
        self.stream.flush()
