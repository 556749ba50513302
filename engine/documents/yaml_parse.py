"""Parsing YAML text into ruamel's round-trip tree, within limits a hostile document cannot pass.

ruamel.yaml has no limit on alias expansion and only an optional one on nesting. A few hundred
bytes of anchors and aliases ("billion laughs") expand to billions of nodes once copied to plain
Python, and deep nesting ends in a RecursionError. The composer below measures every node as it
is composed (size and depth *with aliases expanded*, which is cheap bottom-up) and stops at the
alias or the node that crosses a limit, so nothing later (plain copies, schema validation) ever
walks more than a bounded tree.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import warnings
from pathlib import Path
from typing import Any

from engine.documents.errors import DocumentError
from engine.errors import Pos

MAX_BYTES = 1024 * 1024  # ruamel (pure Python) parses 0.07 to 2 MB/s, dense flow style slowest
MAX_DEPTH = 64  # recipe documents need about 8 levels; Python's stack needs a bound
MAX_ALIASED = 100_000  # nodes that aliases may add to the document, all uses together
_CHARS_PER_NODE = 64  # a long scalar weighs as much as several nodes when it is copied

_FLATTEN = "write the values out, or use fewer aliases"


class _Limit(Exception):
    """A limit crossed at ``mark`` (a ruamel mark: 0-based line and column)."""

    def __init__(self, what: str, fix: str, mark: Any) -> None:
        super().__init__(what)
        self.what, self.fix, self.mark = what, fix, mark


@functools.cache
def _composer_class() -> type:
    from ruamel.yaml.composer import Composer
    from ruamel.yaml.events import AliasEvent
    from ruamel.yaml.nodes import MappingNode, SequenceNode

    class LimitedComposer(Composer):  # type: ignore[misc]
        def compose_document(self) -> Any:
            self._measured: dict[int, tuple[int, int]] = {}  # id(node) -> (size, depth)
            self._level = 0  # nesting of the node being composed
            self._aliased = 0
            return super().compose_document()

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            if isinstance(event, AliasEvent):
                target = self.anchors.get(event.anchor)
                if target is not None and id(target) not in self._measured:
                    raise _Limit(f"alias '*{event.anchor}' refers to a node that contains it",
                                 "a document cannot contain itself: remove the alias",
                                 event.start_mark)
                node = super().compose_node(parent, index)  # undefined: ruamel's own error
                size, depth = self._measured[id(node)]
                self._aliased += size
                if self._aliased > MAX_ALIASED:
                    raise _Limit(f"the aliases expand to more than {MAX_ALIASED} values (an "
                                 "alias bomb?)", _FLATTEN, event.start_mark)
                if self._level + depth > MAX_DEPTH:
                    raise _Limit(f"alias '*{event.anchor}' nests the document more than "
                                 f"{MAX_DEPTH} levels deep", _FLATTEN, event.start_mark)
                return node
            if self._level >= MAX_DEPTH:
                raise _Limit(f"the document is nested more than {MAX_DEPTH} levels deep",
                             "flatten it", event.start_mark)
            self._level += 1
            node = super().compose_node(parent, index)
            self._level -= 1
            self._measured[id(node)] = self._measure(node)
            return node

        def _measure(self, node: Any) -> tuple[int, int]:
            """(size, depth) of a just-composed node, from its children's (all measured)."""
            if isinstance(node, MappingNode):
                children = [child for pair in node.value for child in pair]
            elif isinstance(node, SequenceNode):
                children = node.value
            else:
                return 1 + len(node.value) // _CHARS_PER_NODE, 1
            size, depth = 1, 0
            for child in children:
                child_size, child_depth = self._measured.get(id(child), (1, 1))
                size, depth = size + child_size, max(depth, child_depth)
            return size, depth + 1

    return LimitedComposer


def check_size(file: Path, size: int) -> None:
    """Refuse a document too large to parse in reasonable time (before reading it)."""
    if size > MAX_BYTES:
        mib = 1024 * 1024
        raise DocumentError(f"the document is too large ({size / mib:.1f} MiB, the limit is "
                            f"{MAX_BYTES // mib} MiB)", "move large data into files "
                            "(stdin_file:, stdout_file:) or split the document", pos=Pos(file))


def parse_yaml(file: Path, text: str) -> Any:
    """The round-trip tree of ``text`` (None when empty); any problem is a DocumentError."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.reader import ReaderError

    check_size(file, len(text.encode("utf-8", "surrogatepass")))
    yaml = YAML(typ="rt")
    yaml.Composer = _composer_class()
    try:
        # ruamel warns (reused anchors) and sometimes prints: neither may reach our streams
        # (--json output above all). Documents load before any other thread runs.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return yaml.load(text)
    except _Limit as limit:
        raise DocumentError(limit.what, limit.fix, pos=_pos(file, limit.mark)) from None
    except ReaderError as error:  # a control character: no mark, only an offset
        before = text[:error.position]
        line, col = before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1
        char = error.character if isinstance(error.character, int) else ord(error.character)
        raise DocumentError(f"character U+{char:04X} is not allowed in YAML",
                            "remove it or write it as an escape in a double-quoted string",
                            pos=Pos(file, line, col)) from None
    except MarkedYAMLError as error:
        raise _syntax_error(file, error) from None
    except RecursionError:  # a last resort: the composer's depth limit should come first
        raise DocumentError("the document is nested too deeply", "flatten it",
                            pos=Pos(file, 1, 1)) from None
    except Exception as error:  # ruamel's constructors raise all kinds (bad !!int, ...)
        raise DocumentError(f"cannot read the YAML: {error}", "fix the YAML",
                            pos=Pos(file, 1, 1)) from None


def _syntax_error(file: Path, error: Any) -> DocumentError:
    mark = error.problem_mark or error.context_mark
    pos = _pos(file, mark) if mark else Pos(file)
    problem = (error.problem or error.context or "invalid YAML").strip()
    dup = re.match(r'found duplicate key "(.*)" with value', problem, re.DOTALL)
    if dup:
        return DocumentError(f"duplicate key '{dup.group(1)}'", "remove or rename one of them",
                             pos=pos)
    if error.context and error.problem and error.context_mark:
        cm = error.context_mark
        problem += f" ({error.context.strip()} at line {cm.line + 1}, column {cm.column + 1})"
    fix = "indent with spaces, not tabs" if "'\\t'" in problem else "fix the YAML syntax"
    return DocumentError(f"YAML syntax error: {problem}", fix, pos=pos)


def _pos(file: Path, mark: Any) -> Pos:
    return Pos(file, mark.line + 1, mark.column + 1)
