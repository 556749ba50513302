"""Building one derivation into the store.

Under the derivation's lock: stage the declared inputs (through the store's CAS, which keeps
them for as long as the path lives, so that ``store verify --repair`` can rebuild it from its
recorded derivation alone) in the derivation's build folder on the store's file system, run the
actions (compiles in parallel, then archives and links), assemble the output tree, and register
it — the path becomes visible only by the store's rename plus database transaction.
"""

from __future__ import annotations

import os
import re
import shutil
from concurrent.futures import Executor, Future
from pathlib import Path

from engine.build.actions import ActionFailed, ActionRun, Buildable, build_env, run_action
from engine.build.events import Reporter
from engine.derive.actions import Action
from engine.errors import Failure, RecipeError
from engine.store import BlobError, Store

_MISSING_INCLUDE = re.compile(r"^(\S+?):\d+:\d+: fatal error: (\S+?): No such file or directory",
                              re.MULTILINE)


class Cancelled(Failure):
    """An action that was not started because another one failed first."""


class SourceChanged(Failure):
    """A declared file changed between hashing and staging."""


class CannotRebuild(RecipeError):
    """A recorded derivation's input is no longer in the store's CAS."""


class DerivationBuild:
    """The build of one derivation; the caller holds its lock and has added temporary roots
    for it and its dependencies."""

    def __init__(self, store: Store, drv: Buildable, pool: Executor, reporter: Reporter,
                 stop: StopFlag, keep_failed: bool = False) -> None:
        self.store, self.drv, self.pool = store, drv, pool
        self.reporter, self.stop, self.keep_failed = reporter, stop, keep_failed
        # A fixed folder per derivation, not a random one: with LTO, objects carry their
        # build folder into the link of dependents, so its name must not vary. The lock makes
        # it ours; what a killed build left there is removed first.
        self.staging = store.build_dir(drv.name)
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)
        self.env = {**build_env(drv), "TMPDIR": str(self.staging / "tmp")}
        self.digests: dict[str, str] = {}
        self.keys: list[str] = []
        self.log: list[str] = []

    def run(self, repair: bool = False) -> None:
        """Build and register the path; with ``repair``, put it in place of the damaged
        valid path of that name instead (it must come out identical)."""
        try:
            self._stage()
            compiles = [i for i, a in enumerate(self.drv.actions) if a.kind == "compile"]
            self._run_batch(compiles)
            self._run_batch([i for i in range(len(self.drv.actions)) if i not in compiles])
            self._assemble()
            out = self.staging / "out"
            sources = input_blobs(self.drv)
            if repair:
                self.store.replace(self.drv.name, out)
                self.store.attach(self.drv.name, actions=self.keys, blobs=sources)
                return
            refs = _scan_references(out, list(self.drv.data["depends"].values()))
            self.store.register(self.drv.name, out, self.drv.fingerprint, refs,
                                "".join(self.log).encode(), actions=self.keys, blobs=sources)
        except ActionFailed as error:
            if self.keep_failed:
                error.fix = f"the build folder is kept at {self._keep()}"
            raise
        finally:
            if self.staging.exists():
                shutil.rmtree(self.staging, ignore_errors=True)

    def _keep(self) -> Path:
        """Move a failed build out of the store's tmp/, which the next run cleans."""
        kept = self.store.root / ".recipe" / "failed" / self.staging.name
        if kept.exists():
            shutil.rmtree(kept)
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.staging, kept)
        return kept

    def _stage(self) -> None:
        """Inputs go through the CAS: the copy that is compiled is checked against the digest
        in the derivation, and the blob stays for as long as the path it builds."""
        (self.staging / "tmp").mkdir()
        for rel, digest in self.drv.data["inputs"].items():
            dest = self.staging / "w" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._fetch(rel, digest.removeprefix("sha256:"), dest)
            except BlobError:
                if self.drv.sources is None:
                    raise CannotRebuild(
                        f"cannot rebuild {self.drv.name}: its input {rel} is no longer in the "
                        "store (or is damaged)", "remove its roots ('recipe store roots "
                        "--remove'), collect it, and realise its plan again") from None
                self._fetch(rel, digest.removeprefix("sha256:"), dest)  # the blob is written anew
            self.digests[f"w/{rel}"] = digest
        (self.staging / "d").mkdir()
        for dep_project, dep_name in self.drv.data["depends"].items():
            os.symlink(self.store.path(dep_name), self.staging / "d" / dep_project)

    def _fetch(self, rel: str, hex_digest: str, dest: Path) -> None:
        if self.drv.sources is not None:
            # What is compiled must be what was hashed into the derivation.
            if self.store.put_file(self.drv.sources / rel) != hex_digest:
                raise SourceChanged(f"{self.drv.data['project']['name']}: {rel} changed "
                                    "while building", "run the command again")
        self.store.copy_blob(hex_digest, dest)

    def _run_batch(self, indexes: list[int]) -> None:
        futures: list[tuple[Action, Future[ActionRun]]] = []
        for i in indexes:
            action = self.drv.actions[i]
            futures.append((action, self.pool.submit(self._run_one, action)))
        failures: list[Failure] = []
        for action, future in futures:
            try:
                run = future.result()
            except Cancelled:
                continue
            except ActionFailed as error:
                failures.append(self._explain(action, error))
                continue
            self.digests.update(run.digests)
            self.keys.extend(run.keys)
            self.log.append(run.log)
        if failures:
            raise failures[0] if len(failures) == 1 else _Many(failures)
        if any(a.outputs[0] not in self.digests for a, _ in futures):
            raise Cancelled(f"{self.drv.title}: cancelled")

    def _run_one(self, action: Action) -> ActionRun:
        if self.stop.is_set():
            raise Cancelled("cancelled")
        self.reporter.action_started(self.drv, action)
        try:
            run = run_action(self.store, self.drv, action, self.staging, self.digests, self.env)
        except ActionFailed:
            self.stop.failed()
            raise
        self.reporter.action_finished(self.drv, action, run.cached)
        return run

    def _explain(self, action: Action, error: ActionFailed) -> ActionFailed:
        """A missing include that exists in the project but was not declared gets a fix."""
        match = _MISSING_INCLUDE.search(error.detail)
        project = getattr(self.drv, "project", None)  # a recorded derivation has no documents
        if match and action.kind == "compile" and project is not None:
            name = match.group(2)
            hits = sorted(p.relative_to(project.dir).as_posix()
                          for p in project.dir.rglob(Path(name).name)
                          if p.as_posix().endswith(name))
            if hits:
                error.what = (f"{project.name}: {match.group(1)} includes '{name}', which the "
                              f"project does not declare ({hits[0]} is not in headers:)")
                error.fix = f"add {hits[0]} to headers: in {project.file.name}"
        return error

    def _assemble(self) -> None:
        out = self.staging / "out"
        out.mkdir(exist_ok=True)
        for header, rel in self.drv.data["public"].items():
            dest = out / "include" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.staging / "w" / header, dest)


class _Many(ActionFailed):
    """Several actions of one derivation failed; their outputs are shown one after another."""

    def __init__(self, failures: list[Failure]) -> None:
        first = failures[0]
        detail = "\n".join(getattr(f, "detail", "") for f in failures)
        super().__init__(f"{first.what} (and {len(failures) - 1} more)", detail, first.fix)


def input_blobs(drv: Buildable) -> list[str]:
    """The CAS digests of a derivation's declared inputs (its sources, kept for repair)."""
    return [d.removeprefix("sha256:") for d in drv.data["inputs"].values()]


class StopFlag:
    """Set when an action fails: no new action starts unless the build keeps going."""

    def __init__(self, keep_going: bool) -> None:
        self.keep_going = keep_going
        self._stopped = False

    def failed(self) -> None:
        if not self.keep_going:
            self._stopped = True

    def is_set(self) -> bool:
        return self._stopped


def _scan_references(tree: Path, candidates: list[str]) -> list[str]:
    """Dependencies whose store path name appears in the output (Nix's reference scanning):
    a shared library found through an rpath is a run-time reference, a static one is not."""
    if not candidates:
        return []
    found: set[str] = set()
    for root, _dirs, files in os.walk(tree):
        for name in files:
            data = Path(root, name).read_bytes()
            found.update(c for c in candidates if c.encode() in data)
    return sorted(found)
