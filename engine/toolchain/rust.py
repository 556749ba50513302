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
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import user_cache, watch
from engine.documents.models import TargetSpec
from engine.hashing import file_digest
from engine.toolchain.detect import ToolchainError
from engine.toolchain.rust_cross import rust_triple

CACHE_VERSION = 4  # 3: rustup's lld in the identity; 4: and the target's std
RACY_NS = 2_000_000_000  # as engine.memo: a file changed this recently may change unseen
#: What rustup's proxy reads from the environment to pick a toolchain.
RUSTUP_ENV = ("RUSTUP_TOOLCHAIN", "RUSTUP_HOME", "HOME", "CARGO_HOME")
_sysroots: dict[str, str] = {}  # this process's answers, by _sysroot's key


@dataclass(frozen=True)
class RustToolchain:
    rustc: str  # the real compiler, <sysroot>/bin/rustc
    identity: dict[str, Any] = field(hash=False, compare=False)
    # What ``rustc --print cfg`` says of the host (``unix``, ``target_os="linux"``, ...):
    # which target-specific dependencies of crates apply, and their build scripts' CARGO_CFG_*.
    cfg: frozenset[str] = field(default=frozenset(), hash=False, compare=False)
    target: str | None = None  # rustc's --target for a foreign triple; None: the host

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
    sysroot = _sysroot(found, spec, cache_dir)
    real = os.path.join(sysroot, "bin", "rustc")
    if not os.access(real, os.X_OK):
        raise ToolchainError(f"target '{spec.name}': {found} names sysroot {sysroot}, which "
                             "has no bin/rustc", "check the Rust installation", pos=spec.pos)
    target = rust_target(spec)
    identity, cfg = _cached_identity(real, sysroot, cache_dir, spec, target)
    return RustToolchain(real, identity, frozenset(cfg), target)


def rust_target(spec: TargetSpec) -> str | None:
    """rustc's ``--target`` for a foreign triple (``wasm32-wasi``, ``x86_64-pc-windows-gnu``),
    None for the host."""
    if spec.triple == "host":
        return None
    return rust_triple(spec.triple)


def _sysroot(found: str, spec: TargetSpec, cache_dir: Path) -> str:
    """``found --print sysroot``, remembered (in this process, and in the checkout's cache
    against the stat data of everything rustup's proxy reads to choose a toolchain): a proxy
    costs 30 ms a run, and a verify derives Rust projects several times."""
    key = repr((found, os.getcwd(), [os.environ.get(name) for name in RUSTUP_ENV]))
    inputs = _rustup_inputs(found)
    for path in inputs:
        watch.seen(path)  # a no-op remembered depends on the choice, too
    if key in _sysroots:
        return _sysroots[key]
    started = time.time_ns()
    stats = {path: watch.stat_of(path) for path in inputs}
    file = cache_dir / "rust-sysroots.json"
    try:
        data = json.loads(file.read_text())
        entry = data["entries"][key] if data.get("version") == CACHE_VERSION else None
    except (OSError, ValueError, KeyError, TypeError):
        data, entry = {}, None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
        data = {}
    if isinstance(entry, dict) and entry.get("stats") == {p: list(st) if st else None
                                                           for p, st in stats.items()} \
            and os.access(os.path.join(str(entry.get("sysroot")), "bin", "rustc"), os.X_OK):
        sysroot = str(entry["sysroot"])
    else:
        sysroot = _run([found, "--print", "sysroot"], spec)
        # The racily-clean rule: a choice read right after a change is not remembered.
        if all(st is None or max(st[2], st[3]) < started - RACY_NS for st in stats.values()):
            data.setdefault("entries", {})[key] = {
                "sysroot": sysroot, "stats": {p: list(st) if st else None
                                              for p, st in stats.items()}}
            data["version"] = CACHE_VERSION
            user_cache.write_json(file, data)  # a cache: losing it costs only time
    _sysroots[key] = sysroot
    return sysroot


def _rustup_inputs(found: str) -> list[str]:
    """The files whose change can change what ``found`` (rustup's proxy or a real rustc)
    says its sysroot is: the program and what it links to, rustup's settings (the default
    toolchain and the folder overrides), and the ``rust-toolchain`` files of the working
    folder and its parents."""
    home = os.environ.get("RUSTUP_HOME") or os.path.join(os.path.expanduser("~"), ".rustup")
    inputs = [found, os.path.realpath(found), os.path.join(home, "settings.toml")]
    folder = os.getcwd()
    while True:
        inputs += [os.path.join(folder, "rust-toolchain"),
                   os.path.join(folder, "rust-toolchain.toml")]
        parent = os.path.dirname(folder)
        if parent == folder:
            return inputs
        folder = parent


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


def _hashed_files(real: str, sysroot: str, target: str | None) -> list[str]:
    """The compiler, the shared libraries beside it, the standard library of the host (build
    scripts, proc macros) and of the target (what gets linked into outputs), and the lld it
    ships (rustup's, 1.90 on), which links Rust's outputs where it is there."""
    files = [real]
    lib = Path(sysroot, "lib")
    files += sorted(str(p) for p in lib.glob("*.so*") if p.is_file())
    host = _host(real)
    files += sorted(str(p) for p in (lib / "rustlib" / host / "lib").glob("*")
                    if p.is_file())
    if target and target != host:  # with its self-contained/ C runtime (WASI's libc)
        files += sorted(str(p) for p in (lib / "rustlib" / target / "lib").rglob("*")
                        if p.is_file())
    files += [str(p) for p in (lib / "rustlib" / host / "bin" / "rust-lld",
                               lib / "rustlib" / host / "bin" / "gcc-ld" / "ld.lld")
              if p.is_file()]
    return files


def lld_args(identity: dict[str, Any]) -> list[str]:
    """rustc's flags to link through the target's C compiler with the lld rustc ships, as
    rustc does itself unless given a ``-C linker`` (ld.bfd takes half as long again); none
    for a rustc without it (Debian's). Its digest is in the identity."""
    rustc = identity["rustc"]
    host = next(line.split(": ", 1)[1] for line in identity["version"].splitlines()
                if line.startswith("host: "))
    wrapper = f"lib/rustlib/{host}/bin/gcc-ld/ld.lld"
    if wrapper not in identity["digests"]:
        return []
    folder = Path(rustc).parent.parent / wrapper
    return ["-C", f"link-arg=-B{folder.parent}", "-C", "link-arg=-fuse-ld=lld"]


#: lld's -O0 for links of unoptimised code: no merging of identical strings (its -O1 default),
#: which in debug information is a tenth of a link (tvrun of recipes/generated: 0.100 s ->
#: 0.093 s, libtvgen.so 0.169 s -> 0.151 s; 5 % larger). Deterministic: it changes no byte
#: between two builds, only what one build's bytes are.
FAST_LINK = ["-C", "link-arg=-Wl,-O0"]


def _host(real: str) -> str:
    out = subprocess.run([real, "-vV"], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines()
                if line.startswith("host: "))


def _stat_key(path: str) -> list[int]:
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _cached_identity(real: str, sysroot: str, cache_dir: Path, spec: TargetSpec,
                     target: str | None) -> tuple[dict, list[str]]:
    """The identity from the checkout's cache, else the user's (``engine.user_cache``: a fresh
    clone does not hash the sysroot again), else computed; each validated by stat data."""
    name = f"{real} --target {target}" if target else real
    missed = []
    for file in [cache_dir / "rust-toolchains.json", *user_cache.file("rust-toolchains.json")]:
        try:
            data = json.loads(file.read_text())
            if data.get("version") != CACHE_VERSION:
                data = {}
        except (OSError, ValueError):
            data = {}
        entry = data.get("entries", {}).get(name)
        try:
            fresh = entry is not None and all(_stat_key(p) == k
                                              for p, k in entry["stats"].items())
        except OSError:
            fresh = False
        if fresh:
            break
        missed.append((file, data))
    else:
        files = _hashed_files(real, sysroot, target)
        version = _run([real, "-vV"], spec)
        digests = {os.path.relpath(p, sysroot): file_digest(p) for p in files}
        on = ["--target", target] if target else []
        entry = {"stats": {p: _stat_key(p) for p in files},
                 "identity": {"family": "rustc", "rustc": real, "version": version,
                              "digests": digests, **({"target": target} if target else {})},
                 "cfg": _run([real, "--print", "cfg", *on], spec).splitlines()}
    assert entry is not None
    for file, data in missed:
        data.setdefault("entries", {})[name] = entry
        data["version"] = CACHE_VERSION
        user_cache.write_json(file, data)  # a cache: losing it costs only time
    for path in entry["stats"]:
        watch.seen(path)
    return entry["identity"], entry["cfg"]
