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
import functools
import sys
import time
from pathlib import Path

from engine import later

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from typing import Any

    from engine.repl.session import Session

#: Arguments that change nothing of the session a record keeps.
_PER_SUBMISSION = ("code", "keep_tmp", "json", "timeout")
MAX_TIMEOUT = 86400  # seconds: a day, as a case's timeout
EXIT_TIMEOUT = 124  # as timeout(1) says: the submission ran past --timeout and was killed


def add_repl_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by eval and repl."""
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    from engine.cli.common import add_selection

    add_selection(parser, single=True)
    parser.add_argument("--works", metavar="DIR", help="the workspace, $RECIPE_WORKS of the "
                        "submission (default: .recipe/works/<project> beside the plan)")
    parser.add_argument("--keep-tmp", action="store_true",
                        help="keep the generated runner source and print where it is")
    parser.add_argument("--timeout", type=float, metavar="SECONDS",
                        help="kill a submission (and all it started) that runs longer; exit "
                             f"{EXIT_TIMEOUT} (default: none, ^C stops it)")


def check_timeout(args: argparse.Namespace) -> None:
    if args.timeout is not None and not 0 < args.timeout <= MAX_TIMEOUT:  # nan fails too
        from engine.errors import UsageError

        raise UsageError(f"--timeout {args.timeout:g} is not a duration",
                         f"pass seconds above 0, at most {MAX_TIMEOUT} (a day)")


def stop_on_termination() -> None:
    """From now on SIGTERM and SIGHUP (unless ignored, as under ``nohup``) raise ``Terminated``:
    a compile or a submission is stopped, temporary folders go, and recipe exits 128 + n.
    While a submission runs, ``engine.repl.child`` takes them itself (race-free, as ^C)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def terminated(signum: int, _frame: object) -> None:
        from engine.errors import Terminated

        raise Terminated(signum)

    for number in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, terminated)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("eval", parents=[parent], help="compile and run a submission in a "
                            "project's REPL scope")
    add_repl_options(parser)
    from engine.cli.realise import add_remote_options

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
    from engine.repl import ready

    request = memo.request_of(args, leave_out=_PER_SUBMISSION)
    started = time.time_ns()
    record = memo.recall(args.plan, "eval", request, held=ready.held())
    if record is not None:
        from engine.repl.session import Session

        return Session.recall(record["session"], ready.store(record["store"]), **containment())
    with watch.recording() as seen:
        session = open_session(args)
    scope = session.scope
    later.soon(functools.partial(  # beside the submission's compile (engine.later)
        memo.remember, args.plan, "eval", request, started, seen, session.store.root,
        scope.closure, scope.roots, session=session.memo()))
    return session


def run(args: argparse.Namespace) -> int:
    from engine.repl.runner import check_code

    check_code(args.code)
    check_timeout(args)
    stop_on_termination()
    with remembered_session(args) as session:
        from engine import memo
        from engine.repl import ready

        # served: the compiler the server started ahead, if it fits
        ready.adopt(session, memo.record_file(args.plan, "eval", memo.request_of(
            args, leave_out=_PER_SUBMISSION)), args.code)
        runner = session.compile(args.code, keep=args.keep_tmp)
        if runner.diagnostics:
            sys.stderr.write(runner.diagnostics)
        if args.keep_tmp:
            print(f"recipe: generated files kept in {runner.folder}", file=sys.stderr)
        if args.json:
            return _run_json(session, runner, args.timeout)
        sys.stdout.flush()
        stdin = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.fileno()
        ended = session.run(runner, stdin=stdin, timeout=args.timeout)
    return report(ended, args.timeout)


def report(ended: Any, timeout: float | None = None) -> int:
    """One line on stderr when the submission did not end by itself; the exit code."""
    if ended.timed_out:
        print(f"recipe: timed out after {timeout:g} s; the submission and all it started "
              "were killed", file=sys.stderr)
        return EXIT_TIMEOUT
    if ended.interrupted:
        print("recipe: interrupted", file=sys.stderr)
        return 130
    if ended.signal:
        print(f"recipe: the submission was killed by {ended.signal}", file=sys.stderr)
    return int(ended.code)


def _run_json(session: Any, runner: Any, timeout: float | None) -> int:
    """Capture stdout and stderr through pipes, keeping up to the cap of process cases of
    each; the rest is read and dropped (the submission is not stopped), and ``capped`` names
    the streams that passed it."""
    import os
    import threading

    from engine.cli.common import print_json
    from engine.verify.process import CAP

    kept = {"stdout": bytearray(), "stderr": bytearray()}
    capped: list[str] = []

    def drain(name: str, fd: int) -> None:
        buf = kept[name]
        try:
            while chunk := os.read(fd, 1 << 16):
                room = CAP - len(buf)
                if room > 0:
                    buf += chunk[:room]
                if len(chunk) > room and name not in capped:
                    capped.append(name)
        finally:
            os.close(fd)

    pipes = {name: os.pipe() for name in kept}
    readers = [threading.Thread(target=drain, args=(name, ends[0]), daemon=True)
               for name, ends in pipes.items()]
    for reader in readers:
        reader.start()
    try:
        ended = session.run(runner, stdout=pipes["stdout"][1], stderr=pipes["stderr"][1],
                            timeout=timeout)
    finally:
        for _, write_end in pipes.values():
            os.close(write_end)
    for reader in readers:
        reader.join(2.0)  # something that escaped the submission's group may hold a pipe
    print_json({"stdout": bytes(kept["stdout"]).decode(errors="replace"),
                "stderr": bytes(kept["stderr"]).decode(errors="replace"),
                "exit": ended.exit, "signal": ended.signal, "cached": runner.cached,
                "interrupted": ended.interrupted, "timed_out": ended.timed_out,
                "capped": sorted(capped)})
    return EXIT_TIMEOUT if ended.timed_out else 130 if ended.interrupted else ended.code
