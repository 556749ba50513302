"""The spare child's copies of the server's memory pages, made while it waits.

A child forked from the server shares the server's pages copy-on-write: the first write to each
page — a reference count changed, an object made — copies it, a page fault of some 2.5 µs here.
A one-file edit's command wrote ~1,800 such pages, ~1,200 of them the server's, after the caller
was waiting for it. The spare copies every writable page of its own ahead instead
(``madvise(MADV_POPULATE_WRITE)``, Linux 5.14), on a thread of the idle scheduling class: only
a core nobody else wants does it, and it stops as soon as a command comes. The cost is memory:
the spare's pages are its own (~25 MB) rather than shared with the server.
"""

from __future__ import annotations

import os

_MADV_POPULATE_WRITE = 23
_SLICE = 1 << 20  # bytes copied per call
_stop = False


def copy_ahead() -> None:
    """Start copying (in the spare, before it waits)."""
    import _thread

    _thread.start_new_thread(_copy, ())


def stop() -> None:
    """A command came: leave the rest to its faults."""
    global _stop
    _stop = True


def _copy() -> None:
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
        if fields[1] != "rw-p":
            continue
        start, end = (int(bound, 16) for bound in fields[0].split("-"))
        # A slice at a time: the call holds the process's memory map, and a command that came
        # meanwhile waits for it to change its own (a thread's stack, a larger heap) — up to
        # ~20 ms for a whole 20 MB heap, one slice's ~0.3 ms now.
        for at in range(start, end, _SLICE):
            if _stop:
                return
            madvise(at, min(_SLICE, end - at), _MADV_POPULATE_WRITE)  # an error: faults
