"""verify's process cases on a Dask cluster (``--executor``), with the containment they get here.

The client side is a ``spawn`` for ``engine.verify.runner.Settings``: it takes the arguments of
``run_process`` and returns its ``Observed``. For a case it ships, as digests on the shared cache,
the store path the program comes from with every path it refers to (laid out side by side, so
``$ORIGIN``-relative rpaths resolve), the case's ``files:`` and its stdin, and submits
``run_case_task`` under a key over all of them (identical cases in flight run once). The worker
lays them out below a temporary folder of its own store, checks every blob against its digest,
and calls ``run_process`` itself: the same clean environment, scratch folder, Landlock or write
check, reaper, timeout and output cap as here. Only the observation comes back; the comparison
with the expectation, and the outcome cache, stay here.

Anything the cluster cannot do (the scheduler gone, a blob it cannot fetch, a failed task) runs
the case here, as if there were no cluster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.documents.models import Case
from engine.hashing import canonical_hash, file_digest
from engine.verify.outcome import Observed
from engine.verify.process import case_stdin, run_process


class DistributedCases:
    """``spawn(case, executable, scratch, **run_process arguments)`` through ``executor``
    (``engine.executors.dask.DaskExecutor``), or here."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor

    def __call__(self, case: Case, executable: Path, scratch: Path, **kwargs: Any) -> Observed:
        observed = self._remote(case, executable, kwargs.get("cap"))
        if observed is None:
            observed = run_process(case, executable, scratch, **kwargs)
        return observed

    def _remote(self, case: Case, executable: Path, cap: int | None) -> Observed | None:
        executor = self.executor
        client = executor.connect() if not executor.down else None
        if client is None:
            return None
        store = executor.store
        name = executable.parent.parent.name
        readers: dict[str, Callable[[], bytes]] = {}
        paths = {}
        for ref in _closure(store, name):
            files, links = executor.tree(ref)
            paths[ref] = {"files": files, "links": links}
            for rel, (digest, _executable) in files.items():
                readers.setdefault(digest, lambda r=ref, f=rel: (store.path(r) / f).read_bytes())
        inputs = {}
        for rel in case.files:
            source = case.folder / rel
            for path in sorted(source.rglob("*")) if source.is_dir() else [source]:
                if path.is_file():
                    digest = file_digest(path).removeprefix("sha256:")
                    inputs[path.relative_to(case.folder).as_posix()] = digest
                    readers.setdefault(digest, path.read_bytes)
        stdin = case_stdin(case)
        stdin_digest = _sha256(stdin)
        readers.setdefault(stdin_digest, lambda: stdin)
        for digest, read in readers.items():
            if not executor.share(digest, read):
                return None
        task = {"case": dataclasses.replace(case, stdin=None, stdin_file=None), "path": name,
                "run": executable.name, "paths": paths, "inputs": inputs, "stdin": stdin_digest,
                "cap": cap, "remote": executor.remote_spec()}
        key = canonical_hash({"case": case.raw, "path": name, "inputs": inputs,
                              "stdin": stdin_digest, "cap": cap})
        from engine.executors.worker import TaskFailed

        try:
            return client.submit(run_case_task, task, key=f"recipe-case-{key}",
                                 pure=False).result()
        except TaskFailed:
            return None
        except Exception as error:  # the scheduler is gone: from now on, here
            executor.lost(error)
            return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closure(store: Any, name: str) -> list[str]:
    """``name`` and every path it refers to, directly or not."""
    seen, todo = [], [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.append(current)
        info = store.info(current)
        todo.extend(info.references if info is not None else ())
    return seen


def run_case_task(task: dict[str, Any]) -> Observed:
    """On a worker: lay the paths and inputs out, run the case contained, observe."""
    from engine.executors.worker import TaskFailed, worker_store

    try:
        return _run_case(task, worker_store())
    except Exception as error:
        raise TaskFailed(f"{type(error).__name__}: {error}") from None


def _run_case(task: dict[str, Any], store: Any) -> Observed:
    from engine.remote.combined import CombinedCache
    from engine.remote.config import parse
    from engine.remote.http import HttpCache

    said: list[str] = []
    config = parse(task["remote"]["url"], token_env=task["remote"]["token_env"])
    remote = HttpCache(config, said.append)
    cache = CombinedCache(store, remote)
    folder = store.temp_dir("case")
    try:
        for name, tree in task["paths"].items():
            root = folder / "store" / name
            root.mkdir(parents=True)
            for rel, (digest, executable) in sorted(tree["files"].items()):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                cache.copy_blob(digest, root / rel, executable)  # checked against its digest
            for rel, target in sorted(tree["links"].items()):
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(target, root / rel)
        inputs = folder / "case"
        inputs.mkdir()
        for rel, digest in sorted(task["inputs"].items()):
            (inputs / rel).parent.mkdir(parents=True, exist_ok=True)
            cache.copy_blob(digest, inputs / rel)
        case = dataclasses.replace(task["case"], file=inputs / "cases.yaml",
                                   stdin=cache.read_blob(task["stdin"]), stdin_file=None)
        scratch = folder / "scratch"
        scratch.mkdir()
        path = folder / "store" / task["path"]
        kwargs = {} if task["cap"] is None else {"cap": task["cap"]}
        return run_process(case, path / "bin" / task["run"], scratch, protect=[path, inputs],
                           skip=[folder / "store"], cache=store, **kwargs)
    finally:
        cache.close()
        shutil.rmtree(folder, ignore_errors=True)
