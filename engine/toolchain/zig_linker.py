"""rustc's linker on a zig target, as cargo-zigbuild's: ``zig cc -target T`` (``zig wasm-ld``
for WebAssembly), with what rustc asks of a GNU toolchain translated to what zig has.

rustc runs the executable ``zig-linker`` beside this file (``-C linker=``), which runs this file
with the Python that ``RECIPE_PYTHON`` names. Standard library only: it runs outside recipe's
process. ``RECIPE_ZIG`` is zig, ``RECIPE_ZIG_TARGET`` the zig triple.

- Windows (mingw): zig links its own mingw-w64 C runtime, so the runtime libraries rustc names
  for gcc's (``-lmsvcrt``, ``-lmingw32``, ``-lgcc``, ...) and ``-nodefaultlibs`` are dropped;
  gcc's unwinder (``-lgcc_eh``) is LLVM's libunwind in zig (``-lunwind``); a DLL's ``.def``
  file is an input of zig cc, not a linker argument; PE has no soname.
- WebAssembly: rustc speaks to ``wasm-ld`` (``-flavor wasm``); zig's LLD is newer than the
  compiler's and refuses an rlib's ``lib.rmeta`` member (not a wasm object), so each rlib is
  linked from a copy without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

# What rustc passes for a mingw gcc that zig provides itself, or does not take.
_WINDOWS_DROP = frozenset({
    "-lmsvcrt", "-lmingwex", "-lmingw32", "-lgcc", "-lgcc_s", "-l:libpthread.a",
    "-lssp_nonshared", "-lssp", "-nodefaultlibs", "-fno-use-linker-plugin",
    "-Wl,--disable-auto-image-base"})
_REPLACE = {"-lgcc_eh": "-lunwind", "-lstdc++": "-lc++"}


def cc_args(target: str, args: list[str]) -> list[str]:
    """The arguments of ``zig cc`` for a link rustc asked of ``cc``."""
    if "-windows" in target:
        # A DLL's exports come as a .def file, which zig cc takes as an input, not through -Wl.
        args = [a.removeprefix("-Wl,") if a.startswith("-Wl,") and a.endswith(".def") else a
                for a in args if a not in _WINDOWS_DROP and not a.startswith("-Wl,-soname=")]
    return [_REPLACE.get(a, a) for a in args]


def wasm_args(args: list[str], scratch: str) -> list[str]:
    """The arguments of ``zig wasm-ld``: rlibs copied into ``scratch`` without ``lib.rmeta``."""
    if args[:2] == ["-flavor", "wasm"]:
        args = args[2:]
    out = []
    for i, arg in enumerate(args):
        if arg.endswith(".rlib"):
            copy = os.path.join(scratch, f"{i}-{os.path.basename(arg)}")
            shutil.copyfile(arg, copy)
            # An rlib without the member (none is known) is linked as it is.
            subprocess.run([os.environ["RECIPE_ZIG"], "ar", "d", copy, "lib.rmeta"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            arg = copy
        out.append(arg)
    return out


def main(args: list[str]) -> int:
    zig, target = os.environ["RECIPE_ZIG"], os.environ["RECIPE_ZIG_TARGET"]
    if target.startswith("wasm"):
        with tempfile.TemporaryDirectory(prefix="recipe-zig-linker-") as scratch:
            return subprocess.run([zig, "wasm-ld", *wasm_args(args, scratch)]).returncode
    os.execv(zig, [zig, "cc", "-target", target, *cc_args(target, args)])
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
