"""The fast YAML reader (libyaml, engine/documents/yaml_fast.py) is an optimisation, not a second
dialect: whatever it takes, it reads exactly as ruamel's round trip does (the same plain data,
the same position for every path a message may name), and what the round trip refuses it never
takes. Checked on every YAML file of the repository and on generated documents."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from engine.documents.errors import DocumentError
from engine.documents.load import load_cases_file
from engine.documents.yaml_fast import RESOLVED_FIRST, fast_load, find
from engine.documents.yaml_load import Doc, _round_trip

REPO = Path(__file__).resolve().parents[2]
COMMON = {"derandomize": True, "database": None, "deadline": None,
          "phases": [Phase.explicit, Phase.generate]}


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, (*prefix, i))


def _same_as_round_trip(text: str) -> bool:
    """Assert the fast reader agrees with the round trip on ``text``; whether it took it."""
    file = Path("/nonexistent/doc.yaml")
    fast = fast_load(text)
    try:
        slow = _round_trip(file, text, None)
    except DocumentError:
        assert fast is None, f"the fast reader took a document the round trip refuses: {text!r}"
        return False
    if fast is None:
        return False
    data, positions = fast
    assert repr(data) == repr(slow.data), text  # repr: 1 and 1.0 and True differ
    doc = Doc(file, data, text, positions)
    for path in _paths(data):
        for extra in ((), ("nokey",), (0,), (99,), (0, "x")):
            for key in (False, True):
                found = find(data, positions, (*path, *extra), key)
                if found is not None:
                    want = slow.pos((*path, *extra), key=key)
                    assert (found[0] + 1, found[1] + 1) == (want.line, want.col), \
                        (text, path, extra, key)
    assert doc.pos(()) == slow.pos(())
    return True


def test_every_yaml_file_of_the_repository_reads_the_same() -> None:
    files = [REPO / f for f in subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=REPO, capture_output=True, text=True,
        check=True).stdout.split()]
    taken = sum(_same_as_round_trip(f.read_text("utf-8-sig")) for f in files)
    assert taken >= len(files) * 3 // 4  # most real documents take the fast way


SCALARS = ["0", "-0", "+1", "007", "1_000", "0x1F", "0o17", "0b101", "12", "-345", "1.5", "1.",
           ".5", "-.5", "1e5", "1E-5", "-1.5e+3", "6.02e23", ".inf", "-.inf", ".nan", "true",
           "True", "FALSE", "yes", "no", "on", "off", "y", "null", "~", "Null", "NULL", "",
           "2024-01-01", "2001-12-14t21:59:43.10-05:00", "<<", "=", "a:b", "12:30", "1:20:30",
           "a b", "é", "😀", "'quoted'", "'it''s'", '"dq\\n"', '"\\ud800"', '"\\x41\\u00e9"',
           "!!str 5", "!!int '3'", "&a x", "*a", "? x", "@x", "`x", "x #c", "- x", "|\n  a",
           "1" * 38, "-" + "9" * 38, "1" * 39, "9" * 40, "name", "int add(int a, int b)",
           "[1, 2]", "{a: 1}", "'multi\n  line'", "plain\n  folded", "a\tb", "x\r\ny", "\x85"]
KEYS = ["kind", "cases", "name", "a", "b", "<<", "1", "true", "null", "'q'", "? complex",
        "[k]", "a b", "é"]


def _render(value: Any, indent: int, flow: bool) -> str:
    if isinstance(value, dict):
        if flow or not value:
            return "{" + ", ".join(f"{k}: {_render(v, 0, True)}" for k, v in value.items()) + "}"
        pad = " " * indent
        return "".join(f"\n{pad}{k}:" + (" " if not isinstance(v, dict | list) or not v
                                         else "") + _render(v, indent + 2, False)
                       for k, v in value.items())
    if isinstance(value, list):
        if flow or not value:
            return "[" + ", ".join(_render(v, 0, True) for v in value) + "]"
        pad = " " * indent
        return "".join(f"\n{pad}- " + _render(v, indent + 2, isinstance(v, dict | list))
                       for v in value)
    return value


def _documents() -> st.SearchStrategy[str]:
    scalar = st.sampled_from(SCALARS)
    tree = st.recursive(scalar, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)), max_leaves=12)
    root = st.dictionaries(st.sampled_from(KEYS), tree, min_size=1, max_size=5)

    @st.composite
    def document(draw: Any) -> str:
        text = _render(draw(root), 0, draw(st.booleans())).lstrip("\n") + "\n"
        if draw(st.booleans()):  # a random edit: a character inserted or removed
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(["", " ", ":", "-", "#", "'", '"', "\n",
                                                     "[", "{", "&", "*", "!", "\t"])) + \
                text[at + draw(st.integers(0, 1)):]
        return text

    return document()


@settings(max_examples=400, **COMMON)
@given(text=_documents())
def test_generated_documents_read_the_same(text: str) -> None:
    _same_as_round_trip(text)


def test_a_large_table_reads_without_the_round_trip(tmp_path: Path) -> None:
    rows = "".join(f"      - [{i}, {i % 7}, {i + i % 7}]\n" for i in range(5000))
    file = tmp_path / "add.yaml"
    file.write_text("kind: cases\ncases:\n  - name: add\n    function: int add(int a, int b)\n"
                    "    table:\n" + rows)
    # A fresh interpreter: ruamel must not even be imported when nothing is wrong.
    code = ("import sys; from pathlib import Path; from engine.documents.load import "
            "load_cases_file; c = load_cases_file(Path(sys.argv[1])); "
            "print(len(c[0].table), c[0].pos, 'ruamel.yaml' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(file)], capture_output=True,
                         text=True, check=True, cwd=REPO).stdout.split()
    assert out[0] == "5000" and out[-1] == "False", out
    assert out[1].endswith("add.yaml:3:5")


def test_the_first_characters_resolved_are_ruamels() -> None:
    from ruamel.yaml.resolver import VersionedResolver

    assert RESOLVED_FIRST == set(VersionedResolver().versioned_resolver)


@pytest.mark.parametrize("bad, message", [
    ("      - [1, 2, x]\n", "add.yaml:3006:16: the expected result of row 3001 is 'x', "
                            "not an integer; write an integer that fits int"),
    ("      - [1, 2]\n", "add.yaml:3006:9: row 3001 of case 'add' has 2 values, but add() "
                         "needs 3; write [arg, arg, expected] (2 arguments and the expected "
                         "result)"),
    ("      - 5\n", "add.yaml:3006:9: item 3001 of 'table' of case 'add' must be a list, not "
                    "the number 5; write a list"),
])
def test_an_error_in_a_large_table_has_its_position(tmp_path: Path, bad: str,
                                                     message: str) -> None:
    rows = [f"      - [{i}, 1, {i + 1}]\n" for i in range(6000)]
    rows[3000] = bad
    file = tmp_path / "add.yaml"
    file.write_text("kind: cases\ncases:\n  - name: add\n    function: int add(int a, int b)\n"
                    "    table:\n" + "".join(rows))
    with pytest.raises(DocumentError) as error:
        load_cases_file(file)
    assert error.value.render().endswith(message)


@pytest.mark.parametrize("text", ["a: [1, 2\n", "a: b: c\n", 'a: "open\n', "- a\nb: c\n",
                                  "a: 1\n  b: 2\n"])
def test_a_document_libyaml_refuses_is_left_to_the_round_trip(tmp_path: Path,
                                                               text: str) -> None:
    # libyaml raises its ParserError or ScannerError: the round trip reports it, in its words
    assert fast_load(text) is None
    with pytest.raises(DocumentError):
        _round_trip(tmp_path / "bad.yaml", text, None)


def test_a_fault_of_the_fast_reader_itself_is_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    # Only libyaml's errors mean "read it the other way": a bug here must show, not turn every
    # document silently into a slow read.
    from engine.documents import yaml_fast

    def broken(value: str) -> Any:
        raise ZeroDivisionError("a bug in the fast reader")

    monkeypatch.setattr(yaml_fast, "_plain", broken)
    with pytest.raises(ZeroDivisionError):
        fast_load("kind: cases\ncount: 12\n")
