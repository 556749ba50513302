"""Hostile YAML, unit by unit: alias bombs and cycles, nesting, size, tags, odd scalars, the
schema's regular expressions and uniqueness, risky patterns, and messages kept to one line."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest

from engine.documents import DocumentError, yaml_parse
from engine.documents.errors import MAX_MESSAGE, printable
from engine.documents.paths import Tree
from engine.documents.schema import _second_occurrence
from engine.documents.yaml_load import read_doc
from engine.errors import Pos


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def error_reading(text: str | bytes) -> str:
    path = Path("doc.yaml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
    with pytest.raises(DocumentError) as caught:
        read_doc(path)
    rendered = caught.value.render()
    assert len(rendered.splitlines()) == 1 and len(rendered) < 1200
    return rendered


def bomb(levels: int, width: int = 9) -> str:
    lines = ["kind: plan", 'a0: &a0 ["lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_stops_at_the_alias_that_crosses_the_limit() -> None:
    start = time.monotonic()
    assert error_reading(bomb(12)) == (
        "doc.yaml:7:25: the aliases expand to more than 100000 values (an alias bomb?); write "
        "the values out, or use fewer aliases")
    assert time.monotonic() - start < 2


def test_long_strings_weigh_more_when_aliased() -> None:
    text = "kind: plan\ns: &s '" + "x" * 64_000 + "'\nl: [" + ", ".join(["*s"] * 200) + "]\n"
    assert "the aliases expand to more than" in error_reading(text)


def test_merge_keys_count_too() -> None:
    lines = ["kind: plan", "t0: &t0 {a: 1, b: 2}"]
    lines += [f"t{i}: &t{i} {{<<: [{', '.join([f'*t{i - 1}'] * 9)}]}}" for i in range(1, 10)]
    assert "alias bomb" in error_reading("\n".join(lines) + "\n")


def test_a_few_aliases_are_fine() -> None:
    Path("doc.yaml").write_text(bomb(3) + "store: x\n")
    assert read_doc(Path("doc.yaml")).data["a2"] == [[["lol", "lol"]] * 9] * 9


def test_an_alias_inside_its_own_anchor() -> None:
    assert error_reading("kind: plan\nx: &a [1, *a]\n") == (
        "doc.yaml:2:11: alias '*a' refers to a node that contains it; a document cannot "
        "contain itself: remove the alias")
    assert "refers to a node that contains it" in error_reading("kind: plan\nx: &m {k: *m}\n")
    # An anchor defined again inside is a different node: no cycle.
    Path("doc.yaml").write_text("kind: plan\nx: &a [&a 1, *a]\n")
    assert read_doc(Path("doc.yaml")).data["x"] == [1, 1]


def test_undefined_alias() -> None:
    assert "undefined alias" in error_reading("kind: plan\nx: *nope\n")


@pytest.mark.parametrize("text", [
    "kind: plan\nx: " + "[" * 70 + "]" * 70 + "\n",
    "kind: plan\nx: " + "[" * 100_000 + "\n",
    "kind: plan\nx: " + "{a: " * 70 + "b" + "}" * 70 + "\n",
    "kind: plan\nx:\n" + "".join(" " * i + "- \n" for i in range(1, 80)),
])
def test_deep_nesting(text: str) -> None:
    start = time.monotonic()
    assert "the document is nested more than 64 levels deep; flatten it" in error_reading(text)
    # Quadratic would be ~10^10 comparisons (hours); linear is well under a second on a quiet
    # machine. The bound only has to tell the two apart on a loaded one.
    assert time.monotonic() - start < 60


def test_aliases_cannot_nest_deeper_than_the_limit() -> None:
    deep = "[" * 40 + "]" * 40
    assert error_reading(f"kind: plan\na: &a {deep}\nb: [[[[[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]"
                         "]]]]]]]]]]]]]]]]]]]]\n").endswith(
        "alias '*a' nests the document more than 64 levels deep; write the values out, or use "
        "fewer aliases")


def test_size_limit() -> None:
    big = yaml_parse.MAX_BYTES + 1
    assert error_reading("kind: plan\nstore: " + "x" * big + "\n") == (
        "doc.yaml: the document is too large (1.0 MiB, the limit is 1 MiB); move large data "
        "into files (stdin_file:, stdout_file:) or split the document")


def test_not_a_regular_file() -> None:
    os.mkfifo("doc.yaml")
    with pytest.raises(DocumentError) as caught:
        read_doc(Path("doc.yaml"))
    assert caught.value.render() == "doc.yaml: is not a regular file; name a .yaml file"


def test_ruamel_warnings_do_not_reach_the_user() -> None:
    Path("doc.yaml").write_text("kind: plan\na: &x 1\nb: &x 2\nc: *x\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_doc(Path("doc.yaml")).data["c"] == 2


@pytest.mark.parametrize(("value", "message"), [
    ("!custom x", "the tag '!custom' means nothing in a recipe document; remove it"),
    ("!custom {a: 1}", "the tag '!custom' means nothing in a recipe document; remove it"),
    ("!!binary aGVsbG8=", "a YAML binary value means nothing in a recipe document"),
    ("!!set {a}", "a YAML set value means nothing in a recipe document"),
    ('"\\ud800"', "the text holds U+D800, half of a UTF-16 surrogate pair"),
    ("0x" + "f" * 40, "a number of 160 bits is too large"),
    ("0x" + "f" * 5000, "a number of 20000 bits is too large"),
    ("!!int x", "cannot read the YAML: invalid literal for int()"),
    ("1" * 5000, "cannot read the YAML: Exceeds the limit (4300 digits)"),
])
def test_values_no_document_may_hold(value: str, message: str) -> None:
    assert message in error_reading(f"kind: plan\nstore: {value}\n")


def test_explicit_str_tags_are_plain_strings() -> None:
    Path("doc.yaml").write_text("kind: plan\nstore: !!str 1.0\n!!str k: v\n")
    assert read_doc(Path("doc.yaml")).data == {"kind": "plan", "store": "1.0", "k": "v"}


def test_tabs_and_control_characters() -> None:
    assert error_reading("kind: plan\nprojects:\n\t- a\n").endswith(
        "found character '\\t' that cannot start any token; indent with spaces, not tabs")
    assert error_reading(b"kind: plan\nstore: a\x00b\n") == (
        "doc.yaml:2:9: character U+0000 is not allowed in YAML; remove it or write it as an "
        "escape in a double-quoted string")


def test_mapping_keys_shown_as_yaml() -> None:
    assert error_reading("kind: plan\n? {a: 1}\n: x\n") == \
        'doc.yaml:2:3: key {a: 1} is not a string; quote it: "{a: 1}"'


def test_printable_keeps_one_short_line() -> None:
    assert printable("a\x00b\x85c\u2028d\ud800") == "a\\x00b\\x85c\\u2028d\\ud800"
    long = printable("name '" + "x" * 10_000 + "' is wrong")
    assert long.startswith("name '" + "x" * 79 + "...") and long.endswith("x' is wrong")
    assert len(printable("a " * 10_000)) == MAX_MESSAGE


def test_end_of_text_means_the_end_in_schema_patterns() -> None:
    # Python's $ also matches before a final newline; JSON Schema's (ECMA-262) does not.
    Path("doc.yaml").write_text('kind: project\nname: "app\\n"\nversion: "1"\nlanguage: c\n'
                                'outputs: [{name: app, kind: executable}]\n')
    from engine.documents.schema import check_schema

    with pytest.raises(DocumentError) as caught:
        check_schema(read_doc(Path("doc.yaml")))
    assert caught.value.render().startswith("doc.yaml:2:7: invalid value 'app\\n' for 'name'")


def test_unique_items_in_linear_time() -> None:
    items = [i if i % 2 else str(i) for i in range(200_000)]  # mixed: no sorting
    start = time.monotonic()
    assert _second_occurrence(items) is None
    assert _second_occurrence([*items, "4"]) == len(items)
    # Quadratic would be ~10^10 comparisons (hours); linear is well under a second on a quiet
    # machine. The bound only has to tell the two apart on a loaded one.
    assert time.monotonic() - start < 60
    assert _second_occurrence([1, True, "1"]) is None  # true is not 1 in JSON Schema
    assert _second_occurrence([1, 1.0]) == 1  # but 1.0 is


@pytest.mark.parametrize(("pattern", "message"), [
    ("src/\\", "invalid pattern 'src/\\' (not a gitignore pattern)"),
    ("src/[z-a].c", "invalid pattern 'src/[z-a].c' (bad character range z-a)"),
    ("*a*a*a*a*b", "pattern '*a*a*a*a*b' has more than 3 '*' in '*a*a*a*a*b'"),
    ("src/" + "*" * 40, "has more than 3 '*'"),
    ("src/\x00.c", "pattern 'src/\\x00.c' holds a control character"),
])
def test_risky_patterns(tmp_path: Path, pattern: str, message: str) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / ("a" * 200)).write_text("")
    start = time.monotonic()
    with pytest.raises(DocumentError) as caught:
        Tree(tmp_path).expand([(pattern, Pos(tmp_path / "doc.yaml", 1, 1))], tmp_path)
    assert message in caught.value.render()
    assert time.monotonic() - start < 1


def test_nested_character_classes_warn_nobody(tmp_path: Path) -> None:
    (tmp_path / "a.c").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Tree(tmp_path).expand([("[[a].c", Pos(tmp_path))], tmp_path) == ("a.c",)
        assert Tree(tmp_path).expand([("**/*.c", Pos(tmp_path))], tmp_path) == ("a.c",)


def test_a_dependency_chain_longer_than_the_recursion_limit() -> None:
    from types import SimpleNamespace

    from engine.documents.load import _check_depends

    n = 3000
    projects: dict = {f"p{i}": SimpleNamespace(depends=(f"p{i + 1}",) if i + 1 < n else ())
                      for i in range(n)}
    where = {name: {dep: Pos(Path(name)) for dep in p.depends} for name, p in projects.items()}
    _check_depends(projects, where)  # no RecursionError
    projects[f"p{n - 1}"].depends = ("p0",)
    where[f"p{n - 1}"] = {"p0": Pos(Path("last"), 1, 1)}
    with pytest.raises(DocumentError) as caught:
        _check_depends(projects, where)
    assert caught.value.what.startswith("dependency cycle: p0 -> p1 -> p2 -> ")
