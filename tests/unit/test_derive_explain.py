"""engine.derive.explain.changes: the structural comparison of two derivation objects."""

from __future__ import annotations

from engine.derive.explain import Change, changes, words


def test_changes_pairs_settings_and_falls_back_to_commands():
    old = {"inputs": {}, "actions": [
        {"kind": "compile", "outputs": ["o/a.o"], "argv": ["cc", "-O2", "-std=c11", "a.c"]},
        {"kind": "link", "outputs": ["out/bin/a"], "argv": ["cc", "o/a.o", "-o", "out/bin/a"]}]}
    new = {"inputs": {}, "actions": [
        {"kind": "compile", "outputs": ["o/a.o"], "argv": ["cc", "-O3", "-std=c17", "a.c"]},
        {"kind": "link", "outputs": ["out/bin/a"], "argv": ["cc", "-o", "out/bin/a", "o/a.o"]}]}
    assert changes(old, new) == [Change("flag", "-O2", "-O2", "-O3"),
                                 Change("flag", "-std=c11", "-std=c11", "-std=c17")]
    del new["actions"][0]
    found = changes(old, new)
    assert [(c.what, c.key) for c in found] == [("action", "compile o/a.o"),
                                                ("action", "link out/bin/a")]
    assert changes({"x": 1}, {"x": 2}) == [Change("derivation", "", None, None)]


def test_changes_of_toolchain_target_and_inputs_in_words():
    old = {"inputs": {"src/a.c": "sha256:" + "a" * 64, "include/a.h": "sha256:" + "b" * 64},
           "target": {"name": "r", "spec": {"lto": False, "cpu": None}},
           "toolchain": {"version": "gcc (Debian 12.2.0-14) 12.2.0\nCopyright",
                         "digests": {"cc1": "sha256:" + "c" * 64}},
           "project": {"version": "1.0.0"}, "depends": {"dep": "x" * 32 + "-dep-1-r"}}
    new = {"inputs": {"src/a.c": "sha256:" + "d" * 64, "src/b.c": "sha256:" + "e" * 64},
           "target": {"name": "r", "spec": {"lto": True, "cpu": None}},
           "toolchain": {"version": "gcc (Debian 13.1.0-1) 13.1.0\nCopyright",
                         "digests": {"cc1": "sha256:" + "f" * 64}},
           "project": {"version": "1.0.1"}, "depends": {}}
    assert [words(c, "plan.yaml", "r") for c in changes(old, new)] == [
        "header include/a.h removed",
        f"source src/a.c changed (sha256 {'a' * 12}… → sha256 {'d' * 12}…)",
        "source src/b.c added",
        "project field version: 1.0.0 → 1.0.1",
        "target field lto: false → true",
        f"toolchain program cc1 changed (sha256 {'c' * 12}… → sha256 {'f' * 12}…)",
        "toolchain version: gcc (Debian 12.2.0-14) 12.2.0 → gcc (Debian 13.1.0-1) 13.1.0",
        f"dependency dep removed (was {'x' * 32}-dep-1-r)",
    ]
