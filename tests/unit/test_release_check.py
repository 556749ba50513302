"""engine.release.rebuild and engine.release.diff: what the rebuild varies and copies, and how
two trees and two derivations are told apart."""

from __future__ import annotations

import os
from pathlib import Path

from engine.documents.load import load_plan
from engine.release import rebuild
from engine.release.diff import json_differences, tree_differences
from tests.conftest import write_tree
from tests.projects import GREET_LIB


def test_prepare_varies_every_setting_and_copies_only_what_the_plan_declares(
        tmp_path: Path, monkeypatch) -> None:
    src = write_tree(tmp_path / "src", {**GREET_LIB, "notes.txt": "not declared\n",
                                        "store/junk": "a store inside the plan's folder\n"})
    monkeypatch.setenv("TZ", "ZZZ-14")  # the rebuild must pick the other choice
    monkeypatch.setenv("RECIPE_STORE", str(tmp_path / "elsewhere"))
    plan = load_plan(src / "plan.yaml")
    folder = tmp_path / "rebuild"
    folder.mkdir()
    again = rebuild.prepare(plan, tmp_path / "store", folder, jobs=2)

    varied = {v.what: (v.first, v.second) for v in again.variations}
    for what, (first, second) in varied.items():
        assert first != second, what
    assert varied["TZ"] == ("ZZZ-14", "YYY+12")
    assert varied["umask"][1] == f"{again.umask:04o}" and again.jobs == 1
    env = again.env
    assert env["TZ"] == "YYY+12" and env["HOME"] == str(folder / "home")
    assert env["CFLAGS"] == rebuild.NOISE["CFLAGS"] and "RECIPE_STORE" not in env
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(Path(rebuild.__file__).parents[2])
    assert again.cwd == folder / "cwd" and again.cwd.is_dir()

    copied = sorted(str(p.relative_to(folder / "elsewhere/checkout"))
                    for p in (folder / "elsewhere/checkout").rglob("*") if p.is_file())
    assert copied == ["greet/include/greet.h", "greet/project.yaml", "greet/src/greet.c",
                      "greet/src/internal.h", "greet/src/twice.c", "hello/project.yaml",
                      "hello/src/main.c", "plan.yaml"]
    assert again.plan == folder / "elsewhere/checkout/plan.yaml"


def test_tree_differences_name_each_file_once(tmp_path: Path) -> None:
    a = write_tree(tmp_path / "a", {"bin/x": "1", "lib/same": "s", "gone/deep/f": "f",
                                    "mode": "m"})
    b = write_tree(tmp_path / "b", {"bin/x": "22", "lib/same": "s", "new": "n", "mode": "m"})
    (a / "mode").chmod(0o644)
    (b / "mode").chmod(0o755)
    os.symlink("same", a / "lib/link")
    os.symlink("other", b / "lib/link")
    assert tree_differences(a, b) == [
        "bin/x: contents differ (1 and 2 bytes)",
        "gone: only in the first build",
        "lib/link: links to 'same', then to 'other'",
        "mode: mode 0644, then 0755",
        "new: only in the rebuild",
    ]
    assert tree_differences(a, a) == []


def test_json_differences_are_dotted_keys() -> None:
    first = {"toolchain": {"cc": "/usr/bin/gcc", "version": "12"}, "inputs": {"a.c": "1"},
             "actions": [1, 2]}
    second = {"toolchain": {"cc": "/opt/gcc", "version": "12"}, "inputs": {"a.c": "1"},
              "actions": [1, 3], "extra": True}
    assert json_differences(first, second) == ["actions", "extra", "toolchain.cc"]
    assert json_differences(first, first) == []
