"""The spare child's copies of the server's memory pages, made while it waits.

A child forked from the server shares the server's pages copy-on-write: the first write to each
page — a reference count changed, an object made — copies it, a page fault of some 2.5 µs here.
A one-file edit's command wrote ~1,800 such pages, ~1,200 of them the server's, after the caller
was waiting for it. The spare copies every writable page of its own ahead instead
(``madvise(MADV_POPULATE_WRITE)``, Linux 5.14), on a thread of the idle scheduling class: only
a core nobody else wants does it, and it stops as soon as a command comes. The cost is memory:
the spare's pages are its own (~25 MB) rather than shared with the server.

The copies wait until the command whose taking made this spare has ended: an idle core is not
idle memory, and 25 MB copied beside that command's compilers competes with them for it (one
``.c`` edited, served, two installs side by side: 3 ms faster in two alternations of 40 and 60,
no different in a third).
"""

from __future__ import annotations

import os

_MADV_POPULATE_WRITE = 23
_stop = False


def copy_ahead(busy: int = -1) -> None:
    """Start copying (in the spare, before it waits) once the process of pidfd ``busy`` has
    ended (-1: now); the thread closes ``busy``."""
    import _thread

    _thread.start_new_thread(_copy, (busy,))


def stop() -> None:
    """A command came: leave the rest to its faults."""
    global _stop
    _stop = True


def _copy(busy: int) -> None:
    if busy >= 0:
        import select

        try:
            select.select([busy], [], [])  # readable when that process has ended
        except (OSError, ValueError):
            pass  # copy now
        finally:
            os.close(busy)
        if _stop:  # this spare took a command meanwhile
            return
    try:
        import ctypes

        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # this thread only
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        with open("/proc/self/maps") as maps:
            lines = maps.read().splitlines()
    except (OSError, AttributeError, ImportError):  # not Linux, or no idle class: faults
        return
    for line in lines:
        fields = line.split()
        if _stop:
            return
        if fields[1] != "rw-p":
            continue
        start, end = (int(bound, 16) for bound in fields[0].split("-"))
        madvise(start, end - start, _MADV_POPULATE_WRITE)  # an error (an old kernel): faults
