"""Target specs and project settings as gcc/g++ argument lists (never shell strings).

Every argument here is deterministic: paths are relative to the build's staging folder, which is
also mapped away with ``-ffile-prefix-map`` so that no absolute path reaches an output.
"""

from __future__ import annotations

from typing import Any

from engine.documents.models import Project, TargetSpec

# Build timestamps (__DATE__, __TIME__) come from this instead of the clock.
SOURCE_DATE_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip archive can hold

DEFAULT_STANDARD = {"c": "c17", "c++": "c++17"}
# C23 by the name every compiler we drive accepts: gcc 9 to 13 know it only as c2x, and gcc 14
# and clang (zig cc) still take c2x as its alias.
STD_FLAG = {"c23": "c2x", "gnu23": "gnu2x"}

OPT_FLAGS = {
    "debug": ["-O0", "-g"],
    "release": ["-O2"],
    "release-debug": ["-O2", "-g"],
    "min-size": ["-Os"],
}


def target_flags(spec: TargetSpec) -> list[str]:
    """Code generation flags of a target: shared by compiling and linking."""
    if spec.uses_zig:
        return zig_target_flags(spec)
    flags = list(OPT_FLAGS[spec.opt])
    if spec.cpu:
        flags.append(f"-march={spec.cpu}")
    if spec.lto:
        # One partition and no parallel LTRANS jobs: the output must not depend on scheduling.
        flags += ["-flto=1", "-flto-partition=one"]
    return flags


def zig_target_flags(spec: TargetSpec) -> list[str]:
    """zig's: an explicit target and CPU (``baseline`` unless given: without them zig builds for
    the build machine's CPU), and no sanitizers (zig enables UBSan at -O0; cargo-zigbuild turns
    it off the same way), so that ``opt:`` means the same on every triple."""
    cpu = (spec.cpu or "baseline").replace("-", "_")  # zig spells cortex_a72, x86_64_v3
    flags = ["-target", spec.triple, f"-mcpu={cpu}", *OPT_FLAGS[spec.opt], "-fno-sanitize=all"]
    if object_format(spec) == "coff":
        # For Windows zig emits CodeView even without -g, with the whole compile command
        # (absolute paths) in it: none without -g, and never the command line.
        flags.append("-gno-codeview-command-line" if "-g" in OPT_FLAGS[spec.opt] else "-g0")
    if spec.lto:
        flags.append("-flto")
    return flags


def object_format(spec: TargetSpec) -> str:
    """``elf``, ``coff``, ``macho`` or ``wasm``: what the triple's outputs are."""
    os_name = spec.triple.split("-")[1] if spec.triple.count("-") else ""
    if spec.triple == "host" or not spec.uses_zig:
        return "elf"
    if os_name == "windows" or os_name == "uefi":
        return "coff"
    if os_name in ("macos", "ios", "tvos", "watchos", "visionos", "driverkit"):
        return "macho"
    if spec.triple.startswith("wasm"):
        return "wasm"
    return "elf"


def define_flags(project: Project, spec: TargetSpec) -> list[str]:
    flags = [f"-D{name}={value}" if value != "" else f"-D{name}"
             for name, value in sorted(project.defines.items())]
    flags += [f"-D{feature}" for feature in spec.features]
    return flags


def prefix_maps(staging: str, store_root: str) -> list[str]:
    """Absolute paths that could still appear (the working folder in DWARF, the store's folder
    through dependency symlinks) are rewritten to fixed ones. gcc tries the maps from the last
    given, and the staging folder lies inside the store: it goes last. Links need them too:
    with LTO the linker compiles again."""
    return [f"-ffile-prefix-map={store_root}=/recipe/store", f"-ffile-prefix-map={staging}=."]


def compile_flags(project: Project, spec: TargetSpec, include_dirs: list[str],
                  staging: str, store_root: str) -> list[str]:
    """Everything but the source, object and depfile names of one compile."""
    standard = project.standard or DEFAULT_STANDARD[project.language]
    return [
        f"-std={STD_FLAG.get(standard, standard)}",
        *target_flags(spec),
        # One object serves a static library, a shared library and an executable (PE and
        # wasm have no such thing as position-independent code to ask for).
        *(["-fPIC"] if object_format(spec) in ("elf", "macho") else []),
        # CodeView names the object file by its absolute path (in the build folder or zig's
        # cache), which no prefix map reaches: it is left empty.
        *(["-Xclang", "-object-file-name="] if object_format(spec) == "coff" else []),
        # zig's libc++ for WASI has no exceptions: the library's own throws become aborts
        # (what a user of wasi-sdk writes); a try or throw in the project is a compile error.
        *(["-fno-exceptions"] if project.language == "c++" and object_format(spec) == "wasm"
          else []),
        *prefix_maps(staging, store_root),
        *define_flags(project, spec),
        *[f"-I{d}" for d in include_dirs],
        *project.compile_flags,
    ]


def driver_argv(driver: str, spec: TargetSpec, cxx: bool = False) -> list[str]:
    """A compiler as a command: zig's is ``zig cc`` or ``zig c++``."""
    if spec.uses_zig:
        return [driver, "c++" if cxx else "cc"]
    return [driver]


def compiler_argv(driver: str, spec: TargetSpec, cxx: bool, identity: dict[str, Any]
                  ) -> list[str]:
    """A compiler as a command for compiling (``driver_argv``), with gcc's ``-pipe``: cc1
    hands its assembly to as through a pipe, not a temporary file, so the two overlap, and
    the object is the same byte for byte (8 % of a unit's compile, ~4 % of a REPL runner's
    compile and link). zig's clang assembles in-process: nothing to gain."""
    argv = driver_argv(driver, spec, cxx)
    return [*argv, "-pipe"] if identity.get("family") == "gcc" else argv


def import_library(dll: str) -> str:
    """``../out/bin/foo.dll`` -> ``../out/lib/libfoo.dll.a``: where a Windows DLL's import
    library goes (mingw's name for it)."""
    head, _, name = dll.rpartition("/bin/")
    return f"{head}/lib/lib{name}.a"


def compile_argv(driver: str | list[str], flags: list[str], source: str, obj: str,
                 depfile: str) -> list[str]:
    # -frandom-seed pins the names gcc would otherwise draw at random (e.g. for LTO sections).
    driver = [driver] if isinstance(driver, str) else driver
    return [*driver, *flags, f"-frandom-seed={source}", "-MD", "-MF", depfile,
            "-c", source, "-o", obj]


def link_argv(driver: str, project: Project, spec: TargetSpec, output: str, kind: str,
              objects: list[str], libraries: list[str], rpaths: list[str],
              maps: list[str], cxx: bool = False) -> list[str]:
    """Link an executable or a shared library from objects and dependency libraries."""
    fmt = object_format(spec)
    argv = [*driver_argv(driver, spec, cxx), *target_flags(spec), *maps]
    if kind == "shared-library":
        soname = output.rsplit("/", 1)[-1]
        argv.append("-shared")
        if fmt == "elf":
            argv.append(f"-Wl,-soname,{soname}")
        elif fmt == "coff":  # the import library a dependent links against
            argv.append(f"-Wl,--out-implib,{import_library(output)}")
    if spec.strip:
        argv.append("-s")
    elif spec.uses_zig and "-g" not in OPT_FLAGS[spec.opt]:
        # zig's libc objects carry debug information naming zig's cache and the folder of the
        # build that filled it; a target that asks for none gets none, and stays the same
        # bytes whichever store and checkout built it (see docs/cross.md). zig has one
        # strip switch: this drops the symbol table too.
        argv.append("-Wl,--strip-debug")
    argv += ["-o", output, *objects, *libraries]
    if fmt == "elf":
        argv += [f"-Wl,-rpath,{path}" for path in rpaths]
    argv += list(project.link_flags)
    return argv


def archive_argv(ar: str, output: str, objects: list[str],
                 spec: TargetSpec | None = None) -> list[str]:
    # D: zero timestamps, uids and modes in the archive; s: write the symbol index.
    prefix = [ar, "ar"] if spec is not None and spec.uses_zig else [ar]
    return [*prefix, "rcsD", output, *objects]
