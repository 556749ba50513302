"""qemu user mode for Linux programs of another architecture (Debian: ``qemu-user``).

A static (musl) program runs as it is; a glibc one needs the target's libc, which Debian's
``libc6-<arch>-cross`` installs below ``/usr/<gnu triplet>`` (given to qemu with ``-L``). Exit
codes, streams and fatal signals pass through; qemu's own line about the signal is removed from
stderr, so that what is compared is what the program printed. Its CPU costs 4 to 5.5 x the
host's: timeouts are scaled by 5.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import sys
from pathlib import Path

from engine import watch
from engine.verify.binfmt import MACHINES
from engine.verify.outcome import Observed
from engine.verify.runners.base import NoRunner, Runner

FACTOR = 5.0
# zig's architecture name -> (qemu's, Debian's architecture, the GNU triplet of its cross libc)
ARCHES = {
    "aarch64": ("aarch64", "arm64", "aarch64-linux-gnu"),
    "aarch64_be": ("aarch64_be", None, None),
    "arm": ("arm", "armhf", "arm-linux-gnueabihf"),
    "armeb": ("armeb", None, None),
    "thumb": ("arm", "armhf", "arm-linux-gnueabihf"),
    "riscv64": ("riscv64", "riscv64", "riscv64-linux-gnu"),
    "riscv32": ("riscv32", None, None),
    "x86": ("i386", "i386", "i686-linux-gnu"),
    "x86_64": ("x86_64", "amd64", "x86_64-linux-gnu"),
    "powerpc64le": ("ppc64le", "ppc64el", "powerpc64le-linux-gnu"),
    "powerpc64": ("ppc64", "ppc64", "powerpc64-linux-gnu"),
    "powerpc": ("ppc", "powerpc", "powerpc-linux-gnu"),
    "s390x": ("s390x", "s390x", "s390x-linux-gnu"),
    "mips64el": ("mips64el", "mips64el", "mips64el-linux-gnuabi64"),
    "mipsel": ("mipsel", "mipsel", "mipsel-linux-gnu"),
    "mips": ("mips", "mips", "mips-linux-gnu"),
    "loongarch64": ("loongarch64", "loong64", "loongarch64-linux-gnu"),
    "sparc64": ("sparc64", "sparc64", "sparc64-linux-gnu"),
    "m68k": ("m68k", "m68k", "m68k-linux-gnu"),
}
_SIGNAL_LINE = re.compile(rb"^qemu: uncaught target signal \d+ \([^)]*\)[^\n]*\n?", re.M)


def runner(triple: str) -> Runner | NoRunner:
    arch = triple.split("-")[0]
    qemu_arch, debian, gnu = ARCHES.get(arch, (arch, None, None))
    name = f"qemu-{qemu_arch}"
    program = watch.which(name) or watch.which(f"{name}-static")
    if program is None:
        return NoRunner(f"no runner for {triple} ({name} is not installed: "
                        "apt-get install qemu-user)")
    # qemu writes the target's core file itself (often large) unless core dumps are off.
    prlimit = watch.which("prlimit")
    prefix: tuple[str, ...] = (prlimit, "--core=0", program) if prlimit else (program,)
    env: dict[str, str] = {}
    abi = triple.split("-")[2] if triple.count("-") >= 2 else ""
    if abi.startswith("gnu"):
        sysroot = Path("/usr") / gnu if gnu else None
        if sysroot is not None:
            watch.seen(sysroot / "lib")
        if sysroot is None or not (sysroot / "lib").is_dir():
            package = f"libc6-{debian}-cross" if debian else f"a {arch} glibc"
            return NoRunner(f"no runner for {triple} (its glibc is not installed: "
                            f"apt-get install {package})")
        prefix += ("-L", str(sysroot))
        env = {"QEMU_LD_PREFIX": str(sysroot)}  # for its children, started through binfmt_misc
    return Runner(name, prefix, FACTOR, clean=clean, env=env,
                  namespace=namespace(program, qemu_arch), argv0="-0")


def namespace(qemu: str, qemu_arch: str) -> tuple[str, ...]:
    """The command that gives a case a binfmt_misc of its own in which ``qemu`` runs the
    programs of its architecture, so that a program starting another one of its target works;
    () where the kernel does not allow it (before Linux 6.7; user namespaces off)."""
    if qemu_arch not in MACHINES:
        return ()
    # The kernel's answer (its version, user namespaces allowed) has no stat data to watch.
    watch.unknowable("binfmt_misc namespace probe")
    # -P: the case's folder, its working folder, must not shadow recipe's own modules
    command = (sys.executable, "-P", "-m", "engine.verify.binfmt", "--qemu", qemu,
               "--machine", qemu_arch)
    return command if _works(command) else ()


@functools.cache
def _works(command: tuple[str, ...]) -> bool:
    try:
        done = subprocess.run([*command, "--probe"], capture_output=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def clean(observed: Observed) -> Observed:
    """The program's own stderr: without qemu's ``uncaught target signal`` line."""
    if b"qemu: " not in observed.stderr:
        return observed
    return dataclasses.replace(observed, stderr=_SIGNAL_LINE.sub(b"", observed.stderr))
