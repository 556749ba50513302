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

rustc passes the arguments in a response file (``@FILE``, one argument a line, ``\\`` and space
escaped by a backslash) when the command line is too long for the system; the wrapper reads
them (as gcc does) before translating them, and hands zig a response file of its own when the
translated command line would be as long.
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


#: Bytes of arguments above which zig gets them in a response file (Linux's limit of one argument
#: is 128 KiB, of all of them with the environment 2 MiB; rustc switches at about 6 KiB less).
_LONG = 64 * 1024


def split_response(text: str) -> list[str]:
    """The arguments of a response file, as GNU's libiberty reads it (gcc, ld and clang on Unix):
    whitespace separates, single or double quotes group, a backslash takes the next character."""
    args: list[str] = []
    word: list[str] = []
    in_word = False  # a word may be empty: ``""``
    quote = ""
    chars = iter(text)
    for c in chars:
        if c == "\\":
            word.append(next(chars, ""))
            in_word = True
        elif quote:
            if c == quote:
                quote = ""
            else:
                word.append(c)
        elif c in "'\"":
            quote, in_word = c, True
        elif c.isspace():
            if in_word:
                args.append("".join(word))
            word, in_word = [], False
        else:
            word.append(c)
            in_word = True
    if in_word:
        args.append("".join(word))
    return args


def expand(args: list[str], depth: int = 0) -> list[str]:
    """``args`` with every ``@FILE`` that names a readable file replaced by its arguments (a
    response file may name others, as gcc allows; ``@`` of no file stays an argument)."""
    out: list[str] = []
    for arg in args:
        if arg.startswith("@") and depth < 16:
            try:
                with open(arg[1:], encoding="utf-8") as file:
                    text = file.read()
            except (OSError, UnicodeDecodeError):
                out.append(arg)
                continue
            out.extend(expand(split_response(text), depth + 1))
        else:
            out.append(arg)
    return out


def response_file(args: list[str], folder: str) -> str:
    """``args`` written to a response file in ``folder``, for zig: each in double quotes with
    ``\\`` and ``"`` escaped (zig's reader takes a backslash as an escape only in quotes; GNU's
    reads the same file the same way)."""
    path = os.path.join(folder, "args")
    with open(path, "w", encoding="utf-8") as file:
        for arg in args:
            file.write('"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"\n')
    return path


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
    args = expand(args)
    wasm = target.startswith("wasm")
    if not wasm:
        argv = [zig, "cc", "-target", target, *cc_args(target, args)]
        if sum(len(a) + 1 for a in argv) <= _LONG:
            os.execv(zig, argv)  # nothing to remove afterwards: no Python waits on the link
    with tempfile.TemporaryDirectory(prefix="recipe-zig-linker-") as scratch:
        if wasm:
            argv = [zig, "wasm-ld", *wasm_args(args, scratch)]
        if sum(len(a) + 1 for a in argv) > _LONG:
            argv = [*argv[:2], f"@{response_file(argv[2:], scratch)}"]
        return subprocess.run(argv).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
