"""A REPL session: one project x target prepared once, then any number of submissions.

``recipe eval`` is a session of one submission; ``recipe repl`` keeps one open. A runner used
once in a session is kept in memory (and on disk, in its temporary folder) until the session
closes, so a repeated submission neither compiles nor copies anything.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from engine.documents.models import Plan
from engine.errors import Failure, UsageError
from engine.repl import child
from engine.repl.child import Confine, Ended
from engine.repl.runner import Runner, build, check_code, runner_key
from engine.repl.scope import Scope, prepare
from engine.store import Store


def default_works(plan: Plan, project: str) -> Path:
    """``.recipe/works/<project>`` beside the plan."""
    return plan.file.parent / ".recipe" / "works" / project


def history_file(works: Path) -> Path:
    """The interactive history, beside the workspace (the submissions cannot reach it)."""
    return works.parent / f"{works.name}.history"


class WroteReadOnly(Failure):
    """Seen where Landlock is missing: the submission changed the store or the sources."""


#: ``guard(protect, skip)``: snapshots folders; ``.changes()`` after the run lists what changed
#: below ``protect`` but not below ``skip`` (``engine.verify.writeguard.Guard`` has this shape).
GuardFactory = Callable[[list[Path], list[Path]], Any]


class Session:
    """``confine`` keeps a submission from writing outside its workspace (Landlock); where
    there is none, ``guard`` notices such writes after the run and fails the submission."""

    def __init__(self, plan: Plan, store: Store, project: str, target: str | None = None, *,
                 works: Path | None = None, confine: Confine | None = None,
                 guard: GuardFactory | None = None, reporter: Any = None) -> None:
        self.store = store
        self.plan_dir = plan.dir
        self.guard = guard
        self.target = target or plan.default_targets[0]
        self.scope: Scope = prepare(plan, store, project, self.target, reporter)
        self.works = (works or default_works(plan, project)).absolute()
        if self.works.resolve().is_relative_to(store.root.resolve()):
            raise UsageError(f"the workspace {self.works} is inside the store",
                             "a submission may never write into the store: pass another "
                             "--works folder")
        self.confine = confine
        self._runners: dict[str, Runner] = {}

    def compile(self, code: str, keep: bool = False) -> Runner:
        """The runner of a submission (``keep``: its generated source stays on disk)."""
        check_code(code)
        known = self._runners.get(runner_key(self.scope, code))
        if known is not None and not keep and known.executable.is_file():
            return Runner(known.key, known.executable, known.folder, True, known.diagnostics)
        runner = build(self.scope, self.store, code, keep)
        if keep:
            return runner  # left on disk, as asked
        old = self._runners.pop(runner.key, None)
        if old is not None:
            old.remove()
        self._runners[runner.key] = runner
        return runner

    def run(self, runner: Runner, *, stdin: int | IO[bytes] | None = None,
            stdout: int | IO[bytes] | None = None,
            stderr: int | IO[bytes] | None = None) -> Ended:
        """Run a runner in the workspace, with a fresh private temporary folder."""
        tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=runner.folder))
        self.works.mkdir(parents=True, exist_ok=True)  # before a guard's first look
        protect = [self.store.path(name) for name in self.scope.paths] + [self.plan_dir]
        watch = self.guard(protect, [self.store.root, self.works]) if self.guard else None
        try:
            ended = child.run(runner.executable, self.works, tmp, stdin=stdin, stdout=stdout,
                              stderr=stderr, confine=self.confine)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        wrote = watch.changes() if watch is not None else []
        if wrote:
            shown = ", ".join(wrote[:3]) + (f" and {len(wrote) - 3} more" if len(wrote) > 3
                                            else "")
            raise WroteReadOnly(f"the submission wrote into read-only {shown}",
                                "write below $RECIPE_WORKS instead")
        return ended

    def close(self) -> None:
        """Remove the runners' temporary folders (not those kept with ``--keep-tmp``)."""
        for runner in self._runners.values():
            runner.remove()
        self._runners.clear()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
