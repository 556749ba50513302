"""Rust on a foreign target: rustc ``--target`` with zig as its linker, as cargo-zigbuild does.

rustc builds for a triple only where that triple's standard library is installed
(``<sysroot>/lib/rustlib/<rust triple>/lib``): rustup's ``rustup target add``, or Debian's
``libstd-rust-dev-wasm32`` and ``libstd-rust-dev-windows`` for its ``/usr/bin/rustc``. A target
without one is refused before anything builds, in one line naming how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine.documents.models import TargetSpec
from engine.toolchain.detect import ToolchainError

# zig's OS-ABI spelling -> Rust's vendor-OS-ABI
_OS = {"linux-musl": "unknown-linux-musl", "linux-gnu": "unknown-linux-gnu",
       "linux-musleabihf": "unknown-linux-musleabihf", "linux-gnueabihf": "unknown-linux-gnueabihf",
       "windows-gnu": "pc-windows-gnu", "windows-msvc": "pc-windows-msvc",
       "macos": "apple-darwin", "macos-none": "apple-darwin", "wasi": "wasi",
       "wasi-musl": "wasi", "freebsd": "unknown-freebsd"}
_ARCH = {"riscv64": "riscv64gc", "x86": "i686", "arm": "arm", "thumb": "thumbv7neon"}
# The foreign standard libraries Debian packages for its rustc.
_DEBIAN = {"wasm32-wasi": "libstd-rust-dev-wasm32",
           "x86_64-pc-windows-gnu": "libstd-rust-dev-windows"}
# Where recipe is installed and the Python running it differ per checkout and per machine, so
# actions name them by placeholders (made concrete by ``concrete`` when an action runs) and the
# wrapper's own code enters them by its digest: the store path of a Rust program linked by zig
# is the same from any checkout, and changes when the wrapper does.
TOOLS, PYTHON = "@RECIPE_TOOLS@", "@RECIPE_PYTHON@"
LINKER = f"{TOOLS}/zig-linker"
_WRAPPER = ("zig-linker", "zig_linker.py")
_digest: list[str] = []


def concrete(text: str) -> str:
    """``text`` with the placeholders of this installation made concrete."""
    return text.replace(TOOLS, str(Path(__file__).parent)).replace(PYTHON, sys.executable)


def wrapper_digest() -> str:
    """The sha256 of the linker wrapper's files (once per process)."""
    if not _digest:
        import hashlib

        sha = hashlib.sha256()
        for name in _WRAPPER:
            sha.update(Path(__file__).with_name(name).read_bytes())
        _digest.append(sha.hexdigest())
    return _digest[0]


def rust_triple(triple: str) -> str:
    """``aarch64-linux-musl`` -> ``aarch64-unknown-linux-musl``, ``wasm32-wasi`` -> itself."""
    arch, _, rest = triple.partition("-")
    rest = rest.split(".")[0]  # a glibc floor means nothing to rustc
    return f"{_ARCH.get(arch, arch)}-{_OS.get(rest, rest)}"


def check(spec: TargetSpec, project: str) -> None:
    """Refuse, in one line, a Rust project on a foreign target whose standard library is not
    installed; say nothing when it is."""
    wanted = spec.toolchain.get("rustc", "rustc") if isinstance(spec.toolchain, dict) \
        else "rustc"
    target = rust_triple(spec.triple)
    found = shutil.which(wanted)
    if found is None:
        raise ToolchainError(f"target '{spec.name}': compiler '{wanted}' not found",
                             "install rustc, or name it by absolute path in toolchain: "
                             "{rustc: ...}", pos=spec.at("toolchain"))
    has_std = False
    if found:
        try:
            sysroot = subprocess.run([found, "--print", "sysroot"], capture_output=True,
                                     text=True, check=True, env=_env()).stdout.strip()
            has_std = (Path(sysroot) / "lib" / "rustlib" / target / "lib").is_dir()
        except (OSError, subprocess.CalledProcessError):
            pass
    if not has_std:
        debian = f", or Debian's {_DEBIAN[target]} for /usr/bin/rustc" \
            if target in _DEBIAN else ""
        raise ToolchainError(
            f"project '{project}': rust has no standard library for {spec.triple} ({target})",
            f"install one (rustup target add {target}{debian}) and name that rustc in "
            "toolchain: {rustc: ...}, or build this project for host targets only (-t)",
            pos=spec.at("triple"))


def linker(spec: TargetSpec, cc: str) -> tuple[list[str], dict[str, str]]:
    """rustc's flags naming the target and its linker, and the variables the linker needs.
    A zig target links through ``zig-linker`` (see zig_linker.py); a cross gcc named in
    ``toolchain:`` is the linker itself. ``cc`` is the target's C compiler (zig, or that gcc)."""
    target = ["--target", rust_triple(spec.triple)]
    if not spec.uses_zig:
        return [*target, "-C", f"linker={cc}"], {}
    env = {"RECIPE_ZIG": cc, "RECIPE_ZIG_TARGET": spec.triple, "RECIPE_PYTHON": PYTHON,
           "RECIPE_LINKER_DIGEST": wrapper_digest()}
    # As for C (flags.link_argv): zig's own C runtime objects carry debug information naming
    # zig's cache folder; a target that asks for none gets none (and one libc variant).
    strip = ["-C", "strip=debuginfo"] if spec.opt in ("release", "min-size") else []
    return [*target, "-C", f"linker={LINKER}", *strip], env


def _env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    for name in ("HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
