"""The two hashing primitives every layer shares: canonical JSON and file digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def canonical(data: Any) -> str:
    """JSON with sorted keys and no insignificant whitespace: the form that gets hashed."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_hash(data: Any) -> str:
    """Hex sha256 of the canonical JSON of ``data``."""
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def file_digest(path: Path | str) -> str:
    """``sha256:<hex>`` of a file's content, read in chunks."""
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()
