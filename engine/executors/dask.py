"""Running missed actions on a Dask distributed cluster (``--executor dask://HOST:PORT``).

For an action the cache missed, the client makes a task (``engine.executors.worker``): the
derivation's canonical JSON, the action, and every file the action may read — the declared
inputs (``w/``), the outputs of earlier actions (``o/``), the dependencies' trees
(``d/<project>/``) — as staging paths with sha256 digests. Those blobs are put on the shared
cache first (``HEAD``, then ``PUT`` of the missing ones: an executor writes inputs to the CAS
even without ``--remote-upload``; only workers write action-cache entries). The task is
submitted under the key ``recipe-<action key>``, so identical actions in flight, from this
build or any other client of the scheduler, run once. The answer is the result a cache hit
gives: the outputs stay on the shared cache until the builder copies one out.

- A worker whose toolchain differs refuses; the task goes to the other workers (never back to
  one that refused a derivation with that toolchain); when none is left, it runs here.
- A worker lost mid-task: Dask runs the task again elsewhere (the staging is the worker's own
  and every upload is content-addressed, so a half-done attempt changes nothing).
- Any other failure of a task (a compile error, a blob the worker could not fetch): the action
  runs here, where its error shows in its own words.
- The scheduler unreachable or lost: one warning, and every action from then on runs here.

Only derivations of gcc-family toolchains go to workers (C, C++, and Rust, whose derivations
link with it: crate compiles and build scripts too; zig's run here); an action occupies one of
the build's ``-j`` threads while it runs on a worker, so ``-j`` sets how many run at once on
the cluster.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

from engine.hashing import canonical_hash
from engine.remote.config import RemoteConfig
from engine.remote.http import HttpCache
from engine.store import BlobError, Store
from engine.store.nar import scan

CONNECT_TIMEOUT = 10  # seconds to reach the scheduler


def gone_errors() -> tuple[type[BaseException], ...]:
    """What Dask raises when the scheduler, or the connection to it, is gone: a closed or
    refused connection (``CommClosedError`` is an ``OSError``), no answer in time, and the
    futures it cancels when it loses the scheduler. Anything else is a bug of recipe's, and
    must show as one rather than turn into a quiet local build."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    return (CommClosedError, OSError, TimeoutError, CancelledError)


class DaskExecutor:
    def __init__(self, address: str, store: Store, remote: HttpCache, config: RemoteConfig,
                 warn: Callable[[str], None]) -> None:
        self.address, self.store, self.remote, self.config = address, store, remote, config
        self._warn = warn
        self._lock = threading.Lock()
        self._client: Any = None
        self.down = False
        self._refused: dict[str, set[str]] = {}  # toolchain identity -> workers that refused
        self._there: set[str] = set()  # blobs known to be on the shared cache
        self._trees: dict[str, tuple[dict[str, list[Any]], dict[str, str]]] = {}

    def execute(self, drv: Any, action: Any, digests: dict[str, str],
                key: str) -> dict[str, Any] | None:
        if self.down or drv.data["toolchain"].get("family") != "gcc":
            return None
        client = self.connect()
        task = self._task(drv, action, digests) if client is not None else None
        if task is None:
            return None
        from distributed import KilledWorker

        from engine.executors.worker import Refused, TaskFailed, run_task

        refused = self._refused.setdefault(canonical_hash(drv.data["toolchain"]["digests"]),
                                           set())
        while not self.down:
            try:
                workers = sorted(set(client.scheduler_info()["workers"]) - refused)
                if not workers:
                    return None
                name = f"recipe-{key}" if not refused else f"recipe-{key}-{len(refused)}"
                future = client.submit(run_task, task, key=name, pure=False,
                                       workers=workers if refused else None,
                                       allow_other_workers=False)
                return future.result()
            except Refused as error:
                with self._lock:
                    refused.add(error.worker)
            except (TaskFailed, KilledWorker):  # failed there, or killed too many workers
                return None
            except gone_errors() as error:  # the scheduler is gone: from now on, here
                self.lost(error)
        return None

    # -- the task -------------------------------------------------------------------------------

    def _task(self, drv: Any, action: Any, digests: dict[str, str]) -> dict[str, Any] | None:
        """The task, its blobs all on the shared cache; None when one cannot be put there."""
        files: dict[str, list[Any]] = {}
        symlinks: dict[str, str] = {}
        readers: dict[str, Callable[[], bytes]] = {}
        for rel, digest in drv.data["inputs"].items():
            hex_digest = digest.removeprefix("sha256:")
            files[f"w/{rel}"] = [hex_digest, False]
            readers[hex_digest] = self._source(drv, rel, hex_digest)
        for path in action.inputs:
            if not path.startswith("w/") and path in digests:
                hex_digest = digests[path].removeprefix("sha256:")
                # an earlier output this action runs (a crate's compiled build script)
                files[path] = [hex_digest, action.argv[0] == f"../{path}"]
                readers.setdefault(hex_digest, lambda d=hex_digest: self.store.read_blob(d))
        for project, name in drv.data["depends"].items():
            tree, links = self.tree(name)
            for rel, (hex_digest, executable) in tree.items():
                files[f"d/{project}/{rel}"] = [hex_digest, executable]
                readers.setdefault(hex_digest, lambda n=name, r=rel:
                                   (self.store.path(n) / r).read_bytes())
            symlinks.update({f"d/{project}/{rel}": t for rel, t in links.items()})
        for hex_digest, read in readers.items():
            if not self.share(hex_digest, read):
                return None
        return {"name": drv.name, "drv": drv.data, "action": action.as_json(),
                "digests": dict(digests), "files": files, "symlinks": symlinks,
                "remote": self.remote_spec()}

    def remote_spec(self) -> dict[str, Any]:
        """Where workers find the shared cache (their credentials are their own)."""
        return {"url": self.config.url, "token_env": self.config.token_env}

    def _source(self, drv: Any, rel: str, hex_digest: str) -> Callable[[], bytes]:
        if drv.sources is None:  # a recorded derivation: its inputs are in the CAS
            return lambda: self.store.read_blob(hex_digest)
        return lambda: (drv.sources / rel).read_bytes()

    def tree(self, name: str) -> tuple[dict[str, list[Any]], dict[str, str]]:
        """A dependency's files (digest, executable) and links, read once per run."""
        with self._lock:
            if name not in self._trees:
                files, links = {}, {}
                for entry in scan(self.store.path(name)).entries:
                    if entry.type == "regular":
                        files[entry.file] = [entry.sha256, bool(entry.mode & 0o111)]
                    elif entry.type == "symlink":
                        links[entry.file] = entry.target
                self._trees[name] = (files, links)
            return self._trees[name]

    def share(self, hex_digest: str, read: Callable[[], bytes]) -> bool:
        with self._lock:
            if hex_digest in self._there:
                return True
        if not self.remote.has_blob(hex_digest):
            try:
                data = read()
            except (BlobError, OSError):
                return False  # neither here nor there: this action runs here
            if hashlib.sha256(data).hexdigest() != hex_digest or \
                    not self.remote.put_blob(hex_digest, data):
                return False
        with self._lock:
            self._there.add(hex_digest)
        return True

    # -- the scheduler --------------------------------------------------------------------------

    def connect(self) -> Any:
        with self._lock:
            if self._client is None and not self.down:
                from distributed import Client

                try:
                    self._client = Client(self.address, timeout=CONNECT_TIMEOUT,
                                          set_as_default=False)
                except (OSError, TimeoutError) as error:  # nothing there, or no answer
                    self.down = True
                    self._say(error)
            return None if self.down else self._client

    def lost(self, error: BaseException) -> None:
        with self._lock:
            if self.down:
                return
            self.down = True
        self._say(error)

    def _say(self, error: BaseException) -> None:
        why = str(error).splitlines()[0][:160] if str(error) else type(error).__name__
        self._warn(f"executor dask://{self.address.removeprefix('tcp://')}: unreachable "
                   f"({why}); running the remaining actions here")

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            try:
                client.close(timeout=5)
            except gone_errors():
                pass  # a scheduler already gone: nothing to close
