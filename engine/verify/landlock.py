"""Landlock (Linux 5.13+, unprivileged): a case may read anything but write only below the
folders it is given (its scratch folder) and a few device files; not in /dev/shm (see
``_DEVICE_FOLDERS``).

How it is applied: Landlock restricts the calling *thread*, and whatever that thread forks
afterwards inherits the restriction. So a case is started from a fresh, short-lived thread that
restricts itself and then calls ``subprocess.Popen``: no Python runs between fork and exec
(``preexec_fn`` is unsafe in a threaded program), nothing has to be compiled, and the rest of
recipe stays unrestricted. Only raw syscalls through ctypes are used.

With ABI 6 and later the case is also kept from signalling any process outside its domain (a
stray ``kill(-1, SIGKILL)`` cannot take the user's session down).
"""

from __future__ import annotations

import ctypes
import os
import threading
from pathlib import Path

ENABLED = True  # tests switch it off to exercise the fallback (a write check after the run)

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import TypeVar

    T = TypeVar("T")

# Syscall numbers are the same on every architecture (they were added after the tables merged).
_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Access rights (include/uapi/linux/landlock.h). Reading and executing are not handled, so they
# stay allowed everywhere; every kind of write is handled, so it is denied but where allowed.
_WRITE_FILE = 1 << 1
_REMOVE_DIR, _REMOVE_FILE = 1 << 4, 1 << 5
_MAKE = sum(1 << bit for bit in range(6, 13))  # char, dir, reg, sock, fifo, block, sym
_REFER = 1 << 13  # ABI 2: link or rename across folders
_TRUNCATE = 1 << 14  # ABI 3
_SCOPE_SIGNAL = 1 << 1  # ABI 6

# Device files any program may write to; the folder of pseudo-terminals. Not /dev/shm: it is
# shared by every process of the machine, so a case could read-modify or delete another
# case's or another user's POSIX shared memory and semaphores there. The price: shm_open and
# sem_open (named objects) fail with EACCES in a case; anonymous shared memory (mmap
# MAP_SHARED|MAP_ANONYMOUS, memfd_create) and unnamed semaphores (sem_init) work. A private
# /dev/shm per case would need a mount namespace set up before the ruleset is enforced
# (Landlock forbids mounting), that is code between fork and exec.
_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/ptmx")
_DEVICE_FOLDERS = ("/dev/pts",)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # packed in the kernel's header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    """A ruleset could not be built or enforced."""


_abi: int | None = None
_libc: ctypes.CDLL | None = None


def abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when Landlock is unavailable (old
    kernel, disabled at boot, not Linux) or switched off."""
    global _abi, _libc
    if not ENABLED:
        return 0
    if _abi is None:
        try:
            _libc = ctypes.CDLL(None, use_errno=True)
            _libc.syscall.restype = ctypes.c_long
            _abi = max(0, int(_libc.syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                                            ctypes.c_uint32(_CREATE_RULESET_VERSION))))
        except (OSError, AttributeError):
            _abi = 0
    return _abi


def spawn(writable: Sequence[Path], start: Callable[[], T]) -> T:
    """Call ``start`` (which starts a process) in a fresh thread that may write only below
    ``writable``; its result or exception is handed back. Requires ``abi() > 0``."""
    version = abi()
    assert version > 0 and _libc is not None
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _restrict_this_thread(version, writable)
            result.append(start())
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            failure.append(error)

    thread = threading.Thread(target=run, name="case-spawn")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def restrict_self(writable: Sequence[Path]) -> None:
    """Let this (single-threaded) process and what it starts write only below ``writable``:
    for a runner that must set up its namespace first (a mount is refused under Landlock)."""
    version = abi()
    if version > 0:
        _restrict_this_thread(version, writable)


def _restrict_this_thread(version: int, writable: Sequence[Path]) -> None:
    dir_rights = _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE
    if version >= 2:
        dir_rights |= _REFER
    file_rights = _WRITE_FILE
    if version >= 3:
        dir_rights |= _TRUNCATE
        file_rights |= _TRUNCATE
    attr = _RulesetAttr(dir_rights, 0, _SCOPE_SIGNAL if version >= 6 else 0)
    # An older kernel takes a shorter struct: pass only the fields it knows.
    size = 24 if version >= 6 else 16 if version >= 4 else 8
    ruleset = _check(_call(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0)), "create a ruleset")
    try:
        for path in writable:
            _allow(ruleset, str(path), dir_rights, required=True)
        for device in _DEVICES:
            _allow(ruleset, device, file_rights, required=False)
        for folder in _DEVICE_FOLDERS:
            _allow(ruleset, folder, dir_rights, required=False)
        # Unprivileged processes may restrict themselves only once they cannot gain privileges;
        # this too is per thread, and the case inherits it (set-user-ID bits are ignored).
        _check(_call_prctl(), "set no_new_privs")
        _check(_call(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)),
               "enforce the ruleset")
    finally:
        os.close(ruleset)


def _allow(ruleset: int, path: str, rights: int, *, required: bool) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        if required:
            raise
        return
    try:
        if not os.path.isdir(path):
            rights &= _WRITE_FILE | _TRUNCATE  # a file takes only file rights
        rule = _PathBeneathAttr(rights, fd)
        _check(_call(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH),
                     ctypes.byref(rule), ctypes.c_uint32(0)), f"allow writes below {path}")
    finally:
        os.close(fd)


def _call(number: int, *args: object) -> int:
    assert _libc is not None
    return int(_libc.syscall(ctypes.c_long(number), *args))


def _call_prctl() -> int:
    assert _libc is not None
    return int(_libc.prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0),
                           ctypes.c_ulong(0), ctypes.c_ulong(0)))


def _check(value: int, what: str) -> int:
    if value < 0:
        errno = ctypes.get_errno()
        raise LandlockError(errno, f"Landlock: cannot {what}: {os.strerror(errno)}")
    return value
