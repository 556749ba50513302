"""A warm recipe process that runs ``recipe eval`` for the command line (Bazel's server, in the
way of Android's zygote).

Python's start and recipe's imports cost a short command most of its time. ``recipe server
start`` leaves a process that has imported what ``recipe eval`` needs and waits on a Unix
socket. An ``eval`` then sends its arguments, environment, umask, working folder and standard
streams (as file descriptors) to it, and the server forks a child that takes all of them on and
runs the very same ``engine.cli.main.main`` a command runs in-process. So output goes straight
to the caller's streams, exit codes and errors are the same, and the child is a fresh process:
nothing of one command stays for the next. ^C in the caller is sent on; the child then stops
the submission as a command in-process does. No server, one that does not take the command
within ``_ANSWER`` seconds, a caller whose resource limits, control group, namespaces,
privileges or ignored signals differ from the server's, a closed standard stream, or
``RECIPE_SERVER=off``: the command runs in-process, as always.

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
    from collections.abc import Callable

# The caller's side uses the C modules behind ``socket`` and ``signal``: those two build their
# enums when imported, 6 ms of the 50 a repeated eval may take.
_PRELOAD = ("engine.memo", "engine.repl.session", "engine.repl.scope", "engine.build.reaper",
            "engine.store", "engine.store.store", "engine.store.peek", "engine.verify.landlock",
            "engine.verify.writeguard", "engine.documents.load", "engine.build.realise",
            "tempfile", "json", "subprocess")
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
            sock.settimeout(_ANSWER)
            sock.sendall(marshal.dumps({"identity": IDENTITY, "stop": True}))
            _read(sock, 1)
        finally:
            sock.close()


# -- the caller's side -------------------------------------------------------------------------

def forward(argv: list[str]) -> int | None:
    """Run ``recipe argv`` in the server; its exit code, or None when the command must run
    in-process (no server, another identity, a server about to leave: nothing was done)."""
    if _serving or os.environ.get("RECIPE_SERVER") == "off":
        return None
    found = connect()
    if found is None:
        return None
    sock = found[0]
    try:
        if sock.fileno() <= 2:  # a standard stream is closed: the socket would take its place
            return None
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

def serve(idle: float, main: Callable[[list[str]], int], warm: Callable[[], object]) -> None:
    """Serve until ``idle`` seconds pass without a request, a stop request, or a module of ours
    changes. Returns in the server; a child raises SystemExit with its command's exit code.
    ``main(argv)`` runs a command (``engine.cli.main.main``); ``warm()`` does once what each
    command would (build the parser). Both are given by ``engine.cli.server``: the server
    imports nothing of the command line, which imports it.

    A spare child is always forked ahead and waits in ``accept``: the fork is not part of any
    command's time. The spare alone decides whether a connection comes (so no command is ever
    cut short by the server leaving) and tells the server on a pipe: ``A``, it took one (fork
    the next spare); ``S``, the server must leave (stop, idle or stale)."""
    import gc
    import importlib
    import signal
    import socket

    global _serving
    _serving = True
    modules = _own_modules()  # before importing them: an upgrade meanwhile shows
    for name in _PRELOAD:  # what an eval imports, once for every child
        importlib.import_module(name)
    warm()  # and argparse's own lazy imports
    gc.freeze()  # a child's collections leave the server's objects (and their pages) alone
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.bind(address())  # OSError (EADDRINUSE) when one runs already
    listener.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    alive, keep = os.pipe()  # a spare sees its end (EOF) when the server is gone
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
    listener.close()


def _spare(listener: socket.socket, alive: int, told: int, idle: float,
           modules: dict[str, tuple[int, int]], main: object) -> int:
    """Wait for one connection (or ``idle``, or the server's end); become its command or
    refuse it."""
    import select
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # a command's children are its own to reap
    own = _limits("self")  # ahead of any caller
    ready = select.select([listener, alive], [], [], idle)[0]
    if listener not in ready:  # idle, or the server is gone
        try:
            os.write(told, b"S")
        except OSError:
            pass
        return 0
    conn, _ = listener.accept()
    listener.close()
    os.close(alive)
    conn.settimeout(5.0)  # a caller says everything at once; a mute one is dropped
    # Another user's bytes are never unmarshalled: marshal trusts what it reads.
    request, fds = _receive(conn) if _peer(conn)[1] == os.getuid() else (None, [])
    ours = request is not None and request.get("identity") == IDENTITY
    leave = _changed(modules) or (ours and request.get("stop"))  # type: ignore[union-attr]
    os.write(told, b"S" if leave else b"A")
    os.close(told)
    if not ours or leave or len(fds) != 4:
        _refuse(conn, fds)
        return 0
    conn.settimeout(None)
    return _child(conn, fds, request, main, own)


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


#: What a process passes on to the submission besides its arguments and environment: resource
#: limits, control group, namespaces, privileges and seccomp, ignored signals. A caller whose
#: differ from the server's (``ulimit``, ``systemd-run``, a sandbox, ``nohup``) runs in-process.
_STATUS = ("NoNewPrivs:", "Seccomp:", "SigIgn:", "Uid:", "Gid:", "Groups:", "Cpus_allowed:")
_NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")


def _same_limits(caller: int, own: tuple[object, ...]) -> bool:
    try:
        return _limits(str(caller)) == own
    except OSError:
        return False


def _limits(pid: str) -> tuple[object, ...]:
    def read(name: str) -> str:
        with open(f"/proc/{pid}/{name}") as f:
            return f.read()

    status = [line for line in read("status").splitlines() if line.startswith(_STATUS)]
    spaces = [os.stat(f"/proc/{pid}/ns/{name}").st_ino for name in _NAMESPACES]
    return read("limits"), read("cgroup"), status, spaces


def _child(conn: socket.socket, fds: list[int], request: dict, main: object,
           own: tuple[object, ...]) -> int:
    """Become the caller's command: its folder, streams, environment and umask; run it.
    Nothing is written to the caller's streams before it said ``G``."""
    import io
    import signal
    import threading
    import traceback

    try:
        if not _same_limits(_peer(conn)[0], own):
            _refuse(conn, fds)
            os._exit(0)
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
        go = _read(conn, 1) == b"G"
    except (OSError, KeyError, TypeError, ValueError):
        go = False
    if not go:  # the caller runs the command itself: nothing was done here
        os._exit(0)
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=_interrupted_by, args=(conn,), daemon=True).start()
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
        _answer(conn, int(code))
    return int(code)


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
    """The caller's ^C, or its end: as a ^C here."""
    import signal
    import threading

    try:
        data = conn.recv(1)
    except OSError:
        data = b""
    if data in (b"I", b""):
        # To the main thread itself: one this thread took would not end its blocking call.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def _own_modules() -> dict[str, tuple[int, int]]:
    """Stat data of every module and schema of recipe's, loaded or not: a child may import more.
    (An upgrade that only adds modules changes some that import them.)"""
    found = {}
    for folder, _dirs, files in os.walk(os.path.dirname(engine.__file__)):
        for name in files:
            if name.endswith((".py", ".json")):
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
