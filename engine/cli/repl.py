"""recipe repl PLAN -p PROJECT: the interactive loop over a project's REPL scope.

A compile error or a crashing submission ends that submission, never the session; ^C stops
a running submission; %quit or Ctrl-D leave.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from engine.cli.eval import (
    EXIT_TIMEOUT,
    add_repl_options,
    check_timeout,
    open_session,
    stop_on_termination,
)
from engine.errors import RecipeError

if TYPE_CHECKING:
    from engine.repl.session import Session


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("repl", parents=[parent], help="an interactive compile-and-run "
                            "loop in a project's REPL scope")
    add_repl_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.repl.loop import COMMANDS, HELP, History, command, read_submission
    from engine.repl.session import history_file

    check_timeout(args)
    stop_on_termination()
    # Bytes that are not UTF-8 reach the submission check (one line, the session goes on)
    # instead of failing input() itself.
    if hasattr(sys.stdin, "reconfigure"):
        sys.stdin.reconfigure(errors="surrogateescape")
    with open_session(args) as session:
        history = History(history_file(session.works))
        print(f"recipe repl: {session.title}, workspace {session.works}; %help for help")
        try:
            while True:
                session.warm()  # the next submission's compiler starts while the user types
                try:
                    text = read_submission(input)
                except EOFError:
                    print()
                    break
                except KeyboardInterrupt:
                    print("^C")  # as an interactive shell: drop the line, prompt again
                    continue
                name = command(text)
                if name == "%quit":
                    break
                if name == "%help":
                    print(HELP)
                elif name is not None:
                    print(f"recipe: unknown command {name}; try one of {', '.join(COMMANDS)}")
                elif text.strip():
                    try:
                        _submit(session, text, args.keep_tmp, args.timeout)
                    except KeyboardInterrupt:  # between compiling and running
                        print("\nrecipe: interrupted", file=sys.stderr)
        finally:
            history.save()
    return 0


def _submit(session: Session, text: str, keep: bool, timeout: float | None) -> None:
    """Compile and run one submission; whatever goes wrong is said, and the loop goes on."""
    try:
        runner = session.compile(text, keep=keep)
    except KeyboardInterrupt:
        print("recipe: interrupted", file=sys.stderr)
        return
    except RecipeError as error:
        if error.detail:
            print(error.detail.rstrip("\n"), file=sys.stderr)
        print(f"recipe: {error.render()}", file=sys.stderr)
        return
    if runner.diagnostics:
        sys.stderr.write(runner.diagnostics)
    if keep:
        print(f"recipe: generated files kept in {runner.folder}", file=sys.stderr)
    sys.stdout.flush()
    try:
        ended = session.run(runner, timeout=timeout)
    except RecipeError as error:  # it wrote where it must not (seen without Landlock)
        print(f"recipe: {error.render()}", file=sys.stderr)
        return
    finally:
        session.settle()  # cached before the prompt: another command may run it next
    if ended.timed_out:
        print(f"recipe: timed out after {timeout:g} s; the submission and all it started were "
              f"killed (exit {EXIT_TIMEOUT})", file=sys.stderr)
    elif ended.interrupted:
        print("\nrecipe: interrupted", file=sys.stderr)
    elif ended.signal:
        print(f"recipe: the submission was killed by {ended.signal} (exit {ended.code})",
              file=sys.stderr)
    elif ended.exit:
        print(f"recipe: exit {ended.exit}", file=sys.stderr)
