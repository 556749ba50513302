"""The validated, resolved form of the YAML documents: what every layer above ``documents`` sees.

All file lists are POSIX paths relative to the folder of the document that declared them, already
expanded from their patterns, checked to stay inside the plan's folder, and sorted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Every dataclass here has a docstring: without one, @dataclass computes inspect.signature() of
# the class for it, about a fifth of this module's import (which every command pays).
from pathlib import Path
from typing import Any, Literal

from engine.errors import Pos

Language = Literal["c", "c++", "rust"]
OutputKind = Literal["static-library", "shared-library", "executable"]
CaseKind = Literal["process", "eval", "function"]


@dataclass(frozen=True)
class Output:
    """An output of a project: a library or an executable."""

    name: str
    kind: OutputKind
    # Own sources (relative to the project folder); None means "the project's library sources".
    sources: tuple[str, ...] | None
    pos: Pos


@dataclass(frozen=True)
class CType:
    """One C type of a function signature, e.g. ``const char *`` or ``uint8_t``."""

    spelling: str  # canonical spelling: "int32_t", "const char *", "double", "void", ...
    kind: Literal["bool", "char", "int", "float", "string", "void", "json"]
    bits: int = 0  # 8..64 for integers and char, 32/64 for floats, 0 otherwise
    signed: bool = True


@dataclass(frozen=True)
class Signature:
    """A function case's C signature, parsed."""

    name: str
    returns: CType
    params: tuple[CType, ...]
    text: str  # as written in the document
    names: tuple[str | None, ...] = ()  # the parameters' names, as written (None: unnamed)


@dataclass
class FileExpect:
    """What one file of the scratch working folder must hold (``expect: files:``)."""

    text: bytes | None = None  # inline, patterns allowed
    file: str | None = None  # a golden file, relative to the cases file's folder
    absent: bool = False  # the file must not exist


@dataclass
class Expect:
    """What a process or eval case must produce."""

    stdout: bytes | None = None  # None: see stdout_file, or unchecked
    stdout_file: str | None = None  # relative to the cases file's folder
    stderr: bytes | None = None  # None with no stderr_file: unchecked
    stderr_file: str | None = None
    exit: int = 0
    signal: int | None = None  # the signal the process must die by (then ``exit`` is unused)
    # path below the working folder (normalised, '/'-separated) -> what it must hold
    files: dict[str, FileExpect] = field(default_factory=dict)
    tree: str | None = None  # a golden folder, relative to the cases file's folder


#: What a case's scratch folder may hold on disk unless it says ``scratch_limit:``.
SCRATCH_LIMIT = 256 << 20


@dataclass
class Case:
    """One case of a cases document."""

    name: str
    kind: CaseKind
    file: Path  # absolute path of the cases document
    index: int  # position in that document's `cases:` list
    pos: Pos
    expect: Expect
    xfail: str | None = None  # the reason it is expected to fail
    skip: str | None = None  # the reason it is not run
    # Skipped on some targets only: a part of a triple ("windows", "aarch64-linux") -> reason.
    skip_on: dict[str, str] = field(default_factory=dict)
    # process cases
    run: str | None = None
    args: tuple[str, ...] = ()
    stdin: bytes | None = None
    stdin_file: str | None = None  # relative to the cases file's folder
    env: dict[str, str] = field(default_factory=dict)
    files: tuple[str, ...] = ()  # expanded, relative to the cases file's folder
    # ``files: [{from, to}]``: (source relative to the cases file's folder, and so possibly
    # climbing with "../" within the project; destination relative to the scratch folder)
    copies: tuple[tuple[str, str], ...] = ()
    timeout: float = 10.0
    scratch_limit: int = SCRATCH_LIMIT  # bytes the scratch folder may hold (process and eval)
    newlines: Literal["as-is", "lf"] = "as-is"  # lf: \r\n printed compares as \n
    # eval cases
    code: str | None = None
    # function cases
    signature: Signature | None = None
    table: list[list[Any]] = field(default_factory=list)
    tolerance: float = 0.0
    free: str | None = None  # the library's function that frees a returned string
    # process and eval cases: placeholder -> regular expression (the file's, then the case's)
    redact: dict[str, str] = field(default_factory=dict)
    # The case exactly as written (plain JSON types), for hashing and re-recording.
    raw: dict[str, Any] = field(default_factory=dict)
    # function cases with rows: from a data file: the file (relative to the cases file's
    # folder), and the line of each row of ``table`` in it (0 for a row of an inline table:
    # those come first)
    rows_file: str | None = None
    row_lines: list[int] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.file.parent


@dataclass(frozen=True)
class CrateReq:
    """One entry of a Rust project's ``crates:`` (the requirement is checked to parse)."""

    name: str
    version: str  # Cargo's requirement syntax
    features: tuple[str, ...]
    default_features: bool
    pos: Pos


@dataclass
class Project:
    """A project document, its files expanded and checked."""

    name: str
    version: str
    language: Language
    standard: str | None
    dir: Path  # absolute, resolved folder of project.yaml
    file: Path  # absolute path of project.yaml
    pos: Pos
    sources: tuple[str, ...]  # library sources
    headers: tuple[str, ...]  # every file a source may include (public headers included)
    public_headers: tuple[str, ...]
    include_dirs: tuple[str, ...]
    defines: dict[str, str]  # value "" means a bare -DNAME
    compile_flags: tuple[str, ...]
    link_flags: tuple[str, ...]
    depends: tuple[str, ...]  # project names, as written
    outputs: tuple[Output, ...]
    repl_scope: tuple[str, ...]
    cases: list[Case]
    crates: tuple[CrateReq, ...] = ()  # Rust: crates from the plan's registry

    def output(self, name: str) -> Output | None:
        return next((o for o in self.outputs if o.name == name), None)


@dataclass(frozen=True)
class TargetSpec:
    """A target of the plan: what to build for and how."""

    name: str
    triple: str = "host"
    # "system" | "zig" | {"cc": ..., "cxx": ..., "rustc": ...}
    toolchain: str | dict[str, str] = "system"
    opt: Literal["debug", "release", "release-debug", "min-size"] = "release"
    strip: bool = False
    lto: bool = False
    cpu: str | None = None
    features: tuple[str, ...] = ()
    pos: Pos | None = None
    # How the target's programs run here: None picks a runner from the triple; "none" runs
    # nothing; else the runner's argv (e.g. ["qemu-aarch64", "-cpu", "max"]). Not part of a
    # derivation: it changes how outputs are run, never what is built.
    runner: str | tuple[str, ...] | None = None
    timeout_factor: float | None = None  # None: the runner's own factor
    # Where each key of the spec was written, for errors about one key (e.g. a misspelt triple).
    key_pos: dict[str, Pos] = field(default_factory=dict, compare=False, hash=False)

    def at(self, key: str) -> Pos | None:
        return self.key_pos.get(key, self.pos)

    @property
    def uses_zig(self) -> bool:
        """zig builds this target's C and C++ (and links its Rust): ``toolchain: zig``, or a
        foreign triple whose toolchain map names no C compiler (``{rustc: /usr/bin/rustc}``)."""
        if self.toolchain == "zig":
            return True
        return isinstance(self.toolchain, dict) and self.triple != "host" \
            and not {"cc", "cxx"} & self.toolchain.keys()

    def as_json(self) -> dict[str, Any]:
        """The spec as it enters a derivation (no name, no position)."""
        return {
            "triple": self.triple,
            "toolchain": self.toolchain,
            "opt": self.opt,
            "strip": self.strip,
            "lto": self.lto,
            "cpu": self.cpu,
            "features": list(self.features),
        }


@dataclass
class Plan:
    """The plan document with its projects and targets."""

    file: Path  # absolute path of plan.yaml
    dir: Path  # absolute, resolved folder of the plan: nothing may leave it
    store: Path | None  # the plan's `store:` resolved against its folder, or None
    projects: dict[str, Project]  # in dependency order: a project comes after its depends
    targets: dict[str, TargetSpec]
    default_targets: tuple[str, ...]
    registry: Path | None = None  # where crates come from (absolute), or None
    registry_pos: Pos | None = None
    #: the plan's ``remote_cache:``: (url, token_env or None, position of the key), or None
    remote_cache: tuple[str, str | None, Pos] | None = None
