"""zig as the cross toolchain of C and C++ targets (``toolchain: zig``).

zig comes from PyPI (``ziglang``, the ``cross`` extra); its binary is called directly (``python
-m ziglang`` costs a Python start per call). Its identity (version, digest of the binary and of
its ``lib/`` tree, which holds the libc and libc++ sources it builds for each target) enters the
derivation, cached by stat data as gcc's is: the tree is hashed again only when the binary or one
of the tree's top folders changed (pip replaces files, which changes their folder).

What zig accepts is read from ``zig targets`` (architectures, operating systems, ABIs, the triples
it has a libc for, glibc versions, CPU models), so a misspelt triple, an unknown glibc floor or a
CPU the architecture does not have is refused before anything builds, with the nearest name.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from engine import user_cache, watch
from engine.documents.models import TargetSpec
from engine.errors import RecipeError

CACHE_VERSION = 1
INSTALL = "pip install -e '.[cross]' (PyPI ziglang)"


class ZigError(RecipeError):
    """zig is missing, or a target spec asks for something zig does not have."""


def zig_binary() -> Path:
    """The zig inside the installed ``ziglang`` wheel."""
    try:
        import ziglang
    except ImportError:
        raise ZigError("toolchain zig needs zig, which is not installed",
                       f"install recipe's cross extra: {INSTALL}") from None
    binary = Path(ziglang.__file__).parent / "zig"
    if not os.access(binary, os.X_OK):
        raise ZigError(f"toolchain zig: {binary} is missing or not executable",
                       f"reinstall it: {INSTALL}")
    return binary


_memo: dict[str, Any] = {}
_memo_lock = threading.Lock()


def _stat_key(path: Path) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _stats(zig: Path) -> dict[str, list[int]]:
    lib = zig.parent / "lib"
    folders = [lib, *sorted(p for p in lib.iterdir() if p.is_dir())]
    return {str(p): _stat_key(p) for p in [zig, *folders]}


def _tree_digest(lib: Path) -> str:
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(lib):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, lib)
            with open(path, "rb") as f:
                digest.update(f"{rel}\0{hashlib.file_digest(f, 'sha256').hexdigest()}\n"
                              .encode())
    return "sha256:" + digest.hexdigest()


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return "sha256:" + hashlib.file_digest(f, "sha256").hexdigest()


def _run(zig: Path, *args: str) -> str:
    # zig wants a cache folder even to print what it knows; it gets an empty, throwaway one.
    with tempfile.TemporaryDirectory(prefix="recipe-zig-") as cache:
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "ZIG_GLOBAL_CACHE_DIR": cache,
               "ZIG_LOCAL_CACHE_DIR": cache}
        try:
            done = subprocess.run([str(zig), *args], capture_output=True, text=True,
                                  env=env, cwd=cache)
        except OSError as error:
            raise ZigError(f"cannot run {zig}: {error.strerror}",
                           f"reinstall zig: {INSTALL}") from error
    if done.returncode != 0:
        words = " ".join(done.stderr.split())[:300]
        raise ZigError(f"`zig {' '.join(args)}` failed: {words}", f"reinstall zig: {INSTALL}")
    return done.stdout


def _facts(zig: Path) -> dict[str, Any]:
    """What ``zig targets`` says, as lists (its output is ZON, parsed here by its layout)."""
    text = _run(zig, "targets")
    facts: dict[str, Any] = {}
    for key in ("arch", "os", "abi", "libc", "glibc"):
        block = re.search(rf"^    \.{key} = \.{{\n(.*?)^    }},", text, re.S | re.M)
        facts[key] = re.findall(r'^\s+"([^"]*)",', block.group(1), re.M) if block else []
    cpus: dict[str, list[str]] = {}
    block = re.search(r"^    \.cpus = \.{\n(.*?)^    },", text, re.S | re.M)
    for arch, body in re.findall(r"^        \.@?\"?([\w+]+)\"? = \.{\n(.*?)^        },",
                                 block.group(1) if block else "", re.S | re.M):
        cpus[arch] = re.findall(r'^            \.@?"?([\w+.-]+)"? = \.{', body, re.M)
    facts["cpus"] = cpus
    return facts


def identity(cache_dir: Path) -> dict[str, Any]:
    """zig's identity and what it accepts, cached by stat data in ``cache_dir``."""
    zig = zig_binary()
    stats = _stats(zig)
    key = json.dumps(stats, sort_keys=True)
    with _memo_lock:
        if key in _memo:
            return _memo[key]
        file = cache_dir / "zig.json"
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            data = {}
        if data.get("version") != CACHE_VERSION or data.get("stats") != stats:
            version = _run(zig, "version").strip()
            data = {"version": CACHE_VERSION, "stats": stats, "facts": _facts(zig),
                    "identity": {
                        "family": "zig", "cc": str(zig), "cxx": str(zig), "ar": str(zig),
                        "version": f"zig {version}", "programs": {},
                        "digests": {"zig": _file_digest(zig),
                                    "lib": _tree_digest(zig.parent / "lib")}}}
            # a cache that cannot be written (a read-only checkout) only costs time
            user_cache.write_json(file, data)
        for path in stats:
            watch.seen(path)
        _memo[key] = data
        return data


def changed(identity: dict[str, Any]) -> list[str]:
    """What of a recorded zig identity is no longer there as it was hashed."""
    zig = Path(identity["cc"])
    try:
        if _file_digest(zig) != identity["digests"]["zig"]:
            return [str(zig)]
        if _tree_digest(zig.parent / "lib") != identity["digests"]["lib"]:
            return [str(zig.parent / "lib")]
    except OSError:
        return [str(zig)]
    return []


# --- what a target spec may ask of zig -------------------------------------------------------


def arch_of(triple: str) -> str:
    return triple.split("-", 1)[0]


def os_of(triple: str) -> str:
    parts = triple.split("-")
    return parts[1] if len(parts) > 1 else ""


def glibc_floor(triple: str) -> str | None:
    """``aarch64-linux-gnu.2.28`` -> ``2.28``."""
    abi = triple.split("-")[2] if triple.count("-") >= 2 else ""
    name, _, version = abi.partition(".")
    return version if name.startswith("gnu") and version else None


def check(spec: TargetSpec, cache_dir: Path) -> dict[str, Any]:
    """Refuse what zig cannot build for, before anything builds; the identity of zig."""
    try:
        data = identity(cache_dir)
    except ZigError as error:
        error.pos = spec.at("toolchain")
        raise
    facts = data["facts"]
    triple = spec.triple
    if triple == "host":
        raise ZigError(f"target '{spec.name}': toolchain zig needs an explicit triple",
                       "write triple: (e.g. x86_64-linux-musl); zig would otherwise build for "
                       "this machine's CPU", pos=spec.at("toolchain"))
    base = re.sub(r"^(\w+-\w+-gnu\w*)\.[\d.]+$", r"\1", triple)
    parts = base.split("-")
    libc = facts["libc"]
    known = len(parts) in (2, 3) and parts[0] in facts["arch"] and parts[1] in facts["os"] \
        and (len(parts) == 2 or parts[2] in facts["abi"])
    if known:
        known = any(t == base or t.startswith(base + "-") for t in libc)
    if not known:
        names = sorted({*libc, *(t.rsplit("-", 1)[0] for t in libc)})
        near = difflib.get_close_matches(base, names, n=1, cutoff=0.6)
        fix = f"did you mean {near[0]}?" if near else \
            "run `zig targets` for the triples zig has a libc for"
        raise ZigError(f"target '{spec.name}': zig cannot build for triple '{triple}'", fix,
                       pos=spec.at("triple"))
    floor = glibc_floor(triple)
    if floor is not None:
        full = floor if floor.count(".") >= 2 else floor + ".0"
        if full not in facts["glibc"]:
            versions = facts["glibc"]
            raise ZigError(
                f"target '{spec.name}': zig knows no glibc {floor}",
                f"use a glibc floor from {versions[0]} to {versions[-1]}, e.g. "
                f"{parts[0]}-{parts[1]}-{parts[2]}.2.28", pos=spec.at("triple"))
    if spec.cpu and spec.cpu != "baseline":
        cpus = facts["cpus"].get(arch_of(triple), [])
        if zig_cpu(spec.cpu) not in cpus:
            near = difflib.get_close_matches(zig_cpu(spec.cpu), cpus, n=1)
            raise ZigError(f"target '{spec.name}': {arch_of(triple)} has no CPU '{spec.cpu}'",
                           f"did you mean {near[0]}?" if near else
                           "write cpu: baseline, or a CPU `zig targets` lists for it",
                           pos=spec.at("cpu"))
    return {**data["identity"], "triple": triple}


def zig_cpu(cpu: str) -> str:
    """zig spells CPU models with '_' where gcc and clang write '-' (x86-64-v3, cortex-a72)."""
    return cpu.replace("-", "_")
