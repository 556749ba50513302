"""Work beside what follows whose result nobody waits for, and which is still done before the
command answers: writing the sources' digest cache while the build runs; removing the last
build's objects (``engine.build.kept_inputs``: ~100 links) while the first tool runs, or a build
folder whose inputs are not kept while the command goes on; an eval's record of its scope while
the submission compiles.

``soon`` runs it on a thread of its own; ``wait`` waits for every such thread. It runs at the
process's exit (``atexit``), which in-process is the answer; a command the server runs
(``engine.serving``) runs the exit functions before it sends its caller the exit code. So when
a command answers, it has finished writing in the project and the store: a script's
``rm -rf store``, ``tar`` or ``cp -r`` right after it never races the command's own writes.

One exception, ``after_answer``: a served ``recipe eval`` caches its new runner and removes its
folder after the answer, as a ``repl`` session does before its next prompt (a Rust runner's
rustc ends only after the run: ~5 ms of its teardown the eval's caller would wait for).
"""

from __future__ import annotations

import _thread
import functools

TYPE_CHECKING = False  # typing costs a repeated ``recipe eval`` milliseconds
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_pending: list[Any] = []  # a lock per thread started, held until its work ended
_guard = _thread.allocate_lock()
_waits = False  # ``wait`` is registered with atexit
#: Served (``engine.serving`` sets it): what ``after_answer`` was given; in-process None.
_after: list[tuple[Callable[..., Any], tuple[Any, ...]]] | None = None


def soon(work: Callable[..., Any], *args: Any) -> Callable[[], None]:
    """``work(*args)`` on a thread of its own, now; waited for before the command answers;
    what waits for it (a reader of the file it writes). A bare thread: ``threading``'s start
    waits until the thread runs (~0.3 ms, as long as a small file's write). What fails is a
    cache not written or a folder left for the store's next ``open``: it costs only time, and
    is not reported (the thread has no one to tell)."""
    global _waits
    done = _thread.allocate_lock()
    done.acquire()
    with _guard:
        _pending.append(done)
        if not _waits:
            import atexit

            atexit.register(wait)
            _waits = True
    _thread.start_new_thread(_run, (done, work, args))
    return functools.partial(_wait_for, done)


def _wait_for(done: Any) -> None:
    done.acquire()
    done.release()


def after_answer(work: Callable[..., Any], *args: Any) -> None:
    """``work(*args)`` now in-process; served, after the caller has its answer (``answered``).
    Only a served ``recipe eval``'s new runner (see above)."""
    if _after is None:
        work(*args)
    else:
        _after.append((work, args))


def putting_off() -> bool:
    """Whether ``after_answer`` put work off (what it reads must stay until it ran)."""
    return bool(_after)


def serving() -> None:
    """A served child, before it runs its command: ``after_answer`` puts work off."""
    global _after
    _after = []


def answered() -> None:
    """A served child, after it answered: what ``after_answer`` put off, in order. Nobody
    hears of a failure any more: each piece is a cache, and one that fails costs only time."""
    global _after
    work, _after = _after or [], None
    for job, args in work:
        try:
            job(*args)
        except Exception:  # noqa: BLE001, S112 - see above
            continue


def _run(done: Any, work: Callable[..., Any], args: tuple[Any, ...]) -> None:
    try:
        work(*args)
    except Exception:  # noqa: BLE001, S110 - see ``soon``
        pass
    finally:
        done.release()


def wait() -> None:
    """Until every piece of work ``soon`` started has ended."""
    while True:
        with _guard:
            if not _pending:
                return
            done = _pending.pop()
        _wait_for(done)
