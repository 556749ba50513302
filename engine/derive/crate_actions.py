"""A crate of the registry as its own derivation: built once into the store, shared by every
project, target and plan that resolves to the same crate (Nix's buildRustCrate).

A crate's store path ``<hash>-<crate>-<version>[-host]`` holds ``lib/lib<crate>-<meta>.rlib``
(a proc-macro: ``.so``). Its derivation (format ``recipe-derivation-1``, ``project`` naming the
crate) has as inputs every file of the crate's folder, as ``depends`` the store paths of its
crate closure (staged as ``d/+<node>``), and up to three actions:

  ``rustc build-script``  the build script compiled for the host at opt-level 0;
  ``build-script``        it runs in the staged crate with Cargo's environment
                          (engine/build/build_script.py keeps what it says and writes);
  ``rustc <lib>``         the library: ``--cfg feature="..."`` per resolved feature,
                          ``--extern`` per direct dependency, ``-L dependency=`` over the closure,
                          the build script's flags, ``--cap-lints allow`` as cargo does.

Crates built for the host (proc-macros, build scripts' dependencies) get ``-C opt-level=0``
(cargo's build-override) and nothing of the target's flags. The metadata hash (``-C
metadata``, the file's suffix) comes from the crate, its features, its dependencies' hashes and
its flags, never from a path. ``--remap-path-prefix`` maps the staged crate to
``/recipe/crates/<crate>-<version>`` and the build folder and store away, so outputs are the
same from any registry path, checkout and store.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.crates.registry import Manifest
from engine.crates.resolve import Graph, Node
from engine.derive.actions import STAGING, STORE, Action
from engine.derive.rust_actions import OPT
from engine.documents.models import TargetSpec
from engine.hashing import DigestCache, canonical
from engine.toolchain.detect import Toolchain
from engine.toolchain.rust import RustToolchain, lld_args

FORMAT = "recipe-derivation-1"
# In the store path: what the build script said, so that dependents' scripts get its metadata.
RESULT = "out/build-script.json"
LINKS = "@links:"  # an env key naming a dependency whose metadata becomes DEP_<LINKS>_<KEY>
SKIP = {".cargo-checksum.json", ".cargo_vcs_info.json", "Cargo.toml.orig"}


def link_name(node: str) -> str:
    """A crate's folder in a dependent's staging ``d/``: ``+`` cannot start a project name."""
    return f"+{node}"


@dataclass
class CrateDerivation:
    node: str  # the graph's node key, e.g. serde-1.0.152 or syn-1.0.107-host
    manifest: Manifest
    name: str  # the store path name
    data: dict[str, Any]
    deps: list[CrateDerivation]  # the crate closure, dependencies first
    actions: list[Action]
    lib_file: str  # below the store path, e.g. lib/libserde-0123456789abcdef.rlib
    meta: str
    crates: list[CrateDerivation] = field(default_factory=list)  # a project's; none here
    project: None = None  # not a project of the plan

    @property
    def key(self) -> tuple[str, str]:
        """As a project's (name, target): what ``recipe check`` matches a rebuild by."""
        return (self.node, "crate")

    @property
    def crate(self) -> str:
        return self.manifest.lib_name

    @property
    def sources(self) -> Path:
        return self.manifest.folder

    @property
    def fingerprint(self) -> str:
        return canonical(self.data)

    @property
    def title(self) -> str:
        return f"crate {self.node}"

    def extern(self, name: str) -> list[str]:
        return ["--extern", f"{name.replace('-', '_')}=../d/{link_name(self.node)}/"
                f"{self.lib_file}"]


def crate_files(folder: Path) -> list[str]:
    """Every file of a crate's folder (what its build may read), sorted. Strings, not Paths,
    and the folder's own entries' types (no stat per file): every command that derives a Rust
    project walks each of its crates' folders."""
    found: list[str] = []
    _walk(os.fspath(folder), "", found)
    return sorted(found)


def _walk(folder: str, below: str, found: list[str]) -> None:
    with os.scandir(folder) as entries:
        for entry in entries:
            rel = below + entry.name
            if entry.is_dir():  # a symlink to a folder too, as os.walk's default
                if entry.name not in (".git", "target") and not entry.is_symlink():
                    _walk(entry.path, rel + "/", found)
            elif entry.is_file() and rel not in SKIP:
                found.append(rel)


def opt_flags(spec: TargetSpec, host: bool) -> list[str]:
    if host:
        return ["-C", "opt-level=0"]  # cargo's build-override for build scripts, proc-macros
    flags = list(OPT[spec.opt])
    if spec.cpu:
        flags += ["-C", f"target-cpu={spec.cpu}"]
    if spec.opt in ("release", "min-size"):
        flags += ["-C", "strip=debuginfo"]  # cargo's release profile
    return flags


def cfg_env(cfg: frozenset[str]) -> dict[str, str]:
    """``CARGO_CFG_*`` from ``rustc --print cfg``: values of one key joined by commas."""
    values: dict[str, list[str]] = {}
    for line in sorted(cfg):
        key, sep, value = line.partition("=")
        if key == "feature":
            continue
        values.setdefault(f"CARGO_CFG_{key.upper()}", [])
        if sep:
            values[f"CARGO_CFG_{key.upper()}"].append(value.strip('"'))
    return {k: ",".join(v) for k, v in values.items()}


def plan_crate(node: Node, graph: Graph, deps: dict[str, CrateDerivation],
               spec: TargetSpec, triple: str, toolchain: Toolchain, rust: RustToolchain,
               digests: DigestCache, make_name: Any) -> CrateDerivation:
    """The derivation of one node of the graph; ``deps`` holds its dependencies' (derived
    first)."""
    manifest = node.manifest
    # Proc-macros, build scripts' dependencies and what they use run on the host: built for it
    # whatever the target, so they are the same store paths for every target of the plan.
    built_for = rust.host if node.host or triple == "host" else triple
    closure = [deps[k] for k in graph.closure(list(node.edges.values()))]
    features = sorted(node.features)
    opt = opt_flags(spec, node.host)
    meta_of = {kind_name: deps[key].meta for kind_name, key in node.edges.items()}
    meta = hashlib.sha256(canonical({
        "crate": manifest.id, "features": features, "host": node.host, "opt": opt,
        "deps": sorted(f"{k}:{n}:{m}" for (k, n), m in meta_of.items()),
        "rustc": rust.identity["version"]}).encode()).hexdigest()[:16]
    env = {
        "CARGO_PKG_NAME": manifest.name, "CARGO_PKG_VERSION": str(manifest.version),
        "CARGO_PKG_VERSION_MAJOR": str(manifest.version.major),
        "CARGO_PKG_VERSION_MINOR": str(manifest.version.minor),
        "CARGO_PKG_VERSION_PATCH": str(manifest.version.patch),
        "CARGO_PKG_VERSION_PRE": ".".join(map(str, manifest.version.pre)),
        **manifest.package_env,
        "CARGO_MANIFEST_DIR": f"{STAGING}/w", "CARGO_CRATE_NAME": manifest.lib_name,
    }
    common = [rust.rustc, "--edition", manifest.edition, "--cap-lints", "allow",
              *(a for f in features for a in ("--cfg", f'feature="{f}"')),
              f"--remap-path-prefix={STORE}=/recipe/store",
              f"--remap-path-prefix={STAGING}=/recipe/build/{manifest.id}",
              f"--remap-path-prefix={STAGING}/w=/recipe/crates/{manifest.id}",
              "-C", f"linker={toolchain.cc}", *lld_args(rust.identity),
              *(f"-Ldependency=../d/{link_name(d.node)}/lib" for d in closure)]
    files = crate_files(manifest.folder)
    top = os.path.abspath(manifest.folder)
    inputs = [f"w/{f}" for f in files]
    actions: list[Action] = []
    script_env: dict[str, str] = {}
    if manifest.build:
        host = rust.host
        script_env = {
            **env, "OUT_DIR": f"{STAGING}/o/out-dir", "TARGET": built_for, "HOST": host,
            "RUSTC": rust.rustc, "NUM_JOBS": "1",
            "PROFILE": "debug" if node.host or spec.opt == "debug" else "release",
            "OPT_LEVEL": next(f.split("=")[1] for f in opt if f.startswith("opt-level=")),
            "DEBUG": "true" if any("debuginfo=2" in f for f in opt) else "false",
            "CARGO_ENCODED_RUSTFLAGS": "", "RUSTC_LINKER": toolchain.cc,
            **cfg_env(rust.cfg),
            **{f"CARGO_FEATURE_{f.upper().replace('-', '_')}": "1" for f in features}}
        externs = [a for (kind, name), key in sorted(node.edges.items()) if kind == "build"
                   for a in deps[key].extern(name)]
        # DEP_<links>_<key>: the metadata of direct dependencies that declare ``links``,
        # read from their store paths when the script runs (engine/build/build_script.py).
        for (kind, _name), key in sorted(node.edges.items()):
            dep = deps[key]
            if kind == "normal" and dep.manifest.links and dep.manifest.build:
                script_env[LINKS + dep.manifest.links.upper().replace("-", "_")] = \
                    link_name(dep.node)
        argv = [*common, "-C", "opt-level=0", "--crate-name",
                "build_script_build", "--crate-type", "bin", "-C", f"metadata={meta}-build",
                *externs, "-o", "../o/build-script", manifest.build]
        actions.append(Action("rustc", manifest.build, argv, inputs, ["o/build-script"], [],
                              env))
        actions.append(Action("build-script", manifest.build,
                              ["../o/build-script"], [*inputs, "o/build-script"], [RESULT],
                              [0], script_env))
    kind = "proc-macro" if manifest.proc_macro else "rlib"
    suffix = "so" if manifest.proc_macro else "rlib"
    lib_file = f"lib/lib{manifest.lib_name}-{meta}.{suffix}"
    externs = [a for (kind_, name), key in sorted(node.edges.items()) if kind_ == "normal"
               for a in deps[key].extern(name)]
    if manifest.proc_macro:
        externs += ["--extern", "proc_macro"]
    argv = [*common, *opt, "--crate-name", manifest.lib_name, "--crate-type", kind,
            "-C", f"metadata={meta}", "-C", f"extra-filename=-{meta}", *externs,
            "-o", f"../out/{lib_file}", manifest.lib_path]
    lib_env = {**env, "OUT_DIR": f"{STAGING}/o/out-dir"} if manifest.build else env
    actions.append(Action("rustc", manifest.id, argv,
                          [*inputs, *([RESULT] if manifest.build else [])],
                          [f"out/{lib_file}"], [1] if manifest.build else [], lib_env))
    data = {
        "format": FORMAT,
        "project": {"name": manifest.name, "version": str(manifest.version),
                    "language": "rust", "standard": manifest.edition},
        "target": {"name": "host" if node.host else "crate",
                   "spec": {"triple": built_for, "opt": opt}},
        "crate": {"checksum": manifest.checksum, "features": features, "host": node.host,
                  "kind": kind},
        "inputs": {f: digests.digest(f"{top}/{f}") for f in files},
        "public": {},
        "toolchain": toolchain.identity,
        "rust": rust.identity,
        "depends": {link_name(d.node): d.name for d in closure},
        "actions": [a.as_json() for a in actions],
    }
    name = make_name(canonical(data), node.key)
    return CrateDerivation(node.key, manifest, name, data, closure, actions, lib_file, meta)
