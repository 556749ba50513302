"""What a served command leaves for the next one: notes that the server's spare child reads
while it waits, to prepare what the next command would do first.

A command the server runs is a fresh child of it (``engine.serving``): nothing a command opened
or loaded is there for the next one. So a command notes, after its answer, what it used, on a
datagram channel the server made before its first spare and every child inherits (one note is
one message, never mixed with another's), and the spare waiting for the next command reads the
notes and prepares, by kind (the preparers are given by ``engine.serving``):

- ``store`` (``note_store``, by every command that opened a plan's store): the store opened
  ahead (``Store.open_ahead``: its database connected and checked, ~1.5 ms of a served
  one-file edit before its compile started);
- ``eval`` (``engine.repl.ready``): a served eval's scope, its compiler started ahead.

The last note of each kind counts. What is prepared is a guess that the next command takes only
where it is exactly what that command would make itself (the same store, its database not
replaced since; the same scope); anything else is left, and what runs (a compiler) is stopped
once the command answered (``end``). A spare that took a command passes the notes on, but for
the kinds the command sent itself, so that the spare after it prepares again. In-process there
is no channel and no spare: ``send`` does nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs a repeated ``recipe eval`` milliseconds
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from pathlib import Path

    #: A kind's preparer: ``prepare(note, previous)`` starts what the note asks for (``previous``:
    #: the note of that kind prepared before, or None); ``end()`` stops what nobody took.
    Preparer = tuple[Callable[[bytes, bytes | None], None], Callable[[], None]]

#: The channel's two ends, (read, write), made by ``open_channel`` in the server.
_channel: tuple[socket.socket, socket.socket] | None = None
_preparers: dict[str, Preparer] = {}
_notes: dict[str, bytes] = {}  # the last note of each kind this process read (and prepared)
_sent: set[str] = set()  # the kinds this command noted itself
MAX_NOTE = 1 << 20


def open_channel(preparers: dict[str, Preparer]) -> None:
    """In the server, before its first spare: the channel every child inherits, and what a
    spare does with each kind of note."""
    import socket

    global _channel
    ends = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    for end in ends:
        end.setblocking(False)
    _channel = (ends[0], ends[1])
    _preparers.update(preparers)


def served() -> bool:
    """Whether this process is a served command (a note it sends reaches a spare)."""
    return _channel is not None


def send(kind: str, note: bytes) -> None:
    """Note ``note`` of ``kind`` for the next spare, once the caller has its answer."""
    if _channel is None:  # in-process
        return
    from engine import later

    _sent.add(kind)
    later.after_answer(_send, kind, note)


def note_store(root: Path) -> None:
    """Served: note the store at ``root`` (absolute), which this command opened."""
    if _channel is not None:
        send("store", str(root).encode())


def wait(listener: socket.socket, alive: int, idle: float) -> list[object]:
    """The spare's wait for a connection (``listener``) or the server's end (``alive``), at
    most ``idle`` seconds (then ``[]``); notes read meanwhile are prepared."""
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
            _read(prepare=not ready)  # a caller waiting: it goes first
        if ready:
            return ready


def end() -> None:
    """Once the command answered, or the spare leaves: stop what was started ahead and not
    taken; pass the notes on but for the kinds this command sent itself."""
    for _prepare, stop in _preparers.values():
        try:
            stop()
        except Exception:  # noqa: BLE001, S110 - each kind's end is its own; the rest go on
            pass
    notes = dict(_notes)
    _notes.clear()
    for kind, note in notes.items():
        if kind not in _sent:
            _send(kind, note)


def _read(prepare: bool) -> None:
    """Read every note waiting (the last of each kind counts), and prepare each unless a
    caller is waiting (``prepare`` False: then they are only passed on)."""
    last: dict[str, bytes] = {}
    while True:
        try:
            message = _channel[0].recv(MAX_NOTE)  # type: ignore[index]
        except OSError:  # none left
            break
        kind, _, note = message.partition(b"\0")
        last[kind.decode(errors="replace")] = note
    for kind, note in last.items():
        previous = _notes.get(kind)
        _notes[kind] = note
        preparer = _preparers.get(kind)
        if prepare and preparer is not None:
            try:
                preparer[0](note, previous)
            except Exception:  # noqa: BLE001, S110 - a guess: the command does it the plain way
                pass


def _send(kind: str, note: bytes) -> None:
    if _channel is None:
        return
    try:
        _channel[1].send(kind.encode() + b"\0" + note)
    except OSError:  # a full queue (no spare reads): the next command does it all itself
        pass


def prepare_store(note: bytes, previous: bytes | None) -> None:
    """Open the noted store ahead, for the next command's ``Store.open`` of it."""
    from pathlib import Path

    from engine.store import Store

    Store.open_ahead(Path(note.decode()))


def end_store() -> None:
    """Nothing runs for a store opened ahead: an untaken one goes with the process."""
