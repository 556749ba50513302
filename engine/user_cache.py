"""The user's cache folder, shared by every checkout and store of one user:
``$XDG_CACHE_HOME/recipe`` (default ``~/.cache/recipe``). It holds only what a fresh clone would
otherwise compute again and can always compute again — toolchain identities (validated by each
program's stat data), the digests of documents that passed their schema — so losing it, or not
being able to write it, costs only time. Importable from every layer (it imports nothing of
recipe)."""

from __future__ import annotations

import os
from pathlib import Path


def folder() -> Path | None:
    """``$XDG_CACHE_HOME/recipe`` or ``~/.cache/recipe``; None without a home folder."""
    base = os.environ.get("XDG_CACHE_HOME") or \
        (os.path.join(os.environ["HOME"], ".cache") if os.environ.get("HOME") else "")
    return Path(base, "recipe") if os.path.isabs(base) else None


def file(name: str) -> list[Path]:
    """``[folder()/name]``, or ``[]`` without a home folder."""
    where = folder()
    return [where / name] if where is not None else []


def write_json(path: Path, data: object) -> None:
    """``data`` as JSON, by ``write_cache``."""
    import json  # here: a no-op realise reads caches (engine.memo) and imports no json

    write_cache(path, json.dumps(data, sort_keys=True).encode())


def write_cache(path: Path, data: bytes) -> bool:
    """Put a cache file (here or anywhere: the checkout's caches too) at ``path``: written to
    a temporary name and renamed, so concurrent runs never read half a file, the last writer
    winning; one that cannot be written only costs time (False). The old file is removed
    first: renamed over it, the new one would be flushed to disk before the rename returned
    (ext4's auto_da_alloc, ~0.4 ms); a reader in between finds no cache, which costs time."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        path.unlink(missing_ok=True)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True
