"""The fast way to read a YAML document: libyaml's parser (PyYAML's C extension) straight into
plain Python, with the positions a loaded document needs on success.

ruamel.yaml's round-trip loader, pure Python, reads about 0.1 to 0.2 MB/s: a 25,000-row function
table took seconds. libyaml emits the same events about twenty times faster, and the plain data
is built here from them directly. This reader is an optimisation, never a second dialect: it
takes only documents it reads exactly as the round trip does, and gives up (``None``) on
anything else, which ``yaml_load`` then reads the old way, with the old error messages. It gives
up on: a document that is not one mapping; tabs, carriage returns and characters outside
printable Unicode; directives, tags, anchors and aliases; keys that are not strings, repeated
keys, merge keys; any plain scalar the round trip would resolve to something other than a string,
a decimal integer (128 bits at most), a decimal float, a bool or null; nesting past the round
trip's limit; and any error of libyaml's.

Positions: every mapping records where its keys and values start, and every sequence that is
not an item of another sequence where its items start (the rows of a table, not their cells).
A position that was not recorded is taken from the round-trip tree, parsed only then (for an
error message).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any

from engine.documents.yaml_parse import MAX_DEPTH

# Anything else goes the round trip's way: its reader, not libyaml's, decides what is allowed.
_UNSAFE_TEXT = re.compile("[^\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd"
                          "\U00010000-\U0010ffff]")
_INT = re.compile(r"-?(?:0|[1-9][0-9]{0,37})\Z")  # 38 digits < 2**127: the 128-bit limit holds
_FLOAT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+)\Z")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAG = "tag:yaml.org,2002:"
# Strings without asking ruamel, whose import is 16 ms of a fresh clone's realise: a version like
# 1.0.0 or 2.1.3-rc1 (its second '.' rules out YAML 1.2's ints and floats, and its first digits
# end in '.', not in the '-' of a timestamp) and a flag like -Wall (a sign before a letter
# starts no number: those have a digit or a '.' after it).
_STRING = re.compile(r"[0-9]+\.[0-9]+\.|[-+][A-Za-z]")


_MAP, _SEQ, _ROW = "map", "seq", "row"


class _GiveUp(Exception):
    """Not a document this reader takes: the round trip reads it."""


@dataclass
class MapPos:
    """Where the keys and values of one mapping start: key -> (key line, key col, value line,
    value col), 0-based as ruamel's ``lc``; ``children`` the positions inside container values."""

    line: int
    col: int
    keys: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)
    children: dict[str, Any] = field(default_factory=dict)


@dataclass
class SeqPos:
    """Where the items of one sequence start; ``items`` is None when not recorded."""

    line: int
    col: int
    items: list[tuple[int, int]] | None = None
    children: dict[int, Any] = field(default_factory=dict)


@functools.cache
def _parser() -> Any:
    """PyYAML's libyaml parser, its event classes and the base of the errors it raises, or None
    without them."""
    try:
        import yaml
        from yaml._yaml import CParser
    except ImportError:
        return None
    return CParser, yaml.events, yaml.YAMLError


@functools.cache
def _resolver() -> Any:
    from ruamel.yaml.resolver import VersionedResolver

    return VersionedResolver()


# First characters of the plain scalars that some implicit resolver of ruamel's YAML 1.2 looks at
# (the keys of VersionedResolver().versioned_resolver; a test checks they still are).
RESOLVED_FIRST = frozenset("-+.0123456789tTfFnN~!&*<=") | {""}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
         "FALSE": False}
_NULL = ("", "~", "null", "Null", "NULL")


def fast_load(text: str) -> tuple[dict[str, Any], MapPos] | None:
    """The plain data of ``text`` and its positions, or None (read it the round-trip way)."""
    tools = _parser()
    if tools is None or _UNSAFE_TEXT.search(text):
        return None
    parser_class, events, yaml_error = tools
    parser = parser_class(text)
    try:
        return _build(parser.get_event, events)
    except _GiveUp:
        return None
    except yaml_error:
        # libyaml's ReaderError, ScannerError and ParserError: the document is not well formed,
        # and the round trip's reader reports it in its own words. Anything else (MemoryError,
        # a bug of this module) is not the document's fault and propagates.
        return None
    finally:
        parser.dispose()


def _build(get: Any, ev: Any) -> tuple[dict[str, Any], MapPos]:
    if type(get()) is not ev.StreamStartEvent:
        raise _GiveUp
    start = get()
    if type(start) is not ev.DocumentStartEvent or start.version or start.tags:
        raise _GiveUp
    scalar, map_start, seq_start = ev.ScalarEvent, ev.MappingStartEvent, ev.SequenceStartEvent
    map_end, seq_end = ev.MappingEndEvent, ev.SequenceEndEvent
    first = RESOLVED_FIRST
    # A frame: [container, its positions, pending key (mappings), that key's mark, what it is:
    # _MAP, _SEQ (its items' positions recorded) or _ROW (a sequence in a sequence: not)]
    stack: list[list[Any]] = []
    root: Any = None
    while True:
        event = get()
        kind = type(event)
        if kind is scalar:
            if event.anchor is not None or event.tag is not None:
                raise _GiveUp
            value = event.value
            if not event.style:  # plain: resolved as the round trip's YAML 1.2 does
                if value[:1] in first:
                    value = _plain(value)
            elif event.style == '"' and _SURROGATE.search(value):
                raise _GiveUp
            if stack and stack[-1][4] is _ROW:  # a table's cell: the hot path
                stack[-1][0].append(value)
                continue
            mark = event.start_mark
            at, child = (mark.line, mark.column), None
        elif kind is map_start or kind is seq_start:
            if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                raise _GiveUp
            mark = event.start_mark
            if kind is map_start:
                stack.append([{}, MapPos(mark.line, mark.column), None, None, _MAP])
            else:
                record = not stack or stack[-1][4] is _MAP
                stack.append([[], SeqPos(mark.line, mark.column, [] if record else None),
                              None, None, _SEQ if record else _ROW])
            continue
        elif kind is map_end or kind is seq_end:
            frame = stack.pop()
            value, child = frame[0], frame[1]
            at = child.line, child.col
        elif kind is ev.DocumentEndEvent:
            break
        else:  # an alias, a second document
            raise _GiveUp
        if not stack:
            root = (value, child)
            continue
        top = stack[-1]
        container = top[0]
        if type(container) is dict:
            if top[2] is None:  # a key
                if type(value) is not str or value in container:
                    raise _GiveUp
                top[2], top[3] = value, event.start_mark
                continue
            key, key_mark = top[2], top[3]
            top[2] = None
            container[key] = value
            top[1].keys[key] = (key_mark.line, key_mark.column, at[0], at[1])
            if child is not None:
                top[1].children[key] = child
        else:
            if top[4] is _SEQ:
                top[1].items.append(at)
                if child is not None:
                    top[1].children[len(container)] = child
            container.append(value)
    if type(get()) is not ev.StreamEndEvent or root is None or type(root[0]) is not dict:
        raise _GiveUp
    return root


def _plain(value: str) -> Any:
    """A plain scalar whose first character some implicit resolver of YAML 1.2 looks at."""
    head = value[:1]
    if head in "tTfF":
        return _BOOL.get(value, value)
    if head in "nN~" or not value:
        return None if value in _NULL else value
    if head in "!&*<=":
        raise _GiveUp  # merge keys, '=', lone indicators
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value)
    if _STRING.match(value):
        return value
    from ruamel.yaml.nodes import ScalarNode

    tag = _resolver().resolve(ScalarNode, value, (True, False))
    if tag == _TAG + "str":
        return value
    raise _GiveUp  # other integers and floats (0x1f, 1_000, .inf), dates


def find(data: Any, positions: MapPos, path: tuple[Any, ...] | list[Any],
         key: bool) -> tuple[int, int] | None:
    """``Doc.pos`` over the recorded positions (0-based), or None where they are not recorded.

    Mirrors the walk over ruamel's tree: a path element that names no child stops the walk at
    the last position found; inside a scalar the position stays the scalar's."""
    node, where = data, positions
    line, col = positions.line, positions.col
    last = len(path) - 1
    for i, elem in enumerate(path):
        if type(node) is dict and type(elem) is str:
            if elem not in node:
                break
            if where is None:
                return None
            kl, kc, vl, vc = where.keys[elem]
            line, col = (kl, kc) if key and i == last else (vl, vc)
        elif type(node) is list and type(elem) is int:
            if not 0 <= elem < len(node):
                if elem < 0:
                    return None  # ruamel's negative indexing: leave it to the round trip
                break
            if where is None or where.items is None:
                return None
            line, col = where.items[elem]
        else:  # no such child, or a scalar: the round trip's walk stops here too
            break
        node = node[elem]
        where = where.children.get(elem) if where is not None else None
    return line, col
