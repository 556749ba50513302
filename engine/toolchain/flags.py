"""Target specs and project settings as gcc/g++ argument lists (never shell strings).

Every argument here is deterministic: paths are relative to the build's staging folder, which is
also mapped away with ``-ffile-prefix-map`` so that no absolute path reaches an output.
"""

from __future__ import annotations

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
    flags = list(OPT_FLAGS[spec.opt])
    if spec.cpu:
        flags.append(f"-march={spec.cpu}")
    if spec.lto:
        # One partition and no parallel LTRANS jobs: the output must not depend on scheduling.
        flags += ["-flto=1", "-flto-partition=one"]
    return flags


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
        "-fPIC",  # one object serves a static library, a shared library and an executable
        *prefix_maps(staging, store_root),
        *define_flags(project, spec),
        *[f"-I{d}" for d in include_dirs],
        *project.compile_flags,
    ]


def compile_argv(driver: str, flags: list[str], source: str, obj: str, depfile: str) -> list[str]:
    # -frandom-seed pins the names gcc would otherwise draw at random (e.g. for LTO sections).
    return [driver, *flags, f"-frandom-seed={source}", "-MD", "-MF", depfile,
            "-c", source, "-o", obj]


def link_argv(driver: str, project: Project, spec: TargetSpec, output: str, kind: str,
              objects: list[str], libraries: list[str], rpaths: list[str],
              maps: list[str]) -> list[str]:
    """Link an executable or a shared library from objects and dependency libraries."""
    argv = [driver, *target_flags(spec), *maps]
    if kind == "shared-library":
        soname = output.rsplit("/", 1)[-1]
        argv += ["-shared", f"-Wl,-soname,{soname}"]
    if spec.strip:
        argv.append("-s")
    argv += ["-o", output, *objects, *libraries]
    argv += [f"-Wl,-rpath,{path}" for path in rpaths]
    argv += list(project.link_flags)
    return argv


def archive_argv(ar: str, output: str, objects: list[str]) -> list[str]:
    # D: zero timestamps, uids and modes in the archive; s: write the symbol index.
    return [ar, "rcsD", output, *objects]
