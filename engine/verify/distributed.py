"""verify's cases on a Dask cluster (``--executor``), with the containment they get here.

The client side is a ``spawn`` for ``engine.verify.job.Settings``: it takes the arguments of
``run_process`` and returns its ``Observed``. For a case it ships, as digests on the shared cache,
the store path the program comes from with every path it refers to (laid out side by side, so
``$ORIGIN``-relative rpaths resolve), the case's ``files:`` and its stdin, and submits
``run_case_task`` under a key over all of them (identical cases in flight run once). The worker
lays them out below a temporary folder of its own store, checks every blob against its digest,
and calls ``run_process`` itself: the same clean environment, scratch folder, Landlock or write
check, reaper, timeout and output cap as here. Only the observation comes back; the comparison
with the expectation, and the outcome cache, stay here.

Eval and function cases go the same way (``formats``): an eval case's runner is compiled (or
found) here, then the runner, with every store path its bytes name and their closures, is laid
out on a worker and run by ``eval._run`` — the same environment, scratch, Landlock or write
check, reaper, timeout and caps — through the ELF interpreter with ``--library-path`` naming the
laid-out paths' ``lib/`` (the runner's rpath names this machine's store; ``--argv0`` keeps its
``argv[0]``, and its environment is the one it gets here). A function case's library is realised
here; the worker calls the rows (``table.call_rows``) against its laid-out copy, and the rows come
back to be recorded and judged here exactly as a local run's are.

Anything the cluster cannot do (the scheduler gone, a blob it cannot fetch, a failed task, a
foreign target's runner) runs the case here, as if there were no cluster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.documents.models import Case
from engine.hashing import canonical_hash, file_digest
from engine.verify.outcome import Observed
from engine.verify.process import case_stdin, run_process

if TYPE_CHECKING:
    from engine.verify.job import Job, Settings
    from engine.verify.outcome import Outcome


def on_cluster(executor: Any) -> dict[str, Any]:
    """The ``engine.verify.job.Settings`` fields that send cases to ``executor``'s cluster:
    process cases (``spawn``), eval and function cases (``formats``)."""
    cases = DistributedCases(executor)
    return {"spawn": cases, "formats": {"eval": cases.eval_case,
                                        "function": cases.function_case}}


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
        name = executable.parent.parent.name
        readers: dict[str, Callable[[], bytes]] = {}
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
        paths = self._ship([name], readers)
        if paths is None:
            return None
        task = {"case": dataclasses.replace(case, stdin=None, stdin_file=None), "path": name,
                "run": executable.name, "paths": paths, "inputs": inputs, "stdin": stdin_digest,
                "cap": cap, "remote": self.executor.remote_spec()}
        key = canonical_hash({"case": case.raw, "path": name, "inputs": inputs,
                              "stdin": stdin_digest, "cap": cap})
        return self._submit(run_case_task, task, f"recipe-case-{key}")

    # -- eval cases ---------------------------------------------------------------------------

    def eval_case(self, job: Job, settings: Settings) -> Outcome:
        """The eval format, its runner run on a worker (``run_eval_case`` with another run)."""
        from engine.verify.eval import run_eval_case

        return run_eval_case(job, settings, run=self._eval_run)

    def _eval_run(self, job: Job, executable: Path, store: Any, cap: int,
                  on: Any = None) -> Observed:
        from engine.verify.eval import _run

        observed = self._eval_remote(job, executable, store, cap) if on is None else None
        return observed if observed is not None else _run(job, executable, store, cap, on)

    def _eval_remote(self, job: Job, executable: Path, store: Any, cap: int
                     ) -> Observed | None:
        plan = job.plan
        if plan is not None and plan.projects[job.project].language == "rust":
            # its runner links the toolchain's libstd-*.so by an rpath into this machine's
            # sysroot (-C prefer-dynamic), which a worker need not have: here
            return None
        data = executable.read_bytes()
        if _interpreter(data) is False:  # not an ELF file of this machine's kind: here
            return None
        runner = _sha256(data)
        paths = self._ship(_named(store, data, [job.path.name]), {runner: lambda: data})
        if paths is None:
            return None
        task = {"case": job.case, "project": job.project, "target": job.target,
                "path": job.path.name, "paths": paths, "runner": runner, "cap": cap,
                "remote": self.executor.remote_spec()}
        key = canonical_hash({"eval": job.case.raw, "project": job.project, "runner": runner,
                              "paths": sorted(paths), "cap": cap})
        return self._submit(run_eval_task, task, f"recipe-eval-{key}")

    # -- function cases -----------------------------------------------------------------------

    def function_case(self, job: Job, settings: Settings) -> Outcome:
        """The function format, its rows called on a worker — by the case's native harness
        (C and C++, built here) or by the Python worker from the library — then recorded in
        the rows cache under the key the local format looks up, which finds them and judges
        them here. A key computed otherwise than the local format's only costs a local run."""
        from engine.store import Store
        from engine.verify import harness
        from engine.verify.function import run_function_case as local
        from engine.verify.function_cache import lookup_rows, record_rows
        from engine.verify.job import target_runner

        store, plan, case = settings.store, job.plan, job.case
        if not isinstance(store, Store) or plan is None or case.skip is not None or \
                case.signature is None or target_runner(job, settings) is not None:
            return local(job, settings)  # a foreign target's runner: here
        if harness.usable(plan, job.project, job.target):
            key, owner, call = self._harness_rows(job, store)
        else:
            key, owner, call = self._worker_rows(job, store)
        if key is None or (settings.use_cache and lookup_rows(store, key) is not None):
            return local(job, settings)
        rows = call()
        if rows is None:
            return local(job, settings)
        record_rows(store, key, rows, owner=owner)
        outcome = local(job, dataclasses.replace(settings, use_cache=True))
        outcome.cached = False  # called just now, on a worker
        return outcome

    def _harness_rows(self, job: Job, store: Any) -> tuple[str | None, str, Any]:
        from engine.repl.runner import runner_key
        from engine.verify import harness, harness_source
        from engine.verify.function_cache import rows_key

        assert job.plan is not None and job.case.signature is not None
        spec, _ = harness.spec_for(job.plan, store, job.project, job.target, job.path)
        code = harness_source.generate(job.case.signature, job.case.free, spec.title)
        key = rows_key(job.case, "harness:" + runner_key(spec, code))

        def call() -> Any:
            made, _ = harness.build(spec, store, job.case)
            try:
                data = made.executable.read_bytes()
            finally:
                made.remove()
            if _interpreter(data) is False:
                return None
            program = _sha256(data)
            paths = self._ship(_named(store, data, [job.path.name]), {program: lambda: data})
            if paths is None:
                return None
            task = {"case": job.case, "paths": paths, "program": program,
                    "remote": self.executor.remote_spec()}
            return self._submit(run_harness_task, task, f"recipe-harness-{key}")

        return key, spec.library, call

    def _worker_rows(self, job: Job, store: Any) -> tuple[str | None, str, Any]:
        from engine.verify.function import shared_library
        from engine.verify.function_cache import rows_key

        assert job.plan is not None
        library = shared_library(job.plan, store, job.project, job.target, job.path)
        name = library.parent.parent.name
        key = rows_key(job.case, name)

        def call() -> Any:
            paths = self._ship([name], {})
            if paths is None:
                return None
            rel = library.relative_to(library.parent.parent).as_posix()
            task = {"case": job.case, "path": name, "library": rel, "paths": paths,
                    "remote": self.executor.remote_spec()}
            return self._submit(run_rows_task, task, f"recipe-rows-{key}")

        return key, name, call

    # -- shipping and submitting --------------------------------------------------------------

    def _ship(self, names: list[str], readers: dict[str, Callable[[], bytes]]
              ) -> dict[str, Any] | None:
        """The trees of ``names`` and of every path they refer to, each file and every blob
        of ``readers`` put on the shared cache; None when the cluster cannot be used."""
        executor = self.executor
        if executor.down or executor.connect() is None:
            return None
        store = executor.store
        paths = {}
        for ref in _closure(store, names):
            files, links = executor.tree(ref)
            paths[ref] = {"files": files, "links": links}
            for rel, (digest, _executable) in files.items():
                readers.setdefault(digest, lambda r=ref, f=rel: (store.path(r) / f).read_bytes())
        for digest, read in readers.items():
            if not executor.share(digest, read):
                return None
        return paths

    def _submit(self, function: Callable[..., Any], task: dict[str, Any], key: str) -> Any:
        """What ``function(task)`` returned on a worker, or None: run it here."""
        from distributed import KilledWorker

        from engine.executors.dask import gone_errors
        from engine.executors.worker import TaskFailed

        client = self.executor.connect()
        if client is None:
            return None
        try:
            return client.submit(function, task, key=key, pure=False).result()
        except (TaskFailed, KilledWorker):  # failed there, or killed too many workers: here
            return None
        except gone_errors() as error:  # the scheduler is gone: from now on, here
            self.executor.lost(error)
            return None


def _named(store: Any, data: bytes, names: list[str]) -> list[str]:
    """``names`` and the store paths a program's bytes name (its rpath: this store's)."""
    named = {m.decode() for m in re.findall(
        re.escape(str(store.root).encode()) + rb"/([0-9a-z]{32}-[^/\x00\s:]+)", data)}
    return [*names, *sorted(n for n in named - set(names) if store.info(n) is not None)]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _closure(store: Any, names: list[str]) -> list[str]:
    """``names`` and every path they refer to, directly or not."""
    seen: list[str] = []
    todo = list(reversed(names))
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
    return _on_worker(_run_case, task)


def run_eval_task(task: dict[str, Any]) -> Observed:
    """On a worker: lay the paths and the runner out, run it as ``eval._run`` runs it here."""
    return _on_worker(_run_eval, task)


def run_harness_task(task: dict[str, Any]) -> Any:
    """On a worker: lay the paths and the case's harness out, call the rows with it."""
    return _on_worker(_run_harness, task)


def run_rows_task(task: dict[str, Any]) -> Any:
    """On a worker: lay the library's paths out, call the case's rows (``table.call_rows``)."""
    return _on_worker(_run_rows, task)


def _on_worker(run: Callable[..., Any], task: dict[str, Any]) -> Any:
    from engine.executors.worker import TaskFailed, worker_store
    from engine.remote.combined import CombinedCache
    from engine.remote.config import parse
    from engine.remote.http import HttpCache

    store = worker_store()
    said: list[str] = []
    config = parse(task["remote"]["url"], token_env=task["remote"]["token_env"])
    cache = CombinedCache(store, HttpCache(config, said.append))
    folder = store.temp_dir("case")
    try:
        _lay_out(cache, folder / "store", task["paths"])
        return run(task, store, cache, folder)
    except Exception as error:  # a worker never fails a case: the client runs it itself
        raise TaskFailed(f"{type(error).__name__}: {error}") from None
    finally:
        cache.close()
        shutil.rmtree(folder, ignore_errors=True)


def _lay_out(cache: Any, root: Path, paths: dict[str, Any]) -> None:
    """Each store path's tree below ``root``, side by side, every file checked against its
    digest."""
    for name, tree in paths.items():
        top = root / name
        top.mkdir(parents=True)
        for rel, (digest, executable) in sorted(tree["files"].items()):
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            cache.copy_blob(digest, top / rel, executable)  # checked against its digest
        for rel, target in sorted(tree["links"].items()):
            (top / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(target, top / rel)


def _run_case(task: dict[str, Any], store: Any, cache: Any, folder: Path) -> Observed:
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


def _run_eval(task: dict[str, Any], store: Any, cache: Any, folder: Path) -> Observed:
    from engine.verify.eval import _run
    from engine.verify.job import Job

    runner = folder / "runner"
    cache.copy_blob(task["runner"], runner, True)  # checked against its digest
    interpreter = _interpreter(runner.read_bytes())
    via = None
    if interpreter:  # dynamically linked: its libraries are the laid-out paths', not the rpath's
        via = [interpreter, "--argv0", task["project"], "--library-path",
               ":".join(_libraries(folder, task["paths"]))]
    job = Job(task["project"], task["target"], task["case"], folder / "store" / task["path"])
    return _run(job, runner, store, task["cap"], via=via)


def _run_harness(task: dict[str, Any], store: Any, cache: Any, folder: Path) -> Any:
    from engine.verify import harness
    from engine.verify.runners import Runner

    program = folder / "harness"
    cache.copy_blob(task["program"], program, True)  # checked against its digest
    interpreter = _interpreter(program.read_bytes())
    loader = None
    if interpreter:  # as for an eval runner: the laid-out paths' libraries, not the rpath's
        loader = Runner("", (interpreter, "--argv0", "harness", "--library-path",
                             ":".join(_libraries(folder, task["paths"]))))
    scratch = folder / "scratch"
    scratch.mkdir()
    return harness.call_rows(task["case"], program, scratch, runner=loader, cache=store)


def _libraries(folder: Path, paths: dict[str, Any]) -> list[str]:
    return [str(folder / "store" / n / "lib") for n in paths
            if (folder / "store" / n / "lib").is_dir()]


def _run_rows(task: dict[str, Any], store: Any, cache: Any, folder: Path) -> Any:
    from engine.verify.table import call_rows

    scratch = folder / "scratch"
    scratch.mkdir()
    path = folder / "store" / task["path"]
    return call_rows(task["case"], path / task["library"], scratch, cache=store, protect=[path])


def _interpreter(data: bytes) -> str | bool | None:
    """The ELF interpreter a program names (PT_INTERP): None for a static program, False for
    what is not a 64-bit little-endian ELF file, as this machine's programs are."""
    if data[:4] != b"\x7fELF" or data[4:6] != b"\x02\x01":
        return False
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    for i in range(count):
        header = data[phoff + i * size:phoff + (i + 1) * size]
        if int.from_bytes(header[0:4], "little") == 3:  # PT_INTERP
            offset, length = (int.from_bytes(header[8:16], "little"),
                              int.from_bytes(header[32:40], "little"))
            return data[offset:offset + length].rstrip(b"\0").decode()
    return None
