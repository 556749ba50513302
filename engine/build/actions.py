"""Running one action through the store's action cache (Bazel's CAS + action cache model).

An action's key is the sha256 of the canonical JSON of its argv template, the toolchain's
identity, the digest of every file it may read, and the store path names of the dependencies
visible to it. Its result maps each output (a path relative to the staging folder) to the digest
of a blob in the store's CAS; a hit copies those blobs out instead of running the compiler.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.derive.actions import STAGING, STORE, Action
from engine.derive.derivation import Derivation, Recorded
from engine.errors import Failure
from engine.hashing import canonical_hash
from engine.store import BlobError, Store
from engine.toolchain.flags import SOURCE_DATE_EPOCH

ACTION_FORMAT = 1


class ActionFailed(Failure):
    """A compiler, archiver or linker exited non-zero; ``detail`` holds its words verbatim."""

    def __init__(self, what: str, detail: str, fix: str | None = None) -> None:
        super().__init__(what, fix)
        self.detail = detail


#: What can be built: a derivation from documents, or one read back from the store.
Buildable = Derivation | Recorded


@dataclass
class ActionRun:
    cached: bool
    digests: dict[str, str]  # output path -> blob digest
    log: str  # command line and what it printed
    key: str  # the action key


def toolchain_path(data: dict[str, Any]) -> str:
    """``PATH`` of a build: the folders of the programs the derivation names, and no other."""
    identity = data["toolchain"]
    programs = [a["argv"][0] for a in data["actions"]]
    programs += [identity["cc"], identity["cxx"], identity["ar"], *identity["programs"].values()]
    return os.pathsep.join(dict.fromkeys(os.path.dirname(p) for p in programs))


def build_env(drv: Buildable) -> dict[str, str]:
    """The clean, fixed environment of every build action."""
    return {
        "PATH": toolchain_path(drv.data),
        "LC_ALL": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "HOME": "/homeless-shelter",  # as in Nix: a path that never exists
    }


def action_key(drv: Buildable, action: Action, digests: dict[str, str]) -> str:
    inputs = {path: digests[path] for path in action.inputs}
    if action.kind == "compile":
        inputs.update(drv.headers)
    key = {
        "format": ACTION_FORMAT,
        "argv": action.argv,
        "toolchain": drv.data["toolchain"]["digests"],
        "inputs": inputs,
        "depends": sorted(drv.data["depends"].values()),
    }
    return canonical_hash(key)


def substitute(argv: list[str], staging: Path, store_root: Path) -> list[str]:
    return [a.replace(STAGING, str(staging)).replace(STORE, str(store_root)) for a in argv]


def run_action(store: Store, drv: Buildable, action: Action, staging: Path,
               digests: dict[str, str], env: dict[str, str], use_cache: bool = True) -> ActionRun:
    """Run (or fetch from the action cache) one action inside a staging folder. Every output
    taken from the cache is checked against its digest as it is copied: a damaged blob is
    deleted and the action runs again, so it never reaches an output."""
    key = action_key(drv, action, digests)
    store.add_temp_roots(actions=[key])  # until the path that uses it is registered
    result = store.get_action(key) if use_cache else None
    if result is not None:
        try:
            for path, digest in result["outputs"].items():
                _materialise(store, digest, staging / path, action.kind == "link")
            return ActionRun(True, dict(result["outputs"]), f"# cached {action.label}\n", key)
        except (OSError, KeyError, BlobError):
            pass  # a damaged or collected cache entry is simply rebuilt
    argv = substitute(action.argv, staging, store.root)
    for out in action.outputs:
        (staging / out).parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(argv, cwd=staging / "w", env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = done.stdout.decode(errors="replace")
    log = f"$ {' '.join(argv)}\n{output}"
    if done.returncode != 0:
        raise ActionFailed(f"{drv.title}: {action.kind} {action.label} failed", output)
    if action.kind == "compile":
        _check_depfile(drv, action, staging)
    outputs = {path: store.put_file(staging / path) for path in action.outputs}
    store.put_action(key, {"outputs": outputs, "log": output})
    return ActionRun(False, outputs, log, key)


def _check_depfile(drv: Buildable, action: Action, staging: Path) -> None:
    """A relative include that climbs out of the staging folder (``#include "../../x.h"``)
    would read an undeclared file: the depfile gcc wrote names every file the unit read."""
    text = (staging / action.outputs[1]).read_text(errors="replace")
    names = text.replace("\\\n", " ").split(":", 1)[-1].split()
    root = os.path.normpath(staging)
    for name in names:
        if os.path.isabs(name):
            continue  # the toolchain's own headers
        full = os.path.normpath(os.path.join(staging, "w", name))
        if not full.startswith(root + os.sep):
            project = drv.data["project"]["name"]
            raise ActionFailed(f"{project}: {action.label} includes '{name}', which "
                               "lies outside the project's declared files", "",
                               "declare the file in headers: of a project of the plan")


def _materialise(store: Store, digest: str, dest: Path, executable: bool) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        os.unlink(dest)
    store.copy_blob(digest, dest, executable=executable)
