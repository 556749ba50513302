"""Which functions a library exports: an ELF file's dynamic symbols read here, the rest
(static archives, PE and WASM files) with ``nm``, whose answers are remembered.

A cached ``recipe verify`` still checks, before any case runs, that every function a function
case names is exported by its library: one ``nm`` run per library, four on ``recipes/``. nm's
answer depends only on the library file and on nm itself, so it is remembered in the user's
cache (``engine.user_cache``, ``nm-symbols.json``: libraries live in the store, which many
checkouts share), keyed by the library's path and validated by the stat data of the library and
of the nm program, as toolchain identities are (``engine.toolchain.detect``). The library's
ctime is part of that data: the store sets every mtime to the same value. An answer about a file
changed within ``RACY_NS`` of the run is not remembered (``engine.memo``'s racily-clean rule): a
change later in the same clock tick could not show in its stat data.

An ELF shared object (a host library: every Rust function case's, a C one's harness) is read
here instead, its ``.dynsym`` section by ``mmap``: a millisecond where nm took 30 (a 7 MB Rust
cdylib), and no cache to read or write; nm stays the reader of what this one does not know."""

from __future__ import annotations

import json
import mmap
import os
import struct
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


def elf_exports(library: Path) -> set[str] | None:
    """The names an ELF file's dynamic symbol table defines (what ``nm -D --defined-only``
    lists, without symbol versions), or None when it is not an ELF file with one."""
    try:
        with open(library, "rb") as file, \
                mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return _dynamic_symbols(data)
    except (OSError, ValueError, struct.error, IndexError):
        return None


def _dynamic_symbols(data: mmap.mmap) -> set[str] | None:
    if data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return None
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELF64: e_shoff, e_shentsize, e_shnum; a section; a symbol
        (shoff,), (size, count) = struct.unpack_from(order + "Q", data, 0x28), \
            struct.unpack_from(order + "HH", data, 0x3A)
        section, symbol, name_at, shndx_at = order + "IIQQQQIIQQ", order + "IBBHQQ", 0, 3
    else:  # ELF32
        (shoff,), (size, count) = struct.unpack_from(order + "I", data, 0x20), \
            struct.unpack_from(order + "HH", data, 0x2E)
        section, symbol, name_at, shndx_at = order + "IIIIIIIIII", order + "IIIBBH", 0, 5
    sections = [struct.unpack_from(section, data, shoff + i * size) for i in range(count)]
    dynsym = next((s for s in sections if s[1] == 11), None)  # SHT_DYNSYM
    if dynsym is None or not dynsym[9]:
        return None
    strings = sections[dynsym[6]][4]  # its string table's offset (sh_link)
    names = set()
    for at in range(dynsym[4] + dynsym[9], dynsym[4] + dynsym[5], dynsym[9]):  # not entry 0
        entry = struct.unpack_from(symbol, data, at)
        if entry[shndx_at] != 0:  # SHN_UNDEF: imported, not defined
            start = strings + entry[name_at]
            names.add(data[start:data.find(b"\0", start)].decode(errors="replace"))
    return names


def _load(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == VERSION else {}


def missing_symbol(library: Path, name: str) -> bool:
    """Whether ``library`` (a shared object, or a static archive) does not export ``name``
    (read here or with ``nm``, not by loading it; a format neither can read is left to the
    link)."""
    if library.suffix != ".a":
        exported = elf_exports(library)
        if exported is not None:
            return name not in exported
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
