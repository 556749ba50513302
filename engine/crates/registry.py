"""Reading a directory registry: Cargo's directory-source layout, offline.

A registry is a folder with one folder per crate version (``cargo vendor`` names them ``name``
or ``name-version``; Debian's ``/usr/share/cargo/registry`` always ``name-version``), each with
the crate's normalised ``Cargo.toml`` and a ``.cargo-checksum.json`` whose ``package`` is the
sha256 of the ``.crate`` file it came from. Only what building needs is read from a manifest:
the package, its library target, its build script, its features, and its normal and build
dependencies (dev-dependencies are never built), each with the platform condition it has.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine import user_cache
from engine.crates.semver import Requirement, SemverError, Version
from engine.errors import Pos, RecipeError


class RegistryError(RecipeError):
    """A registry that cannot be read, or a crate in it that cannot be used."""


@dataclass(frozen=True)
class DepSpec:
    """One dependency as a manifest (or a project's ``crates:``) writes it."""

    name: str  # the name the dependent uses (its --extern name, dashes as written)
    package: str  # the crate it names (``package =`` renames)
    req: Requirement
    features: tuple[str, ...] = ()
    default_features: bool = True
    optional: bool = False
    kind: str = "normal"  # "normal" | "build"
    target: str | None = None  # a cfg(...) expression or a triple; None: every platform


@dataclass(frozen=True)
class Manifest:
    name: str
    version: Version
    folder: Path
    checksum: str | None  # the .crate's sha256, from .cargo-checksum.json
    edition: str
    rust_version: str | None
    links: str | None
    build: str | None  # the build script, relative to the folder
    lib_path: str
    lib_name: str
    proc_macro: bool
    deps: tuple[DepSpec, ...]
    features: dict[str, tuple[str, ...]] = field(hash=False)
    # CARGO_PKG_* beyond name and version, as cargo sets them for the compile and the script
    package_env: dict[str, str] = field(hash=False, default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.name}-{self.version}"


class Registry:
    """The crates of one registry folder, read lazily and each manifest once. With ``memo``
    (a file of the plan's cache), what each ``Cargo.toml`` says is remembered against the stat
    data of the file and of its crate's folder, so that a command does not parse the same
    manifests again (``save`` writes it)."""

    def __init__(self, path: Path, pos: Pos | None = None, memo: Path | None = None) -> None:
        self.path, self.pos = path, pos
        self.memo = Manifests(memo) if memo is not None else None
        try:
            self.entries = sorted(e.name for e in os.scandir(path)
                                  if e.is_dir() and not e.name.startswith("."))
        except OSError as error:
            raise RegistryError(f"registry {path} cannot be read ({error.strerror})",
                                "install the crates (e.g. Debian's librust-*-dev packages), "
                                "or point registry: at a `cargo vendor` folder",
                                pos=pos) from None
        self._versions: dict[str, list[Manifest]] = {}

    def versions(self, name: str) -> list[Manifest]:
        """The versions of crate ``name`` the registry holds, newest first."""
        if name not in self._versions:
            found = []
            for entry in self.entries:
                if entry == name or entry.startswith(name + "-"):
                    manifest = self._read(self.path / entry)
                    if manifest is not None and manifest.name == name:
                        found.append(manifest)
            found.sort(key=lambda m: m.version.key(), reverse=True)
            self._versions[name] = found
        return self._versions[name]

    def find(self, name: str, version: str) -> Manifest | None:
        return next((m for m in self.versions(name) if str(m.version) == version), None)

    def save(self) -> None:
        if self.memo is not None:
            self.memo.save()

    def _read(self, folder: Path) -> Manifest | None:
        """The manifest of one crate folder; None for a folder that is not a crate."""
        try:
            data = self.memo.get(folder) if self.memo is not None else None
            if data is None:
                data = tomllib.loads((folder / "Cargo.toml").read_text())
                if self.memo is not None:
                    self.memo.put(folder, data)
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise RegistryError(f"{folder / 'Cargo.toml'} cannot be read ({error})",
                                "repair or remove that crate folder", pos=self.pos) from None
        try:
            return _manifest(folder, data)
        except (KeyError, TypeError, ValueError, SemverError) as error:
            raise RegistryError(f"{folder / 'Cargo.toml'} is not a manifest recipe can use "
                                f"({error})", "repair or remove that crate folder",
                                pos=self.pos) from None


def _manifest(folder: Path, data: dict) -> Manifest:
    package = data["package"]
    name = str(package["name"])
    checksum = None
    try:
        checksum = json.loads((folder / ".cargo-checksum.json").read_text()).get("package")
    except (OSError, ValueError):
        pass
    build = package.get("build")
    if build is None and (folder / "build.rs").is_file():
        build = "build.rs"  # cargo's autobuild
    lib = data.get("lib", {})
    deps = []
    for kind, key in (("normal", "dependencies"), ("build", "build-dependencies"),
                      ("build", "build_dependencies")):
        deps += _deps(data.get(key, {}), kind, None)
        for target, table in data.get("target", {}).items():
            deps += _deps(table.get(key, {}), kind, str(target))
    features = {str(k): tuple(map(str, v)) for k, v in data.get("features", {}).items()}
    return Manifest(
        name=name, version=Version.parse(str(package["version"])), folder=folder,
        checksum=checksum if isinstance(checksum, str) else None,
        edition=str(package.get("edition", "2015")),
        rust_version=package.get("rust-version"), links=package.get("links"),
        build=str(build) if build not in (None, False) else None,
        lib_path=str(lib.get("path", "src/lib.rs")),
        lib_name=str(lib.get("name", name)).replace("-", "_"),
        proc_macro=bool(lib.get("proc-macro", lib.get("proc_macro", False))),
        deps=tuple(deps), features=features, package_env=_package_env(package))


def _package_env(package: dict) -> dict[str, str]:
    def text(key: str) -> str:
        value = package.get(key, "")
        return str(value) if isinstance(value, str) else ""

    authors = package.get("authors", [])
    return {"CARGO_PKG_AUTHORS": ":".join(map(str, authors)) if isinstance(authors, list)
            else "", "CARGO_PKG_DESCRIPTION": text("description"),
            "CARGO_PKG_HOMEPAGE": text("homepage"), "CARGO_PKG_REPOSITORY": text("repository"),
            "CARGO_PKG_LICENSE": text("license"), "CARGO_PKG_LICENSE_FILE": text("license-file"),
            "CARGO_PKG_RUST_VERSION": text("rust-version"), "CARGO_PKG_README": text("readme")}


def _deps(table: dict, kind: str, target: str | None) -> list[DepSpec]:
    deps = []
    for name, spec in table.items():
        if isinstance(spec, str):
            spec = {"version": spec}
        default = spec.get("default-features", spec.get("default_features", True))
        deps.append(DepSpec(
            name=str(name), package=str(spec.get("package", name)),
            req=Requirement.parse(str(spec.get("version", "*"))),
            features=tuple(map(str, spec.get("features", ()))), default_features=bool(default),
            optional=bool(spec.get("optional", False)), kind=kind, target=target))
    return deps


class Manifests:
    """What each crate's ``Cargo.toml`` said, by its folder, with the stat data of the file and
    the folder (a ``build.rs`` or ``.cargo-checksum.json`` added or removed changes the
    folder's) when it was read; as git's index and the digest cache (engine.hashing), an entry
    whose file or folder changed within ``RACY_NS`` of its recording is not trusted. Saved by
    rename; one lost to a concurrent writer costs a parse."""

    VERSION = 1
    RACY_NS = 2_000_000_000

    def __init__(self, file: Path) -> None:
        self.file, self.changed = file, False
        try:
            with open(file, "rb") as f:
                data = pickle.load(f)
            self.entries: dict[str, tuple[list[int], dict]] = data["entries"] \
                if data.get("version") == self.VERSION else {}
        except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError, TypeError,
                ValueError, ImportError, IndexError):
            self.entries = {}

    @staticmethod
    def _stat(folder: Path) -> list[int]:
        stats = [os.stat(folder), os.stat(folder / "Cargo.toml")]  # FileNotFoundError: none
        return [n for st in stats for n in (st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                                              st.st_ino, st.st_dev)]

    def get(self, folder: Path) -> dict | None:
        entry = self.entries.get(os.fspath(folder))
        if entry is None:
            return None
        stat, data = entry
        return data if self._stat(folder) == stat else None

    def put(self, folder: Path, data: dict) -> None:
        stat = self._stat(folder)
        now = time.time_ns()
        if all(now - stat[i] >= self.RACY_NS for i in (1, 2, 6, 7)):  # mtimes, ctimes
            self.entries[os.fspath(folder)] = (stat, data)
            self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        user_cache.write_cache(self.file, pickle.dumps({"version": self.VERSION,
                                                        "entries": self.entries}))
        self.changed = False
