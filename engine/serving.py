"""The server's side of ``recipe server`` (the protocol and the caller's side: ``engine.server``).

A warm process that has imported what recipe's commands need forks, for each caller, a child
that takes on the caller's streams, folder, environment and umask, and runs the command there.
"""

from __future__ import annotations

import os
import sys
import time

from engine import later, server, serving_ledger, serving_pages
from engine.repl import ready
from engine.server import IDENTITY, _peer, _read, address
from engine.serving_modules import Modules

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

#: Seconds from a command taken to the next spare's fork, when no other caller waits: past a
#: one-file edit's first milliseconds (~10 ms to its compile), which the fork held back.
_FORK_AFTER = 0.015


def serve(idle: float, main: Callable[[list[str]], int], warm: Callable[[], object]) -> None:
    """Serve until ``idle`` seconds pass without a request, a stop request, or a module of ours
    changes. Returns in the server; a child raises SystemExit with its command's exit code.
    ``main(argv)`` runs a command (``engine.cli.main.main``); ``warm()`` does once what each
    command would (build the parser). Both are given by ``engine.cli.server``: the server
    imports nothing of the command line, which imports it.

    A spare child is always forked ahead and waits in ``accept``: the fork is not part of any
    command's time. The spare alone decides whether a connection comes (so no command is ever
    cut short by the server leaving) and tells the server on a pipe: ``A``, it took one (fork
    the next spare); ``S``, the server must leave (stop, idle or stale). The next spare is
    forked ``_FORK_AFTER`` seconds after an ``A``, or as soon as another caller connects: the
    fork (~1.3 ms of the other core, the server's pages shared with the command's) slowed the
    command's own first milliseconds by about as much, before its first compiler started."""
    import gc
    import select
    import signal
    import socket

    server._serving = True
    modules = Modules()  # before importing them: an upgrade meanwhile shows
    warm()  # what the commands import, once for every child
    from engine import memo

    memo.KNOWN = modules.known(memo.RACY_NS)  # a record of a run takes them without a stat
    gc.freeze()  # a child's collections leave the server's objects (and their pages) alone
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address())  # OSError (EADDRINUSE) when one runs already
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    # A server started from a script run in the background (``cmd &`` ignores SIGINT and
    # SIGQUIT) still serves a terminal's callers: its children take what a terminal's command
    # has (SIGINT: by the spare), and a caller that ignores them runs in-process.
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    alive, keep = os.pipe()  # a spare sees its end (EOF) when the server is gone
    ready.open_channel()  # a served Rust eval's scope, for the next spare (engine.repl.ready)
    serving_ledger.open_ledger()  # what the commands cost (engine.serving_ledger)
    lost = 0  # spares in a row that died before saying anything
    while lost < 10:
        said, told = os.pipe()
        if os.fork() == 0:
            os.close(said)
            os.close(keep)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # ^C of a foreground 'server run'
            raise SystemExit(_spare(listener, alive, told, idle, modules, main))
        os.close(told)
        word = os.read(said, 1)
        os.close(said)
        if word == b"S":
            break
        lost = 0 if word == b"A" else lost + 1
        if lost:
            time.sleep(0.1)  # do not spin
        else:  # not beside the first milliseconds of the command just taken, unless needed
            select.select([listener], [], [], _FORK_AFTER)
    listener.close()


def _spare(listener: socket.socket, alive: int, told: int, idle: float,
           modules: Modules, main: object) -> int:
    """Wait for one connection (or ``idle``, or the server's end); become its command or
    refuse it."""
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a command's children are its own to reap
    own = _limits("self")  # ahead of any caller
    serving_pages.copy_ahead()
    if listener not in ready.wait(listener, alive, idle):  # idle, or the server is gone
        ready.end()
        try:
            os.write(told, b"S")
        except OSError:
            pass
        return 0
    conn, _ = listener.accept()
    serving_pages.stop()
    listener.close()
    os.close(alive)
    conn.settimeout(5.0)  # a caller says everything at once; a mute one is dropped
    # Another user's bytes are not even read.
    fields, fds = _receive(conn) if _peer(conn)[1] == os.getuid() else (None, [])
    ours = fields is not None and fields[:1] == [IDENTITY.encode()]
    leave = modules.changed() or (ours and fields[1:2] == [b"stop"])  # type: ignore[index]
    request = _request(fields) if ours and not leave else None
    if ours and not leave and fields[1:2] == [b"stats"]:  # type: ignore[index]
        conn.send(b"s" + serving_ledger.read())
    if request is not None and len(fds) == 4:  # a Rust eval's submission to its rustc, now
        ready.early(request["argv"], fds[3], request["env"])
    if leave:  # a rustc started ahead ends before the server says it stopped
        ready.end()
    os.write(told, b"S" if leave else b"A")
    os.close(told)
    if request is None or len(fds) != 4:
        _refuse(conn, fds)
        ready.end()
        return 0
    conn.settimeout(None)
    return _child(conn, fds, request, main, own)


def _receive(conn: socket.socket) -> tuple[list[bytes] | None, list[int]]:
    """The fields of the caller's message (``engine.server.encode``) and its descriptors."""
    import socket

    try:
        message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 4)
    except OSError:
        return None, []
    size = int.from_bytes(message[:4], "little")
    if len(message) < 4 or size > server.MAX_MESSAGE:
        return None, fds
    body = message[4:]
    while len(body) < size:  # a long environment comes in several reads
        chunk = _read(conn, min(size - len(body), 1 << 20))
        if not chunk:
            return None, fds
        body += chunk
    return server.decode(body), fds


def _request(fields: list[bytes]) -> dict | None:
    """A ``run`` message's umask, arguments and environment; None when it is not one."""
    try:
        if fields[1] != b"run":
            return None
        umask, count = int(fields[2]), int(fields[3])
        argv = [os.fsdecode(word) for word in fields[4:4 + count]]
        env = fields[4 + count:]
        if len(argv) != count or not all(b"=" in entry for entry in env):
            return None
    except (IndexError, ValueError):
        return None
    return {"umask": umask, "argv": argv, "env": env}


def _refuse(conn: socket.socket | None, fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    if conn is not None:
        try:
            conn.send(b"R")
        except OSError:
            pass
        conn.close()


#: What a process passes on to the submission besides its arguments and environment: resource
#: limits, control group, namespaces, privileges and seccomp, ignored signals. A caller whose
#: differ from the server's (``ulimit``, ``systemd-run``, a sandbox, ``nohup``) runs in-process.
_STATUS = ("NoNewPrivs:", "Seccomp:", "SigIgn:", "Uid:", "Gid:", "Groups:", "Cpus_allowed:")
_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


#: Signals Python ignores as it starts, whatever it inherited (and ``subprocess`` restores for
#: the programs it starts): a caller that is no Python (the native client) has them as it got
#: them, which makes no difference to the command.
_PYTHON_IGNORES = (1 << (13 - 1)) | (1 << (25 - 1))  # SIGPIPE, SIGXFSZ


def _ignored(line: str) -> str:
    return f"SigIgn: {int(line.split()[1], 16) & ~_PYTHON_IGNORES:x}"


def _same_limits(caller: int, own: tuple[object, ...]) -> bool:
    try:
        return _limits(str(caller)) == own
    except OSError:
        return False


def _limits(pid: str) -> tuple[object, ...]:
    def read(name: str) -> str:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()

    status = [_ignored(line) if line.startswith("SigIgn:") else line
              for line in read("status").splitlines() if line.startswith(_STATUS)]
    spaces = [os.stat(f"/proc/{pid}/ns/{name}").st_ino for name in _NAMESPACES]
    return read("limits"), read("cgroup"), status, spaces


def _child(conn: socket.socket, fds: list[int], request: dict, main: object,
           own: tuple[object, ...]) -> int:
    """Become the caller's command: its folder, streams, environment and umask; run it.
    Nothing is written to the caller's streams before it said ``G``."""
    import _thread
    import io
    import signal
    import traceback

    try:
        if not _same_limits(_peer(conn)[0], own):
            _refuse(conn, fds)
            _leave()
        # Taken: the caller's "G" is on its way while this child takes on the caller's folder,
        # streams and environment (~1 ms), instead of after. Nothing here writes to them; one
        # that fails (never seen) ends this child unanswered: the caller says so, nothing ran.
        conn.send(b"A")
        os.fchdir(fds[3])
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        os.environb.clear()
        os.environb.update(entry.split(b"=", 1) for entry in request["env"])
        os.umask(request["umask"])
        for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
            old = getattr(sys, name)
            setattr(sys, name, io.TextIOWrapper(
                io.FileIO(fd, mode, closefd=False), encoding=old.encoding, errors=old.errors,
                line_buffering=name == "stderr" or os.isatty(fd),
                write_through=name == "stderr"))
        sys.argv = ["recipe", *request["argv"]]
        go = _read(conn, 1) == b"G"
    except (OSError, KeyError, TypeError, ValueError):
        go = False
    if not go:  # the caller runs the command itself: nothing was done here
        _leave()
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # A process group of its own, as a command started from a shell has: the caller's ^C
        # (and hang-up) then reaches what the command started too, the build's reaper and
        # compilers, as a terminal's does in-process.
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
        # A bare thread: threading's start waits until the thread runs (~0.3 ms); this one
        # needs no waiting for at the exit either (it ends with the process).
        _thread.start_new_thread(_interrupted_by, (conn,))
        later.serving()  # a served eval's new runner cached after the answer (engine.later)
        try:
            code = main(request["argv"])  # type: ignore[operator]
        except SystemExit as error:  # argparse's usage errors and --help
            code = error.code if isinstance(error.code, int) else \
                0 if error.code is None else 2
    except KeyboardInterrupt:  # a ^C before main took it, or after it returned
        print("recipe: interrupted", file=sys.stderr)
        code = 130
    except BaseException:  # as Python reports what escapes it in-process
        traceback.print_exc()
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller leaving now is no ^C
        ready.end_ahead()  # a compiler started ahead that this command did not take: its folder
        _at_exit()  # is in the store, and the command has written all it writes when it answers
        _answer(conn, int(code))
    later.answered()
    ready.end()  # the note of the last eval's scope passed on to the next spare
    serving_ledger.add()  # the last: all this command cost, its caches included
    os._exit(int(code) & 0xFF)  # all that Python's exit does that one can see was done


def _leave() -> None:
    """End a child that ran no command (what it started ahead, and its temporary files)."""
    import atexit

    ready.end()
    atexit._run_exitfuncs()
    os._exit(0)


def _at_exit() -> None:
    """What Python does at exit that shows, before the caller hears the exit code (as it would
    in-process): wait for the command's threads, run its ``atexit`` functions (the store's
    locks let go, the user cache written)."""
    import atexit
    import threading

    try:
        threading._shutdown()  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - as Python's exit: it reports and goes on
        import traceback

        traceback.print_exc()
    atexit._run_exitfuncs()


def _answer(conn: socket.socket, code: int) -> None:
    """Flush, let go of the caller's streams (whoever reads them to their end, a pipe or
    ``$(recipe eval ...)``, must not wait for this process's exit too), send the exit code."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    try:
        conn.send(code.to_bytes(4, "little", signed=True))
    except OSError:
        pass


def _interrupted_by(conn: socket.socket) -> None:
    """The caller's ^C, SIGTERM and SIGHUP, each as that signal here; its end as a ^C. ^C and
    a hang-up go to the command's whole process group, as a terminal sends them (Linux gives a
    process-directed signal to the main thread first, so its blocking call ends); SIGTERM, as
    ``kill`` sends it, to the command alone."""
    import signal
    import threading

    signals = {b"I": signal.SIGINT, b"T": signal.SIGTERM, b"H": signal.SIGHUP}
    while True:
        try:
            data = conn.recv(1)
        except OSError:
            data = b""
        if data in signals or not data:
            number = signals.get(data, signal.SIGINT)
            if number != signal.SIGTERM and os.getpgrp() == os.getpid():
                os.killpg(os.getpgrp(), number)
            else:  # to the main thread itself: one this thread took would not end its wait
                signal.pthread_kill(threading.main_thread().ident or 0, number)
        if not data:
            return
