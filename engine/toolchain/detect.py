"""Finding a target's compilers and computing their identity.

The identity enters every derivation: the resolved driver path, its ``--version`` output, and a
digest of each program the driver runs (``cc1``, ``cc1plus``, ``lto1``, ``collect2``, ``as``,
``ld``). Hashing ~100 MB of compiler binaries on every run would dominate a no-op build, so the
identity is cached in a JSON file keyed by each program's path, size and mtime (like ccache's
compiler check ``mtime``), and recomputed only when one of those changes: the checkout's
(``.recipe/cache/toolchains.json``), then the user's (``engine.user_cache``), which every checkout
shares, so that a fresh clone does not hash the same compilers again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import user_cache, watch
from engine.documents.models import TargetSpec
from engine.errors import RecipeError
from engine.hashing import file_digest

CACHE_VERSION = 3  # 3: ctime and device in the stat key
# Programs the gcc driver runs, as `gcc -print-prog-name=<name>` reports them.
GCC_PROGRAMS = ("cc1", "cc1plus", "lto1", "lto-wrapper", "collect2", "as", "ld")


class ToolchainError(RecipeError):
    """A target's toolchain cannot be found or used."""


@dataclass(frozen=True)
class Toolchain:
    """Resolved programs of one target's toolchain, and their identity."""

    cc: str
    cxx: str
    ar: str
    path_dirs: tuple[str, ...]  # the build's PATH: the toolchain's folders only
    identity: dict[str, Any] = field(hash=False, compare=False)

    @property
    def env_path(self) -> str:
        return os.pathsep.join(self.path_dirs)


def check_spec(spec: TargetSpec, cache_dir: Path | None = None) -> None:
    """What can be told of a target spec before anything builds (for zig: whether zig is
    installed and has the triple, the glibc floor and the CPU)."""
    if spec.uses_zig:
        from engine.toolchain import zig  # here: a gcc target does not pay for its imports

        zig.check(spec, cache_dir or Path(os.devnull))
        return
    if not isinstance(spec.toolchain, dict) and spec.triple != "host":
        raise ToolchainError(
            f"target '{spec.name}': triple {spec.triple} needs a cross toolchain",
            "write toolchain: zig, or name a cross gcc: toolchain: {cc: ..., cxx: ...}",
            pos=spec.at("triple"))


def resolve(spec: TargetSpec, cache_dir: Path) -> Toolchain:
    """The C/C++ toolchain of a target spec, with its (cached) identity."""
    check_spec(spec, cache_dir)
    if spec.uses_zig:
        from engine.toolchain import zig

        identity = zig.check(spec, cache_dir)
        return Toolchain(cc=identity["cc"], cxx=identity["cxx"], ar=identity["ar"],
                         path_dirs=(str(Path(identity["cc"]).parent),), identity=identity)
    if isinstance(spec.toolchain, dict):
        cc = _find(spec.toolchain.get("cc", "gcc"), spec)
        cxx = _find(spec.toolchain.get("cxx", "g++"), spec)
    else:
        cc, cxx = _find("gcc", spec), _find("g++", spec)
    ar = _sibling(cc, "gcc", "gcc-ar") or _find("ar", spec)
    cache = _IdentityCache([cache_dir / "toolchains.json", *user_cache.file("toolchains.json")])
    identity = cache.get(cc, cxx, ar)
    dirs = tuple(dict.fromkeys(str(Path(p).parent) for p in
                               (cc, cxx, ar, *identity["programs"].values())))
    return Toolchain(cc=cc, cxx=cxx, ar=ar, path_dirs=dirs, identity=identity)


def _find(program: str, spec: TargetSpec) -> str:
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        watch.seen(folder or ".")  # a program added to a folder searched first changes it
    found = shutil.which(program)
    if not found:
        raise ToolchainError(f"target '{spec.name}': compiler '{program}' not found",
                             "install it or name it by absolute path in toolchain:",
                             pos=spec.pos)
    return os.path.abspath(found)


def _sibling(driver: str, word: str, replacement: str) -> str | None:
    """``/usr/bin/x86_64-linux-gnu-gcc-12`` -> ``/usr/bin/x86_64-linux-gnu-gcc-ar-12``."""
    real = Path(os.path.realpath(driver))
    head, sep, tail = real.name.rpartition(word)
    if not sep:
        return None
    candidate = real.with_name(head + replacement + tail)
    return str(candidate) if os.access(candidate, os.X_OK) else None


def _stat_key(path: str) -> list[int]:
    # ctime too: a rewrite in place that keeps size and mtime (cp -p, install -p) changes it
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


RACY_NS = 2_000_000_000  # as engine.memo: a file changed this recently may change unseen


def _run(argv: list[str]) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise ToolchainError(f"cannot run {argv[0]}: {error}",
                             "check that the compiler works") from error
    return done.stdout.strip()


def _programs(driver: str) -> dict[str, str]:
    """The programs a gcc driver runs, resolved to absolute paths."""
    found: dict[str, str] = {}
    for name in GCC_PROGRAMS:
        prog = _run([driver, f"-print-prog-name={name}"])
        resolved = prog if os.path.isabs(prog) else shutil.which(prog)
        if resolved and os.path.exists(resolved):
            found[name] = os.path.realpath(resolved)
    return found


def _identity(cc: str, cxx: str, ar: str) -> dict[str, Any]:
    # cc1plus is whatever the C++ driver runs, which need not be the C driver's sibling.
    programs = {**_programs(cc), **{f"cxx-{k}": v for k, v in _programs(cxx).items()}}
    binaries = {"cc": os.path.realpath(cc), "cxx": os.path.realpath(cxx),
                "ar": os.path.realpath(ar), **programs}
    return {
        "family": "gcc",
        "cc": os.path.realpath(cc),
        "cxx": os.path.realpath(cxx),
        "ar": os.path.realpath(ar),
        "machine": _run([cc, "-dumpmachine"]),
        "version": _run([cc, "--version"]),
        "cxx_version": _run([cxx, "--version"]),
        "programs": programs,
        "digests": {name: file_digest(path) for name, path in sorted(binaries.items())},
    }


def changed_programs(identity: dict[str, Any]) -> list[str]:
    """The programs of a recorded identity that are missing or no longer what was hashed."""
    if identity.get("family") == "zig":
        from engine.toolchain import zig

        return zig.changed(identity)
    binaries = {"cc": identity["cc"], "cxx": identity["cxx"], "ar": identity["ar"],
                **identity["programs"]}
    changed = []
    for name, path in sorted(binaries.items()):
        try:
            same = file_digest(path) == identity["digests"].get(name)
        except OSError:
            same = False
        if not same:
            changed.append(path)
    return changed


class _IdentityCache:
    """Toolchain identities, keyed by driver paths and validated by every program's stat data,
    in the first of ``files`` that has a fresh entry (it is then copied to those before it)."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    @staticmethod
    def _load(file: Path) -> dict[str, Any]:
        try:
            data = json.loads(file.read_text())
        except (OSError, ValueError):
            return {}
        return data if data.get("version") == CACHE_VERSION else {}

    def get(self, cc: str, cxx: str, ar: str) -> dict[str, Any]:
        key = "\0".join(os.path.realpath(p) for p in (cc, cxx, ar))
        missed: list[tuple[Path, dict[str, Any]]] = []
        for file in self.files:
            data = self._load(file)
            entry = data.get("entries", {}).get(key)
            if entry and self._fresh(entry["stats"]):
                break
            missed.append((file, data))
        else:
            identity = _identity(cc, cxx, ar)
            files = {cc, cxx, ar, *identity["programs"].values()}
            entry = {"stats": {path: _stat_key(path) for path in sorted(files)},
                     "identity": identity}
        for path in entry["stats"]:
            watch.seen(path)
            watch.seen(os.path.realpath(path))
        now = time.time_ns()
        if any(now - k[1] < RACY_NS or now - k[2] < RACY_NS for k in entry["stats"].values()):
            missed = []  # a program changed just now may change again unseen: not remembered
        for file, data in missed:
            # entries whose programs are gone (a test's wrappers, an uninstalled compiler)
            # would only grow the file every run reads
            entries = {k: e for k, e in data.get("entries", {}).items()
                       if all(os.path.exists(p) for p in e["stats"])}
            data.update(version=CACHE_VERSION, entries={**entries, key: entry})
            self._save(file, data)
        return entry["identity"]

    @staticmethod
    def _fresh(stats: dict[str, list[int]]) -> bool:
        try:
            return all(_stat_key(path) == key for path, key in stats.items())
        except OSError:
            return False

    @staticmethod
    def _save(file: Path, data: dict[str, Any]) -> None:
        user_cache.write_json(file, data)  # one that cannot be written only costs time
