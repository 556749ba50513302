"""A served ``recipe eval``, its compiler started ahead by the server.

``recipe repl`` starts the next submission's compiler (rustc and lld, or gcc) while the user
types (``engine.repl.ahead``). A served ``recipe eval`` is a fresh child of the server for each
command, so nothing of one eval waits for the next in its process; the server's spare child
(``engine.serving``), which waits for the next command, does it instead:

- an eval, served, notes its scope (the runner ``Spec`` and the store, plain data) after its
  answer, on a datagram channel the server made before its first spare and every child
  inherits;
- the spare waiting for the next command reads the note and starts the compiler (its source
  a FIFO) for that scope (``Ahead.start``), unless a command is already there;
- when the next command is an eval whose session has that very ``Spec`` in that store, its
  session is given the waiting compiler: only the submission's own compile is left. Anything
  else — another command, another project, a scope that changed (a new rlib is a new store
  path name, so a new ``Spec``), a cached submission, ``--keep-tmp`` — leaves the compiler
  unused, and it is stopped and its folder removed once the command answered (``end``); so
  is it when the spare leaves (idle, ``recipe server stop``, an upgrade) or refuses a caller.
  A spare that took a command sends its note on, so the spare after it prepares again.

The runner is the same either way (``engine.repl.ahead`` makes it bit for bit as a plain
compile does) and goes to the action cache under the same key. In-process there is no spare
and nothing is started ahead: ``adopt`` does nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

TYPE_CHECKING = False  # typing costs a repeated ``recipe eval`` milliseconds
if TYPE_CHECKING:
    import socket

    from engine.memo import Held
    from engine.repl.ahead import Ahead
    from engine.repl.session import Session
    from engine.store.peek import LazyStore

#: The channel's two ends, (read, write), made by ``open_channel`` in the server.
_channel: tuple[socket.socket, socket.socket] | None = None
_note: bytes | None = None  # the last note this process read (the scope it prepared for)
_ahead: Ahead | None = None  # the rustc waiting for that scope's next submission
_held: Held | None = None  # the eval's record, read and its closure held (``memo.hold``)
_store: LazyStore | None = None  # the store, opened
#: The last eval's arguments with None for its submission, its folder and environment: a
#: command with the same but the submission is fed to the rustc waiting at once (``early``).
_early: tuple[list[str | None], str, list[str | None]] | None = None
_sent: bytes | None = None  # this command's own note of its scope (``adopt``)
MAX_NOTE = 1 << 20


def open_channel() -> None:
    """In the server, before its first spare: the channel every child inherits (a datagram
    socket pair: a note is one message, never mixed with another's)."""
    import socket

    global _channel
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    for end in ends:
        end.setblocking(False)
    _channel = (ends[0], ends[1])


def wait(listener: socket.socket, alive: int, idle: float) -> list[object]:
    """The spare's wait for a connection (``listener``) or the server's end (``alive``), at
    most ``idle`` seconds (then ``[]``); a note read meanwhile starts its scope's compiler."""
    import select
    import time

    if _channel is None:
        return select.select([listener, alive], [], [], idle)[0]
    deadline = time.monotonic() + idle
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return []
        ready = select.select([listener, alive, _channel[0]], [], [], left)[0]
        if _channel[0] in ready:
            ready.remove(_channel[0])
            _read_notes(prepare=not ready)  # a caller waiting: it goes first
        if ready:
            return ready


def held() -> Held | None:
    """The record of the last eval, read and its closure held by the spare (``memo.recall``
    then checks only what may have changed since); None in-process."""
    return _held


def store(root: str) -> LazyStore:
    """The store at ``root``: the spare's, opened already, when it is that one."""
    if _store is not None and str(_store.root) == root:
        return _store
    from engine.store.peek import LazyStore

    return LazyStore(Path(root))


def early(argv: list[str], folder: int, env: list[bytes]) -> None:
    """Served, as soon as the caller's command is read (before this child takes on the caller's
    streams, folder and environment): when it is the last eval's but for its submission (the
    same words, folder — ``folder``, the caller's, open — and environment, ``env``'s
    ``NAME=value`` entries), give the submission to the rustc waiting now, so that it compiles
    while the command is taken on, reads its record and prepares its session. A guess:
    ``adopt`` takes the rustc only when the session's ``Spec`` is the one it was started for,
    and its ``finish`` only for the submission it was given; else it is stopped by ``end``
    (so is it when the caller is refused). A submission already in the action cache is not
    compiled. A command that is no eval stops it at once, on a thread beside the command (it
    must be stopped, and its folder removed, before the command answers)."""
    if _ahead is not None and "eval" not in argv:
        from engine import later

        later.soon(end_ahead)
        return
    if _ahead is None or _early is None or _store is None:
        return
    from engine.memo import ENVIRONMENT

    words, where, values = _early
    if len(argv) != len(words):
        return
    code = None
    for word, want in zip(argv, words, strict=True):
        if want is None:
            code = word
        elif word != want:
            return
    try:
        given = dict(os.fsdecode(entry).split("=", 1) for entry in env)
        if code is None or [given.get(n) for n in ENVIRONMENT] != values or \
                not os.path.samestat(os.fstat(folder), os.stat(where)):
            return
        from engine.repl.runner import check_code, runner_key

        check_code(code)
        if _store.get_action(runner_key(_ahead.spec, code)) is None:
            _ahead.feed(code)
    except Exception:  # noqa: BLE001 - a guess: the command compiles it the plain way
        end_ahead()


def adopt(session: Session, record: Path, code: str) -> None:
    """Served: give ``session`` the rustc started for its scope, if that is the one waiting;
    note its scope, its eval's ``record`` (``engine.memo``) and arguments (``code``: the
    submission's) for the next spare (after the answer). In-process: nothing."""
    global _ahead, _sent
    if _channel is None:  # in-process
        return
    if _ahead is not None and _ahead.spec == session.spec and \
            _ahead.folder.is_relative_to(session.store.state / "tmp"):
        session.adopt(_ahead)
        _ahead = None
    import marshal

    from engine.memo import ENVIRONMENT

    words: list[str | None] = list(sys.argv[1:])  # the command's (engine.serving sets them)
    at = next((i for i in range(len(words) - 1)
               if words[i] in ("-e", "--eval") and words[i + 1] == code), None)
    if at is not None:
        words[at + 1] = None
    note = marshal.dumps({"spec": dict(session.spec._asdict()),
                          "store": str(session.store.root), "record": str(record),
                          "early": None if at is None else (
                              words, os.getcwd(), [os.environ.get(n) for n in ENVIRONMENT])})
    _sent = note  # sent by ``end``, once the command answered


def end() -> None:
    """Once the command answered, or the spare leaves: stop a rustc nobody took and remove its
    folder; pass the note on unless the command sent its own."""
    global _note
    end_ahead()
    note, _note = _note, None
    if _sent is not None:
        _send(_sent)
    elif note is not None:
        _send(note)


def _read_notes(prepare: bool) -> None:
    """Read every note waiting (the last one counts); start its compiler (``prepare``) unless
    the one waiting is for it already."""
    global _note
    last = None
    while True:
        try:
            last = _channel[0].recv(MAX_NOTE)  # type: ignore[index]
        except OSError:  # none left
            break
    if last is None or last == _note and _ahead is not None:
        return
    end_ahead()
    _note = last
    if prepare:
        _prepare(last)


def end_ahead() -> None:
    """Stop the rustc waiting, if one does, and remove its folder."""
    global _ahead
    ahead, _ahead = _ahead, None
    if ahead is not None:
        ahead.cancel()


def _prepare(note: bytes) -> None:
    """Start rustc and lld for the note's scope; read its eval's record and hold its closure;
    open its store. What fails is left to the eval, which does it the plain way."""
    global _ahead, _held, _store, _early
    import marshal

    from engine import memo
    from engine.repl.ahead import Ahead
    from engine.repl.runner import Spec
    from engine.store.peek import LazyStore

    try:
        data = marshal.loads(note)
        opened = LazyStore(Path(data["store"]))
        if not (opened.state / "db.sqlite").is_file():
            return
        _ahead = Ahead.start(Spec(**data["spec"]), opened)  # type: ignore[arg-type]
        if _ahead is not None:
            _ahead.serve_links()
        _held = memo.hold(Path(data["record"]))
        opened.path  # noqa: B018 - opens the store (the runner's cache entry is written there)
        _store = opened
        _early = data["early"]
    except Exception:  # noqa: BLE001 - a store gone meanwhile: the eval does it the plain way
        pass


def _send(note: bytes) -> None:
    if _channel is None:
        return
    try:
        _channel[1].send(note)
    except OSError:  # a full queue (no spare reads): the next eval is compiled the plain way
        pass
