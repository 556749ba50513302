"""Which dependencies a build's output tree refers to (Nix's reference scanning): a
dependency's store path name found in the bytes of an output. A shared library found through
an rpath is a run-time reference; a static one is not (its name is not in the output).

An output an action has just made is final (the path registers those very bytes), so the
builder scans it at once, on the action pool, while later actions run (``scan_file``), and
the scan of the tree at the end reads only the files not scanned yet (``scan_tree``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path


def scan_file(file: Path, candidates: list[str]) -> set[str]:
    """The candidates whose name is in ``file``."""
    data = file.read_bytes()
    return {c for c in candidates if c.encode() in data}


def scan_tree(tree: Path, candidates: list[str],
              scanned: Mapping[str, Future[set[str]]] | None = None) -> list[str]:
    """The candidates found in the files below ``tree``; ``scanned``: the files (by path
    relative to the tree's parent: ``out/...``) already being scanned, whose results are
    taken instead of reading them again."""
    if not candidates:
        return []
    scanned = scanned or {}
    found: set[str] = set()
    for root, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(root, name)
            rel = f"{tree.name}/{path.relative_to(tree).as_posix()}"
            found.update(scanned[rel].result() if rel in scanned else
                         scan_file(path, candidates))
    return sorted(found)
