"""The shipped schemas, and schema violations turned into one placed, human line."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.documents import DocumentError, validate_file
from engine.documents.schema import check_schema, schema_json
from engine.documents.yaml_load import KINDS, read_doc

PROJECT = textwrap.dedent("""\
    kind: project
    name: wc
    version: "1.0"
    language: c
    sources: [src/*.c]
    outputs:
      - {name: wc, kind: executable}
    """)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def violation(text: str) -> str:
    Path("doc.yaml").write_text(textwrap.dedent(text))
    with pytest.raises(DocumentError) as caught:
        check_schema(read_doc(Path("doc.yaml")))
    return caught.value.render()


def project_with(old: str, new: str) -> str:
    assert old in PROJECT
    return violation(PROJECT.replace(old, new, 1))


def cases_with(case: str) -> str:
    return violation("kind: cases\ncases:\n" + textwrap.indent(textwrap.dedent(case), "  "))


@pytest.mark.parametrize("kind", KINDS)
def test_schemas_are_valid_draft_2020_12(kind: str) -> None:
    from jsonschema import Draft202012Validator

    schema = schema_json(kind)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("kind", KINDS)
def test_every_object_with_properties_closes_them(kind: str) -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert "additionalProperties" in node, f"{kind}: {where}"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schema_json(kind), "")


def test_valid_documents_pass() -> None:
    Path("doc.yaml").write_text(textwrap.dedent(PROJECT))
    check_schema(read_doc(Path("doc.yaml")))


def test_unknown_key_suggests_the_close_one() -> None:
    assert project_with("sources:", "sorces:") == \
        "doc.yaml:5:1: unknown key 'sorces' in project; did you mean 'sources'?"
    assert project_with("sources:", "zzz:").startswith(
        "doc.yaml:5:1: unknown key 'zzz' in project; allowed keys: kind, name, version, ")


def test_unknown_key_in_a_nested_mapping() -> None:
    assert project_with("kind: executable}", "kind: executable, sorces: [a]}") == \
        "doc.yaml:7:34: unknown key 'sorces' in output 'wc'; did you mean 'sources'?"


def test_version_as_a_number_must_be_quoted() -> None:
    assert project_with('version: "1.0"', "version: 1.0") == \
        "doc.yaml:3:10: 'version' must be a string, not the number 1.0; quote it: \"1.0\""
    assert project_with('version: "1.0"', "version: 2") == \
        "doc.yaml:3:10: 'version' must be a string, not the number 2; quote it: \"2\""


def test_enum_and_pattern_violations() -> None:
    assert project_with("language: c", "language: C") == \
        "doc.yaml:4:11: 'language' must be one of c, c++, rust, not 'C'; did you mean 'c'?"
    assert project_with("kind: executable", "kind: program") == (
        "doc.yaml:7:22: 'kind' of output 'wc' must be one of static-library, shared-library, "
        "executable, not 'program'; use one of these")
    assert project_with("name: wc", "name: Word_Count") == (
        "doc.yaml:2:7: invalid value 'Word_Count' for 'name'; use lowercase letters, digits, "
        "'.', '_' and '-', starting with a letter or digit")


def test_missing_required_key() -> None:
    assert project_with("language: c\n", "") == \
        "doc.yaml:1:1: missing key 'language' in project; add 'language:' (one of c, c++, rust)"
    assert project_with(", kind: executable}", "}") == (
        "doc.yaml:7:5: missing key 'kind' in output 'wc'; add 'kind:' (one of static-library, "
        "shared-library, executable)")


def test_invalid_mapping_keys() -> None:
    assert project_with("outputs:", "defines: {9LIVES: 1}\noutputs:") == (
        "doc.yaml:6:11: invalid key '9LIVES' in 'defines'; a define's name is a C identifier: "
        "letters, digits and '_', not starting with a digit")
    assert violation("kind: targets\nRelease: {opt: release}\n") == (
        "doc.yaml:2:1: invalid key 'Release' in targets file; use lowercase letters, digits, "
        "'.', '_' and '-', starting with a letter or digit")


def test_duplicates_in_a_list() -> None:
    assert project_with("outputs:", "depends: [a, b, a]\noutputs:") == \
        "doc.yaml:6:17: 'a' appears twice in 'depends'; remove the duplicate"


def test_toolchain_shapes() -> None:
    assert violation("kind: targets\nx: {toolchain: gcc}\n") == \
        "doc.yaml:2:16: 'toolchain' of target 'x' must be one of system, zig, not 'gcc'; " \
        "use one of these"
    assert violation("kind: targets\nx: {toolchain: {cc: a, rustcc: b}}\n") == \
        "doc.yaml:2:24: unknown key 'rustcc' in 'toolchain' of target 'x'; did you mean 'rustc'?"
    assert violation("kind: targets\nx: {toolchain: [zig]}\n") == (
        "doc.yaml:2:16: 'toolchain' of target 'x' must be 'system', 'zig' or a map "
        "{cc: ..., cxx: ..., rustc: ...}")


def test_case_shapes() -> None:
    assert cases_with("- {name: a, expect: {}}\n") == \
        "doc.yaml:3:5: case 'a' needs exactly one of 'run', 'eval' or 'function'"
    assert cases_with("- {name: a, evl: x, expect: {}}\n") == (
        "doc.yaml:3:5: case 'a' needs exactly one of 'run', 'eval' or 'function'; 'evl': did "
        "you mean 'eval'?")
    assert cases_with("- {name: a, run: x, eval: y, expect: {}}\n") == \
        "doc.yaml:3:5: case 'a' needs exactly one of 'run', 'eval' or 'function'"
    assert cases_with("- {name: a, run: x, stdin: a, stdin_file: b, expect: {}}\n") == \
        "doc.yaml:3:5: case 'a' has both 'stdin' and 'stdin_file'; keep one of them"
    assert cases_with("- {name: a, run: x}\n") == \
        "doc.yaml:3:5: missing key 'expect' in case 'a'; add 'expect:'"
    assert cases_with("- {name: a, function: int f(void), table: [[1]], expect: {}}\n") == (
        "doc.yaml:3:52: unknown key 'expect' in case 'a'; allowed keys: name, function, table, "
        "free, rows, tolerance, timeout, xfail, skip")
    assert cases_with("- {name: a, function: int f(void)}\n") == (
        "doc.yaml:3:5: case 'a' has no rows; add table: [[arguments..., expected], ...] or "
        "rows: FILE.csv (or .jsonl)")


def test_case_fields() -> None:
    assert cases_with("- {name: a, run: x, timeout: 0, expect: {}}\n") == \
        "doc.yaml:3:32: 'timeout' of case 'a' must be > 0, not 0"
    assert cases_with("- {name: a, run: x, args: [-n, 3], expect: {}}\n") == (
        "doc.yaml:3:34: item 2 of 'args' of case 'a' must be a string, not the number 3; "
        "quote it: \"3\"")
    assert cases_with("- {name: a, run: x, expect: {stdout: x, stdout_file: y}}\n") == \
        "doc.yaml:3:31: 'expect' of case 'a' has both 'stdout' and 'stdout_file'; keep one of them"
    assert cases_with("- {name: a, eval: x, expect: {exit: 256}}\n") == \
        "doc.yaml:3:39: 'expect.exit' of case 'a' must be <= 255, not 256"
    assert cases_with("- {name: a, function: f, table: [1]}\n") == \
        "doc.yaml:3:36: item 1 of 'table' of case 'a' must be a list, not the number 1; " \
        "write a list"
    assert cases_with("- {name: \"a\\nb\", eval: x, expect: {}}\n") == (
        "doc.yaml:3:12: invalid value 'a\\nb' for 'name' of case 'a\\nb'; write the name on "
        "one line, without tabs or control characters")


def test_the_first_error_in_document_order_is_reported() -> None:
    text = PROJECT.replace("language: c", "language: cobol").replace("sources:", "sorces:")
    assert violation(text).startswith("doc.yaml:4:11: 'language' must be one of")


def _property_names() -> list[str]:
    names: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for kind in KINDS:
        walk(schema_json(kind))
    return sorted(names | {"x", "Release", "9A"})


_KEYS = st.sampled_from(_property_names())
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=False)
    | st.sampled_from(["c", "rust", "c17", "executable", "int f(int a)", "src/*.c", "a\tb", ""]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12)


@settings(max_examples=int(os.environ.get("RECIPE_FUZZ", "200")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), body=st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_document_validates_or_fails_with_one_line(kind: str, body: dict[str, Any]) -> None:
    body.pop("kind", None)
    Path("doc.yaml").write_text(json.dumps({"kind": kind, **body}))  # JSON is YAML
    try:
        validate_file(Path("doc.yaml"))
    except DocumentError as caught:
        assert "\n" not in caught.render() and caught.pos is not None
