"""A warm recipe process that runs ``recipe eval`` for the command line (Bazel's server, in the
way of Android's zygote).

Python's start and recipe's imports cost a short command most of its time. ``recipe server
start`` leaves a process that has imported what ``recipe eval`` needs and waits on a Unix
socket. An ``eval`` then sends its arguments, environment, umask, working folder and standard
streams (as file descriptors) to it, and the server forks a child that takes all of them on and
runs the very same ``engine.cli.main.main`` a command runs in-process. So output goes straight
to the caller's streams, exit codes and errors are the same, and the child is a fresh process:
nothing of one command stays for the next. ^C in the caller is sent on; the child then stops
the submission as a command in-process does. No server, or one that does not answer: the
command runs in-process, as always.

The socket is in Linux's abstract namespace, named after the user and a checksum of
``IDENTITY``: the Python, recipe's folder and version, and the environment that sets how Python
starts (locale, I/O encoding). Each side checks that the other runs as the same user
(``SO_PEERCRED``). The server refuses a caller of another identity, and refuses all and leaves
when one of its modules changed on disk (an upgrade). It leaves after ``idle`` seconds without a
request.

Protocol, one connection per command: the caller sends one message (marshal of ``identity``,
``argv``, ``env``, ``umask``) with descriptors stdin, stdout, stderr and the working folder. The
server answers ``b"A"`` (accepted) or ``b"R"`` (refused: run in-process; nothing was done). To
``b"A"`` the caller says ``b"G"`` (go), unless it gave up waiting (then it runs the command
itself), and the server's child then runs it and answers the exit code in 4 bytes. The caller
sends ``b"I"`` on ^C; closing its end means the same. A message ``{"identity": ..., "stop":
True}`` ends the server.
"""

from __future__ import annotations

import _signal
import _socket
import marshal
import os
import sys
import time

import engine

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

# The caller's side uses the C modules behind ``socket`` and ``signal``: those two build their
# enums when imported, 6 ms of the 50 a repeated eval may take.
_PRELOAD = ("engine.cli.eval", "engine.cli.common", "engine.cli.progress", "engine.memo",
            "engine.repl.session", "engine.repl.scope", "engine.store", "engine.store.store",
            "engine.store.peek", "engine.verify.landlock", "engine.verify.writeguard",
            "engine.documents.load", "engine.build.realise", "tempfile", "json", "subprocess")
_LOCALE = ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONPATH")
IDENTITY = repr((sys.executable, sys.version, os.path.dirname(engine.__file__),
                 engine.__version__, [os.environ.get(name) for name in _LOCALE]))
_serving = False  # in the server and its children: run every command here


_ANSWER = 10.0  # seconds a caller waits for a server to take its command, before running it


def address() -> str:
    digest = 0x811C9DC5  # FNV-1a: zlib's crc32 would cost an import
    for byte in IDENTITY.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"\0recipe-server-{os.getuid()}-{digest:08x}"


def _peer(sock: _socket.socket) -> tuple[int, int]:
    """The pid and uid of the process at the other end (``struct ucred``: pid, uid, gid)."""
    cred = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
    return int.from_bytes(cred[0:4], sys.byteorder), int.from_bytes(cred[4:8], sys.byteorder)


def connect() -> tuple[_socket.socket, int] | None:
    """A connection to this user's server of this identity, and its pid; None if none runs."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(address())
        pid, uid = _peer(sock)
    except OSError:
        sock.close()
        return None
    if uid != os.getuid():  # somebody else's socket under our name: never talk to it
        sock.close()
        return None
    return sock, pid


def running() -> int | None:
    """The pid of this user's server of this identity, if one runs."""
    found = connect()
    if found is None:
        return None
    found[0].close()
    return found[1]


def stop() -> None:
    """Ask the server to leave (it finishes no command of a caller: those are its children)."""
    found = connect()
    if found is not None:
        sock = found[0]
        try:
            sock.sendall(marshal.dumps({"identity": IDENTITY, "stop": True}))
            _read(sock, 1)
        finally:
            sock.close()


# -- the caller's side -------------------------------------------------------------------------

def forward(argv: list[str]) -> int | None:
    """Run ``recipe argv`` in the server; its exit code, or None when the command must run
    in-process (no server, another identity, a server about to leave: nothing was done)."""
    if _serving:
        return None
    found = connect()
    if found is None:
        return None
    sock = found[0]
    try:
        try:
            cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            umask = os.umask(0o022)
            os.umask(umask)
            message = marshal.dumps({"identity": IDENTITY, "argv": list(argv),
                                     "env": dict(os.environ), "umask": umask})
            fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in (0, 1, 2, cwd))
            sock.sendmsg([message], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        except OSError:
            return None  # a closed standard stream, say: in-process it is
        finally:
            os.close(cwd)
        # "A": a child took the command; "G" lets it go. A caller that gave up waiting has
        # closed its end instead, and a child that took the command late never runs it.
        sock.settimeout(_ANSWER)
        if _read(sock, 1) != b"A":
            return None
        sock.settimeout(None)
        try:
            sock.sendall(b"G")
        except OSError:
            return None
        return _await_code(sock)
    finally:
        sock.close()


def _await_code(sock: _socket.socket) -> int:
    def interrupt(_signum: int, _frame: object) -> None:
        try:
            sock.send(b"I")
        except OSError:
            pass

    previous = _signal.signal(_signal.SIGINT, interrupt)
    try:
        code = _read(sock, 4)
    finally:
        _signal.signal(_signal.SIGINT, previous)
    if len(code) != 4:
        from engine.errors import Failure

        raise Failure("the recipe server ended the command without an exit code",
                      "run it again; 'recipe server stop' runs commands in-process")
    return int.from_bytes(code, "little", signed=True)


def _read(sock: _socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except InterruptedError:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


# -- the server's side -------------------------------------------------------------------------

def serve(idle: float) -> None:
    """Serve until ``idle`` seconds pass without a request, a stop request, or a module of ours
    changes. Returns in the server; a child raises SystemExit with its command's exit code.

    A spare child is always forked ahead and waits in ``accept``: the fork is not part of any
    command's time. It tells the server on a pipe when it has taken a connection (``A``: fork
    the next spare) or that the server must leave (``S``)."""
    import gc
    import importlib
    import select
    import signal
    import socket

    from engine.cli.main import build_parser, main

    global _serving
    _serving = True
    for name in _PRELOAD:  # what an eval imports, once for every child
        importlib.import_module(name)
    build_parser(["eval"])  # and argparse's own lazy imports
    modules = _own_modules()
    gc.freeze()  # a child's collections leave the server's objects (and their pages) alone
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address())  # OSError (EADDRINUSE) when one runs already
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        taken, told = os.pipe()
        spare = os.fork()
        if spare == 0:
            os.close(taken)
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # ^C of a foreground 'server run'
            raise SystemExit(_spare(listener, told, modules, main))
        os.close(told)
        if not select.select([taken], [], [], idle)[0]:
            os.kill(spare, signal.SIGKILL)  # idle: it never took a connection
            os.close(taken)
            break
        said = os.read(taken, 1)
        os.close(taken)
        if said == b"S":
            break
        if said != b"A":  # the spare died before it took anything: do not spin
            time.sleep(0.1)
    listener.close()


def _spare(listener: socket.socket, told: int, modules: dict[str, tuple[int, int]],
           main: object) -> int:
    """Take one connection; become its command, or refuse it."""
    conn, _ = listener.accept()
    listener.close()
    request, fds = _receive(conn)
    ours = request is not None and request.get("identity") == IDENTITY and \
        _peer(conn)[1] == os.getuid()
    stale = _changed(modules)
    leave = stale or (ours and request.get("stop"))  # type: ignore[union-attr]
    os.write(told, b"S" if leave else b"A")
    os.close(told)
    if not ours or leave or len(fds) != 4:
        _refuse(conn, fds)
        return 0
    return _child(conn, fds, request, main)


def _receive(conn: socket.socket) -> tuple[dict | None, list[int]]:
    import socket

    try:
        message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 20, 4)
    except OSError:
        return None, []
    try:
        request = marshal.loads(message)
    except (EOFError, ValueError, TypeError):
        return None, fds
    return (request if isinstance(request, dict) else None), fds


def _refuse(conn: socket.socket | None, fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)
    if conn is not None:
        try:
            conn.send(b"R")
        except OSError:
            pass
        conn.close()


def _child(conn: socket.socket, fds: list[int], request: dict, main: object) -> int:
    """Become the caller's command: its folder, streams, environment and umask; run it."""
    import io
    import signal
    import threading

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.fchdir(fds[3])
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    for fd in fds:
        os.close(fd)
    os.environ.clear()
    os.environ.update(request["env"])
    os.umask(request["umask"])
    for name, fd, mode in (("stdin", 0, "r"), ("stdout", 1, "w"), ("stderr", 2, "w")):
        old = getattr(sys, name)
        setattr(sys, name, io.TextIOWrapper(
            io.FileIO(fd, mode, closefd=False), encoding=old.encoding, errors=old.errors,
            line_buffering=name == "stderr" or os.isatty(fd),
            write_through=name == "stderr"))
    sys.argv = ["recipe", *request["argv"]]
    conn.send(b"A")
    if _read(conn, 1) != b"G":  # the caller gave up, and runs the command itself
        return 0
    threading.Thread(target=_interrupted_by, args=(conn,), daemon=True).start()
    try:
        code = main(request["argv"])  # type: ignore[operator]
    except SystemExit as error:  # argparse's usage errors and --help
        code = error.code if isinstance(error.code, int) else 0 if error.code is None else 2
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the caller leaving now is no ^C
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass
    # Let go of the caller's streams before answering: whoever reads them to their end (a
    # pipe, $(recipe eval ...)) must not wait for this process's exit as well.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    try:
        conn.send(int(code).to_bytes(4, "little", signed=True))
    except OSError:
        pass
    return int(code)


def _interrupted_by(conn: socket.socket) -> None:
    """The caller's ^C, or its end: as a ^C here."""
    import signal

    try:
        data = conn.recv(1)
    except OSError:
        data = b""
    if data in (b"I", b""):
        os.kill(os.getpid(), signal.SIGINT)


def _own_modules() -> dict[str, tuple[int, int]]:
    """Stat data of every module of recipe's, loaded or not: a child may import more. (An
    upgrade that only adds modules changes some that import them.)"""
    found = {}
    for folder, _dirs, files in os.walk(os.path.dirname(engine.__file__)):
        for name in files:
            if name.endswith(".py"):
                st = os.stat(os.path.join(folder, name))
                found[os.path.join(folder, name)] = (st.st_mtime_ns, st.st_size)
    return found


def _changed(modules: dict[str, tuple[int, int]]) -> bool:
    for file, stamp in modules.items():
        try:
            st = os.stat(file)
        except OSError:
            return True
        if (st.st_mtime_ns, st.st_size) != stamp:
            return True
    return False
