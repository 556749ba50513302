"""What the server's commands cost: how many it ran and their CPU time (``recipe server status``).

The server ignores SIGCHLD, so the kernel reaps its children and their CPU time reaches no
process's ``getrusage``: without this, what a served command costs (its compilers included)
could not be known at all. Each child adds its own, with what it waited for (the build's reaper
and compilers), to a ledger shared by the server's children (a memfd made before the first
spare), as its very last act: the caches written after the caller heard the exit code count
too, and so does its work as a spare while it waited (its copies of the server's pages). A spare
that ran no command (idle, refused, or one that answered ``stats``) adds nothing. A ``stats``
request is answered from it (``engine.serving``); ``engine.server.stats`` asks.
"""

from __future__ import annotations

import os
import struct

_FORMAT = "<QQ"  # commands run, CPU nanoseconds
SIZE = struct.calcsize(_FORMAT)
_fd: int | None = None


def open_ledger() -> None:
    """In the server, before its first spare: the ledger its children inherit, zero."""
    global _fd
    _fd = os.memfd_create("recipe-served", os.MFD_CLOEXEC)  # no program a command runs sees it
    os.ftruncate(_fd, SIZE)


def add() -> None:
    """One command, and this process's CPU time and its waited-for children's."""
    if _fd is None:
        return
    import fcntl
    import resource

    cpu = sum(usage.ru_utime + usage.ru_stime for usage in
              (resource.getrusage(resource.RUSAGE_SELF),
               resource.getrusage(resource.RUSAGE_CHILDREN)))
    try:
        fcntl.lockf(_fd, fcntl.LOCK_EX)  # two commands may end at once
        try:
            count, nanoseconds = struct.unpack(_FORMAT, os.pread(_fd, SIZE, 0))
            os.pwrite(_fd, struct.pack(_FORMAT, count + 1,
                                       nanoseconds + round(cpu * 1e9)), 0)
        finally:
            fcntl.lockf(_fd, fcntl.LOCK_UN)
    except OSError:
        pass  # a figure for the status: never a reason for a command to fail


def read() -> bytes:
    """The ledger as ``stats`` answers it (``engine.server.stats`` reads it)."""
    return os.pread(_fd, SIZE, 0) if _fd is not None else bytes(SIZE)
