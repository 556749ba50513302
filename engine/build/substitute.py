"""Substitution: a missing derivation's path taken whole from a cache that holds it (Nix's
substituters) instead of being built. Under the derivation's lock, into a temporary folder on the
store's file system; the store registers it only if its content hash is the one the cache gave
with it, and only with the references the derivation allows. The derivation's declared inputs go
into the CAS as a build would put them (a valid path keeps its sources, for ``--repair``).
Anything wrong is a plain "no": the derivation is built.
"""

from __future__ import annotations

import shutil

from engine.build.actions import Buildable
from engine.build.cache import LocalCache, PathCache
from engine.errors import RecipeError
from engine.store import Store


def substitute(store: Store, drv: Buildable, cache: PathCache) -> bool:
    """Whether ``drv``'s path is now valid, fetched from ``cache``; the caller holds its lock."""
    if type(cache) is LocalCache:  # the store's own holds no path: no folder to make and remove
        return False
    folder = store.temp_dir(f"substitute-{drv.name[:8]}")
    try:
        fetched = cache.fetch_path(drv.name, folder / "out")
        if fetched is None or not set(fetched.references) <= \
                {drv.name, *drv.data["depends"].values()}:
            return False
        sources = _keep_sources(store, drv)
        if sources is None:
            return False
        store.register(drv.name, folder / "out", drv.fingerprint, fetched.references,
                       log=f"# substituted from {fetched.origin}\n".encode(), blobs=sources,
                       expected=fetched.nar_hash)
        return True
    except (RecipeError, OSError):
        return False
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _keep_sources(store: Store, drv: Buildable) -> list[str] | None:
    """The digests of the declared inputs, each put in the CAS from the checkout if it is not
    there; None when one cannot be (a recorded derivation, or a source changed since it was
    hashed)."""
    digests = []
    for rel, digest in drv.data["inputs"].items():
        hex_digest = digest.removeprefix("sha256:")
        digests.append(hex_digest)
        if store.has_blob(hex_digest):
            continue
        if drv.sources is None or store.put_file(drv.sources / rel) != hex_digest:
            return None
    return digests
