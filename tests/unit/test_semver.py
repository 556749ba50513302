"""Cargo's version requirement rules (engine/semver.py), case by case as the Cargo book
states them (https://doc.rust-lang.org/cargo/reference/specifying-dependencies.html)."""

from __future__ import annotations

import pytest

from engine.semver import Requirement, SemverError, Version

CASES = [
    # requirement, matching, not matching
    ("1.2.3", ["1.2.3", "1.9.0"], ["1.2.2", "2.0.0", "2.0.0-alpha"]),
    ("^1.2.3", ["1.2.3", "1.99.99"], ["2.0.0", "1.2.4-beta"]),
    ("^1.2", ["1.2.0", "1.3.0"], ["1.1.9", "2.0.0"]),
    ("^1", ["1.0.0", "1.9.9"], ["0.9.0", "2.0.0"]),
    ("^0.2.3", ["0.2.3", "0.2.9"], ["0.3.0", "0.2.2"]),
    ("^0.2", ["0.2.0", "0.2.5"], ["0.3.0"]),
    ("^0.0.3", ["0.0.3"], ["0.0.4"]),
    ("^0.0", ["0.0.0", "0.0.9"], ["0.1.0"]),
    ("^0", ["0.0.0", "0.9.9"], ["1.0.0"]),
    ("0.2", ["0.2.9"], ["0.3.0"]),
    ("~1.2.3", ["1.2.3", "1.2.9"], ["1.3.0"]),
    ("~1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    ("~1", ["1.0.0", "1.9.0"], ["2.0.0"]),
    ("*", ["0.0.1", "9.9.9"], ["1.0.0-alpha"]),
    ("1.*", ["1.0.0", "1.5.2"], ["2.0.0", "0.9.0"]),
    ("1.2.*", ["1.2.0", "1.2.7"], ["1.3.0"]),
    ("1.x", ["1.4.0"], ["2.0.0"]),
    ("=1.2.3", ["1.2.3", "1.2.3+build"], ["1.2.4", "1.2.2"]),
    ("=1.2", ["1.2.0", "1.2.9"], ["1.3.0"]),
    (">1.2.3", ["1.2.4", "5.0.0"], ["1.2.3"]),
    (">1.2", ["1.3.0"], ["1.2.9"]),
    (">=1.2", ["1.2.0", "3.0.0"], ["1.1.0"]),
    ("<1.2.3", ["1.2.2", "0.0.1"], ["1.2.3"]),
    ("<=1.2", ["1.2.9"], ["1.3.0"]),
    (">=1.2, <1.5", ["1.2.0", "1.4.9"], ["1.5.0", "1.1.0"]),
    ("^1.2.3-beta.2", ["1.2.3-beta.2", "1.2.3-beta.10", "1.2.3-rc", "1.2.3", "1.3.0"],
     ["1.2.3-beta.1", "1.2.4-beta", "2.0.0"]),
    ("=1.0.152", ["1.0.152"], ["1.0.153"]),
]


@pytest.mark.parametrize(("text", "good", "bad"), CASES)
def test_cargo_requirements(text: str, good: list[str], bad: list[str]) -> None:
    req = Requirement.parse(text)
    for v in good:
        assert req.matches(Version.parse(v)), (text, v)
    for v in bad:
        assert not req.matches(Version.parse(v)), (text, v)


def test_version_order_and_compatibility_classes() -> None:
    ordered = ["0.0.1", "0.1.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
               "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.10.0"]
    parsed = [Version.parse(v) for v in ordered]
    assert sorted(reversed(parsed), key=Version.key) == parsed
    assert [Version.parse(v).compat() for v in ("1.2.3", "0.2.3", "0.0.3")] == \
        ["1", "0.2", "0.0.3"]


@pytest.mark.parametrize("text", ["", "1.2.3.4", "abc", ">*", "^1.*", "1,", "1.*.3",
                                  "1.2-beta", "01.2"])
def test_bad_requirements_are_refused(text: str) -> None:
    with pytest.raises(SemverError):
        Requirement.parse(text)
