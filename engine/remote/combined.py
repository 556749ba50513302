"""Two levels behind one interface (Bazel's ``CombinedCache``): the store's own action cache and
CAS first, then the shared remote. The builder, the outcome cache and the REPL's runner cache call
the same methods they call on a ``Store``, and never learn where a hit came from.

- ``get_action``: the local entry, else the remote one (decoded and checked, see
  ``engine.remote.results``), which is then written to the local action cache as Bazel writes
  remote hits to its disk cache. Its outputs are not fetched: a blob is downloaded only when the
  builder copies it out (``copy_blob``) or a case's outcome is read (``read_blob``).
- ``copy_blob``/``read_blob``: the local blob, else the remote one, checked against its sha256
  and put in the local CAS first. A blob the remote does not have or that does not match is the
  local ``BlobError``: the builder runs the action that makes it again.
- ``put_action``: the local entry; with upload on, then, in the background, the result's blobs
  (``HEAD`` first, ``PUT`` only those missing) and the action-cache entry last, so that no reader
  ever sees a result whose blobs are not there. ``close`` waits for the uploads.
- ``fetch_path``/``offer_path``: whole store paths (``engine.remote.paths``), fetched for
  ``engine.build.substitute`` and, with upload on, shared in the background once built.
- ``has_outputs``: the local blobs, else a ``HEAD`` on the remote for each missing one.
- Everything else (``has_blob``, ``put_blob``, ``put_file``, ``attach``) is local.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from engine.build.cache import Fetched
from engine.remote import paths
from engine.remote.http import HttpCache
from engine.remote.results import decode, encode
from engine.store import BlobError, Store, StoreError


class CombinedCache:
    def __init__(self, store: Store, remote: HttpCache, upload: bool = False,
                 uploaders: int = 4, executor: Any = None) -> None:
        self.store, self.remote = store, remote
        #: runs missed actions elsewhere (engine.executors.dask), or None: here
        self.executor = executor
        self._uploads = ThreadPoolExecutor(uploaders, thread_name_prefix="upload") \
            if upload else None
        self._pending: list[Future[None]] = []
        self._there: set[str] = set()  # blobs known to be on the remote
        self._lock = threading.Lock()

    # -- action results -------------------------------------------------------------------------

    def get_action(self, key: str) -> dict[str, Any] | None:
        local = self.store.get_action(key)
        if local is not None:
            return local
        data = self.remote.get_entry(key)
        if data is None:
            return None
        result = decode(data, self.remote.get_blob)
        if result is None:
            self.remote.failed(f"action-cache entry {key[:16]}… is not a result recipe can use "
                               "(treated as a miss)")
            return None
        try:
            self.store.put_action(key, result)
        except StoreError:
            pass  # a full or read-only store: the hit still serves this run
        return result

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        self.store.put_action(key, result)
        self._share(key, lambda: encode(result, self.store.read_blob))

    def _share(self, key: str, describe: Any) -> None:
        if self._uploads is not None and not self.remote.down:
            future = self._uploads.submit(self._upload, key, describe)
            with self._lock:
                self._pending.append(future)

    def _upload(self, key: str, describe: Any) -> None:
        try:
            entry, blobs = describe()
        except (BlobError, StoreError, OSError):
            return  # an output collected meanwhile: nothing to share
        for digest, data in blobs.items():
            with self._lock:
                if digest in self._there:
                    continue
            if not self.remote.has_blob(digest) and not self.remote.put_blob(digest, data):
                return  # never an entry whose blobs are not all there
            with self._lock:
                self._there.add(digest)
        self.remote.put_entry(key, entry)

    # -- blobs ----------------------------------------------------------------------------------

    def has_outputs(self, digests: list[str]) -> bool:
        """Local blobs, else on the remote (a ``HEAD`` each): a compile's candidate whose
        objects were collected here but are shared is a hit, downloaded when read."""
        return all(self.store.has_blob(d) or self.remote.has_blob(d) for d in digests)

    def copy_blob(self, digest: str, dest: Path | str, executable: bool = False) -> None:
        try:
            self.store.copy_blob(digest, dest, executable)
        except BlobError:
            if not self._download(digest):
                raise
            self.store.copy_blob(digest, dest, executable)

    def link_blob(self, digest: str, dest: Path | str) -> None:
        try:
            self.store.link_blob(digest, dest)
        except BlobError:
            if not self._download(digest):
                raise
            self.store.link_blob(digest, dest)

    def read_blob(self, digest: str) -> bytes:
        try:
            return self.store.read_blob(digest)
        except BlobError:
            if not self._download(digest):
                raise
            return self.store.read_blob(digest)

    def _download(self, digest: str) -> bool:
        data = self.remote.get_blob(digest)  # checked against its digest
        if data is None:
            return False
        self.store.put_blob(data)
        return True

    def execute(self, drv: Any, action: Any, staging: Path, digests: dict[str, str],
                key: str) -> dict[str, Any] | None:
        if self.executor is None:
            return None
        return self.executor.execute(drv, action, digests, key)

    # -- whole store paths ----------------------------------------------------------------------

    def fetch_path(self, name: str, into: Path) -> Fetched | None:
        return paths.fetch(self.remote, name, into)

    def offer_path(self, name: str) -> None:
        self._share(paths.path_key(name), lambda: paths.describe(self.store, name))

    def has_blob(self, digest: str) -> bool:
        return self.store.has_blob(digest)

    def put_blob(self, data: bytes) -> str:
        return self.store.put_blob(data)

    def put_file(self, path: Path) -> str:
        return self.store.put_file(path)

    def attach(self, name: str, actions: list[str]) -> None:
        self.store.attach(name, actions=actions)

    def flush(self) -> None:
        """Wait for the uploads started so far."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        """Wait for the uploads still running, then close the connections."""
        if self.executor is not None:
            self.executor.close()
        if self._uploads is not None:
            self._uploads.shutdown(wait=True)
        self.remote.close()
