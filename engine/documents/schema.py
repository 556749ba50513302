"""Schema validation of a document, with one error a human understands, placed at its node.

The schemas live in ``schema/`` (package ``engine.schema``). Besides standard keywords they carry
two annotations that only this module reads: ``x-message`` (the sentence for a failing
``oneOf``/``anyOf``/``not``, with ``{label}`` standing for the node) and ``x-fix`` (how to fix a
failing ``pattern``).

A document that passed is remembered (``schema_passed``), so a fresh clone of the same plan
neither imports jsonschema nor validates it again.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from engine.documents import schema_passed as passed
from engine.documents.errors import DocumentError, did_you_mean
from engine.documents.yaml_load import KINDS, Doc, PathElem
from engine.errors import Pos

_ROOT_LABEL = {"project": "project", "plan": "plan", "cases": "cases file",
               "targets": "targets file"}
_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "array": "a list", "object": "a mapping",
               "null": "empty"}
# Errors at the same position: the specific ones first, the combinators last.
_PRIORITY = {"required": 1, "oneOf": 2, "anyOf": 2, "not": 2}


def schema_json(kind: str) -> dict[str, Any]:
    """The JSON Schema of a document kind, as shipped in ``engine.schema``."""
    return json.loads(files("engine.schema").joinpath(f"{kind}.schema.json").read_text("utf-8"))


@functools.cache
def _validator(kind: str) -> Any:
    import referencing
    from jsonschema import Draft202012Validator, validators
    from referencing.jsonschema import DRAFT202012

    # Schemas refer to each other by file name (plan -> targets.schema.json#/$defs/target),
    # which also works for editors that load them from disk.
    registry = referencing.Registry().with_resources(
        (f"{k}.schema.json", DRAFT202012.create_resource(schema_json(k))) for k in KINDS)
    checker = validators.extend(Draft202012Validator, {"pattern": _pattern,
                                                       "uniqueItems": _unique_items})
    return checker(schema_json(kind), registry=registry)


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    """``pattern`` as JSON Schema means it (ECMA-262), where ``$`` is the end of the text.
    Python's ``$`` also matches before a final newline: ``name: "app\\n"`` would pass."""
    from jsonschema.exceptions import ValidationError

    if isinstance(instance, str) and not _ecma(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@functools.cache
def _ecma(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern))


def _unique_items(validator: Any, unique: bool, instance: Any, schema: Any) -> Any:
    """``uniqueItems`` in linear time (jsonschema compares every pair of a mixed list)."""
    from jsonschema.exceptions import ValidationError

    if unique and isinstance(instance, list) and _second_occurrence(instance) is not None:
        yield ValidationError("has non-unique elements")


def _same_key(value: Any) -> str:
    """Equal under JSON Schema's equality <=> equal keys: 1 == 1.0, but true != 1."""
    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v if isinstance(v, bool | int | float | str | None) else repr(v)

    return json.dumps(norm(value), sort_keys=True)


def check_schema(doc: Doc) -> None:
    """Raise a DocumentError for the first schema violation of ``doc`` (in document order)."""
    data = _without_tables(doc)
    key = passed.key(doc.kind, data)
    if key is not None and passed.known(key):
        return
    errors = list(_validator(doc.kind).iter_errors(data))
    if errors:
        raise _Explain(doc).error(_first(errors, doc))
    if key is not None:
        passed.remember(key)


def _without_tables(doc: Doc) -> Any:
    """``doc.data`` with every well-formed function table (a list of non-empty lists) replaced
    by one row: the schema says nothing more of a table, the rows' values are checked against
    the prototype later (``cases.rows_fit``), and jsonschema takes seconds over 25,000 rows.
    The same errors come out, at the same paths."""
    data = doc.data
    if doc.kind != "cases" or type(data.get("cases")) is not list:
        return data
    cases = list(data["cases"])
    for i, case in enumerate(cases):
        if type(case) is dict and "function" in case and "run" not in case and \
                "eval" not in case and type(case.get("table")) is list and case["table"] and \
                all(type(row) is list and row for row in case["table"]):
            cases[i] = {**case, "table": [[None]]}
    return {**data, "cases": cases}


def _first(errors: Sequence[Any], doc: Doc) -> Any:
    """The error to report: the earliest in the document, the most specific at a position."""
    specific = [_specific(e) for e in errors]

    def order(e: Any) -> tuple[int, int, int]:
        path, key = _where(e)
        pos = doc.pos(path, key=key)
        return (pos.line, pos.col, _PRIORITY.get(e.validator, 0))

    return min(specific, key=order)


def _specific(error: Any) -> Any:
    """Descend a failing oneOf/anyOf into the branch the instance was meant for, when one is."""
    if error.validator not in ("oneOf", "anyOf") or not error.context:
        return error
    fitting = [i for i, branch in enumerate(error.validator_value)
               if _fits_type(branch, error.instance)]
    if len(fitting) == 1:
        sub = [e for e in error.context if e.relative_schema_path[0] == fitting[0]]
        if sub:
            return min((_specific(e) for e in sub), key=lambda e: _PRIORITY.get(e.validator, 0))
    if "x-message" in error.schema:
        return error
    from jsonschema.exceptions import best_match

    return _specific(best_match(error.context))


def _fits_type(branch: Any, instance: Any) -> bool:
    if not isinstance(branch, dict) or "type" not in branch:
        return True
    types = branch["type"] if isinstance(branch["type"], list) else [branch["type"]]
    return _json_type(instance) in types or (
        "number" in types and _json_type(instance) == "integer")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    for python, name in ((int, "integer"), (float, "number"), (str, "string"),
                         (list, "array"), (dict, "object")):
        if isinstance(value, python):
            return name
    return type(value).__name__


def _where(error: Any) -> tuple[list[PathElem], bool]:
    """The path of the node to point at, and whether to point at its key."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        extra = _extras(error)
        if extra:
            return [*path, extra[0]], True
    if "propertyNames" in error.relative_schema_path and isinstance(error.instance, str):
        return [*path, error.instance], True
    if error.validator == "uniqueItems" and isinstance(error.instance, list):
        return [*path, _second_occurrence(error.instance) or 0], False
    return path, False


def _extras(error: Any) -> list[str]:
    allowed = error.schema.get("properties", {})
    patterns = [re.compile(p) for p in error.schema.get("patternProperties", {})]
    return [k for k in error.instance
            if k not in allowed and not any(p.search(k) for p in patterns)]


def _misspelt_required(error: Any) -> str | None:
    """For "needs one of 'run', 'eval', 'function'": the written key that looks like one."""
    wanted = [k for branch in error.validator_value if isinstance(branch, dict)
              for k in branch.get("required", ())]
    if isinstance(error.instance, dict):
        for key in error.instance:
            hint = did_you_mean(key, wanted) if key not in wanted else None
            if hint:
                return f"'{key}': {hint}"
    return None


def _second_occurrence(items: list[Any]) -> int | None:
    """The index of the first item equal to an earlier one, or None."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        key = _same_key(item)
        if key in seen:
            return i
        seen.add(key)
    return None


class _Explain:
    """Turns one jsonschema error into the what, the fix and the position of a DocumentError."""

    def __init__(self, doc: Doc) -> None:
        self.doc = doc

    def error(self, error: Any) -> DocumentError:
        path, key = _where(error)
        pos = self.doc.pos(path, key=key)
        what, fix = self._explain(error, list(error.absolute_path), pos)
        return DocumentError(what, fix, pos=pos)

    def _explain(self, e: Any, path: list[PathElem], pos: Pos) -> tuple[str, str | None]:
        label, v, inst, schema = self.label(path), e.validator, e.instance, e.schema
        if "propertyNames" in e.relative_schema_path and isinstance(inst, str):
            return f"invalid key '{inst}' in {label}", schema.get("x-fix")
        if "x-message" in schema and v in ("oneOf", "anyOf", "not"):
            return schema["x-message"].replace("{label}", label), \
                schema.get("x-fix") or _misspelt_required(e)
        if v == "additionalProperties":
            extra, allowed = _extras(e)[0], list(schema.get("properties", {}))
            fix = did_you_mean(extra, allowed) or f"allowed keys: {', '.join(allowed)}"
            return f"unknown key '{extra}' in {label}", fix
        if v == "required":
            missing = next(k for k in e.validator_value if k not in inst)
            choices = schema.get("properties", {}).get(missing, {}).get("enum")
            fix = f"add '{missing}:'" + (f" (one of {_choices(choices)})" if choices else "")
            return f"missing key '{missing}' in {label}", fix
        if v == "type":
            return self._type(e, label, pos)
        if v == "enum":
            words = [str(c) for c in e.validator_value]
            fix = (did_you_mean(str(inst), words) if isinstance(inst, str) else None) or \
                f"use one of {_choices(e.validator_value)}"
            return f"{label} must be one of {_choices(e.validator_value)}, not {_show(inst)}", \
                fix.replace(f"use one of {_choices(e.validator_value)}", "use one of these")
        if v == "const":
            return f"{label} must be {_show(e.validator_value)}, not {_show(inst)}", None
        if v == "pattern":
            return f"invalid value {_show(inst)} for {label}", schema.get("x-fix")
        if v in ("minItems", "minLength", "minProperties") and e.validator_value == 1:
            return f"{label} must not be empty", "remove it or give it a value"
        if v == "maxLength" and isinstance(inst, str):
            return f"{label} is too long ({len(inst)} characters, at most " \
                f"{e.validator_value})", "shorten it"
        if v == "uniqueItems":
            dup = inst[_second_occurrence(inst) or 0]
            return f"{_show(dup)} appears twice in {label}", "remove the duplicate"
        bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">",
                  "exclusiveMaximum": "<"}
        if v in bounds:
            return f"{label} must be {bounds[v]} {e.validator_value}, not {_show(inst)}", None
        return f"{label}: {e.message}", None

    def _type(self, e: Any, label: str, pos: Pos) -> tuple[str, str | None]:
        expected = e.validator_value if isinstance(e.validator_value, list) else [e.validator_value]
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in expected)
        inst = e.instance
        what = f"{label} must be {words}, not {_describe(inst)}"
        if "string" in expected and not isinstance(inst, dict | list | None):  # 1.0, 2024-01-01
            token = self.doc.token_at(pos) or _show(inst)
            return what, f'quote it: "{token}"'
        return what, f"write {words}"

    def label(self, path: Sequence[PathElem]) -> str:
        """A phrase for the node at ``path``: "project", "output 'wc'", "'args' of case 'x'"."""
        named_at, named = 0, _ROOT_LABEL[self.doc.kind]
        for j in range(1, len(path) + 1):
            phrase = self._named(path[:j])
            if phrase:
                named_at, named = j, phrase
        if named_at == len(path):
            return named
        rest, last = path[named_at:], path[-1]
        if isinstance(last, int):
            base = f"item {last + 1}" + (f" of '{_dotted(rest[:-1])}'" if rest[:-1] else "")
        else:
            base = f"'{_dotted(rest)}'"
        return base if named_at == 0 else f"{base} of {named}"

    def _named(self, path: Sequence[PathElem]) -> str | None:
        kind, data = self.doc.kind, self.doc.data
        node: Any = data
        for elem in path:
            try:
                node = node[elem]
            except (KeyError, IndexError, TypeError):
                return None
        name = node.get("name") if isinstance(node, dict) else None
        name_text = f"'{name}'" if isinstance(name, str) else None
        if kind == "cases" and len(path) == 2 and path[0] == "cases":
            return f"case {name_text or path[1] + 1}"
        if kind == "project" and len(path) == 2 and path[0] == "outputs":
            return f"output {name_text or path[1] + 1}"
        if kind == "plan" and len(path) == 2 and path[0] == "targets":
            return f"target '{path[1]}'"
        if kind == "targets" and len(path) == 1:
            return f"target '{path[0]}'"
        return None


def _dotted(path: Sequence[PathElem]) -> str:
    text = ""
    for elem in path:
        text += f"[{elem}]" if isinstance(elem, int) else (f".{elem}" if text else elem)
    return text


def _choices(values: Sequence[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def _describe(value: Any) -> str:
    kind = _json_type(value)
    if kind in ("integer", "number"):
        return f"the number {value}"
    if kind == "boolean":
        return f"the boolean {_show(value)}"
    if kind == "null":
        return "empty"
    if kind in ("string", "array", "object"):
        return _TYPE_WORDS[kind]
    return f"a {kind}"
