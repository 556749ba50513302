"""Substitution: a missing derivation's path taken whole from a cache that holds it (Nix's
substituters) instead of being built. Under the derivation's lock, into a temporary folder on the
store's file system; the store registers it only if its content hash is the one the cache gave
with it, and only with the references the derivation allows. The derivation's declared inputs go
into the CAS as a build would put them (a valid path keeps its sources, for ``--repair``), on
``KEEPERS`` threads started before the fetch: the copies wait on the disk (creating a file costs
far more than writing it), the fetch on the network and the CPU (protobuf's import, the
requests, the NAR hash), so each hides the other. Anything wrong is a plain "no": the derivation
is built, and finds its sources in the CAS already (it links them from there, checked, as it
does any source whose blob is there; it would have copied them in itself).
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from engine.build.actions import Buildable
from engine.build.cache import LocalCache, PathCache
from engine.errors import RecipeError
from engine.store import Store

KEEPERS = 4  # threads copying a derivation's sources into the CAS
WHOLE = 1 << 20  # a source up to this size is read whole, not streamed


def substitute(store: Store, drv: Buildable, cache: PathCache) -> bool:
    """Whether ``drv``'s path is now valid, fetched from ``cache``; the caller holds its lock."""
    if type(cache) is LocalCache:  # the store's own holds no path: no folder to make and remove
        return False
    folder = store.temp_dir(f"substitute-{drv.name[:8]}")
    keepers = ThreadPoolExecutor(KEEPERS, thread_name_prefix="keep")
    try:
        keeping = _keep_sources(store, drv, keepers)
        if keeping is None:
            return False
        fetched = cache.fetch_path(drv.name, folder / "out")
        if fetched is None or not set(fetched.references) <= \
                {drv.name, *drv.data["depends"].values()}:
            return False
        if not all(future.result() for future in keeping):
            return False
        store.register(drv.name, folder / "out", drv.fingerprint, fetched.references,
                       log=f"# substituted from {fetched.origin}\n".encode(),
                       blobs=[d.removeprefix("sha256:") for d in drv.data["inputs"].values()],
                       expected=fetched.nar_hash)
        return True
    except (RecipeError, OSError):
        return False
    finally:
        keepers.shutdown(wait=True)  # nothing writes into the store once this returns
        shutil.rmtree(folder, ignore_errors=True)


def _keep_sources(store: Store, drv: Buildable, keepers: ThreadPoolExecutor
                  ) -> list[Future[bool]] | None:
    """The copies from the checkout into the CAS of the declared inputs not there yet, started
    on ``keepers`` (each answers whether its sources still have the digests the derivation
    has); None for a recorded derivation that misses one (its sources are nowhere else)."""
    missing = [(rel, digest.removeprefix("sha256:")) for rel, digest in drv.data["inputs"].items()
               if not store.has_blob(digest.removeprefix("sha256:"))]
    if missing and drv.sources is None:
        return None
    sources = drv.sources
    return [keepers.submit(_keep, store, missing[i::KEEPERS], sources) for i in range(KEEPERS)
            if missing[i::KEEPERS]]


def _keep(store: Store, files: list[tuple[str, str]], sources: Path) -> bool:
    """Copy ``files`` (relative path, digest) into the CAS, one after the other: one task a
    thread, not one a file (less of the GIL taken from the fetch beside them). A source is
    read once and its bytes checked as they are stored (a large one is streamed instead)."""
    for rel, digest in files:
        path = sources / rel
        if os.path.getsize(path) > WHOLE:
            if store.put_file(path) != digest:
                return False
        elif store.put_blob(path.read_bytes()) != digest:
            return False  # changed since it was derived: the build says so
    return True
