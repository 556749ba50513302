"""recipe server start|stop|status|run: the warm process that runs ``recipe eval`` (see
``engine.server``)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

from engine import server
from engine.cli.common import print_json
from engine.errors import Failure, UsageError

IDLE = 3 * 3600  # seconds, as Bazel's server
MAX_IDLE = 365 * 86400
_WAIT = 30.0  # seconds for a server to come up or go


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("server", parents=[parent], help="a warm process that runs "
                            "'recipe eval' without Python's start (start, stop, status)")
    parser.add_argument("action", choices=("start", "stop", "status", "run"),
                        help="start it in the background; stop it; say whether it runs; run "
                             "it in the foreground")
    parser.add_argument("--idle", type=float, default=IDLE, metavar="SECONDS",
                        help=f"leave after this long without a request (default {IDLE})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.idle <= MAX_IDLE:  # nan too: the server's waits take none of these
        raise UsageError(f"--idle {args.idle:g} is not a duration",
                         f"pass seconds above 0, at most {MAX_IDLE} (a year)")
    pid = server.running()
    if args.action == "status":
        return _say(args, pid, f"running (pid {pid})" if pid else "not running")
    if args.action == "stop":
        if pid is None:
            return _say(args, None, "not running")
        server.stop()
        _wait_for(lambda: server.running() is None, "stop")
        return _say(args, None, f"stopped (pid {pid})")
    if pid is not None:
        return _say(args, pid, f"already running (pid {pid})")
    if args.action == "run":
        from engine.cli.main import main
        from engine.serving import serve

        try:
            serve(args.idle, main, _warm)
        except OSError as error:
            raise UsageError(f"cannot serve: {error.strerror or error}",
                             "is another server starting?") from None
        return 0
    argv = [sys.executable, "-m", "engine.cli.main", "server", "run", "--idle", str(args.idle)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, cwd="/")
    _wait_for(lambda: proc.poll() is not None or server.running() is not None, "start")
    if proc.returncode is not None:
        raise Failure(f"the server did not start (exit {proc.returncode})",
                      "run 'recipe server run' to see why")
    return _say(args, proc.pid, f"running (pid {proc.pid}); it leaves after "
                                f"{args.idle:g} s without a request")


def _warm() -> None:
    """What a served eval needs of the command line, imported once for all of its children."""
    import importlib

    from engine.cli.main import build_parser

    for name in ("engine.cli.common", "engine.cli.progress"):
        importlib.import_module(name)
    build_parser(["eval"])  # engine.cli.eval, and argparse's own lazy imports


def _wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT
    while not done():
        if time.monotonic() > deadline:
            raise Failure(f"the server did not {what} within {_WAIT:g} s",
                          "see 'recipe server status'")
        time.sleep(0.02)


def _say(args: argparse.Namespace, pid: int | None, text: str) -> int:
    if args.json:
        print_json({"running": pid is not None and args.action != "stop", "pid": pid})
    else:
        print(f"recipe server: {text}")
    return 0

