"""Reading a YAML document with ruamel's round-trip loader, which keeps every node's position.

A ``Doc`` holds both the ruamel tree (for positions) and a plain copy (dict, list, str, int,
float, bool, None) for the schema and the models. ruamel is imported lazily: ``recipe`` commands
that never read YAML should not pay for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.documents.errors import DocumentError, did_you_mean, one_of
from engine.errors import Pos

KINDS = ("cases", "plan", "project", "targets")

PathElem = str | int


@dataclass
class Doc:
    file: Path  # absolute, as the user reached it (not resolved): positions render it
    tree: Any  # the ruamel CommentedMap
    data: dict[str, Any]  # plain copy of tree
    text: str

    @property
    def kind(self) -> str:
        return self.data["kind"]

    def pos(self, path: Sequence[PathElem] = (), *, key: bool = False) -> Pos:
        """The position of the node at ``path`` (of its key when ``key``), 1-based."""
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
    try:
        text = file.read_bytes().decode("utf-8-sig")  # a BOM from some editors is fine
    except FileNotFoundError:
        raise DocumentError("no such file", "check the path", pos=Pos(file)) from None
    except IsADirectoryError:
        raise DocumentError("is a folder, not a YAML document", "name a .yaml file",
                            pos=Pos(file)) from None
    except UnicodeDecodeError as error:
        raise DocumentError(f"not UTF-8 text (byte {error.start})", "save the file as UTF-8",
                            pos=Pos(file)) from None
    except OSError as error:
        raise DocumentError(f"cannot read: {error.strerror}", "check the file's permissions",
                            pos=Pos(file)) from None
    tree = _parse(file, text)
    start = f"start it with 'kind: {expect}'" if expect else \
        f"start it with 'kind:' and one of {one_of(KINDS)}"
    if tree is None:
        raise DocumentError("empty document", start, pos=Pos(file, 1, 1))
    if not isinstance(tree, dict) or not hasattr(tree, "lc"):
        raise DocumentError("a recipe document must be a mapping that starts with 'kind:'",
                            start, pos=Pos(file, 1, 1))
    doc = Doc(file, tree, to_plain(tree), text)
    _check_keys(doc, tree)
    _check_kind(doc, expect, hint, start)
    return doc


def _parse(file: Path, text: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    try:
        return YAML(typ="rt").load(text)
    except ReaderError as error:  # a control character: no mark, only an offset
        before = text[:error.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        char = error.character if isinstance(error.character, int) else ord(error.character)
        raise DocumentError(f"character U+{char:04X} is not allowed in YAML",
                            "remove it or write it as an escape in a double-quoted string",
                            pos=Pos(file, line, col)) from None
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        pos = Pos(file, mark.line + 1, mark.column + 1) if mark else Pos(file)
        problem = (error.problem or error.context or "invalid YAML").strip()
        dup = re.match(r'found duplicate key "(.*)" with value', problem)
        if dup:
            raise DocumentError(f"duplicate key '{dup.group(1)}'",
                                "remove or rename one of them", pos=pos) from None
        if error.context and error.problem and error.context_mark:
            cm = error.context_mark
            problem += f" ({error.context.strip()} at line {cm.line + 1}, column {cm.column + 1})"
        raise DocumentError(f"YAML syntax error: {problem}", "fix the YAML syntax",
                            pos=pos) from None
    except RecursionError:
        raise DocumentError("the document is nested too deeply", "flatten it",
                            pos=Pos(file, 1, 1)) from None
    except (YAMLError, ValueError) as error:  # reported by ruamel without a mark
        raise DocumentError(f"YAML syntax error: {error}", "fix the YAML syntax",
                            pos=Pos(file, 1, 1)) from None


def _check_keys(doc: Doc, node: Any) -> None:
    """Every mapping key must be a string: ``1: x`` or ``[a]: x`` are typos, not data."""
    if isinstance(node, dict):
        for k, value in node.items():
            if not isinstance(k, str):
                line, col = node.lc.key(k)
                raise DocumentError(f"key {_plain_repr(k)} is not a string",
                                    f"quote it: \"{_plain_repr(k)}\"",
                                    pos=Pos(doc.file, line + 1, col + 1))
            _check_keys(doc, value)
    elif isinstance(node, list):
        for value in node:
            _check_keys(doc, value)


def _check_kind(doc: Doc, expect: str | None, hint: str, start: str) -> None:
    tree = doc.tree
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
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)
