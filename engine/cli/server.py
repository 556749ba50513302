"""recipe server start|stop|status|run|client-dir: the warm process that runs recipe's commands
(see ``engine.server``), and its native client (``engine.client``)."""

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
_STALE = 5.0  # seconds for a server whose files changed to go (``_gone_stale``)


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("server", parents=[parent], help="a warm process that runs "
                            "recipe's commands without Python's start (start, stop, status, "
                            "client-dir)")
    parser.add_argument("action", choices=("start", "stop", "status", "run", "client-dir"),
                        help="start it in the background; stop it; say whether it runs; run "
                             "it in the foreground; print the folder of the native client "
                             "'recipe' (compiled there first if need be), to put first on "
                             "PATH")
    parser.add_argument("--idle", type=float, default=IDLE, metavar="SECONDS",
                        help=f"leave after this long without a request (default {IDLE})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not 0 < args.idle <= MAX_IDLE:  # nan too: the server's waits take none of these
        raise UsageError(f"--idle {args.idle:g} is not a duration",
                         f"pass seconds above 0, at most {MAX_IDLE} (a year)")
    if args.action == "client-dir":
        from engine import client

        where = client.ensure()
        if args.json:
            print_json({"client_dir": str(where)})
        else:
            print(where)
        return 0
    pid = server.running()
    if args.action == "status":
        served = server.stats() if pid else None
        text = f"running (pid {pid})" if pid else "not running"
        if served is not None:
            text += f"; {served[0]} commands served, {served[1]:.3f} s of CPU"
        return _say(args, pid, text, served=served)
    if args.action == "stop":
        if pid is None:
            return _say(args, None, "not running")
        server.stop()
        _wait_for(lambda: server.running() is None, "stop")
        return _say(args, None, f"stopped (pid {pid})")
    if pid is not None and server.stats() is None:
        pid = _gone_stale()
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
    client = _client()
    return _say(args, proc.pid, f"running (pid {proc.pid}); it leaves after "
                                f"{args.idle:g} s without a request" +
                ("" if client is None else f"\nrecipe server: native client {client}/recipe "
                 "(export PATH=\"$(recipe server client-dir):$PATH\")"), client)


def _client() -> str | None:
    """The native client's folder, compiled if need be; None (and why, on stderr) when it
    cannot be: the server serves the Python command all the same."""
    from engine import client
    from engine.errors import RecipeError

    try:
        return str(client.ensure())
    except RecipeError as error:
        print(f"recipe server: no native client: {error.render()}", file=sys.stderr)
        return None


#: What the served commands import as they run (besides their command-line modules), imported
#: once in the server for all of its children: each costs a command nothing then. Measured by
#: the modules new in ``sys.modules`` after realise (no-op, a build), verify, show, validate, why,
#: graph, doctor, lock, check, eval and a realise from a remote cache: about 35 MB more of the
#: server's memory, shared by its children (``gc.freeze``) until they write to it.
WARM = ("engine.memo", "engine.repl.session", "engine.repl.scope", "engine.build.reaper",
        "engine.store", "engine.store.store", "engine.store.peek", "engine.verify.landlock",
        "engine.verify.writeguard", "engine.documents.load", "engine.documents.cached",
        "engine.build.realise", "engine.cli.noop", "engine.cli.review", "engine.derive.crates",
        "engine.derive.crate_actions", "engine.derive.crate_graph", "engine.derive.explain",
        "engine.crates.registry", "engine.verify.report", "engine.verify.runner",
        "engine.verify.job", "engine.verify.harness", "engine.verify.eval", "engine.verify.early",
        "engine.verify.function", "engine.verify.table", "engine.verify.difftool",
        "engine.verify.orphans", "engine.release.check", "engine.toolchain.machine",
        "engine.schema", "engine.documents.schema", "_sha256", "hashlib", "pickle", "socket",
        "array", "mmap", "tabulate", "tomllib", "regex", "ruamel.yaml", "pathspec",
        "importlib.metadata", "email.utils", "zipfile", "platform", "tempfile", "json",
        "subprocess", "yaml", "encodings.utf_8_sig",
        # The shared cache's client: a served fresh clone with --remote-cache took 0.115 s
        # with them imported by the child, 0.076 s with them here. Importing them creates no
        # connection, thread or socket (a test checks): each command makes its own after the
        # fork.
        "engine.remote.combined", "engine.remote.http", "engine.remote.paths",
        "engine.remote.results", "http.client", "ssl")
#: Imported too where they can be: the protobuf runtime and REAPI's messages (the ``distributed``
#: extra), which a remote cache's first action-cache entry needs (~25 ms), and what reads the
#: schemas (``importlib.resources``), whose modules differ from one Python to the next.
WARM_OPTIONAL = ("engine.remote.remote_execution_pb2", "google.protobuf.message",
                 "importlib.resources.readers", "importlib.readers")


def _warm() -> None:
    """What served commands need, imported once for all of the server's children."""
    import importlib

    from engine.cli.main import SERVED, build_parser

    for name in ("engine.cli.common", "engine.cli.progress", *WARM):
        importlib.import_module(name)
    for name in WARM_OPTIONAL:
        try:
            importlib.import_module(name)
        except ImportError:  # without the extra: a remote cache's command says so itself
            pass
    # The reaper every build and case runs its programs under, in a memfd that every child
    # inherits: a child loaded it itself (0.8 MB read and hashed, ~1.5 ms before a build's
    # first compile could start). Taken from the user's cache; built there the first time.
    from engine.build import reaper

    reaper.executable()
    for command in SERVED:  # each command's parser, and argparse's own lazy imports
        build_parser([command])
    build_parser([])  # all of them: --help, --version, a mistyped command
    # A parse of each shape of command line compiles the patterns argparse matches arguments
    # with (``re``'s cache), once for every child. Parsing runs nothing.
    for words in (["realise", "p.yaml", "-j", "2"], ["verify", "p.yaml", "-k", "x"],
                  ["eval", "p.yaml", "-p", "x", "-e", "c"], ["show", "p.yaml", "--json"]):
        try:
            build_parser(words).parse_args(words)
        except SystemExit:  # an option renamed since: only a cache goes unfilled
            pass


def _gone_stale() -> int | None:
    """A server of this identity that does not answer a question: one whose files changed since
    it started (recipe reinstalled in place), which leaves when asked anything, and would have
    left at the next command, run in-process then; it is gone within milliseconds. Until it is
    gone, or for ``_STALE`` seconds (then it is a busy server that answered late): its pid, or
    None once it is gone. (Each look is a connection the server's spare takes: not too many.)"""
    deadline = time.monotonic() + _STALE
    while (pid := server.running()) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    return pid


def _wait_for(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _WAIT
    while not done():
        if time.monotonic() > deadline:
            raise Failure(f"the server did not {what} within {_WAIT:g} s",
                          "see 'recipe server status'")
        time.sleep(0.02)


def _say(args: argparse.Namespace, pid: int | None, text: str,
         client: str | None = None, served: tuple[int, float] | None = None) -> int:
    if args.json:
        print_json({"running": pid is not None and args.action != "stop", "pid": pid,
                    **({"client_dir": client} if args.action == "start" else {}),
                    **({"commands": served[0], "cpu_seconds": round(served[1], 6)}
                       if served is not None else {})})
    else:
        print(f"recipe server: {text}")
    return 0

