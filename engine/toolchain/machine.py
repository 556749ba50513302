"""What this machine has for recipe, as ``recipe doctor`` reports it: programs with their
version and path, the Rust standard libraries installed, the runners of foreign targets.

Only questions, no side effects: each answer comes from ``PATH`` and from running a program's
``--version`` (or equivalent) once.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass

_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
# Runners of foreign targets' programs, by what the triple names (see DESIGN 1.3: qemu-user
# for Linux, wine for Windows, wasmtime for WASI).
_QEMU_ARCH = {"i686": "i386", "i586": "i386", "armv7": "arm", "armv7a": "arm", "arm": "arm",
              "powerpc64le": "ppc64le", "riscv64gc": "riscv64"}


@dataclass(frozen=True)
class Found:
    name: str
    path: str | None  # None: not found
    version: str | None = None


def program(name: str, args: tuple[str, ...] = ("--version",)) -> Found:
    """``name`` on PATH (or by its path), with the first version number its ``args`` print."""
    path = shutil.which(name)
    if path is None:
        return Found(name, None)
    return Found(name, path, version_of([path, *args]))


def version_of(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(done.stdout or done.stderr)
    return match.group() if match else None


def zig() -> Found:
    """zig from PyPI's ``ziglang`` (``python -m ziglang``), else a ``zig`` on PATH."""
    import importlib.util
    import sys

    spec = importlib.util.find_spec("ziglang")
    if spec is not None and spec.submodule_search_locations:
        folder = next(iter(spec.submodule_search_locations))
        return Found("zig", os.path.join(folder, "zig"),
                     version_of([sys.executable, "-m", "ziglang", "version"]))
    return program("zig", ("version",))


def rust_std_targets(rustc: str) -> list[str]:
    """The targets whose standard library is installed: ``<sysroot>/lib/rustlib/<triple>/lib``."""
    try:
        sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True,
                                 timeout=30, stdin=subprocess.DEVNULL).stdout.strip()
        names = os.listdir(os.path.join(sysroot, "lib", "rustlib"))
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(n for n in names
                  if os.path.isdir(os.path.join(sysroot, "lib", "rustlib", n, "lib")))


def qemu_runners() -> list[str]:
    """The qemu user-mode emulators on PATH (``qemu-aarch64``, ...; not ``qemu-system-*``)."""
    names: set[str] = set()
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        try:
            entries = os.listdir(folder or ".")
        except OSError:
            continue
        names.update(n for n in entries if re.fullmatch(r"qemu-[a-z0-9_]+(-static)?", n)
                     and not n.startswith("qemu-system") and n not in ("qemu-img", "qemu-io")
                     and os.access(os.path.join(folder, n), os.X_OK))
    return sorted(names)


def runner_for(triple: str) -> str | None:
    """The program that runs ``triple``'s executables here, or None when they run natively."""
    if triple == "host":
        return None
    arch, _, rest = triple.partition("-")
    if "windows" in rest:
        return "wine64"
    if "wasi" in rest or arch.startswith("wasm"):
        return "wasmtime"
    arch = _QEMU_ARCH.get(arch, arch)
    host = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                       platform.machine().lower())
    return None if arch == host else f"qemu-{arch}"


def rust_triple(triple: str) -> str:
    """rustc's name of a triple written zig's way (``aarch64-linux-musl`` becomes
    ``aarch64-unknown-linux-musl``); a four-part triple is rustc's already."""
    parts = triple.split("-")
    if len(parts) != 3:
        return triple
    arch, system, abi = parts
    if system == "windows":
        return f"{arch}-pc-windows-{abi}"
    if system == "wasi":
        return f"{arch}-wasip1"
    return f"{arch}-unknown-{system}-{abi}"
