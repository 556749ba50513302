"""Reading YAML: syntax errors, duplicate and non-string keys, the first key, plain values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.documents import DocumentError
from engine.documents.yaml_load import read_doc, to_plain


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def error_reading(text: str | bytes, expect: str | None = None) -> str:
    path = Path("doc.yaml")
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(DocumentError) as caught:
        read_doc(path, expect)
    assert "\n" not in caught.value.render()
    return caught.value.render()


def test_syntax_error_has_a_position() -> None:
    assert error_reading("kind: plan\nprojects: [a\n") == (
        "doc.yaml:3:1: YAML syntax error: expected ',' or ']', but got '<stream end>' (while "
        "parsing a flow sequence at line 2, column 11); fix the YAML syntax")


def test_tab_indentation_is_a_syntax_error() -> None:
    assert error_reading("kind: plan\nprojects:\n\t- a\n").startswith(
        "doc.yaml:3:1: YAML syntax error: ")


def test_duplicate_key() -> None:
    assert error_reading("kind: plan\nstore: a\nstore: b\n") == \
        "doc.yaml:3:1: duplicate key 'store'; remove or rename one of them"


def test_non_string_keys() -> None:
    assert error_reading("kind: cases\ncases:\n  - {name: a, 3: x}\n") == \
        "doc.yaml:3:15: key 3 is not a string; quote it: \"3\""
    assert error_reading("kind: cases\n? [a, b]\n: x\n") == \
        "doc.yaml:2:3: key [a, b] is not a string; quote it: \"[a, b]\""


def test_first_key_must_be_kind() -> None:
    assert error_reading("name: x\nkind: project\n") == \
        "doc.yaml:1:1: the first key must be 'kind', not 'name'; move 'kind:' to the first line"
    assert error_reading("name: x\n", "project") == \
        "doc.yaml:1:1: the first key must be 'kind', not 'name'; start it with 'kind: project'"


def test_unknown_and_unexpected_kinds() -> None:
    assert error_reading("kind: projet\n") == \
        "doc.yaml:1:7: unknown kind 'projet'; did you mean 'project'?"
    assert error_reading("kind: 3\n") == \
        "doc.yaml:1:7: unknown kind '3'; use one of cases, plan, project, targets"
    assert error_reading("kind: cases\n", "plan") == \
        "doc.yaml:1:7: expected a document of kind 'plan', found 'cases'; name a 'plan' " \
        "document here"


def test_empty_and_non_mapping_documents() -> None:
    assert error_reading("# nothing\n") == \
        "doc.yaml:1:1: empty document; start it with 'kind:' and one of cases, plan, " \
        "project, targets"
    assert error_reading("{}\n", "plan") == \
        "doc.yaml:1:1: empty document; start it with 'kind: plan'"
    assert error_reading("- kind: plan\n", "plan") == (
        "doc.yaml:1:1: a recipe document must be a mapping that starts with 'kind:'; "
        "start it with 'kind: plan'")


def test_unreadable_files() -> None:
    assert error_reading(b"kind: plan\nstore: \xff\n") == \
        "doc.yaml: not UTF-8 text (byte 18); save the file as UTF-8"
    with pytest.raises(DocumentError) as caught:
        read_doc(Path("missing.yaml"))
    assert caught.value.render() == "missing.yaml: no such file; check the path"
    Path("folder.yaml").mkdir()
    with pytest.raises(DocumentError, match="is a folder"):
        read_doc(Path("folder.yaml"))


def test_positions_of_keys_values_and_items() -> None:
    Path("doc.yaml").write_text("kind: project\nname: x\noutputs:\n  - {name: a, kind: b}\n")
    doc = read_doc(Path("doc.yaml"))
    assert str(doc.pos()) == "doc.yaml:1:1"
    assert str(doc.pos(["name"])) == "doc.yaml:2:7"
    assert str(doc.pos(["name"], key=True)) == "doc.yaml:2:1"
    assert str(doc.pos(["outputs", 0])) == "doc.yaml:4:5"
    assert str(doc.pos(["outputs", 0, "kind"])) == "doc.yaml:4:21"
    assert str(doc.pos(["outputs", 5, "kind"])) == "doc.yaml:4:3"  # as deep as it exists


def test_plain_values_have_no_ruamel_types() -> None:
    Path("doc.yaml").write_text("kind: plan\na: &x true\nb: *x\nc: 1.50\nd: [1, {e: 'f'}]\n")
    data = read_doc(Path("doc.yaml")).data
    assert data == {"kind": "plan", "a": True, "b": True, "c": 1.5, "d": [1, {"e": "f"}]}

    def types(value: object) -> set[type]:
        if isinstance(value, dict):
            return {dict}.union(*(types(v) for v in value.values()))
        if isinstance(value, list):
            return {list}.union(*(types(v) for v in value))
        return {type(value)}

    assert types(data) <= {dict, list, str, int, float, bool}
    assert to_plain(None) is None


YAML_ALPHABET = "kind: plan\n\t -[]{},:&*!|>'\"#%@`?\\0123456789abc\x00\x07\u00e9\ufeff"


@settings(max_examples=int(os.environ.get("RECIPE_FUZZ", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=YAML_ALPHABET, max_size=60))
def test_any_text_reads_or_fails_with_one_document_error(text: str) -> None:
    Path("doc.yaml").write_text(text, encoding="utf-8")
    try:
        read_doc(Path("doc.yaml"))
    except DocumentError as caught:
        assert "\n" not in caught.render() and caught.pos is not None


def test_control_characters() -> None:
    assert error_reading("kind: plan\nstore: a\x07b\n") == (
        "doc.yaml:2:9: character U+0007 is not allowed in YAML; remove it or write it as an "
        "escape in a double-quoted string")
