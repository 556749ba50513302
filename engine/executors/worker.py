"""What a Dask worker runs for recipe: one action, as the builder would run it here.

A task is a dict (see ``engine.executors.dask``): the derivation (its canonical JSON), the
action, the digests of everything it may read with their staging paths, and the shared cache's
URL. The worker

1. refuses (``Refused``) unless every program of the derivation's toolchain identity (and of a
   Rust derivation's rustc identity: the compiler, its libraries, the standard library) is, on
   this machine, the file the derivation hashed (``changed_programs``): a worker with another
   compiler never serves an action, and the client sends it elsewhere or runs it itself;
2. lays out the same clean staging the action gets locally — ``<worker store>/.recipe/build/
   <derivation>/`` with ``w/`` (the declared inputs), ``o/`` (earlier outputs), ``d/<project>/``
   (the dependencies' trees) — every file fetched from the shared cache and checked against its
   digest (its own store's CAS first); under the derivation's lock in the worker's store;
3. runs it with ``engine.build.actions.run_action`` (the same argv, environment, umask and
   action-cache keys) through that store and the shared cache with upload on, waits until the
   outputs' blobs and the action-cache entry are on the shared cache, and returns only the
   result: the outputs' digests, the log, the keys.

Any other failure is ``TaskFailed``: the client then runs the action itself (a compile error
shows there, in its own words). The worker's store is ``$RECIPE_WORKER_STORE`` or
``~/.cache/recipe/worker-store``; it is a cache (collect it with ``recipe store gc``).
Credentials are the worker's own (its environment, its ``~/.netrc``): none travel in a task.
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any

_stores: dict[str, Any] = {}
_lock = threading.Lock()
#: (path, stat data) -> sha256 of the program: hashing cc1, as, ld... takes most of a second,
#: and a worker checks its toolchain for every task
_digests: dict[tuple[str, tuple[int, ...]], str] = {}


class Refused(Exception):
    """This worker's toolchain is not the one the derivation names."""

    def __init__(self, worker: str, programs: list[str]) -> None:
        super().__init__(worker, programs)
        self.worker, self.programs = worker, programs

    def __str__(self) -> str:
        return f"{self.worker} has other programs: {', '.join(self.programs)}"


class TaskFailed(Exception):
    """The action could not run or share its outputs on this worker."""


def run_task(task: dict[str, Any]) -> dict[str, Any]:
    from distributed import get_worker

    worker = get_worker().address
    changed = _changed_programs(task["drv"])
    if changed:
        raise Refused(worker, changed)
    try:
        return _run(task, worker)
    except Exception as error:  # a worker never fails a build: the client runs it
        raise TaskFailed(f"{type(error).__name__}: {error}") from None


def _changed_programs(drv: dict[str, Any]) -> list[str]:
    """The programs of the derivation's toolchain identity that are missing here or are other
    files (as ``engine.toolchain.detect.changed_programs``), and for a Rust derivation every
    file of its rustc identity (the compiler, its libraries, the host's standard library:
    ``engine.toolchain.rust``) below the sysroot of the rustc it names. Each file is hashed
    once while its stat data stays the same."""
    identity = drv["toolchain"]
    binaries = {"cc": identity["cc"], "cxx": identity["cxx"], "ar": identity["ar"],
                **identity["programs"]}
    changed = [path for name, path in sorted(binaries.items())
               if _digest(path) != identity["digests"].get(name)]
    rust = drv.get("rust")
    if rust is not None:
        sysroot = os.path.dirname(os.path.dirname(rust["rustc"]))  # <sysroot>/bin/rustc
        changed += [os.path.join(sysroot, rel) for rel, digest in sorted(rust["digests"].items())
                    if _digest(os.path.join(sysroot, rel)) != digest]
    return changed


def _digest(path: str) -> str | None:
    """The file's digest (``engine.hashing.file_digest``), None when it cannot be read."""
    from engine.hashing import file_digest

    try:
        st = os.stat(path)
        stat_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with _lock:
            digest = _digests.get((path, stat_key))
        if digest is None:
            digest = file_digest(Path(path))
            with _lock:
                _digests[(path, stat_key)] = digest
    except OSError:
        return None
    return digest


def worker_store() -> Any:
    from engine.store import Store

    folder = os.environ.get("RECIPE_WORKER_STORE") or \
        str(Path.home() / ".cache" / "recipe" / "worker-store")
    with _lock:
        if folder not in _stores:
            Path(folder).mkdir(parents=True, exist_ok=True)
            _stores[folder] = Store.open(Path(folder))
        return _stores[folder]


def _run(task: dict[str, Any], worker: str) -> dict[str, Any]:
    from engine.build.actions import build_env, run_action
    from engine.derive.actions import Action
    from engine.derive.derivation import Recorded
    from engine.hashing import canonical
    from engine.remote.combined import CombinedCache
    from engine.remote.config import parse
    from engine.remote.http import HttpCache

    store = worker_store()
    said: list[str] = []
    config = parse(task["remote"]["url"], upload=True, token_env=task["remote"]["token_env"])
    remote = HttpCache(config, said.append)
    cache = CombinedCache(store, remote, upload=True)
    drv = Recorded.load(task["name"], canonical(task["drv"]))
    action = Action.from_json(task["action"])
    try:
        with store.lock(drv.name):
            staging = store.build_dir(drv.name)
            if staging.exists():
                shutil.rmtree(staging)
            (staging / "tmp").mkdir(parents=True)
            try:
                for rel, (digest, executable) in sorted(task["files"].items()):
                    dest = staging / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    cache.copy_blob(digest, dest, executable)  # checked against its digest
                for rel, target in sorted(task["symlinks"].items()):
                    (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(target, staging / rel)
                env = {**build_env(drv), "TMPDIR": str(staging / "tmp")}
                run = run_action(store, drv, action, staging, dict(task["digests"]), env,
                                 cache=cache)
                cache.flush()  # the outputs are on the shared cache before the result returns
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    finally:
        cache.close()
    if remote.down or said:
        raise TaskFailed("; ".join(said) or "the shared cache is unreachable")
    return {"digests": run.digests, "keys": run.keys,
            "log": f"# executed on {worker}\n{run.log}"}
