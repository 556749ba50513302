"""A REPL session: one project x target prepared once, then any number of submissions.

``recipe eval`` is a session of one submission; ``recipe repl`` keeps one open. A runner used
once in a session is kept in memory (and on disk, in its temporary folder) until the session
closes, so a repeated submission neither compiles nor copies anything.

``Session.prepare`` realises the project and makes its scope (``engine.repl.scope``). A
session is otherwise plain data (the runner ``Spec``, the workspace, what a submission may not
write), so ``recipe eval`` can also make one from a record of an earlier preparation
(``engine.memo``) without loading the plan: that is why this module imports so little.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from engine.errors import Failure, UsageError
from engine.repl import child
from engine.repl.runner import Runner, Spec, build, check_code, runner_key

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import IO, Any

    from engine.documents.models import Plan
    from engine.repl.ahead import Ahead
    from engine.repl.child import Confine, Ended
    from engine.repl.rust import RustScope
    from engine.repl.scope import Scope
    from engine.store import Store

    #: ``guard(protect, skip)``: snapshots folders; ``.changes()`` after the run lists what
    #: changed below ``protect`` but not below ``skip`` (``engine.verify.writeguard.Guard``).
    GuardFactory = Callable[[list[Path], list[Path]], Any]


def default_works(plan: Plan, project: str) -> Path:
    """``.recipe/works/<project>`` beside the plan."""
    return plan.file.parent / ".recipe" / "works" / project


def history_file(works: Path) -> Path:
    """The interactive history, beside the workspace (the submissions cannot reach it)."""
    return works.parent / f"{works.name}.history"


class WroteReadOnly(Failure):
    """Seen where Landlock is missing: the submission changed the store or the sources."""


class Session:
    """Submissions compiled by ``spec`` into ``store`` and run in ``works``. ``confine`` keeps a
    submission from writing outside its workspace (Landlock); where there is none, ``guard``
    notices writes below ``protect`` after the run and fails the submission."""

    #: The prepared scope (None in a session made from a record).
    scope: Scope | RustScope | None = None

    def __init__(self, spec: Spec, store: Store, works: Path, protect: list[Path], *,
                 confine: Confine | None = None, guard: GuardFactory | None = None) -> None:
        self.spec, self.store, self.works, self.protect = spec, store, works, protect
        self.confine, self.guard = confine, guard
        self._runners: dict[str, Runner] = {}
        self._ahead: Ahead | None = None

    @classmethod
    def prepare(cls, plan: Plan, store: Store, project: str, target: str | None = None, *,
                works: Path | None = None, confine: Confine | None = None,
                guard: GuardFactory | None = None, reporter: Any = None,
                cache: Any = None) -> Session:
        """Realise ``project`` for ``target`` (default: the plan's first default target) and
        prepare its scope; ``works`` defaults to ``default_works``."""
        from engine.repl.scope import prepare

        scope = prepare(plan, store, project, target or plan.default_targets[0], reporter,
                        cache)
        works = (works or default_works(plan, project)).absolute()
        if works.resolve().is_relative_to(store.root.resolve()):
            raise UsageError(f"the workspace {works} is inside the store",
                             "a submission may never write into the store: pass another "
                             "--works folder")
        protect = [store.path(name) for name in scope.paths] + [plan.dir]
        session = cls(scope.spec(), store, works, protect, confine=confine, guard=guard)
        session.scope = scope
        return session

    @classmethod
    def recall(cls, memo: dict, store: Store, *, confine: Confine | None = None,
               guard: GuardFactory | None = None) -> Session:
        """The session whose ``memo()`` this is, in ``store``."""
        return cls(Spec(**memo["spec"]), store, Path(memo["works"]),
                   [Path(p) for p in memo["protect"]], confine=confine, guard=guard)

    def memo(self) -> dict:
        """What makes this session again (plain data: see ``engine.memo``)."""
        return {"spec": dict(self.spec._asdict()), "works": str(self.works),
                "protect": [str(p) for p in self.protect]}

    @property
    def title(self) -> str:
        return str(self.spec.title)

    @property
    def program(self) -> str:
        """What a submission sees as ``argv[0]``: the project's name (the title is
        ``project (target)``), never the runner's temporary path."""
        return self.title.rsplit(" (", 1)[0]

    def compile(self, code: str, keep: bool = False) -> Runner:
        """The runner of a submission (``keep``: its generated source stays on disk). A new
        one is cached by ``settle`` (after its run: see ``runner.build``'s ``defer``)."""
        check_code(code)
        known = self._runners.get(runner_key(self.spec, code))
        if known is not None and not keep and known.executable.is_file():
            return Runner(known.key, known.executable, known.folder, True, known.diagnostics)
        self.settle()  # an earlier runner still promised would make ours wait for it
        ahead, self._ahead = (None, self._ahead) if keep else (self._ahead, None)
        try:
            runner = build(self.spec, self.store, code, keep, ahead=ahead, defer=not keep)
        finally:
            if ahead is not None and not ahead.used:  # a hit: it waits for the next miss
                self._ahead = ahead
        if keep:
            return runner  # left on disk, as asked
        old = self._runners.pop(runner.key, None)
        if old is not None:
            old.remove()
        self._runners[runner.key] = runner
        return runner

    def warm(self) -> None:
        """Start the compiler of the next new submission now, while the user types
        (``engine.repl.ahead``); a no-op when one waits already."""
        self.settle()
        if self._ahead is not None:
            return
        from engine.repl.ahead import Ahead

        self._ahead = Ahead.start(self.spec, self.store)
        if self._ahead is not None:  # its thread's start (a wait of 0.3 to 3 ms) not then
            self._ahead.serve_links()

    def settle(self) -> None:
        """Cache the runners compiled since the last call (``compile``): a REPL does it after
        each run, before its prompt."""
        for runner in self._runners.values():
            runner.settle()

    def adopt(self, ahead: Ahead) -> None:
        """Take ``ahead``, a compiler of this session's ``spec`` started by someone else (the
        server's spare: ``engine.repl.ready``), as the next new submission's."""
        if self._ahead is not None:
            self._ahead.cancel()
        self._ahead = ahead

    def run(self, runner: Runner, *, stdin: int | IO[bytes] | None = None,
            stdout: int | IO[bytes] | None = None,
            stderr: int | IO[bytes] | None = None, timeout: float | None = None) -> Ended:
        """Run a runner in the workspace, with a fresh private temporary folder, for at most
        ``timeout`` seconds (None: until it ends or ^C)."""
        tmp = Path(tempfile.mkdtemp(prefix="tmp-", dir=runner.folder))
        self.works.mkdir(parents=True, exist_ok=True)  # before a guard's first look
        watch = self.guard(self.protect, [self.store.root, self.works]) if self.guard else None
        try:
            ended = child.run(runner.executable, self.works, tmp, stdin=stdin, stdout=stdout,
                              stderr=stderr, confine=self.confine, cache=self.store,
                              timeout=timeout, argv0=self.program)
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
        """Stop a compiler started ahead; cache the new runners (``settle``) and remove their
        temporary folders (not those kept with ``--keep-tmp``): served, after the answer
        (``engine.later.after_answer``: a Rust runner's rustc ends after the run)."""
        from engine import later

        if self._ahead is not None:
            self._ahead.cancel()
            self._ahead = None
        runners = list(self._runners.values())
        self._runners.clear()
        for runner in runners:
            later.after_answer(runner.remove)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
