"""The plain records the store hands out."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PathInfo:
    """A valid store path as the database records it. ``size`` is the length of the tree's
    canonical serialisation (Nix's narSize); ``references`` are names, sorted."""

    name: str
    derivation: str
    nar_hash: str
    size: int
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class Damage:
    """One way a valid path differs from what was registered. ``file`` is relative to the path
    ("" for the path itself); ``problem`` is one of ``missing path``, ``missing``, ``extra``,
    ``modified``, ``type``, ``mode``, ``unreadable``."""

    name: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.name}/{self.file}: {self.problem}" if self.file else \
            f"{self.name}: {self.problem}"


@dataclass
class GcReport:
    """What a collection deleted (or would delete): path names in deletion order and the bytes
    they held; then action-cache entries and blobs, and the bytes they held."""

    deleted: list[str] = field(default_factory=list)
    freed: int = 0
    actions: int = 0
    blobs: int = 0
    cache_freed: int = 0
