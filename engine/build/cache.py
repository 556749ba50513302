"""What the builder needs of an action cache: the store itself (its action cache and CAS), or
anything that puts another level behind the same methods (``engine.remote.combined``). The
builder calls only these, so it never knows where a hit came from."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class ActionCache(Protocol):
    def get_action(self, key: str) -> dict[str, Any] | None:
        """The result recorded for ``key``, or None (a miss)."""

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        """Record a result whose outputs' blobs are in the store's CAS."""

    def copy_blob(self, digest: str, dest: Path, executable: bool = False) -> None:
        """Copy a checked blob to ``dest``; ``BlobError`` when it is missing or damaged."""
