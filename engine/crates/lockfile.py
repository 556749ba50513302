"""``recipe.lock``: the crate versions a plan resolved to, beside the plan, in Cargo.lock's
format (TOML, one ``[[package]]`` per crate version, sorted)::

    # This file is written by `recipe lock`. It is not meant to be edited by hand.
    version = 3

    [[package]]
    name = "serde"
    version = "1.0.152"
    source = "directory-registry"
    checksum = "bb7d1f0d..."
    dependencies = [
     "serde_derive",
    ]

A dependency is named by its name alone when one version of it is locked, else ``name
version``, as Cargo writes it. Features are not locked (Cargo does not lock them either): they
follow from the documents and enter the derivations.

Honouring a lock: every crate a build needs must be locked at a version its requirement
accepts, with the registry holding that version at the locked checksum; anything else is an
error that names ``recipe lock``, never a silent re-resolve.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from engine.crates.registry import DepSpec, Manifest
from engine.crates.resolve import Graph, ResolveError
from engine.crates.semver import SemverError, Version
from engine.errors import Pos

NAME = "recipe.lock"
HEADER = "# This file is written by `recipe lock`. It is not meant to be edited by hand.\n"
SOURCE = "directory-registry"


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    checksum: str | None


def read(path: Path) -> dict[str, list[Locked]] | None:
    """The locked versions by crate name; None when there is no lock file."""
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ResolveError(f"{path} cannot be read ({error})",
                           "remove it and run 'recipe lock' to write it again",
                           pos=Pos(path, 0, 0)) from None
    locked: dict[str, list[Locked]] = {}
    try:
        for package in data.get("package", []):
            entry = Locked(str(package["name"]), str(package["version"]),
                           package.get("checksum"))
            locked.setdefault(entry.name, []).append(entry)
    except (KeyError, TypeError, AttributeError) as error:
        raise ResolveError(f"{path} is not a lock file recipe wrote ({error!r} is missing)",
                           "remove it and run 'recipe lock' to write it again",
                           pos=Pos(path, 0, 0)) from None
    return locked


def text(graphs: list[Graph]) -> str:
    """The lock file of the union of some resolved graphs."""
    packages: dict[str, tuple[Manifest, set[str]]] = {}
    for graph in graphs:
        for node in graph.nodes.values():
            entry = packages.setdefault(node.manifest.id, (node.manifest, set()))
            entry[1].update(graph.nodes[k].manifest.id for k in node.edges.values())
    versions: dict[str, int] = {}
    for manifest, _ in packages.values():
        versions[manifest.name] = versions.get(manifest.name, 0) + 1
    out = [HEADER, "version = 3\n"]
    for ident in sorted(packages, key=lambda i: (packages[i][0].name,
                                                 packages[i][0].version.key())):
        manifest, deps = packages[ident]
        out.append(f'\n[[package]]\nname = "{manifest.name}"\n'
                   f'version = "{manifest.version}"\nsource = "{SOURCE}"\n')
        if manifest.checksum:
            out.append(f'checksum = "{manifest.checksum}"\n')
        names = sorted(_dep_name(packages[d][0], versions) for d in deps)
        if names:
            out.append("dependencies = [\n" + "".join(f' "{n}",\n' for n in names) + "]\n")
    return "".join(out)


def _dep_name(manifest: Manifest, versions: dict[str, int]) -> str:
    return manifest.name if versions[manifest.name] == 1 else \
        f"{manifest.name} {manifest.version}"


def write(path: Path, content: str) -> bool:
    """Write the lock atomically (a reader sees the old file or the new one, never half of
    one); False when it already says exactly that."""
    try:
        if path.read_text() == content:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        temp.write_text(content)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
    return True


class Honour:
    """A chooser (``engine.crates.resolve.Chooser``) that allows only the locked versions."""

    def __init__(self, path: Path, locked: dict[str, list[Locked]]) -> None:
        self.path, self.locked = path, locked

    def __call__(self, name: str, spec: DepSpec, who: str,
                 found: list[Manifest]) -> list[Manifest]:
        entries = self.locked.get(name)
        fix = f"run 'recipe lock' to update {NAME}"
        if not entries:
            raise ResolveError(f"crate '{name}' (wanted by {who}) is not in {self.path}", fix)
        fitting = [e for e in entries if spec.req.matches(_version(e))]
        if not fitting:
            have = ", ".join(e.version for e in entries)
            raise ResolveError(f"{self.path} locks {name} at {have}, which does not match "
                               f"'{spec.req}' (wanted by {who})", fix)
        chosen = []
        for entry in fitting:
            manifest = next((m for m in found if str(m.version) == entry.version), None)
            if manifest is None:
                held = ", ".join(str(m.version) for m in found)
                raise ResolveError(f"{self.path} locks {name} {entry.version}, which the "
                                   f"registry does not hold (it has {held})",
                                   f"{fix}, or restore that version in the registry")
            if entry.checksum and manifest.checksum != entry.checksum:
                raise ResolveError(f"the registry's {name} {entry.version} has checksum "
                                   f"{manifest.checksum}, but {self.path} locks "
                                   f"{entry.checksum}", "restore the crate the lock was made "
                                   f"with, or {fix} if the change is wanted")
            chosen.append(manifest)
        return chosen


class Prefer:
    """A chooser for ``recipe lock``: a locked version first when it still fits (so a lock
    changes only where it must), except for the crates being updated."""

    def __init__(self, locked: dict[str, list[Locked]], update: set[str] | None) -> None:
        self.locked, self.update = locked, update

    def __call__(self, name: str, spec: DepSpec, who: str,
                 found: list[Manifest]) -> list[Manifest]:
        if self.update is not None and (not self.update or name in self.update):
            return found
        versions = {e.version for e in self.locked.get(name, ())}
        return sorted(found, key=lambda m: str(m.version) not in versions)


def _version(entry: Locked) -> Version:
    try:
        return Version.parse(entry.version)
    except SemverError:
        raise ResolveError(f"{NAME} locks {entry.name} at '{entry.version}', which is not a "
                           "version", f"run 'recipe lock' to write {NAME} again") from None
