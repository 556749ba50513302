"""Round-trip edits of a YAML document that keep what they do not touch: the document's own
indentation, each replaced scalar's style where the new text can be written in it, and the
spelling of every untouched line (see :func:`splice`)."""

from __future__ import annotations

from difflib import SequenceMatcher
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)
from ruamel.yaml.util import load_yaml_guess_indent


def round_trip(text: str) -> YAML:
    """A round-trip YAML that writes with the indentation the document already uses."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 20  # never re-wrap a line
    _, seq_indent, seq_offset = load_yaml_guess_indent(text)
    mapping = _mapping_indent(text)
    yaml.indent(mapping=mapping, sequence=seq_indent or mapping, offset=seq_offset or 0)
    return yaml


def _mapping_indent(text: str) -> int:
    """The indent of a nested block mapping: a ``key:`` line and the key line below it."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    for line, below in zip(lines, lines[1:], strict=False):
        body = line.lstrip(" -")
        if body.rstrip().endswith(":") and not below.lstrip().startswith("-"):
            depth = len(line) - len(body)
            inner = len(below) - len(below.lstrip())
            if inner > depth:
                return inner - depth
    return 2


def splice(original: str, before: str, after: str) -> str:
    """Carry the edits that turned ``before`` into ``after`` over to ``original``.

    ``before`` is the document dumped unchanged; a round trip may still respell a scalar it
    did not touch (an escape like ``\\u00A0`` becomes the character itself), so only the lines
    of the edits are taken from the dump. When an edit touches a line the round trip changed,
    the whole dump is taken instead.
    """
    if before == original:
        return after
    o, b, a = (t.splitlines(keepends=True) for t in (original, before, after))
    at: dict[int, int] = {}  # line of `before` -> the same line of `original`
    for tag, i1, i2, j1, _ in SequenceMatcher(None, o, b, autojunk=False).get_opcodes():
        if tag == "equal":
            at.update({j1 + k: i1 + k for k in range(i2 - i1)})
    edits = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, b, a, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        # The lines around the edit (and those it replaces) must all be where they were.
        lines = range(max(i1 - 1, 0), min(i2 + 1, len(b)))
        mapped = [at.get(i) for i in lines]
        if None in mapped or any(y - x != 1 for x, y in zip(mapped, mapped[1:], strict=False)):
            return after
        start = at[i1] if i1 < len(b) else (at[i1 - 1] + 1 if i1 else 0)
        edits.append((start, start + (i2 - i1), a[j1:j2]))
    for start, end, new in reversed(edits):
        o[start:end] = new
    return "".join(o)


def styled(old: Any, text: str) -> str:
    """``text`` as a scalar in the style of ``old`` when it can be written so, else
    double-quoted. A new scalar is a literal block when it has several lines, else quoted."""
    printable = all(c == "\n" or c.isprintable() for c in text)
    fits_block = printable and text.endswith("\n") and text.strip() != ""
    if isinstance(old, LiteralScalarString | FoldedScalarString):
        # folding needs positions we do not have; a literal block is the closest style
        return LiteralScalarString(text) if fits_block else DoubleQuotedScalarString(text)
    if isinstance(old, SingleQuotedScalarString):
        one_line = printable and "\n" not in text
        return SingleQuotedScalarString(text) if one_line else DoubleQuotedScalarString(text)
    if isinstance(old, DoubleQuotedScalarString):
        return DoubleQuotedScalarString(text)
    if isinstance(old, str):  # plain: ruamel quotes it itself when it must
        return text if printable and "\n" not in text else DoubleQuotedScalarString(text)
    if fits_block and text.count("\n") > 1:
        return LiteralScalarString(text)
    return DoubleQuotedScalarString(text)
