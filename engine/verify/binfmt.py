"""``python -m engine.verify.binfmt --qemu PATH --machine ARCH [--write DIR]... -- ARGV...``:
run a foreign Linux program so that the programs of its architecture it starts run too.

binfmt_misc is what lets the kernel hand a foreign ELF file to qemu; the machine's own table is
not ours to change (and is often not mounted). Since Linux 6.7 a user namespace may mount an
instance of its own: this process enters a new user and mount namespace (its user and group
ids map to themselves), mounts binfmt_misc there, registers ``--qemu`` for the ELF machine of
``--machine`` with the ``F`` flag (the interpreter is opened now, so it is found whatever the
program's view of the file system), then restricts itself with Landlock to the ``--write``
folders (a mount is refused under Landlock: so this order) and executes ARGV. Anything of the
namespace that fails leaves ARGV to run as before, without binfmt_misc (children of the target
then fail as on a machine without it); ``--probe`` says whether it works here.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
BINFMT = "/proc/sys/fs/binfmt_misc"
# ELF machine numbers (e_machine) of the architectures qemu-user runs here, with the class
# (1: 32-bit, 2: 64-bit) and byte order (1: little, 2: big endian) of their programs.
MACHINES = {"aarch64": (183, 2, 1), "riscv64": (243, 2, 1), "arm": (40, 1, 1),
            "i386": (3, 1, 1), "ppc64le": (21, 2, 1), "s390x": (22, 2, 2),
            "loongarch64": (258, 2, 1), "mips64el": (8, 2, 1)}


def registration(name: str, qemu: str, machine: str) -> str:
    """The line binfmt_misc's ``register`` takes: ELF executables and position-independent
    ones (e_type 2 or 3) of ``machine``, to ``qemu``, opened at registration (F)."""
    number, bits, order = MACHINES[machine]
    kind = (2).to_bytes(2, "little" if order == 1 else "big")
    mach = number.to_bytes(2, "little" if order == 1 else "big")
    magic = b"\x7fELF" + bytes([bits, order, 1]) + bytes(9) + kind + mach
    mask = b"\xff" * 7 + b"\x00" + b"\xff" * 8 + \
        (b"\xfe\xff" if order == 1 else b"\xff\xfe") + b"\xff\xff"
    hexed = "".join(f"\\x{b:02x}" for b in magic), "".join(f"\\x{b:02x}" for b in mask)
    return f":{name}:M::{hexed[0]}:{hexed[1]}:{qemu}:F"


def enter(qemu: str, machine: str) -> None:
    """The new namespaces, binfmt_misc mounted in them and ``qemu`` registered (OSError when
    the kernel refuses any of it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare: {os.strerror(errno)}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    if libc.mount(b"binfmt_misc", BINFMT.encode(), b"binfmt_misc", 0, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount binfmt_misc: {os.strerror(errno)}")
    Path(BINFMT, "register").write_text(registration(f"recipe-{machine}", qemu, machine))


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    options, command = argv[:split], argv[split + 1:]
    qemu = options[options.index("--qemu") + 1]
    machine = options[options.index("--machine") + 1]
    writable = [Path(options[i + 1]) for i, o in enumerate(options) if o == "--write"]
    try:
        enter(qemu, machine)
    except OSError as error:
        if "--probe" in options:
            print(error, file=sys.stderr)
            return 1
    if "--probe" in options:
        return 0
    try:
        if "--write" in options:
            from engine.verify import landlock

            landlock.restrict_self(writable)  # a LandlockError is an OSError
        os.execv(command[0], command)
    except OSError as error:  # one line in the case's stderr, as a host case's CannotRun
        print(f"recipe: cannot run {command[0]}: {error.strerror or error}", file=sys.stderr)
        return 127
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
