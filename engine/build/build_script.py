"""Running a crate's build script as an action, and handing what it said to the crate's compile.

The ``build-script`` action runs the compiled script in the crate's staged folder (``w/``, its
``CARGO_MANIFEST_DIR``) with the environment Cargo gives it (the action's ``env``, see
``engine.derive.crate_actions``). Its one output, ``out/build-script.json`` (in the crate's
store path, for dependents' scripts), holds the parsed
directives (``engine.crates.directives``) and every file the script wrote to ``OUT_DIR``, so
that a cached result is complete: the compile that reads it unpacks ``OUT_DIR`` again and gets
the script's ``--cfg``, ``-l``, ``-L`` and ``-C link-arg`` flags and its ``rustc-env``
variables. The staging folder's absolute path is kept as ``@STAGING@`` in that file, so a result
made in one build folder is right in another.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from engine.build import reaper
from engine.derive.actions import STAGING, Action

RESULT = "build-script.json"
LINKS = "@links:"  # see engine.derive.crate_actions
OUT_DIR = "o/out-dir"  # relative to the staging folder, in the env as @STAGING@/o/out-dir


def before(action: Action, argv: list[str], env: dict[str, str], staging: Path) -> list[str]:
    """The argv of an action that reads a build script's result (``env`` gains its
    variables and ``OUT_DIR`` is unpacked); other actions' argv unchanged. A build script's
    ``env`` gains ``DEP_<LINKS>_<KEY>`` from the dependencies its ``@links:`` keys name."""
    for key in [k for k in env if k.startswith(LINKS)]:
        links, folder = key[len(LINKS):], env.pop(key)
        try:
            text = (staging / "d" / folder / RESULT).read_text()
        except FileNotFoundError:
            continue  # the dependency's script said nothing to pass on
        for name, value in json.loads(text)["directives"]["metadata"].items():
            env[f"DEP_{links}_{name.upper().replace('-', '_')}"] = value
    for path in action.inputs:
        if path.endswith("/" + RESULT) and action.kind != "build-script":
            text = (staging / path).read_text().replace(STAGING, str(staging))
            data = json.loads(text)
            _unpack(data["out_dir"], staging / OUT_DIR)
            env.update(data["directives"]["env"])
            return [*argv, *data["args"]]
    return argv


NATIVE_NOTE = "note: native-static-libs:"
NATIVE_SUFFIX = ".native-libs"


def after(action: Action, output: str, staging: Path) -> None:
    """After a rustc run that made a static library: its native libraries, from rustc's note
    on stderr, as link arguments (one line, gcc's ``@file`` syntax) in the action's
    ``.native-libs`` output."""
    for path in action.outputs:
        if path.endswith(NATIVE_SUFFIX):
            said = [line.split(NATIVE_NOTE, 1)[1].split() for line in output.splitlines()
                    if NATIVE_NOTE in line]
            (staging / path).write_text(" ".join(said[-1] if said else []) + "\n")


def run(argv: list[str], env: dict[str, str], staging: Path,
        cache: Any) -> tuple[int, str]:
    """Run the script under the reaper (``cache``: the store, where the reaper is kept); write
    its result. Returns the exit status and what to show: on a failure both streams, labelled,
    for the person fixing it."""
    out_dir = staging / OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    contained = reaper.Contained.start(argv, cache, group=False, cwd=staging / "w", env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, umask=0o022)
    try:
        out, err = contained.proc.communicate()
    finally:
        contained.stop()
        code = contained.wait()
    stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
    shown = f"--- build script stdout\n{stdout}--- build script stderr\n{stderr}"
    if code != 0:
        return code, shown
    from engine.crates.directives import DirectiveError, parse  # only a crate's build needs it

    try:
        directives = parse(stdout)
    except DirectiveError as error:
        return 1, f"{shown}--- {error}\n"
    if directives.errors:
        return 1, shown
    data = {"directives": directives.as_json(), "args": directives.rustc_args(),
            "out_dir": _pack(out_dir)}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    (staging / "out" / RESULT).write_text(text.replace(str(staging), STAGING))
    return 0, "".join(f"warning: {w}\n" for w in directives.warnings)


def _pack(folder: Path) -> dict[str, dict[str, object]]:
    files: dict[str, dict[str, object]] = {}
    for root, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            path = Path(root, name)
            if path.is_symlink() or not path.is_file():
                continue  # what a build script leaves besides files is not kept
            files[path.relative_to(folder).as_posix()] = {
                "data": base64.b64encode(path.read_bytes()).decode(),
                "executable": os.access(path, os.X_OK)}
    return files


def _unpack(files: dict[str, dict[str, object]], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for rel, entry in files.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(str(entry["data"])))
        os.chmod(path, 0o755 if entry["executable"] else 0o644)
