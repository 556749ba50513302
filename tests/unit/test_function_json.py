"""The ``json`` type of function cases (issue 15, point 4): an argument is the cell's value as
compact JSON, a result is parsed and compared structurally, a mismatch is a diff of
pretty-printed JSON, ``--update`` re-records it as a YAML value, and ``free:`` gives returned
strings back to the library."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from engine.documents.models import CType
from engine.verify.table import json_diff, same_json
from tests.conftest import run_recipe, write_tree

TREE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "tv/project.yaml": """
        kind: project
        name: tv
        version: 1.0.0
        language: c
        sources: [tv.c]
        outputs: [{name: tv, kind: shared-library}]
    """,
    # Echoes its arguments as {"args": ..., "name": ...}, in a fresh malloc'd string.
    "tv/tv.c": r"""
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        static int outstanding;
        char *tv_apply(const char *name, const char *args) {
            if (strcmp(name, "null") == 0) return NULL;
            size_t n = strlen(name) + strlen(args) + 32;
            char *out = malloc(n);
            if (strcmp(name, "bad") == 0) snprintf(out, n, "{not json");
            else snprintf(out, n, "{\"args\": %s, \"name\": \"%s\"}", args, name);
            outstanding++;
            return out;
        }
        void tv_free(char *p) { outstanding--; free(p); }
        int tv_outstanding(void) { return outstanding; }
    """,
    "tv/cases/json.yaml": """
        kind: cases
        cases:
          - name: applies
            function: json tv_apply(const char *name, json args)
            free: tv_free
            tolerance: 0.001
            table:
              - [sum, {b: [1, 2.0], a: true}, {name: sum, args: {a: true, b: [1.0, 2]}}]
              - [pi, 3.14159, {args: 3.1416, name: pi}]
              - ["null", [], null]
              - [text, "a \\"q\\"", {name: text, args: "a \\"q\\""}]
              - [wrong, {x: 1}, {name: wrong, args: {x: 2}}]
          - name: leaks without free
            function: json tv_apply(const char *name, json args)
            table: [[k, 1, {name: k, args: 1}]]
    """,
}


def test_json_results_compare_structurally_and_update_records_yaml(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    done = run_recipe("verify", src / "plan.yaml", "--store", store)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 failed" in done.stdout and "1 of 5 rows failed" in done.stdout
    assert 'row 5: tv_apply("wrong", {\'x\': 1}) returned other JSON than expected:' \
        in done.stdout
    assert '-    "x": 2\n+    "x": 1' in done.stdout
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "--update")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (src / "tv/cases/json.yaml").read_text()
    assert "{args: {x: 1}, name: wrong}]" in text, text  # a YAML value, not a JSON string
    rows = YAML(typ="safe").load(text)["cases"][0]["table"]
    assert rows[4] == ["wrong", {"x": 1}, {"args": {"x": 1}, "name": "wrong"}]
    assert rows[0] == ["sum", {"b": [1, 2.0], "a": True},  # passing rows stay as written
                       {"name": "sum", "args": {"a": True, "b": [1.0, 2]}}]
    assert run_recipe("verify", src / "plan.yaml", "--store", store).returncode == 0


def test_a_result_that_is_not_json_fails_its_row(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    cases = src / "tv/cases/json.yaml"
    cases.write_text(cases.read_text().replace("[wrong, {x: 1}", "[bad, {x: 1}"))
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store", "-k",
                      "applies")
    assert done.returncode == 1 and "+(not JSON) {not json" in done.stdout


def test_free_of_a_function_without_a_string_result_is_one_line_exit_2(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    write_tree(src, {"tv/cases/json.yaml": """
        kind: cases
        cases:
          - {name: counts, function: int tv_outstanding(), free: tv_free, table: [[0]]}
    """})
    done = run_recipe("verify", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "free: 'tv_free' frees a returned string, but tv_outstanding() returns int" \
        in done.stderr


def test_structural_json_equality() -> None:
    assert same_json({"a": [1, 2.0]}, {"a": [1.0, 2]}, 0)
    assert same_json(1.0, 1.0004, 0.001) and not same_json(1.0, 1.01, 0.001)
    assert not same_json(True, 1, 0) and not same_json({"a": 1}, {"a": 1, "b": 2}, 0)
    assert not same_json("1", 1, 0) and same_json(None, None, 0)
    assert json_diff({"b": 1, "a": 2}, b'{"a":2,"b":3}').splitlines()[-3:] == \
        ['-  "b": 1', '+  "b": 3', ' }']
    assert CType("json", "json").kind == "json"
