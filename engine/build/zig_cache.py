"""zig's cache: where zig keeps the libc and libc++ it builds for each target, and its warm-up.

zig builds a target's libc (and libc++) the first time something links for that target, with
those link flags, into its cache: 25 to 60 s of CPU and 40 to 70 MB each. That cache is recipe's:
it lives in the store's state (``Store.state_folder("zig")``), never in ``~/.cache``; it is no
input of any derivation (only zig's identity and the flags are). ``RECIPE_ZIG_CACHE`` names another
folder instead, so that the test suite and CI share one across throwaway stores.

Concurrent first builds into one cache have raced in zig's history, and zig's libc objects
record the working folder of the build that filled the cache: so before a derivation links,
each distinct link command is run once on a one-line program, under the cache's lock, in the
cache folder itself (a fixed working folder), and remembered by a marker file.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from engine.build.actions import ActionFailed
from engine.store import Store, locks

ENV = "RECIPE_ZIG_CACHE"
_PROGRAMS = {
    "cc": ("warm.c", "#include <stdio.h>\nint main(void) { puts(\"warm\"); return 0; }\n"),
    "c++": ("warm.cpp", "#include <iostream>\n#include <string>\n"
                        "int main() { std::string s = \"warm\"; std::cout << s << '\\n'; }\n"),
}
# Arguments of a link that name its own files, not the libc it needs.
_OWN = ("-ffile-prefix-map=", "-Wl,-soname,", "-Wl,--out-implib,", "-Wl,-rpath,")


def is_zig(data: dict[str, Any]) -> bool:
    return data.get("toolchain", {}).get("family") == "zig"


def folder(store: Store) -> Path:
    override = os.environ.get(ENV)
    if override:
        path = Path(override).absolute()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return store.state_folder("zig")


def _lock(store: Store, cache: Path) -> AbstractContextManager[None]:
    if os.environ.get(ENV):
        return locks.locked(cache / ".recipe-warm.lock")
    return store.state_lock("zig")


def env(store: Store, data: dict[str, Any]) -> dict[str, str]:
    """What a zig build adds to the fixed build environment: its cache, and nothing else (the
    build environment has none of the variables zig reads, such as NIX_CFLAGS_COMPILE)."""
    if not is_zig(data):
        return {}
    cache = str(folder(store))
    return {"ZIG_GLOBAL_CACHE_DIR": cache, "ZIG_LOCAL_CACHE_DIR": cache}


def warm_commands(data: dict[str, Any]) -> list[list[str]]:
    """The distinct link commands of a derivation, stripped of its own files: each needs one
    libc build."""
    commands: dict[str, list[str]] = {}
    for action in data["actions"]:
        argv = action["argv"]
        if action["kind"] != "link" or len(argv) < 2 or argv[1] not in _PROGRAMS:
            continue
        head = argv[:argv.index("-o")] if "-o" in argv else argv
        command = [a for a in head if not a.startswith(_OWN)]
        commands[json.dumps(command)] = command
    return list(commands.values())


def warm(store: Store, data: dict[str, Any], build_env: dict[str, str]) -> None:
    """Build the libc each link of ``data`` needs, once per cache, before the links run."""
    if not is_zig(data):
        return
    cache = folder(store)
    for command in warm_commands(data):
        key = hashlib.sha256(json.dumps(command).encode()).hexdigest()[:32]
        marker = cache / f"warm-{key}"
        if marker.exists():
            continue
        with _lock(store, cache):
            if marker.exists():
                continue
            name, text = _PROGRAMS[command[1]]
            (cache / name).write_text(text)
            argv = [*command, "-o", f"warm-{key}.out", name]
            done = subprocess.run(argv, cwd=cache, env={**build_env, **env(store, data)},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, umask=0o022)
            for leftover in cache.glob(f"warm-{key}.*"):
                leftover.unlink()
            if done.returncode != 0:
                target = data["target"]["spec"].get("triple")
                raise ActionFailed(f"zig cannot build the C library for {target}",
                                 done.stdout.decode(errors="replace"))
            marker.write_text(" ".join(argv) + "\n")
