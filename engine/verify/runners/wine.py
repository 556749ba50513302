"""wine for Windows console programs (Debian: ``wine64``).

wine needs a prefix (its C: drive and registry): a new one takes seconds to make, so one is made
once per store, under a lock, in the store's state (``Store.state_folder("wine")``), and every
case uses it. ``WINEDEBUG=-all`` keeps wine's own messages off stderr and
``WINEDLLOVERRIDES`` keeps the debugger (and the Mono and Gecko installers) from starting. The
program's ``\\r\\n`` reach the comparison as it printed them. A crash comes back as an exit code
(5 for an access violation), not as a signal.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from engine import watch
from engine.verify.runners.base import NoRunner, Runner

FACTOR = 4.0
_CANDIDATES = ("wine64", "/usr/lib/wine/wine64", "wine")
_OVERRIDES = "winedbg.exe=d;mscoree=d;mshtml=d"


def find() -> str | None:
    for name in _CANDIDATES:
        found = watch.which(name)
        if found:
            return found
    return None


def runner(triple: str, state: Path | None) -> Runner | NoRunner:
    if not triple.startswith("x86_64-"):
        return NoRunner(f"no runner for {triple} (wine64 runs x86_64 Windows programs only)")
    program = find()
    if program is None:
        return NoRunner(f"no runner for {triple} (wine64 is not installed: "
                        "apt-get install wine64)")
    base = state if state is not None else Path(tempfile.gettempdir()) / f"recipe-{os.getuid()}"
    prefix = base / "prefix"
    server = Path(f"/tmp/.wine-{os.getuid()}")
    env = {"WINEPREFIX": str(prefix), "WINEDEBUG": "-all", "WINEDLLOVERRIDES": _OVERRIDES,
           "WINEARCH": "win64"}

    def prepare() -> None:
        make_prefix(program, base, env)
        server.mkdir(mode=0o700, exist_ok=True)

    return Runner("wine64", (program,), FACTOR, env=env, writable=(prefix, server),
                  prepare=prepare)


def make_prefix(program: str, base: Path, env: dict[str, str]) -> None:
    """Make the prefix once (about 8 s), whichever process gets here first."""
    prefix = Path(env["WINEPREFIX"])
    if (prefix / "system.reg").exists():
        return
    base.mkdir(parents=True, exist_ok=True)
    with open(base / "prefix.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (prefix / "system.reg").exists():
            return
        full = {"PATH": "/usr/bin:/bin", "HOME": str(base), **env}
        subprocess.run([program, "wineboot", "--init"], env=full, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        server = Path(program).with_name("wineserver")
        if not server.exists():
            server = Path(shutil.which("wineserver") or "wineserver")
        # Wait for the prefix to be written, then let no server of ours outlive this.
        subprocess.run([str(server), "-w"], env=full, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
