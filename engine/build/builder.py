"""Building one derivation into the store.

Under the derivation's lock, in the derivation's build folder on the store's file system: run
the actions (compiles in parallel, then archives and links) through the action cache, assemble
the output tree, and register it — the path becomes visible only by the store's rename plus
database transaction.

Files are put in the build folder only when something reads them (Bazel's "build without the
bytes"). An action found in the cache yields the digests of its outputs, which is all the keys
of later actions need; the declared inputs are staged when the first action must really run,
and a cached output only when an action that runs reads it or it belongs to the output tree.
So a build whose actions are all cached reads no source and copies out only the final files.
A wave's actions are looked up one by one in the build's own thread; a miss is prepared there and
started at once, so that its tool runs while the rest are looked up, and the cached inputs of the
link that reads its output are put in place meanwhile (a one-file edit waits on one compile and
one link, not on 200 cache reads).
What only actions read (declared inputs already in the CAS, cached objects) is hard-linked from
the CAS, read-only; the other way, a compile's object and depfile, and a declared input copied
from the checkout, become their blobs by a hard link into the CAS (no second copy); a tool's
output is removed before it runs, so that nothing writes through such a link. The output
tree's files are copies. Every blob linked or copied out of the CAS is checked against its
digest; a damaged or missing blob makes the action that produced it run again. The declared
inputs go through the CAS, which keeps them for as long as the path lives, so that ``store
verify --repair`` can rebuild it from its recorded derivation alone.
"""

from __future__ import annotations

import heapq
import itertools
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from functools import partial
from pathlib import Path

from engine.build import inputs, kept_inputs, zig_cache
from engine.build.actions import (
    ActionFailed,
    ActionRun,
    Buildable,
    Missed,
    Runner,
    build_env,
    look_up,
    run_action,
)
from engine.build.cache import ActionCache, LocalCache
from engine.build.events import Reporter
from engine.build.folder import BuildFolder, keeps_inputs
from engine.build.inputs import input_blobs
from engine.build.reaper_service import Service
from engine.build.references import scan_file, scan_tree
from engine.build.timings import Timings
from engine.build.wave import Many, StopFlag, Tools, explain, making, order, settle
from engine.derive.actions import Action
from engine.errors import Failure
from engine.store import Store, StoreError


class Cancelled(Failure):
    """An action that was not started because another one failed first."""


class DerivationBuild(BuildFolder):
    """The build of one derivation; the caller holds its lock and has added temporary roots
    for it and its dependencies."""

    def __init__(self, store: Store, drv: Buildable, pool: Executor, reporter: Reporter,
                 stop: StopFlag, keep_failed: bool = False,
                 cache: ActionCache | None = None, tools: Tools | None = None) -> None:
        self.store, self.drv, self.pool = store, drv, pool
        self.tools = Tools(1) if tools is None else tools  # the pool's slots for tools
        # where action results are looked up and recorded: the store's own cache, or more levels
        self.cache = LocalCache(store) if cache is None else cache
        self.reporter, self.stop, self.keep_failed = reporter, stop, keep_failed
        # A fixed folder per derivation, not a random one: with LTO, objects carry their
        # build folder into the link of dependents, so its name must not vary. The lock makes
        # it ours; what a killed build left there is removed first.
        self.staging = store.build_dir(drv.name)
        if self.staging.exists() and not store.remove_leftover(self.staging):
            raise StoreError(f"cannot remove the leftover build folder {self.staging}",
                             "stop the process that writes into it, then run again")
        self.staging.mkdir(parents=True)
        self.env = {**build_env(drv), **zig_cache.env(store, drv.data),
                    "TMPDIR": str(self.staging / "tmp")}
        # staging path -> digest: the declared inputs now, each action's outputs as it ends
        self.digests = {f"w/{rel}": digest for rel, digest in drv.data["inputs"].items()}
        self.producers = {out: a for a in drv.actions for out in a.outputs}
        self.present: set[str] = set()  # staging paths that are files in the build folder
        self.staged = False  # the declared inputs are in w/
        self.registered = False  # the path is valid: its objects are kept (kept_inputs.give)
        self.kept: set[str] = set()  # digests of declared inputs known to be in the CAS
        self.untaken: list[tuple[str, str]] = []  # staged, not yet in the CAS (_take_inputs)
        self.folders: set[str] = set()  # folders made in the build folder (one mkdir each)
        self.prepared: set[int] = set()  # actions whose inputs and outputs' places are ready
        # guards present, staged, folders, the build folder, and kept but for _take_inputs
        self.files = threading.Lock()
        self.keys: list[str] = []
        self.log: list[str] = []
        self.ran = False  # an action really ran (not found in the cache)
        self.taking = False  # actions' outputs are linked into the CAS (see ``run``)
        self.reaper: Service | None = None  # while the actions run
        # Misses waiting for a thread of the pool, longest recorded tool first (timings.py)
        self.timings = Timings(store, drv.name)
        self.waiting: list[tuple[float, int, Action, Missed | None, Future[ActionRun]]] = []
        self.queued, self.queue_lock = itertools.count(), threading.Lock()
        # the dependencies' names, and the outputs being scanned for them (references.py)
        self.candidates = list(drv.data["depends"].values())
        self.scans: dict[str, Future[set[str]]] = {}
        # Writes of action results into the cache, put off until the actions that wait for
        # them have started (the link starts before the compile's result is written)
        self.unwritten: list[Callable[[], None]] = []

    def run(self, repair: bool = False, first: list[str] | None = None) -> bool:
        """Build and register the path (True); with ``repair``, put it in place of the damaged
        valid path of that name instead (it must come out identical). With ``first`` (files
        ``out/...``): their actions first; when one of them had to run, the build stops there
        (False: nothing registered), the files announced (``output_ready``) to what needs
        only them (engine/verify/early.py); a later build finds those actions cached."""
        try:
            (self.staging / "tmp").mkdir()
            (self.staging / "d").mkdir()
            for dep_project, dep_name in self.drv.data["depends"].items():
                os.symlink(self.store.path(dep_name), self.staging / "d" / dep_project)
            zig_cache.warm(self.store, self.drv.data, build_env(self.drv))
            with Service(self.store) as self.reaper:  # one reaper serves every action
                waves = order(self.drv.actions, self.producers)
                if first is not None:
                    needed = making(self.drv.actions, self.producers, first)
                    # What runs now is registered only if nothing runs (then the build goes on):
                    # its outputs are neither scanned nor copied into the CAS, but linked.
                    scanned, self.candidates, self.taking = self.candidates, [], True
                    self._run_waves([[i for i in w if i in needed] for w in waves])
                    self.candidates, self.taking = scanned, False
                    if self.ran:
                        self._announce_files(first)
                        return False
                    waves = [[i for i in w if i not in needed] for w in waves]
                self._run_waves(waves)
                self._assemble()
            out = self.staging / "out"
            sources = input_blobs(self.drv)
            self._keep_sources()
            if repair:
                self.store.replace(self.drv.name, out)
                self.store.attach(self.drv.name, actions=self.keys, blobs=sources)
            else:
                refs = scan_tree(out, self.candidates, self.scans)
                self.store.register(self.drv.name, out, self.drv.fingerprint, refs,
                                    "".join(self.log).encode(), actions=self.keys,
                                    blobs=sources)
            self.registered = True
            return True
        except ActionFailed as error:
            if self.keep_failed:
                error.fix = f"the build folder is kept at {self._keep()}"
            raise
        finally:
            self.timings.save(self.drv.actions)
            if self.staging.exists():
                # For the next build of its label; what is left is then a few entries, removed
                # now (a thread's start and the wait for it cost more)
                kept = self.staged and keeps_inputs(self.drv) and kept_inputs.give(
                    self.store, self.drv.name, str(self.staging), self.registered)
                self.store.discard(self.staging, beside=not kept)

    def _run_waves(self, waves: list[list[int]]) -> None:
        waves = [wave for wave in waves if wave]
        try:
            for n, wave in enumerate(waves):
                self._run_batch(wave, waves[n + 1] if n + 1 < len(waves) else [])
        except BaseException:
            try:
                self._write()  # what ran is found in the cache next time
            except Exception:  # noqa: BLE001, S110 - the build's own error is the one to tell
                pass
            raise
        self._write()

    def _write(self) -> None:
        """Write the action results put off so far, and the staged inputs' blobs (by the
        build's thread)."""
        self._take_inputs()
        while self.unwritten:
            self.unwritten.pop(0)()

    def _announce_files(self, files: list[str]) -> None:
        """``files`` that were not announced as their action ran (found in the cache): put in
        the build folder and announced now."""
        ready = getattr(self.reporter, "output_ready", None)
        for path in files:
            with self.files:
                if path in self.present:
                    continue
                self._materialise(path)
            if ready is not None:
                ready(self.drv, path[len("out/"):], self.staging / path)

    def _keep(self) -> Path:
        """Move a failed build out of the store's tmp/, which the next run cleans."""
        kept = self.store.state / "failed" / self.staging.name
        if kept.exists():
            shutil.rmtree(kept)
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.staging, kept)
        return kept

    def _record(self, run: ActionRun) -> None:
        self.ran = self.ran or not run.cached
        self.digests.update(run.digests)
        self.keys.extend(run.keys)
        self.log.append(run.log)

    def _keep_sources(self) -> None:
        self._take_inputs()  # staged by an action run again while the tree was assembled
        inputs.keep_sources(self.store, self.drv, self.kept)

    def _run_batch(self, indexes: list[int], following: list[int]) -> None:
        """One wave. Its actions are looked up in the store's own cache here, one by one: a
        hit needs no thread. A miss is prepared here (the first one stages the declared
        inputs) and handed to the pool at once, so that its tool runs while the rest are
        looked up (a one-file edit: one compile, 99 lookups); while it runs, the cached inputs
        of the ``following`` wave's actions that read its outputs are put in place. With a
        cache of another level (remote), a miss is handed over unprepared: it may be a hit
        there, and is asked in parallel."""
        local = LocalCache(self.store)
        again = not isinstance(self.cache, LocalCache)  # a miss here may be a hit there
        done: list[tuple[Action, ActionRun | Future[ActionRun]]] = []
        missed: set[str] = set()
        edited = getattr(self.drv, "edited", frozenset())  # a recorded derivation has none
        actions = sorted((self.drv.actions[i] for i in indexes),
                         key=lambda a: edited.isdisjoint(a.inputs))  # likely misses first
        likely = sum(not edited.isdisjoint(a.inputs) for a in actions)
        # The first misses, as many as tools run at once: their tools start before the rest
        # are looked up. Looking up takes the GIL, which a thread on its way to its tool gives
        # up at each system call and gets back only after a switch interval (0.5 ms in a
        # build) each time: 0 to 3.9 ms before gcc started, now 0.1 ms.
        handing = min(self.tools.jobs, likely)
        try:
            for action, run in zip(actions, look_up(self.store, self.drv, actions, self.digests,
                                                    self.staging, local, likely), strict=True):
                if isinstance(run, ActionRun):
                    self.reporter.action_started(self.drv, action)
                    self.reporter.action_finished(self.drv, action, True)
                    self.digests.update(run.digests)  # what the following wave's keys need
                    done.append((action, run))
                    continue
                if not again and not self.stop.is_set():
                    if self.reaper is not None and not missed:
                        self.reaper.start()  # it starts while the inputs are staged
                    self._prepare(action)
                missed.update(action.outputs)
                if handing > 0 and not again:
                    started = threading.Event()
                    done.append((action, self.pool.submit(self._run_one, action, run,
                                                          started)))
                    handing -= 1
                    started.wait(0.01)  # the tool is the reaper's, or the action failed
                    kept_inputs.discard_rest(self.store, str(self.staging))  # beside it
                else:
                    done.append((action, self._queue(action, None if again else run,
                                                     len(actions) > 1)))
            if missed and not again:
                self._prepare_following(following, missed)
            self._write()  # the last wave's, while this one's tools run
        except BaseException:
            settle(done)  # a source changed, a store error: nothing may outlive the build
            raise
        order = {id(action): n for n, action in enumerate(self.drv.actions)}
        done.sort(key=lambda item: order[id(item[0])])  # the log in the actions' order
        failures: list[Failure] = []
        for action, result in done:
            try:
                if not isinstance(result, ActionRun) and not result.done():
                    self._write()  # the results finished meanwhile, while this one runs
                run = result if isinstance(result, ActionRun) else result.result()
            except Cancelled:
                continue
            except ActionFailed as error:
                failures.append(explain(self.drv, action, error))
                continue
            except BaseException:
                settle(done)
                raise
            with self.files:
                self._record(run)
                if not run.cached:
                    self.present.update(action.outputs)
            if not run.cached:
                for path in action.outputs:  # final: scanned while later actions run
                    if path.startswith("out/") and self.candidates:
                        self.scans[path] = self.pool.submit(scan_file, self.staging / path,
                                                            self.candidates)
        if failures:
            raise failures[0] if len(failures) == 1 else Many(failures)
        if any(a.outputs[0] not in self.digests for a, _ in done):
            raise Cancelled(f"{self.drv.title}: cancelled")

    def _queue(self, action: Action, missed: Missed | None, ordered: bool) -> Future[ActionRun]:
        """Run ``action`` on a thread of the pool: the next free thread takes the waiting
        action whose tool took longest last time (``ordered``: there are others to choose from).
        """
        future: Future[ActionRun] = Future()
        first = self.timings.priority(action) if ordered else 0.0
        with self.queue_lock:
            heapq.heappush(self.waiting, (first, next(self.queued), action, missed, future))
        self.pool.submit(self._run_next)
        kept_inputs.discard_rest(self.store, str(self.staging))  # beside the tool
        return future

    def _run_next(self) -> None:
        with self.queue_lock:
            *_, action, missed, future = heapq.heappop(self.waiting)
        if not future.set_running_or_notify_cancel():
            return  # cancelled (``settle``): another action failed
        try:
            future.set_result(self._run_one(action, missed))
        except BaseException as error:  # noqa: BLE001 - the wave reads it from the future
            future.set_exception(error)

    def _prepare_following(self, indexes: list[int], missed: set[str]) -> None:
        """The cached inputs of the actions that read an output being made now (a link, after
        a compile): they will run, so their other inputs are linked in while it is made."""
        with self.files:
            for i in indexes:
                action = self.drv.actions[i]
                if missed.intersection(action.inputs):
                    for path in action.inputs:
                        if path not in missed and path in self.digests:
                            self._materialise(path)

    def _announce(self, action: Action) -> None:
        """Tell a reporter that asks (``output_ready``) which files of the output tree an action
        that ran has made, as soon as its tool has ended (before they are hashed into the CAS):
        they are final (the path registers these very bytes), so what needs only them (a
        verify's function cases, engine/verify/early.py) need not wait for the rest."""
        ready = getattr(self.reporter, "output_ready", None)
        if ready is None:
            return
        for path in action.outputs:
            if path.startswith("out/"):
                ready(self.drv, path[len("out/"):], self.staging / path)

    def _run_one(self, action: Action, missed: Missed | None,
                 started: threading.Event | None = None) -> ActionRun:
        """Run ``action``; ``started`` is set once its tool runs (or it could not)."""
        try:
            if self.stop.is_set():
                raise Cancelled("cancelled")
            self.reporter.action_started(self.drv, action)
            try:
                run = run_action(self.store, self.drv, action, self.staging, self.digests,
                                 self.env, prepare=self._prepare, cache=self.cache,
                                 runner=self._runner(action, started), missed=missed,
                                 made=self._announce, take=self.taking,
                                 later=self.unwritten.append,
                                 slot=None if isinstance(self.cache, LocalCache) else self.tools)
            except ActionFailed:
                self.stop.failed()
                raise
        finally:
            if started is not None:
                started.set()
        self.reporter.action_finished(self.drv, action, run.cached)
        return run

    def _runner(self, action: Action, started: threading.Event | None = None) -> Runner | None:
        if self.reaper is None:  # a reaper of the action's own: nobody waits for it
            if started is not None:
                started.set()
            return None
        return partial(self._tool, self.reaper, action, started)

    def _tool(self, reaper: Service, action: Action, started: threading.Event | None,
              argv: list[str], cwd: Path, env: dict[str, str], umask: int) -> tuple[int, bytes]:
        with self.tools:
            begun = time.monotonic()
            result = reaper.run(argv, cwd, env, umask, started=started)
            self.timings.measured(action, time.monotonic() - begun)
            return result

    def _assemble(self) -> None:
        """The output tree: the actions' outputs below out/ and the public headers."""
        out = self.staging / "out"
        out.mkdir(exist_ok=True)
        with self.files:
            for path in self.producers:
                if path.startswith("out/"):
                    self._materialise(path)
        for header, rel in self.drv.data["public"].items():
            dest = out / "include" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            digest = self.drv.data["inputs"][header].removeprefix("sha256:")
            if f"w/{header}" in self.present:
                shutil.copyfile(self.staging / "w" / header, dest)
            elif self.drv.sources is not None:
                self._copy_source(self.drv.sources / header, dest, digest, header)
            else:
                self._copy_out(digest, dest, header)
