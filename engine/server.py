"""A warm recipe process that runs recipe's commands for the command line (Bazel's server, in the
way of Android's zygote).

Python's start and recipe's imports cost a short command most of its time. ``recipe server
start`` leaves a process that has imported what the commands need and waits on a Unix socket.
A command (every one but ``server`` and ``repl``: ``engine.cli.main.SERVED``) then sends its
arguments, environment, umask, working folder and standard streams (as file descriptors) to it,
and the server forks a child that takes all of them on and runs the very same
``engine.cli.main.main`` a command runs in-process. So output goes straight to the caller's
streams, exit codes and errors are the same, and the child is a fresh process: nothing of one
command stays for the next. ^C, SIGTERM and SIGHUP in the caller are sent on. The caller is
``recipe`` in Python (``forward``, which still pays Python's start) or the native client
(``engine.client``), which pays neither. No server, one that does not take the command within
``_ANSWER`` seconds, a caller whose resource limits, control group, namespaces, privileges or
ignored signals differ from the server's, a closed standard stream, or ``RECIPE_SERVER=off``:
the command runs in-process, as always.

The socket is in Linux's abstract namespace, named after the user and a checksum of
``IDENTITY``: the Python, recipe's folder and version, and the environment that sets how Python
starts (locale, I/O encoding). Each side checks that the other runs as the same user
(``SO_PEERCRED``). The server refuses a caller of another identity, and refuses all and leaves
when one of its modules changed on disk (an upgrade). It leaves after ``idle`` seconds without a
request.

Protocol, one connection per command, spoken by this module and by the native client
(``engine/client/recipe.c``): the caller sends one message (``encode``: length-prefixed fields
identity, ``run``, the umask, the arguments, the environment) with descriptors stdin, stdout,
stderr and the working folder. The server answers ``b"A"`` (accepted) or ``b"R"`` (refused: run
in-process; nothing was done). To ``b"A"`` the caller says ``b"G"`` (go), unless it gave up
waiting (then it runs the command itself), and the server's child then runs it and answers the
exit code in 4 bytes. The caller sends ``b"I"`` on ^C, ``b"T"`` on SIGTERM and ``b"H"`` on
SIGHUP (the child takes each as that signal); closing its end means ^C. A message of fields
identity, ``stop`` ends the server; one of fields identity, ``stats`` is answered ``b"s"`` and
two 8-byte little-endian numbers, the commands run and their CPU nanoseconds
(``engine.serving_ledger``).

This module is the protocol and the caller's side, imported by every command; the server's own
side (``serve``: the spare children, the checks of a caller, running its command) is
``engine.serving``, imported only by ``recipe server``.
"""

from __future__ import annotations

# The C modules behind ``socket`` and ``signal``: those two build their enums when imported, 6 ms
# of the 50 a repeated eval may take.
import _signal
import _socket
import os
import sys

import engine

_LOCALE = ("LANG", "LC_ALL", "LC_CTYPE", "PYTHONIOENCODING", "PYTHONUTF8", "PYTHONPATH")
IDENTITY = repr((sys.executable, sys.version, os.path.dirname(engine.__file__),
                 engine.__version__, [os.environ.get(name) for name in _LOCALE]))
#: In the server and its children (``engine.serving`` sets it): run every command here.
_serving = False


#: The signals a caller sends on to the server's child, and the byte that says each.
_RELAYED = {_signal.SIGINT: b"I", _signal.SIGTERM: b"T", _signal.SIGHUP: b"H"}
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
            sock.sendall(encode([IDENTITY.encode(), b"stop"]))
            _read(sock, 1)
        finally:
            sock.close()


def stats() -> tuple[int, float] | None:
    """The commands the server ran and their CPU seconds, compilers included
    (``engine.serving_ledger``); None if no server runs or it does not say."""
    found = connect()
    if found is None:
        return None
    sock = found[0]
    try:
        sock.settimeout(_ANSWER)
        sock.sendall(encode([IDENTITY.encode(), b"stats"]))
        answer = _read(sock, 17)
    except OSError:
        return None
    finally:
        sock.close()
    if len(answer) != 17 or answer[:1] != b"s":
        return None
    count = int.from_bytes(answer[1:9], "little")
    return count, int.from_bytes(answer[9:17], "little") / 1e9


# -- the message --------------------------------------------------------------------------------
# One format for the Python caller and the native one (engine/client/recipe.c): a 4-byte
# little-endian length of the rest, a 4-byte count of fields, then each field as a 4-byte length
# and its bytes. Fields: identity, verb (``run`` or ``stop``); for ``run``: the umask and the
# count of arguments in decimal, the arguments, then ``NAME=VALUE`` for each variable.

MAX_MESSAGE = 16 << 20  # bytes: a larger one is refused unread


def encode(fields: list[bytes]) -> bytes:
    body = len(fields).to_bytes(4, "little") + b"".join(
        len(field).to_bytes(4, "little") + field for field in fields)
    return len(body).to_bytes(4, "little") + body


def decode(body: bytes) -> list[bytes] | None:
    """The fields of a message's body (past its length), or None when it is not one."""
    if len(body) < 4:
        return None
    count, at, fields = int.from_bytes(body[:4], "little"), 4, []
    for _ in range(count):
        size = int.from_bytes(body[at:at + 4], "little")
        if at + 4 + size > len(body):
            return None
        fields.append(body[at + 4:at + 4 + size])
        at += 4 + size
    return fields if at == len(body) else None


def request(argv: list[str], umask: int) -> list[bytes]:
    """The fields of a ``run`` message from this process."""
    return [IDENTITY.encode(), b"run", str(umask).encode(), str(len(argv)).encode(),
            *map(os.fsencode, argv),
            *(name + b"=" + value for name, value in os.environb.items())]


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
            message = encode(request(argv, umask))
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
    """The command's exit code; meanwhile ^C, SIGTERM and SIGHUP go to the server's child (a
    signal this process ignores stays ignored, as it would in-process)."""
    relayed: list[int] = []

    def relay(signum: int, _frame: object) -> None:
        relayed.append(signum)
        try:
            sock.send(_RELAYED[signum])
        except OSError:
            pass

    previous = {}
    for signum in _RELAYED:
        if _signal.getsignal(signum) != _signal.SIG_IGN:
            previous[signum] = _signal.signal(signum, relay)
    try:
        code = _read(sock, 4)
    finally:
        for signum, handler in previous.items():
            _signal.signal(signum, handler)
    if len(code) != 4:
        if relayed:  # the signal ended the command before it could answer: end the same way
            _signal.signal(relayed[-1], _signal.SIG_DFL)
            os.kill(os.getpid(), relayed[-1])
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
