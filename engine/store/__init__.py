"""The content-addressed store: paths, blobs, actions, database, locks, collection.

It knows nothing of documents, projects or compilers, and imports nothing from ``engine``
but ``engine.errors`` and ``engine.faults``. The names below are imported on first use, so
that a module of the store (``engine.store.peek``) can be used without loading the rest.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "BlobError": "engine.store.errors",
    "Damage": "engine.store.records",
    "GcReport": "engine.store.records",
    "PathInfo": "engine.store.records",
    "Store": "engine.store.store",
    "StoreError": "engine.store.errors",
    "nix_base32": "engine.store.base32",
    "tree_hash": "engine.store.nar",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module 'engine.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
