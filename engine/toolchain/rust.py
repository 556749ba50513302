"""Finding ``rustc`` and computing its identity (for ``language: rust`` projects).

``rustc`` on ``PATH`` is often rustup's proxy, which picks a toolchain from the environment
and the working folder; builds never run it. The real compiler is ``<sysroot>/bin/rustc``,
where ``rustc --print sysroot`` says. Its identity enters every Rust derivation: the ``-vV``
output (release, commit, LLVM version, host) and a digest of the compiler, its driver and LLVM
libraries, and the host's standard library (what gets linked into outputs). As for gcc, the
digests are cached against the stat data of every file hashed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import user_cache, watch
from engine.documents.models import TargetSpec
from engine.hashing import file_digest
from engine.toolchain.detect import ToolchainError

CACHE_VERSION = 2


@dataclass(frozen=True)
class RustToolchain:
    rustc: str  # the real compiler, <sysroot>/bin/rustc
    identity: dict[str, Any] = field(hash=False, compare=False)
    # What ``rustc --print cfg`` says of the host (``unix``, ``target_os="linux"``, ...):
    # which target-specific dependencies of crates apply, and their build scripts' CARGO_CFG_*.
    cfg: frozenset[str] = field(default=frozenset(), hash=False, compare=False)

    @property
    def host(self) -> str:
        return next(line.split(": ", 1)[1] for line in self.identity["version"].splitlines()
                    if line.startswith("host: "))

    @property
    def release(self) -> str:
        """The compiler's version, e.g. ``1.63.0``."""
        return next(line.split(": ", 1)[1] for line in self.identity["version"].splitlines()
                    if line.startswith("release: "))


def resolve_rustc(spec: TargetSpec, cache_dir: Path) -> RustToolchain:
    """The rustc of a target spec (``toolchain: {rustc: ...}`` or ``rustc`` on PATH)."""
    wanted = spec.toolchain.get("rustc", "rustc") if isinstance(spec.toolchain, dict) \
        else "rustc"
    for folder in os.environ.get("PATH", os.defpath).split(os.pathsep):
        watch.seen(folder or ".")
    found = shutil.which(wanted)
    if not found:
        raise ToolchainError(f"target '{spec.name}': compiler '{wanted}' not found",
                             "install rustc, or name it by absolute path in toolchain: "
                             "{rustc: ...}", pos=spec.pos)
    sysroot = _run([found, "--print", "sysroot"], spec)
    real = os.path.join(sysroot, "bin", "rustc")
    if not os.access(real, os.X_OK):
        raise ToolchainError(f"target '{spec.name}': {found} names sysroot {sysroot}, which "
                             "has no bin/rustc", "check the Rust installation", pos=spec.pos)
    identity, cfg = _cached_identity(real, sysroot, cache_dir, spec)
    return RustToolchain(real, identity, frozenset(cfg))


def _run(argv: list[str], spec: TargetSpec) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}
    for name in ("HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME"):
        if name in os.environ:  # what rustup's proxy needs to find the toolchain
            env[name] = os.environ[name]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise ToolchainError(f"target '{spec.name}': cannot run {argv[0]}: {error}",
                             "check that rustc works", pos=spec.pos) from error
    return done.stdout.strip()


def _hashed_files(real: str, sysroot: str) -> list[str]:
    """The compiler, the shared libraries beside it, and the host's standard library."""
    files = [real]
    lib = Path(sysroot, "lib")
    files += sorted(str(p) for p in lib.glob("*.so*") if p.is_file())
    host = _host(real)
    files += sorted(str(p) for p in (lib / "rustlib" / host / "lib").glob("*")
                    if p.is_file())
    return files


def _host(real: str) -> str:
    out = subprocess.run([real, "-vV"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines()
                if line.startswith("host: "))


def _stat_key(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _cached_identity(real: str, sysroot: str, cache_dir: Path,
                     spec: TargetSpec) -> tuple[dict, list[str]]:
    """The identity from the checkout's cache, else the user's (``engine.user_cache``: a fresh
    clone does not hash the sysroot again), else computed; each validated by stat data."""
    missed = []
    for file in [cache_dir / "rust-toolchains.json", *user_cache.file("rust-toolchains.json")]:
        try:
            data = json.loads(file.read_text())
            if data.get("version") != CACHE_VERSION:
                data = {}
        except (OSError, ValueError):
            data = {}
        entry = data.get("entries", {}).get(real)
        try:
            fresh = entry is not None and all(_stat_key(p) == k
                                              for p, k in entry["stats"].items())
        except OSError:
            fresh = False
        if fresh:
            break
        missed.append((file, data))
    else:
        files = _hashed_files(real, sysroot)
        version = _run([real, "-vV"], spec)
        digests = {os.path.relpath(p, sysroot): file_digest(p) for p in files}
        entry = {"stats": {p: _stat_key(p) for p in files},
                 "identity": {"family": "rustc", "rustc": real, "version": version,
                              "digests": digests},
                 "cfg": _run([real, "--print", "cfg"], spec).splitlines()}
    assert entry is not None
    for file, data in missed:
        data.setdefault("entries", {})[real] = entry
        data["version"] = CACHE_VERSION
        user_cache.write_json(file, data)  # a cache: losing it costs only time
    for path in entry["stats"]:
        watch.seen(path)
    return entry["identity"], entry["cfg"]
