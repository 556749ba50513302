"""The actions of a derivation: one compile per translation unit, one archive or link per output.

An action's argv is a template: ``@STAGING@`` and ``@STORE@`` stand for the build's staging
folder and the store's folder, substituted only when the action runs, so that neither enters a
derivation or an action key (they differ between builds and between stores).

Staging layout, relative to the staging folder (the working folder of every action is ``w``):
  ``w/<path>``       the project's declared files, at their paths in the project
  ``d/<project>``    a symlink to each dependency's store path
  ``o/<path>.o``     objects (and ``.d`` depfiles)
  ``out/``           the output tree that becomes the store path (bin/, lib/, include/)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.documents.models import Output, Project, TargetSpec
from engine.toolchain import flags
from engine.toolchain.detect import Toolchain

STAGING, STORE = "@STAGING@", "@STORE@"


@dataclass(frozen=True)
class DepLib:
    """A library of a dependency as a dependent links it."""

    store_name: str  # the dependency's store path name
    project: str
    file: str  # e.g. "lib/libstrutil.a"
    shared: bool
    # A Rust static library's native libraries (what rustc's ``--print native-static-libs``
    # says: the standard library's and those its crates' build scripts asked for), a file of
    # link arguments beside it that the link reads as ``@file``; "" for other libraries.
    native: str = ""


@dataclass
class Action:
    """One step of a derivation's build: a compile, an archive or a link."""

    kind: str  # "compile" | "archive" | "link"
    label: str  # what a person reads in progress lines: a source or an output name
    argv: list[str]  # template, relative to the working folder w/
    inputs: list[str]  # files it reads, relative to the staging folder
    outputs: list[str]  # files it writes, relative to the staging folder
    needs: list[int]  # indexes of the actions whose outputs it reads
    # Variables added to the build's fixed environment (crates: CARGO_PKG_*, OUT_DIR, ...),
    # templates like argv; recorded only when there are some.
    env: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"kind": self.kind, "argv": self.argv,
                                   "inputs": self.inputs, "outputs": self.outputs}
        if self.env:
            data["env"] = self.env
        return data

    @classmethod
    def from_json(cls, data: dict[str, list[str] | str]) -> Action:
        """An action read back from a recorded derivation (``needs`` is not recorded: every
        compile comes before every archive and link)."""
        kind, inputs, outputs = str(data["kind"]), list(data["inputs"]), list(data["outputs"])
        label = inputs[0].removeprefix("w/") if kind == "compile" else \
            outputs[0].rpartition("/")[2]
        env = data.get("env", {})
        return cls(kind, label, list(data["argv"]), inputs, outputs, [],
                   dict(env) if isinstance(env, dict) else {})


def object_of(source: str) -> str:
    return f"o/{source}.o"


def output_file(output: Output, spec: TargetSpec | None = None) -> str:
    """Where an output lands; its name follows the target (``prog.exe``, ``foo.dll``,
    ``libfoo.dylib``, ``prog.wasm``)."""
    fmt = flags.object_format(spec) if spec is not None else "elf"
    exe = {"coff": ".exe", "wasm": ".wasm"}.get(fmt, "")
    shared = {"coff": f"out/bin/{output.name}.dll",
              "macho": f"out/lib/lib{output.name}.dylib"}.get(fmt, f"out/lib/lib{output.name}.so")
    return {
        "executable": f"out/bin/{output.name}{exe}",
        "static-library": f"out/lib/lib{output.name}.a",
        "shared-library": shared,
    }[output.kind]


def plan_actions(project: Project, spec: TargetSpec, toolchain: Toolchain,
                 dep_names: list[str], dep_libs: list[DepLib], cxx_link: bool) -> list[Action]:
    """The action graph of one project x target. ``dep_names`` are the projects of the whole
    dependency closure, ``dep_libs`` their libraries in link order (dependents first);
    ``cxx_link``: C++ code is linked in (the C++ runtime is needed)."""
    driver = toolchain.cxx if project.language == "c++" else toolchain.cc
    linker = toolchain.cxx if cxx_link else driver
    compiler = flags.compiler_argv(driver, spec, project.language == "c++", toolchain.identity)
    include_dirs = [*project.include_dirs, *[f"../d/{name}/include" for name in dep_names]]
    cflags = flags.compile_flags(project, spec, include_dirs, STAGING, STORE)
    actions: list[Action] = []
    compiled: dict[str, int] = {}

    def compile_unit(source: str) -> int:
        if source not in compiled:
            obj = object_of(source)
            argv = flags.compile_argv(compiler, cflags, source, f"../{obj}",
                                      f"../{obj[:-2]}.d")
            actions.append(Action("compile", source, argv, [f"w/{source}"],
                                  [obj, f"{obj[:-2]}.d"], []))
            compiled[source] = len(actions) - 1
        return compiled[source]

    library_units = [compile_unit(source) for source in project.sources]
    lib_args = [a for lib in dep_libs for a in (
        f"../d/{lib.project}/{lib.file}", *([f"@../d/{lib.project}/{lib.native}"]
                                            if lib.native else []))]
    rpaths = sorted({f"$ORIGIN/../../{lib.store_name}/lib" for lib in dep_libs if lib.shared})
    for output in project.outputs:
        units = library_units if output.sources is None else \
            [compile_unit(s) for s in output.sources] + library_units
        objects = [actions[i].outputs[0] for i in units]
        target = output_file(output, spec)
        made = [target]
        if output.kind == "static-library":
            argv = flags.archive_argv(toolchain.ar, f"../{target}", [f"../{o}" for o in objects],
                                      spec)
        else:
            argv = flags.link_argv(linker, project, spec, f"../{target}", output.kind,
                                   [f"../{o}" for o in objects], lib_args, rpaths,
                                   flags.prefix_maps(STAGING, STORE), cxx=cxx_link)
            if output.kind == "shared-library" and target.endswith(".dll"):
                made.append(flags.import_library(target))
        kind = "archive" if output.kind == "static-library" else "link"
        actions.append(Action(kind, output.name, argv, objects, made, units))
    return actions
