"""engine.derive.explain.changes: the structural comparison of two derivation objects."""

from __future__ import annotations

from engine.derive.explain import Change, changes


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
