"""Platform conditions of target-specific dependencies, against a target's ``rustc --print cfg``.

Grammar (Cargo's ``[target.'cfg(...)'.dependencies]`` keys)::

    spec      := "cfg(" predicate ")" | triple
    predicate := "all(" list ")" | "any(" list ")" | "not(" predicate ")"
                 | ident | ident "=" string
    list      := (predicate ("," predicate)* ","?)?

``cfg`` below is the set of lines ``rustc --print cfg`` prints: ``unix``, ``target_os="linux"``.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_]*)|("(?:[^"\\]|\\.)*")|(.))')


class CfgError(ValueError):
    """A platform condition that does not parse."""


def applies(spec: str | None, triple: str, cfg: frozenset[str]) -> bool:
    """Whether a dependency with this platform condition is used on ``triple``."""
    if spec is None:
        return True
    spec = spec.strip()
    if not spec.startswith("cfg("):
        return spec == triple
    tokens = _tokens(spec)
    value, rest = _predicate(tokens[2:], cfg)  # after "cfg" "("
    if rest != [")"]:
        raise CfgError(f"'{spec}' does not parse")
    return value


def _tokens(text: str) -> list[str]:
    tokens = []
    for match in _TOKEN.finditer(text):
        token = match.group(1) or match.group(2) or match.group(3)
        if token:
            tokens.append(token)
    return tokens


def _predicate(tokens: list[str], cfg: frozenset[str]) -> tuple[bool, list[str]]:
    if not tokens:
        raise CfgError("a condition ends too early")
    head, rest = tokens[0], tokens[1:]
    if head in ("all", "any", "not") and rest[:1] == ["("]:
        values, rest = [], rest[1:]
        while rest[:1] != [")"]:
            value, rest = _predicate(rest, cfg)
            values.append(value)
            if rest[:1] == [","]:
                rest = rest[1:]
            elif rest[:1] != [")"]:
                raise CfgError(f"expected ',' or ')', found {rest[:1]}")
        rest = rest[1:]
        if head == "not":
            if len(values) != 1:
                raise CfgError("not(...) takes one condition")
            return not values[0], rest
        return (all(values) if head == "all" else any(values)), rest
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", head):
        raise CfgError(f"unexpected '{head}'")
    if rest[:1] == ["="]:
        if len(rest) < 2 or not rest[1].startswith('"'):
            raise CfgError(f"{head} = needs a quoted value")
        return f"{head}={rest[1]}" in cfg, rest[2:]
    return head in cfg, rest
