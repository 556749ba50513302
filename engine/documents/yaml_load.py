"""Reading a YAML document: libyaml first (``yaml_fast``), ruamel's round-trip loader for
whatever that does not take, and for positions it did not record.

A ``Doc`` holds a plain copy (dict, list, str, int, float, bool, None) for the schema and the
models, and the positions of its nodes: recorded by the fast reader, or in the ruamel tree,
parsed when first needed (an error inside a table). ruamel is imported lazily: ``recipe``
commands that never read YAML, or read only documents the fast reader takes without error,
should not pay for it.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import watch
from engine.documents.errors import DocumentError, did_you_mean, one_of
from engine.documents.yaml_fast import MapPos, fast_load, find
from engine.documents.yaml_parse import check_size, parse_yaml
from engine.errors import Pos

KINDS = ("cases", "plan", "project", "targets")

PathElem = str | int
_SURROGATE = re.compile("[\ud800-\udfff]")
_CORE_TAGS = "tag:yaml.org,2002:"


@dataclass
class Doc:
    """A document as read: its data, text and positions."""

    file: Path  # absolute, as the user reached it (not resolved): positions render it
    data: dict[str, Any]  # plain Python: dict, list, str, int, float, bool, None
    text: str
    # The positions the fast reader recorded (yaml_fast), or None: the round-trip tree has them
    positions: MapPos | None = None
    _tree: Any = None

    @property
    def tree(self) -> Any:
        """The ruamel round-trip tree, parsed the first time a position needs it."""
        if self._tree is None:
            self._tree = parse_yaml(self.file, self.text)
        return self._tree

    @property
    def kind(self) -> str:
        return self.data["kind"]

    def pos(self, path: Sequence[PathElem] = (), *, key: bool = False) -> Pos:
        """The position of the node at ``path`` (of its key when ``key``), 1-based."""
        if self.positions is not None:
            found = find(self.data, self.positions, path, key)
            if found is not None:
                return Pos(self.file, found[0] + 1, found[1] + 1)
        node, line, col = self.tree, self.tree.lc.line, self.tree.lc.col
        for i, elem in enumerate(path):
            lc = getattr(node, "lc", None)
            try:
                child = node[elem]
            except (KeyError, IndexError, TypeError):
                break
            try:
                if isinstance(elem, int):
                    line, col = lc.item(elem)
                elif key and i == len(path) - 1:
                    line, col = lc.key(elem)
                else:
                    line, col = lc.value(elem)
            except (AttributeError, KeyError, IndexError, TypeError):
                pass  # merged keys (<<) carry no position of their own: keep the parent's
            node = child
        return Pos(self.file, line + 1, col + 1)

    def token_at(self, pos: Pos) -> str:
        """The plain scalar written at ``pos`` (to quote it back in a fix)."""
        lines = self.text.splitlines()
        if not 0 < pos.line <= len(lines):
            return ""
        match = re.match(r"[^\s,\]}#]+", lines[pos.line - 1][pos.col - 1:])
        return match.group(0) if match else ""


def read_doc(file: Path, expect: str | None = None, hint: str = "") -> Doc:
    """Load ``file``, check its first key names a known kind (``expect`` when given)."""
    file = Path(file).absolute()
    text = _read_text(file)
    check_size(file, len(text.encode("utf-8", "surrogatepass")))
    fast = fast_load(text)
    if fast is not None:  # only documents read exactly as the round trip reads them
        doc = Doc(file, fast[0], text, fast[1])
    else:
        doc = _round_trip(file, text, expect)
    start = f"start it with 'kind: {expect}'" if expect else \
        f"start it with 'kind:' and one of {one_of(KINDS)}"
    _check_kind(doc, expect, hint, start)
    return doc


def _round_trip(file: Path, text: str, expect: str | None) -> Doc:
    tree = parse_yaml(file, text)
    start = f"start it with 'kind: {expect}'" if expect else \
        f"start it with 'kind:' and one of {one_of(KINDS)}"
    if tree is None:
        raise DocumentError("empty document", start, pos=Pos(file, 1, 1))
    if not isinstance(tree, dict) or not hasattr(tree, "lc"):
        raise DocumentError("a recipe document must be a mapping that starts with 'kind:'",
                            start, pos=Pos(file, 1, 1))
    doc = Doc(file, {}, text, None, tree)
    try:
        doc.data = _plain(tree, [])
    except _BadNode as bad:
        raise DocumentError(bad.what, bad.fix, pos=doc.pos(bad.path, key=bad.key)) from None
    return doc


def _read_text(file: Path) -> str:
    watch.seen(file)
    try:
        info = file.stat()
        if stat.S_ISDIR(info.st_mode):
            raise DocumentError("is a folder, not a YAML document", "name a .yaml file",
                                pos=Pos(file))
        if not stat.S_ISREG(info.st_mode):  # a FIFO or a device would block or never end
            raise DocumentError("is not a regular file", "name a .yaml file", pos=Pos(file))
        check_size(file, info.st_size)
        return file.read_bytes().decode("utf-8-sig")  # a BOM from some editors is fine
    except FileNotFoundError:
        raise DocumentError("no such file", "check the path", pos=Pos(file)) from None
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text (byte {error.start})", "save the file as UTF-8",
                            pos=Pos(file)) from None
    except OSError as error:
        raise DocumentError(f"cannot read: {error.strerror}", "check the file's permissions",
                            pos=Pos(file)) from None


class _BadNode(Exception):
    """A value no document may hold, at ``path`` (at its key when ``key``)."""

    def __init__(self, path: list[Any], what: str, fix: str, key: bool = False) -> None:
        super().__init__(what)
        self.path, self.what, self.fix, self.key = path, what, fix, key


def _plain(node: Any, path: list[Any]) -> Any:
    """``to_plain``, checking on the way that every key is a string (``1: x`` or ``[a]: x`` are
    typos, not data), that no tag, set or binary value slips through as an odd Python type, that
    no string holds a lone surrogate (it can be neither printed nor used as a file name) and that
    no integer is too large to print."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag and not tag.startswith(_CORE_TAGS):
        raise _BadNode(path, f"the tag '{tag}' means nothing in a recipe document",
                       "remove it")
    if type(node).__name__ == "TaggedScalar":  # an explicit !!str, kept by the round trip
        if tag != _CORE_TAGS + "str":
            raise _BadNode(path, f"the tag '{tag}' does not fit this value", "remove it")
        node = str(node.value)
    if isinstance(node, bytes | AbstractSet):
        raise _BadNode(path, f"a YAML {'set' if isinstance(node, AbstractSet) else 'binary'} "
                       "value means nothing in a recipe document",
                       "write a string, a number, a list or a mapping")
    if isinstance(node, dict):
        out = {}
        for k, value in node.items():
            key = _plain(k, [*path, k]) if type(k).__name__ == "TaggedScalar" else k
            if not isinstance(key, str):
                raise _BadNode([*path, k], f"key {_plain_repr(k)} is not a string",
                               f"quote it: \"{_plain_repr(k)}\"", key=True)
            out[_plain(key, [*path, k])] = _plain(value, [*path, k])
        return out
    if isinstance(node, list | tuple):
        return [_plain(v, [*path, i]) for i, v in enumerate(node)]
    value = to_plain(node)
    surrogate = _SURROGATE.search(value) if isinstance(value, str) else None
    if surrogate:
        raise _BadNode(path, f"the text holds U+{ord(surrogate.group(0)):04X}, half of a "
                       "UTF-16 surrogate pair", "write the character itself, or its \\U escape")
    if isinstance(value, int) and value.bit_length() > 128:
        raise _BadNode(path, f"a number of {value.bit_length()} bits is too large",
                       "write a number that fits 128 bits, or quote it")
    return value


def _check_kind(doc: Doc, expect: str | None, hint: str, start: str) -> None:
    tree = doc.data  # the same keys in the same order as the round-trip tree
    if not tree:
        raise DocumentError("empty document", start, pos=doc.pos())
    first = next(iter(tree))
    if first != "kind":
        fix = "move 'kind:' to the first line" if "kind" in tree else start
        raise DocumentError(f"the first key must be 'kind', not '{first}'", fix,
                            pos=doc.pos([first], key=True))
    kind = doc.data["kind"]
    pos = doc.pos(["kind"])
    if not isinstance(kind, str) or kind not in KINDS:
        shown = kind if isinstance(kind, str) else _plain_repr(kind)
        fix = (did_you_mean(shown, KINDS) if isinstance(kind, str) else None) or \
            f"use one of {one_of(KINDS)}"
        raise DocumentError(f"unknown kind '{shown}'", fix, pos=pos)
    if expect and kind != expect:
        raise DocumentError(f"expected a document of kind '{expect}', found '{kind}'",
                            hint or f"name a '{expect}' document here", pos=pos)


def to_plain(node: Any) -> Any:
    """ruamel's node types to plain Python (ScalarFloat -> float, CommentedMap -> dict, ...)."""
    if isinstance(node, dict):
        return {str(k): to_plain(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [to_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    name = type(node).__name__
    if name == "ScalarBoolean":  # an int subclass that means a bool (anchored booleans)
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node  # dates and the like: the schema rejects them with a clear type error


def _plain_repr(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_plain_repr(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_plain_repr(k)}: {_plain_repr(v)}" for k, v in value.items()) \
            + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) and value.bit_length() > 128:
        return "(a very large number)"  # str() refuses ints of more than 4300 digits
    return str(value)
