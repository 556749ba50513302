"""Verification of a store path against the manifest recorded when it was registered."""

from __future__ import annotations

import os
from pathlib import Path

from engine.store.nar import Entry, scan
from engine.store.records import Damage


def check_path(name: str, path: Path, nar_hash: str, recorded: list[Entry]) -> list[Damage]:
    """How the tree at ``path`` differs from what was registered; empty when it does not."""
    if not os.path.lexists(path):
        return [Damage(name, "", "missing path")]
    now = scan(path, strict=False)
    was = {entry.file: entry for entry in recorded}
    found = {entry.file: entry for entry in now.entries}
    damage = []
    for file in sorted(was.keys() | found.keys()):
        old, new = was.get(file), found.get(file)
        if old is None or new is None:
            # Name only the top of a missing or extra subtree, not every file below it.
            parent = file.rpartition("/")[0]
            if parent in was and parent in found:
                damage.append(Damage(name, file, "missing" if new is None else "extra"))
        elif old.type != new.type:
            damage.append(Damage(name, file, "type"))
        elif new.type == "regular" and not new.sha256:
            damage.append(Damage(name, file, "unreadable"))
        elif (old.sha256, old.target) != (new.sha256, new.target):
            damage.append(Damage(name, file, "modified"))
        elif old.mode != new.mode:
            damage.append(Damage(name, file, "mode"))
    if not damage and now.nar_hash != nar_hash:
        # The manifest and the hash were taken in one pass: this is a damaged database row.
        damage.append(Damage(name, "", "modified"))
    return damage
