"""The content-addressed store: paths, blobs, actions, database, locks, collection.

It knows nothing of documents, projects or compilers, and imports nothing from ``engine``
but ``engine.errors``.
"""

from engine.store.base32 import nix_base32
from engine.store.errors import BlobError, StoreError
from engine.store.nar import tree_hash
from engine.store.records import Damage, GcReport, PathInfo
from engine.store.store import Store

__all__ = ["BlobError", "Damage", "GcReport", "PathInfo", "Store", "StoreError", "nix_base32",
           "tree_hash"]
