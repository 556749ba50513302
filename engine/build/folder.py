"""The build folder of a derivation's build (``DerivationBuild``'s side of it).

The declared inputs are staged in ``w/`` when the first action must really run: linked from the
CAS, or, when the CAS has not got them (a new store), copied from the checkout and hashed as
they are copied (a file edited since the derivation hashed it fails the build), the copy then
becoming the blob by a hard link once the first tools run. An action's inputs that earlier
actions produced are put in place only when an action that runs reads them: linked out of the
CAS (objects), or copied (the output tree's files, programs); a damaged or missing blob makes
its action run again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from engine.build import inputs, kept_inputs
from engine.build.actions import ActionRun, Buildable, Runner, run_action
from engine.build.cache import ActionCache
from engine.derive.actions import Action
from engine.store import BlobError, Store


class BuildFolder:
    """What ``DerivationBuild`` does in its build folder; the attributes are its own."""

    store: Store
    drv: Buildable
    cache: ActionCache
    staging: Path
    files: threading.Lock  # held while files are put in the folder
    prepared: set[int]  # id() of the actions whose inputs are in place
    staged: bool
    present: set[str]  # paths relative to the folder that are there
    folders: set[str]  # folders made
    kept: set[str]  # declared inputs' blobs this build put in the CAS or found there
    untaken: list[tuple[str, str]]  # staged copies not yet in the CAS: (path, hex digest)
    producers: dict[str, Action]
    digests: dict[str, str]
    scans: dict[str, Future[set[str]]]
    env: dict[str, str]
    log: list[str]
    _record: Callable[[ActionRun], None]
    _runner: Callable[..., Runner | None]

    def _prepare(self, action: Action) -> None:
        """Before ``action`` really runs: the declared inputs in w/, its inputs that earlier
        actions produced (found in the cache) in place, and its outputs' folders, with no
        file where it writes (what this build put there: a cached output, before it runs
        again). Once: the build's thread prepares a miss before handing it over, so that
        the thread that runs it goes straight to its tool."""
        if id(action) in self.prepared:  # without the lock, which the build's thread may
            return  # hold a while (linking the link's inputs): no tool waits on it
        with self.files:
            if id(action) in self.prepared:
                return
            if not self.staged:
                self._stage()
            for path in action.inputs:
                self._materialise(path)
            for path in action.outputs:
                folder = f"{self.staging}/{path}".rpartition("/")[0]
                if folder not in self.folders:
                    os.makedirs(folder, exist_ok=True)
                    self.folders.add(folder)
                if path in self.present:
                    os.unlink(f"{self.staging}/{path}")
                    self.present.discard(path)
            self.prepared.add(id(action))

    def _stage(self) -> None:
        """The declared inputs, as hashed into the derivation: what is compiled must be what
        the derivation names (linked from the CAS; one copied from the checkout and edited
        meanwhile fails the build). On one thread: two (half each) took as long, sharing the
        GIL and the file system (17 and 22 ms against 22 for a new store's 110 inputs)."""
        work = f"{self.staging}/w"  # str paths: a Path joined per input costs as much as its link
        # A build script may run make, which reads mtimes: its inputs become their blobs (a
        # chmod and a utime each) before it runs, not while
        later = keeps_inputs(self.drv)
        found: set[str] = set()  # in place in the last build's folder (engine.build.kept_inputs)
        if later and kept_inputs.take(self.store, self.drv.name, str(self.staging)):
            found, folders = kept_inputs.sort_out(self.store, work, {
                rel: digest.removeprefix("sha256:")
                for rel, digest in self.drv.data["inputs"].items()})
            self.folders.update(folders)
        for rel, digest in self.drv.data["inputs"].items():
            if rel in found:
                self.kept.add(digest.removeprefix("sha256:"))
                self.present.add(f"w/{rel}")
                continue
            dest = f"{work}/{rel}"
            folder = dest.rpartition("/")[0]
            if folder not in self.folders:
                os.makedirs(folder, exist_ok=True)
                self.folders.add(folder)
            hex_digest = digest.removeprefix("sha256:")
            if self.drv.sources is None:  # a recorded derivation: its inputs are in the CAS
                self._copy_out(hex_digest, dest, rel, link=True)
            elif not self._link_source(hex_digest, dest):
                # Read-only from the start, as the blob it becomes (``_take_inputs``)
                inputs.copy_checked(self.drv, f"{self.drv.sources}/{rel}", dest, hex_digest,
                                    rel, mode=0o444)
                self.untaken.append((dest, hex_digest))
            self.present.add(f"w/{rel}")
        if not later:
            self._take_inputs()
        self.staged = True
        self.log.append(f"# staged {len(self.drv.data['inputs'])} declared inputs\n")

    def _take_inputs(self) -> None:
        """The inputs ``_stage`` copied from the checkout become their blobs: each copy (only
        read from now on, and checked against its digest as it was written) is hard-linked
        into the CAS. Put off until the first tools run, which wait for nothing else: half of
        what staging a new store's 110 inputs costs (the CAS's new fan-out folders, a link,
        a chmod and a stat or two each)."""
        while self.untaken:
            dest, hex_digest = self.untaken.pop()
            # Another digest: the copy was written to meanwhile (by root: it is read-only) and
            # went into the CAS as what it is; ``keep_sources`` then stores the declared one.
            if self.store.take_file(dest, hex_digest) == hex_digest:
                self.kept.add(hex_digest)

    def _link_source(self, hex_digest: str, dest: str) -> bool:
        """A declared input whose blob is in the CAS is linked from there, not copied from the
        checkout: checked against the digest the derivation names, so what is compiled is
        what the derivation says. False when it is not there (or damaged: then removed)."""
        try:  # a missing blob is a BlobError too: no stat before
            self.store.link_blob(hex_digest, dest)
        except BlobError:
            return False
        self.kept.add(hex_digest)
        return True

    def _copy_source(self, source: Path, dest: Path | str, hex_digest: str, rel: str) -> None:
        inputs.copy_source(self.store, self.drv, source, dest, hex_digest, rel)
        self.kept.add(hex_digest)

    def _copy_out(self, hex_digest: str, dest: Path | str, rel: str,
                  link: bool = False) -> None:
        inputs.copy_out(self.store, self.drv, hex_digest, dest, rel, link)

    def _materialise(self, path: str) -> None:
        """Put an action's output in the build folder (caller holds ``files``). A blob that is
        damaged or gone makes its action run again, without the cache."""
        if path in self.present or path not in self.producers:
            return  # a declared input (staged) or a dependency's file (d/)
        producer = self.producers[path]
        try:
            dest = f"{self.staging}/{path}"
            folder = dest.rpartition("/")[0]
            if folder not in self.folders:
                os.makedirs(folder, exist_ok=True)
                self.folders.add(folder)
            digest = self.digests[path].removeprefix("sha256:")
            if path.startswith("out/") or _executable(path):  # the path's own files: copies
                self.cache.copy_blob(digest, dest, executable=_executable(path))
            else:  # read by an action only (an object the link reads): no copy
                self.cache.link_blob(digest, dest)
            self.present.add(path)
        except BlobError:
            self.log.append(f"# {producer.label}: its cached {path} is damaged or gone; "
                            "running it again\n")
            if not self.staged:
                self._stage()
            for needed in producer.inputs:
                self._materialise(needed)
            for out in producer.outputs:
                self.scans.pop(out, None)
            self._record(run_action(self.store, self.drv, producer, self.staging,
                                    self.digests, self.env, use_cache=False, cache=self.cache,
                                    runner=self._runner(producer)))
            self.present.update(producer.outputs)


def keeps_inputs(drv: Buildable) -> bool:
    """Whether a build of ``drv`` takes and keeps its staged inputs (``engine.build.kept_inputs``):
    not one with a build script, which may write among them."""
    return not any(a.kind == "build-script" for a in drv.actions)


def _executable(path: str) -> bool:
    """Programs and shared libraries get mode 0755 when copied out of the CAS."""
    return path.startswith("out/bin/") or path.endswith((".so", "/build-script"))
