"""recipe's native client (``recipe.c`` beside this file): a small C program that hands a command
to this user's ``recipe server`` without starting Python, and execs the Python command when it
cannot (no server, a refusal, another locale), so that only the time differs.

It is compiled with the system C compiler (``$CC``, else ``cc``, ``gcc`` or ``clang`` on
``PATH``) into the user's cache, one folder per server identity and client source:
``$XDG_CACHE_HOME/recipe/client/<key>/recipe``. The socket's name, the identity, the Python and
the locale the identity was taken in are baked in (``-D``), so the client needs no
configuration; a recipe upgraded since (another identity) is the Python command's, which finds
no server of the old identity and runs in-process.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine import server, user_cache
from engine.errors import UsageError

SOURCE = Path(__file__).with_name("recipe.c")
#: Commands the client never sends: ``server`` manages the server itself; ``repl`` needs the
#: terminal as its own (a controlling terminal, job control, window size), which a server's
#: child cannot have.
UNSERVED = ("server", "repl")
_FLAGS = ("-O2", "-std=c11", "-Wall")


def _literal(data: bytes) -> str:
    """A C string literal of ``data``: octal escapes (never absorb a following digit past 3)."""
    return '"' + "".join(chr(b) if chr(b).isalnum() else f"\\{b:03o}" for b in data) + '"'


def _defines() -> list[str]:
    locale = ", ".join(
        "{" + _literal(name.encode()) + ", " +
        ("0" if value is None else _literal(os.fsencode(value))) + "}"
        for name, value in ((name, os.environ.get(name)) for name in server._LOCALE))
    return [f"-DRECIPE_ADDRESS={_literal(server.address()[1:].encode())}",
            f"-DRECIPE_IDENTITY={_literal(server.IDENTITY.encode())}",
            f"-DRECIPE_PYTHON={_literal(os.fsencode(sys.executable))}",
            f"-DRECIPE_LOCALE={locale}",
            "-DRECIPE_OFF=" + ", ".join(_literal(c.encode()) for c in UNSERVED)]


def compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc and shutil.which(cc):
        return shutil.which(cc)
    return next((found for name in ("cc", "gcc", "clang") if (found := shutil.which(name))),
                None)


def folder() -> Path | None:
    """The folder of this identity's client (``recipe`` in it), or None without a home."""
    base = user_cache.folder()
    if base is None:
        return None
    key = hashlib.sha256(repr((server.IDENTITY, _FLAGS)).encode() + SOURCE.read_bytes())
    return base / "client" / key.hexdigest()[:16]


def ensure() -> Path:
    """The client's folder, its program compiled there if it is not yet."""
    where = folder()
    if where is None:
        raise UsageError("no cache folder for the native client (neither $XDG_CACHE_HOME nor "
                         "$HOME is set)", "set HOME or XDG_CACHE_HOME")
    program = where / "recipe"
    if os.access(program, os.X_OK):
        return where
    cc = compiler()
    if cc is None:
        raise UsageError("no C compiler for the native client", "install cc (gcc or clang) "
                         "or set CC; recipe runs as before without it")
    where.mkdir(parents=True, exist_ok=True)
    tmp = where / f".recipe.{os.getpid()}"
    done = subprocess.run([cc, *_FLAGS, *_defines(), "-o", str(tmp), str(SOURCE)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"{cc} could not compile the native client: "
                         f"{(done.stderr.strip().splitlines() or ['?'])[-1]}",
                         "set CC to a working C compiler")
    os.replace(tmp, program)  # whole, or not there: a shell never runs half a program
    return where
