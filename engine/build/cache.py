"""What the builder needs of an action cache: the store itself (its action cache and CAS), or
anything that puts another level behind the same methods (``engine.remote.combined``). The
builder and ``realise`` call only these, so they never know where a hit came from.

A cache may also run a missed action elsewhere (``execute``: REAPI's Execute, which the
remote-execution services of Bazel put beside their action cache): it returns the result as a
hit would, with the outputs in the cache, or None to have it run here.

Beside action results, a cache may hold whole store paths (Nix's substituters): ``fetch_path``
writes a path's tree, checked against the content hash it comes with, and ``offer_path`` shares
one that was just built. The store's own cache has none to give and shares nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple, Protocol

from engine.store import Store


class Fetched(NamedTuple):
    """A store path's tree written by ``fetch_path``: what the store must find when it
    registers it (its NAR hash), what it refers to, and where it came from (for its log)."""

    nar_hash: str
    references: tuple[str, ...]
    origin: str


class ActionCache(Protocol):
    def get_action(self, key: str) -> dict[str, Any] | None:
        """The result recorded for ``key``, or None (a miss)."""

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        """Record a result whose outputs' blobs are in the store's CAS."""

    def has_outputs(self, digests: list[str]) -> bool:
        """Whether every blob named can be had (the outputs of a compile's candidate, which
        the manifest holding it does not check): in the store's CAS, or behind it."""

    def copy_blob(self, digest: str, dest: Path | str, executable: bool = False) -> None:
        """Copy a checked blob to ``dest``; ``BlobError`` when it is missing or damaged."""

    def link_blob(self, digest: str, dest: Path | str) -> None:
        """Hard-link a checked, read-only blob at ``dest`` (for what only actions read);
        ``BlobError`` when it is missing or damaged."""

    def execute(self, drv: Any, action: Any, staging: Path, digests: dict[str, str],
                key: str) -> dict[str, Any] | None:
        """Run ``action`` (whose inputs are in place in ``staging``) elsewhere: ``{"digests":
        {output: blob digest}, "log": str, "keys": [action-cache keys]}``, or None."""


class PathCache(ActionCache, Protocol):
    def fetch_path(self, name: str, into: Path) -> Fetched | None:
        """Write the tree of store path ``name`` at ``into`` (a new folder), or None."""

    def offer_path(self, name: str) -> None:
        """Share the valid path ``name`` (or do nothing)."""


class LocalCache:
    """The store's own action cache and CAS, and no store paths beyond the store's."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get_action(self, key: str) -> dict[str, Any] | None:
        return self.store.get_action(key)

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        self.store.put_action(key, result)

    def has_outputs(self, digests: list[str]) -> bool:
        has = self.store.has_blob
        return all(has(digest) for digest in digests)

    def copy_blob(self, digest: str, dest: Path | str, executable: bool = False) -> None:
        self.store.copy_blob(digest, dest, executable)

    def link_blob(self, digest: str, dest: Path | str) -> None:
        self.store.link_blob(digest, dest)

    def execute(self, drv: Any, action: Any, staging: Path, digests: dict[str, str],
                key: str) -> dict[str, Any] | None:
        return None

    def fetch_path(self, name: str, into: Path) -> Fetched | None:
        return None

    def offer_path(self, name: str) -> None:
        pass
