"""Temporary roots: what a running process uses or is about to register (Nix's temproots).

Each process appends lines ``path <name>``, ``action <key>`` or ``blob <hex>`` to
``tmp/<pid>.roots``, a file owned like every temporary entry (see ``locks.own_temp``): it lives
as long as the process and is removed by the first ``clean`` after the process is gone. A
collection reads every such file and keeps what they name.

The protocol that makes a path safe to use: add its temporary root while holding ``gc.lock``
shared, and only then check that it is valid. A collection holds ``gc.lock`` exclusively from
reading the roots to its last deletion, so a root added before it started is seen, and one added
after it finished protects a path that is then either still valid or built anew. Action-cache
items need no lock: a collection never deletes an entry written after it started.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

from engine.store import locks

KINDS = ("path", "action", "blob")


class TempRoots:
    """This process's temporary roots in the store state folder ``state``."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self._fd: int | None = None
        self._added: set[str] = set()
        self._guard = threading.Lock()

    def add(self, kind: str, items: Iterable[str]) -> None:
        assert kind in KINDS
        lines = []
        with self._guard:
            for item in items:
                line = f"{kind} {item}\n"
                if line not in self._added:
                    self._added.add(line)
                    lines.append(line)
            if not lines:
                return
            if self._fd is None:
                prefix = locks.own_temp(self.tmp)
                self._fd = os.open(self.tmp / f"{prefix[:-1]}.roots",
                                   os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
            # One write per batch: O_APPEND keeps a reader from seeing lines interleaved.
            os.write(self._fd, "".join(lines).encode())

    def close(self) -> None:
        with self._guard:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


def read_all(tmp: Path) -> dict[str, set[str]]:
    """Every temporary root of every process, by kind (a dead process's are harmless extras)."""
    found: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for name in os.listdir(tmp):
        if not name.endswith(".roots"):
            continue
        try:
            text = (tmp / name).read_text(errors="replace")
        except FileNotFoundError:
            continue  # its owner's cleaner removed it meanwhile
        for line in text.splitlines():
            kind, _, item = line.partition(" ")
            if kind in found and item:
                found[kind].add(item)
    return found
