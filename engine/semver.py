"""Versions and version requirements with Cargo's semantics (the `semver` crate's rules).

No PyPI library implements Cargo's rules exactly (``semantic-version``'s ``NpmSpec`` differs on
bare versions, pre-releases and ``*`` combinations), so this is a small, closed implementation.

Grammar (a requirement is one or more comparators joined by ``,``, all of which must hold)::

    requirement := comparator ("," comparator)*
    comparator  := op? partial | "*"
    op          := "^" | "~" | "=" | ">" | ">=" | "<" | "<="
    partial     := major ("." (minor | "*" | "x" | "X") ("." (patch | "*" | "x" | "X")
                   ("-" pre)?)?)?

Meaning (what Cargo does):
  ``^1.2.3`` (and bare ``1.2.3``)  >=1.2.3, <2.0.0; ``^0.2.3`` >=0.2.3, <0.3.0;
                                    ``^0.0.3`` =0.0.3; ``^1`` >=1.0.0, <2.0.0; ``^0`` <1.0.0
  ``~1.2.3``  >=1.2.3, <1.3.0;  ``~1`` >=1.0.0, <2.0.0
  ``1.*``, ``1.2.*``            like ``=1``, ``=1.2``: the missing parts are free
  ``=1.2``    >=1.2.0, <1.3.0 (a partial version matches every version it leaves open)
  ``>1.2``    >=1.3.0; ``<=1.2`` <1.3.0
Pre-releases: a version with a pre-release matches only a requirement that has a comparator
with a pre-release on the same major.minor.patch (``^1.2.3-beta`` matches 1.2.3-rc but not
1.2.4-beta); build metadata (``+...``) is ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                      r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$")
_NUM = r"(0|[1-9]\d*)"
_COMPARATOR = re.compile(r"^(\^|~|=|>=|>|<=|<)?\s*" + _NUM + r"(?:\.(0|[1-9]\d*|[*xX]))?"
                         r"(?:\.(0|[1-9]\d*|[*xX]))?"
                         r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$")


class SemverError(ValueError):
    """A version or requirement that does not parse; the message says why."""


@dataclass(frozen=True, order=False)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text.strip())
        if not match:
            raise SemverError(f"'{text}' is not a semantic version (MAJOR.MINOR.PATCH)")
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), _pre(pre))

    def key(self) -> tuple:
        """Sort key: a pre-release sorts before its release; numeric identifiers before
        alphanumeric ones, numerically."""
        pre = tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self.key() < other.key()

    def __le__(self, other: Version) -> bool:
        return self.key() <= other.key()

    def __gt__(self, other: Version) -> bool:
        return self.key() > other.key()

    def __ge__(self, other: Version) -> bool:
        return self.key() >= other.key()

    def __str__(self) -> str:
        pre = "-" + ".".join(map(str, self.pre)) if self.pre else ""
        return f"{self.major}.{self.minor}.{self.patch}{pre}"

    def compat(self) -> str:
        """Cargo's semver-compatibility class: versions in one class unify to one crate."""
        if self.major:
            return str(self.major)
        if self.minor:
            return f"0.{self.minor}"
        return f"0.0.{self.patch}"


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(p) if p.isdigit() else p for p in text.split("."))


@dataclass(frozen=True)
class _Bound:
    """One comparator as a half-open interval [low, high) plus the version it names (for the
    pre-release rule)."""

    low: Version | None  # inclusive
    high: Version | None  # exclusive
    named: Version | None  # the comparator's version when it has a pre-release


@dataclass(frozen=True)
class Requirement:
    text: str
    bounds: tuple[_Bound, ...]

    @classmethod
    def parse(cls, text: str) -> Requirement:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise SemverError(f"'{text}' is not a version requirement")
        return cls(text.strip(), tuple(_comparator(p, text) for p in parts))

    def matches(self, version: Version) -> bool:
        for bound in self.bounds:
            if bound.low is not None and version < bound.low:
                return False
            if bound.high is not None and version >= bound.high:
                return False
        if version.pre:
            # A pre-release is chosen only when asked for, on the same major.minor.patch.
            core = (version.major, version.minor, version.patch)
            return any(b.named is not None and
                       (b.named.major, b.named.minor, b.named.patch) == core
                       for b in self.bounds)
        return True

    def __str__(self) -> str:
        return self.text


def _comparator(part: str, whole: str) -> _Bound:
    if part in ("*", "x", "X"):
        return _Bound(None, None, None)
    match = _COMPARATOR.match(part)
    if not match:
        raise SemverError(f"'{whole}' is not a version requirement ('{part}' does not parse)")
    op, major_s, minor_s, patch_s, pre_s = match.groups()
    wild = {"*", "x", "X"}
    if minor_s in wild and patch_s is not None and patch_s not in wild:
        raise SemverError(f"'{whole}': a wildcard minor must be followed by a wildcard patch")
    major = int(major_s)
    minor = None if minor_s is None or minor_s in wild else int(minor_s)
    patch = None if patch_s is None or patch_s in wild else int(patch_s)
    pre = _pre(pre_s)
    if pre and patch is None:
        raise SemverError(f"'{whole}': a pre-release needs a full MAJOR.MINOR.PATCH version")
    if (minor_s in wild or patch_s in wild) and op not in (None, "="):
        raise SemverError(f"'{whole}': a wildcard cannot follow '{op}'")
    exact = Version(major, minor or 0, patch or 0, pre)
    named = exact if pre else None
    if op is None and (minor_s in wild or patch_s in wild):
        op = "="
    op = op or "^"
    # The version just past what a partial version leaves open.
    if minor is None:
        past = Version(major + 1, 0, 0)
    elif patch is None:
        past = Version(major, minor + 1, 0)
    else:
        past = Version(major, minor, patch + 1)
    floor = Version(major, minor or 0, patch or 0, pre)
    if op == "=":
        return _Bound(floor, past if (minor is None or patch is None) else _next(exact), named)
    if op == ">=":
        return _Bound(floor, None, named)
    if op == ">":
        return _Bound(past if (minor is None or patch is None) else _next(exact), None, named)
    if op == "<":
        return _Bound(None, floor, named)
    if op == "<=":
        return _Bound(None, past if (minor is None or patch is None) else _next(exact), named)
    if op == "~":
        return _Bound(floor, Version(major + 1, 0, 0) if minor is None
                      else Version(major, minor + 1, 0), named)
    # "^": the leftmost non-zero part may not change.
    if major > 0 or minor is None:
        high = Version(major + 1, 0, 0)
    elif minor > 0 or patch is None:
        high = Version(0, minor + 1, 0)
    else:
        high = Version(0, 0, patch + 1)
    return _Bound(floor, high, named)


def _next(version: Version) -> Version:
    """The least version greater than ``version`` (for ``=``, ``>``, ``<=`` of a full one):
    its release if it is a pre-release, else the next patch's lowest pre-release."""
    if version.pre:
        return Version(version.major, version.minor, version.patch, (*version.pre, 0))
    return Version(version.major, version.minor, version.patch + 1, (0,))
