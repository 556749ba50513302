"""Work whose result a command's caller does not wait for: the record of a run for the next
no-op (``engine.memo.remember``), removing a finished build's folder.

In-process, ``after_answer`` does the work at once, where it is asked for: the process's exit
is the answer. A command the server runs (``engine.serving``) answers its caller first — its
output flushed, its streams let go, the exit code sent — and then does what was put off, as
Bazel's server finishes writing its caches after the client has its result. What is put off
must be such that losing it costs only time (a cache), and such that doing it late is still
right: a record of a run checks, when it is written, that nothing it read has changed since.
"""

from __future__ import annotations

from engine import faults

TYPE_CHECKING = False  # typing costs a repeated ``recipe eval`` milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: A list while the server's child runs a command (``engine.serving`` sets it); else None.
_deferred: list[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None


def after_answer(work: Callable[..., Any], *args: Any) -> None:
    """``work(*args)``: now in-process, after the caller has its answer when served."""
    if _deferred is None:
        work(*args)
    else:
        _deferred.append((work, args))


def soon(work: Callable[..., Any], *args: Any) -> None:
    """``work(*args)`` beside what follows, its result wanted by nobody: after the caller has
    its answer when served; in-process, on a thread of its own now, which the process waits
    for at its exit (so nothing is left behind)."""
    if _deferred is None:
        import threading

        threading.Thread(target=work, args=args, name=getattr(work, "__name__", "soon")).start()
    else:
        _deferred.append((work, args))


def start() -> None:
    """Put off from now on (the server's child, before it runs the command)."""
    global _deferred
    _deferred = []


def run() -> None:
    """Do what was put off, in order (the server's child, after it answered). Nobody hears
    of a failure any more (the caller's streams are gone): each piece is a cache, and one that
    fails leaves the rest to be done."""
    global _deferred
    work, _deferred = _deferred or [], None
    if work:
        faults.point("later:run")  # a test's way to see that the answer came first
    for job, args in work:
        try:
            job(*args)
        except Exception:  # noqa: BLE001, S112 - see above: a cache not written, nothing lost
            continue
