"""Which functions a library exports, read with ``nm`` and remembered.

A cached ``recipe verify`` still checks, before any case runs, that every function a function
case names is exported by its library: one ``nm`` run per library, four on ``recipes/``. nm's
answer depends only on the library file and on nm itself, so it is remembered in the user's
cache (``engine.user_cache``, ``nm-symbols.json``: libraries live in the store, which many
checkouts share), keyed by the library's path and validated by the stat data of the library and
of the nm program, as toolchain identities are (``engine.toolchain.detect``). The library's
ctime is part of that data: the store sets every mtime to the same value. An answer about a file
changed within ``RACY_NS`` of the run is not remembered (``engine.memo``'s racily-clean rule): a
change later in the same clock tick could not show in its stat data."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

from engine import user_cache

NM = "/usr/bin/nm"
CACHE = "nm-symbols.json"
VERSION = 1
RACY_NS = 2_000_000_000
KEEP = 200  # libraries remembered; the oldest are dropped first


def _stat_key(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _run_nm(library: Path) -> set[str] | None:
    """The names ``library`` defines, or None when nm cannot read it (a WASI archive)."""
    dynamic = ["-D"] if library.suffix != ".a" else []
    done = subprocess.run([NM, *dynamic, "--defined-only", "--format=posix", str(library)],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                               "LC_ALL": "C"})
    # A member without symbols (a Rust staticlib has several) is no reason to doubt the rest.
    said = [line for line in done.stderr.splitlines() if not line.endswith(": no symbols")]
    if done.returncode != 0 or any(line.strip() for line in said):
        return None
    return {line.split(" ", 1)[0] for line in done.stdout.splitlines()}


def _load(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == VERSION else {}


def missing_symbol(library: Path, name: str) -> bool:
    """Whether ``library`` (a shared object, or a static archive) does not export ``name``
    (read with ``nm``, not by loading it; a format ``nm`` cannot read is left to the link)."""
    files = user_cache.file(CACHE)
    key = os.path.abspath(library)
    try:
        stats = [_stat_key(key), _stat_key(os.path.realpath(NM))]
    except OSError:
        stats = None  # no such library or no nm: nm says so below, nothing to remember
    data = _load(files[0]) if files and stats else {}
    entry = data.get("entries", {}).get(key)
    if entry and entry.get("stats") == stats and name in entry.get("missing", {}):
        return bool(entry["missing"][name])
    found = _run_nm(library)
    missing = found is not None and name not in found
    if stats and files and all(time.time_ns() - st[1] >= RACY_NS and
                               time.time_ns() - st[2] >= RACY_NS for st in stats):
        # only the names asked about: a C++ library can define thousands
        answers = entry["missing"] if entry and entry.get("stats") == stats else {}
        entries = {k: e for k, e in data.get("entries", {}).items() if os.path.exists(k)}
        entries.pop(key, None)  # put back last: the newest are kept
        entries[key] = {"stats": stats, "missing": {**answers, name: missing}}
        user_cache.write_json(files[0], {"version": VERSION,
                                         "entries": dict(list(entries.items())[-KEEP:])})
    return missing
