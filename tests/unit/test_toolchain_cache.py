"""The user's cache of toolchain identities (engine/toolchain/detect.py): a fresh clone, at
another path with an empty store, does not run and hash its compilers again; a compiler that
changed is detected again all the same."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from tests.conftest import run_recipe, write_tree

WRAPPER = '#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n'
PROJECT = {
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs: [{name: hello, kind: executable}]
    """,
    "hello/src/main.c": "int main(void) { return 0; }\n",
}


def _detections(log: Path) -> int:
    """How often the drivers were asked which programs they run."""
    lines = log.read_text().splitlines() if log.exists() else []
    return sum("-print-prog-name=" in line for line in lines)


def test_a_fresh_clone_does_not_hash_the_compilers_again(tmp_path: Path) -> None:
    log = tmp_path / "log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, real in (("cc", "/usr/bin/gcc"), ("c++", "/usr/bin/g++")):
        (bin_dir / name).write_text(WRAPPER.format(log=log, real=real))
        (bin_dir / name).chmod(0o755)
    plan = ("kind: plan\nprojects: ['*/project.yaml']\ntargets:\n  release: {opt: release, "
            f"toolchain: {{cc: {bin_dir / 'cc'}, cxx: {bin_dir / 'c++'}}}}}\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    time.sleep(2.1)  # the racily-clean rule: a compiler written just now is not remembered

    def realise(checkout: str) -> str:
        src = write_tree(tmp_path / checkout, {"plan.yaml": plan, **PROJECT})
        done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / f"store-{checkout}",
                          env=env)
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip()).name

    first = realise("a")
    assert _detections(log) > 0
    cached = json.loads((tmp_path / "xdg" / "recipe" / "toolchains.json").read_text())
    assert len(cached["entries"]) == 1
    before = _detections(log)
    assert realise("elsewhere/b") == first  # the same identity, so the same store path
    assert _detections(log) == before  # from the user's cache: nothing run, nothing hashed
    (bin_dir / "cc").write_text((bin_dir / "cc").read_text() + "# another compiler\n")
    other = realise("c")
    assert _detections(log) > before and other != first  # changed: detected, hashed again

    # rewritten in place, its size and mtime kept (as cp -p or install -p would): its ctime
    # still tells, and a compiler changed just now is not remembered until it has settled
    text = (bin_dir / "cc").read_text()
    kept = (bin_dir / "cc").stat()
    (bin_dir / "cc").write_text(text.replace("# another compiler", "# a third compiler"))
    os.utime(bin_dir / "cc", ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert (bin_dir / "cc").stat().st_size == kept.st_size
    again = _detections(log)
    third = realise("d")
    assert _detections(log) > again and third not in (first, other)
