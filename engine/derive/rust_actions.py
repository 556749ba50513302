"""The actions of a Rust project: rustc run directly on crates in cargo's layout (no cargo, no
network: std only).

``src/lib.rs`` is the library crate, named after the project (``-`` and ``.`` become ``_``),
built as an ``rlib`` into ``lib/`` of the store path (for executables and eval cases, which
``use`` it through ``--extern``); each library output is one more rustc run of it
(``staticlib`` for a static library, ``cdylib`` for a shared one); an executable output's single
source is its crate root. Every run
reads all the project's declared files (a crate's modules are found by rustc), so its key
covers them all. Dependencies on C and C++ projects are linked in by their libraries; a Rust
project of the plan that is depended on is used as cargo does: its rlib by ``--extern`` (direct
dependencies only) and ``-L dependency=`` over the ``lib/`` of every Rust project of the
closure, so rustc finds the crates those rlibs were compiled against.

Determinism: ``--remap-path-prefix`` maps the build and store folders away, ``-C metadata``
comes from the project's name, version and the output (never from a path or a time), and the
linker is the target's C compiler, named by absolute path.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from engine.derive.actions import STAGING, STORE, Action, DepLib, output_file
from engine.documents.models import Output, Project, TargetSpec
from engine.toolchain import rust_cross
from engine.toolchain.detect import Toolchain
from engine.toolchain.rust import FAST_LINK, RustToolchain, lld_args

LIB_ROOT = "src/lib.rs"
DEFAULT_EDITION = "2021"
OPT = {
    "debug": ["-C", "opt-level=0", "-C", "debuginfo=2"],
    "release": ["-C", "opt-level=3"],
    "release-debug": ["-C", "opt-level=3", "-C", "debuginfo=2"],
    "min-size": ["-C", "opt-level=s"],
}
CRATE_TYPE = {"static-library": "staticlib", "shared-library": "cdylib", "executable": "bin"}


def crate_name(name: str) -> str:
    return name.replace("-", "_").replace(".", "_")


@dataclass(frozen=True)
class RustDep:
    """A Rust project of the closure as a dependent compiles against it."""

    project: str  # its name in the plan: d/<project> in the staging folder
    crate: str
    direct: bool  # named in the dependent's depends: (an --extern)

    @property
    def rlib(self) -> str:
        return f"../d/{self.project}/lib/lib{self.crate}.rlib"


def rust_crates(project: Project, closure: list[Project]) -> list[RustDep]:
    """The Rust projects among a project's dependency closure (plan order)."""
    return [RustDep(p.name, crate_name(p.name), p.name in project.depends)
            for p in closure if p.language == "rust"]


def crate_flags(crates: list[RustDep]) -> list[str]:
    """``--extern`` for the direct Rust dependencies, ``-L dependency=`` for all of them."""
    flags = [a for c in crates if c.direct for a in ("--extern", f"{c.crate}={c.rlib}")]
    return flags + [f"-Ldependency=../d/{c.project}/lib" for c in crates]


def target_flags(spec: TargetSpec) -> list[str]:
    flags = list(OPT[spec.opt])
    if spec.cpu:
        flags += ["-C", f"target-cpu={spec.cpu}"]
    if spec.strip:
        flags += ["-C", "strip=symbols"]
    if not spec.lto:  # as cargo does: no LLVM bitcode in objects nothing will LTO (-6% of CPU)
        flags += ["-C", "embed-bitcode=no"]
    for feature in spec.features:
        flags += ["--cfg", f'feature="{feature}"']
    return flags


def plan_rust_actions(project: Project, spec: TargetSpec, toolchain: Toolchain,
                      rust: RustToolchain, dep_libs: list[DepLib], cxx: bool,
                      crates: list[RustDep], registry_flags: list[str]) -> list[Action]:
    """One rustc action per output (and one for the rlib that executables use); ``cxx``: a
    C++ dependency is linked in (the C++ runtime is needed); ``crates``: the Rust projects of
    the closure; ``registry_flags``: ``--extern`` and ``-L dependency=`` for registry crates."""
    inputs = [f"w/{f}" for f in sorted({*project.sources, *project.headers,
                                        *(s for o in project.outputs for s in o.sources or ())})]
    has_lib = LIB_ROOT in project.sources
    crate = crate_name(project.name)
    # On the host: the target's C compiler with the lld rustc ships (where it ships one); on
    # another triple: zig through its wrapper, as cargo-zigbuild does.
    fast = lld_args(rust.identity)
    if fast and spec.opt == "debug":  # a debug link with lld: no string merging
        fast += FAST_LINK
    linker, env = (["-C", f"linker={toolchain.cc}", *fast], {}) \
        if spec.triple == "host" else rust_cross.linker(spec, toolchain.cc)
    common = [rust.rustc, "--edition", project.standard or DEFAULT_EDITION,
              *target_flags(spec),
              f"--remap-path-prefix={STORE}=/recipe/store", f"--remap-path-prefix={STAGING}=.",
              *linker, *crate_flags(crates), *registry_flags, *project.compile_flags]
    links = [a for lib in dep_libs for a in ("-C", f"link-arg=../d/{lib.project}/{lib.file}")]
    links += ["-C", "link-arg=-lstdc++"] if cxx else []
    actions: list[Action] = []
    # The rlib is part of the output tree: executables use it, and so do eval cases.
    rlib = f"out/lib/lib{crate}.rlib"
    outputs = list(project.outputs)
    if has_lib:
        # The library outputs named after the crate are compiled with the rlib in one rustc run,
        # as cargo does for crate-type = ["rlib", "cdylib"]: the crate is analysed and
        # code-generated once. Not under LTO, which an rlib cannot take part in, nor on another
        # triple, where rustc's --out-dir names (foo.dll, foo.wasm) are not _named_file's.
        joined = [] if spec.lto or spec.triple != "host" else [
            o for o in outputs
            if o.kind in LIBRARY_TYPE and output_file(o, spec) == _named_file(o.kind, crate)]
        types = ["rlib", *(LIBRARY_TYPE[o.kind] for o in joined)]
        argv = [*common, "--crate-name", crate,
                *(a for t in types for a in ("--crate-type", t)),
                "-C", f"metadata={_metadata(project, ':rlib')}",
                *(links if joined else []),
                *(["--out-dir", "../out/lib"] if joined else ["-o", f"../{rlib}"]), LIB_ROOT]
        label = ", ".join([f"lib{crate}.rlib", *(o.name for o in joined)])
        static = [native_libs_file(o.name) for o in joined if o.kind == "static-library"]
        if static:
            argv[-1:-1] = NATIVE_PRINT
        actions.append(Action("rustc", label, argv, inputs,
                              [rlib, *(output_file(o, spec) for o in joined), *static], [],
                              env))
        outputs = [o for o in outputs if o not in joined]
    for output in outputs:
        action = _output_action(project, spec, output, common, links, inputs, crate,
                                rlib if actions else None)
        actions.append(dataclasses.replace(action, env={**action.env, **env}))
    return actions


LIBRARY_TYPE = {"static-library": "staticlib", "shared-library": "cdylib"}


def _named_file(kind: str, crate: str) -> str:
    """Where rustc's ``--out-dir`` puts a crate type (on ELF targets, as ``output_file``)."""
    return f"out/lib/lib{crate}.{'a' if kind == 'static-library' else 'so'}"


def _output_action(project: Project, spec: TargetSpec, output: Output, common: list[str],
                   links: list[str], inputs: list[str], crate: str,
                   rlib: str | None) -> Action:
    target = output_file(output, spec)
    lto = ["-C", "lto=fat"] if spec.lto else []
    if output.kind == "executable":
        root = (output.sources or ("src/main.rs",))[0]
        name = crate_name(output.name)
        extern = ["--extern", f"{crate}=../{rlib}"] if rlib else []
        argv = [*common, *lto, "--crate-name", name, "--crate-type", "bin",
                "-C", f"metadata={_metadata(project, output.name)}", *extern, *links,
                "-o", f"../{target}", root]
        return Action("rustc", output.name, argv, [*inputs, *([rlib] if rlib else [])],
                      [target], [0] if rlib else [])
    static = [native_libs_file(output.name)] if output.kind == "static-library" else []
    argv = [*common, *lto, "--crate-name", crate, "--crate-type", CRATE_TYPE[output.kind],
            "-C", f"metadata={_metadata(project, output.name)}", *links,
            *(NATIVE_PRINT if static else []), "-o", f"../{target}", LIB_ROOT]
    return Action("rustc", output.name, argv, inputs, [target, *static], [])


#: rustc says which native libraries a static library needs (the standard library's, and those
#: the build scripts of its crates asked for, unless bundled into it) in a note on stderr;
#: ``engine.build.build_script.after`` writes them to ``native_libs_file``, which a C or C++
#: dependent's link reads as ``@file``.
NATIVE_PRINT = ["--print", "native-static-libs"]


def native_libs_file(output: str) -> str:
    return f"out/lib/lib{output}.native-libs"


def _metadata(project: Project, what: str) -> str:
    """rustc's symbol disambiguator: from names only, so equal inputs give equal outputs.
    The rlib's ``what`` is no output name (``:`` is not allowed in one): rustc names its
    temporary files after it, and two runs of one wave write into the same lib/ folder."""
    return hashlib.sha256(f"{project.name}\0{project.version}\0{what}".encode()).hexdigest()[:16]
