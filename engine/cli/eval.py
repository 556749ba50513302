"""recipe eval PLAN -p PROJECT -e CODE: compile a submission in the project's scope and run it.

The submission's stdout and stderr are its own, streamed; its exit code is recipe's. A signal
that ended it is named on stderr, and the exit code is 128 + its number, as a shell says.

After an eval, a record beside the plan (``engine.memo``, kind ``eval``) keeps the prepared
session. While nothing it depended on changes, the next eval of the same project x target
starts from it: no document is loaded, nothing derived or realised, and a submission seen
before runs straight from the action cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from typing import Any

    from engine.repl.session import Session

#: Arguments that change nothing of the session a record keeps.
_PER_SUBMISSION = ("code", "keep_tmp", "json")


def add_repl_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by eval and repl."""
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    parser.add_argument("-p", "--project", dest="repl_project", required=True,
                        metavar="PROJECT", help="the project whose repl.scope the code sees")
    parser.add_argument("-t", "--target", dest="repl_target", metavar="TARGET",
                        help="the target to build for (default: the plan's first default)")
    parser.add_argument("--works", metavar="DIR", help="the workspace, $RECIPE_WORKS of the "
                        "submission (default: .recipe/works/<project> beside the plan)")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the generated runner source and print where it is")


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("eval", parents=[parent], help="compile and run a submission in a "
                            "project's REPL scope")
    add_repl_options(parser)
    from engine.cli.common import add_remote_options

    add_remote_options(parser)
    parser.add_argument("-e", "--eval", dest="code", required=True, metavar="CODE",
                        help="C or C++ statements, run in a block inside main()")
    parser.set_defaults(func=run)


def containment() -> dict[str, Any]:
    """Landlock where the kernel has it, else the write check after each run."""
    from engine.verify import landlock

    if landlock.abi() > 0:
        return {"confine": landlock.spawn}
    from engine.verify.writeguard import Guard

    return {"guard": Guard}


def open_session(args: argparse.Namespace) -> Session:
    """Check the input (before the store is touched), then realise and prepare the scope."""
    from engine.cli.common import action_cache, open_plan_and_store
    from engine.cli.progress import Progress
    from engine.repl.scope import check_project
    from engine.repl.session import Session

    def check(plan: Any) -> None:
        target = args.repl_target or plan.default_targets[0]
        check_project(plan, args.repl_project, target)

    # What open_plan_and_store checks: this one project (not every project of the plan).
    args.project = [args.repl_project]
    args.target = [args.repl_target] if args.repl_target else None
    plan, store = open_plan_and_store(args, before_store=check)
    # Off a terminal, stderr is the submission's alone: no "building ..." lines in it.
    progress = Progress(quiet=args.json or not sys.stderr.isatty())
    try:
        with action_cache(args, store) as cache:
            return Session.prepare(plan, store, args.repl_project, args.repl_target,
                                   works=Path(args.works) if args.works else None,
                                   reporter=progress, cache=cache, **containment())
    finally:
        progress.close()


def remembered_session(args: argparse.Namespace) -> Session:
    """The session of the record of an earlier eval, if it still holds; else a prepared one
    (recorded for the next eval)."""
    from engine import memo, watch

    request = memo.request_of(args, leave_out=_PER_SUBMISSION)
    started = time.time_ns()
    record = memo.recall(args.plan, "eval", request)
    if record is not None:
        from engine.repl.session import Session
        from engine.store.peek import LazyStore

        return Session.recall(record["session"], LazyStore(record["store"]), **containment())
    with watch.recording() as seen:
        session = open_session(args)
    scope = session.scope
    memo.remember(args.plan, "eval", request, started, seen, session.store.root, scope.closure,
                  scope.roots, session=session.memo())
    return session


def run(args: argparse.Namespace) -> int:
    from engine.repl.runner import check_code

    check_code(args.code)
    with remembered_session(args) as session:
        runner = session.compile(args.code, keep=args.keep_tmp)
        if runner.diagnostics:
            sys.stderr.write(runner.diagnostics)
        if args.keep_tmp:
            print(f"recipe: generated files kept in {runner.folder}", file=sys.stderr)
        if args.json:
            return _run_json(session, runner)
        sys.stdout.flush()
        stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.fileno()
        ended = session.run(runner, stdin=stdin)
    return report(ended)


def report(ended: Any) -> int:
    """One line on stderr when the submission did not end by itself; the exit code."""
    if ended.interrupted:
        print("recipe: interrupted", file=sys.stderr)
        return 130
    if ended.signal:
        print(f"recipe: the submission was killed by {ended.signal}", file=sys.stderr)
    return int(ended.code)


def _run_json(session: Any, runner: Any) -> int:
    import tempfile

    from engine.cli.common import print_json

    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        ended = session.run(runner, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        print_json({"stdout": out.read().decode(errors="replace"),
                    "stderr": err.read().decode(errors="replace"),
                    "exit": ended.exit, "signal": ended.signal, "cached": runner.cached,
                    "interrupted": ended.interrupted})
    return ended.code if not ended.interrupted else 130
