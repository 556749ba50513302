"""``kind: cases`` documents -> models.Case, with every path and function table checked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from engine.documents.errors import DocumentError, did_you_mean
from engine.documents.models import Case, CType, Expect, Output
from engine.documents.paths import Tree
from engine.documents.schema import check_schema
from engine.documents.signature import parse_signature
from engine.documents.yaml_load import Doc, PathElem
from engine.errors import Pos

RECORD_FIX = "run recipe verify --update to record it"


@dataclass
class Context:
    """What every document of one load shares: the plan's files, and how strict to be."""

    tree: Tree
    allow_missing_goldens: bool = False


def load_cases_doc(doc: Doc, ctx: Context, *, outputs: tuple[Output, ...] | None = None,
                   seen: dict[str, Pos] | None = None) -> list[Case]:
    """The cases of ``doc``. ``outputs``: the project's, to check ``run:`` (None: unchecked).
    ``seen``: case names already used in the project, with the position of their name."""
    check_schema(doc)
    seen = {} if seen is None else seen
    cases = []
    for i, raw in enumerate(doc.data["cases"]):
        at: list[PathElem] = ["cases", i]
        name = raw["name"]
        name_pos = doc.pos([*at, "name"])
        if name in seen:
            raise DocumentError(f"duplicate case name '{name}' (first at {seen[name]})",
                                "give every case of a project its own name", pos=name_pos)
        seen[name] = name_pos
        kind = "process" if "run" in raw else "eval" if "eval" in raw else "function"
        case = Case(name=name, kind=kind, file=doc.file, index=i, pos=doc.pos(at),
                    expect=_expect(doc, [*at, "expect"], raw.get("expect", {}), ctx), raw=raw)
        if kind == "process":
            _process(doc, at, raw, case, ctx, outputs)
        elif kind == "eval":
            case.code = raw["eval"]
        else:
            _function(doc, at, raw, case)
        cases.append(case)
    return cases


def _expect(doc: Doc, at: list[PathElem], raw: dict[str, Any], ctx: Context) -> Expect:
    expect = Expect(exit=raw.get("exit", 0))
    for stream in ("stdout", "stderr"):
        if stream in raw:
            setattr(expect, stream, raw[stream].encode("utf-8"))
        key = f"{stream}_file"
        if key in raw:
            path = ctx.tree.check_path(raw[key], doc.file.parent, doc.pos([*at, key]),
                                       must_exist=not ctx.allow_missing_goldens,
                                       missing_fix=RECORD_FIX)
            setattr(expect, key, path)
    return expect


def _process(doc: Doc, at: list[PathElem], raw: dict[str, Any], case: Case, ctx: Context,
             outputs: tuple[Output, ...] | None) -> None:
    base = doc.file.parent
    case.run = raw["run"]
    if outputs is not None:
        _check_run(raw["run"], outputs, doc.pos([*at, "run"]))
    case.args = tuple(raw.get("args", ()))
    if "stdin" in raw:
        case.stdin = raw["stdin"].encode("utf-8")
    if "stdin_file" in raw:
        case.stdin_file = ctx.tree.check_path(raw["stdin_file"], base,
                                              doc.pos([*at, "stdin_file"]))
    case.env = dict(raw.get("env", {}))
    if "files" in raw:
        patterns = [(text, doc.pos([*at, "files", j])) for j, text in enumerate(raw["files"])]
        case.files = ctx.tree.expand(patterns, base)
    case.timeout = _finite(doc, [*at, "timeout"], raw.get("timeout", 10.0))


def _check_run(run: str, outputs: tuple[Output, ...], pos: Pos) -> None:
    executables = [o.name for o in outputs if o.kind == "executable"]
    if run in executables:
        return
    other = next((o for o in outputs if o.name == run), None)
    if other is not None:
        raise DocumentError(f"run: '{run}' is a {other.kind}, not an executable",
                            "name an executable output of the project", pos=pos)
    fix = did_you_mean(run, executables) or (
        f"name one of the project's executables: {', '.join(executables)}" if executables
        else "add an output of kind executable to the project")
    raise DocumentError(f"run: '{run}' is not an executable output of the project", fix,
                        pos=pos)


def _finite(doc: Doc, at: list[PathElem], value: float) -> float:
    """The schema's bounds let NaN through (every comparison with it is false)."""
    if not math.isfinite(value):
        raise DocumentError(f"'{at[-1]}' must be a finite number, not {value}",
                            "write a number such as 5 or 0.5", pos=doc.pos(at))
    return float(value)


def _function(doc: Doc, at: list[PathElem], raw: dict[str, Any], case: Case) -> None:
    signature = parse_signature(raw["function"], doc.pos([*at, "function"]))
    case.signature = signature
    case.tolerance = _finite(doc, [*at, "tolerance"], raw.get("tolerance", 0.0))
    case.timeout = _finite(doc, [*at, "timeout"], raw.get("timeout", 10.0))  # per row
    case.free = raw.get("free")
    if case.free is not None and signature.returns.kind not in ("json", "string"):
        raise DocumentError(f"free: '{case.free}' frees a returned string, but "
                            f"{signature.name}() returns {signature.returns.spelling}",
                            "drop free:", pos=doc.pos([*at, "free"]))
    want = len(signature.params) + 1
    for r, row in enumerate(raw["table"]):
        if len(row) != want:
            needs = (f"{want - 1} argument{'s' if want != 2 else ''} and the expected result"
                     if want > 1 else "only the expected result")
            raise DocumentError(
                f"row {r + 1} of case '{case.name}' has {len(row)} value"
                f"{'s' if len(row) != 1 else ''}, but {signature.name}() needs {want}",
                f"write [{', '.join(['arg'] * (want - 1) + ['expected'])}] ({needs})",
                pos=doc.pos([*at, "table", r]))
        for c, (ctype, value) in enumerate(zip((*signature.params, signature.returns), row,
                                               strict=True)):
            problem = value_problem(ctype, value)
            if problem:
                role = "the expected result" if c == want - 1 else f"argument {c + 1}"
                raise DocumentError(f"{role} of row {r + 1} {problem}",
                                    f"write {_spell(ctype)}",
                                    pos=doc.pos([*at, "table", r, c]))
    case.table = [list(row) for row in raw["table"]]


def value_problem(ctype: CType, value: Any) -> str | None:
    """Why ``value`` cannot stand for a C value of ``ctype`` (None when it can)."""
    shown = repr(value) if not isinstance(value, bool) else str(value).lower()
    if ctype.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"is {shown}, not an integer"
        lo, hi = _int_range(ctype)
        if not lo <= value <= hi:
            return f"is {value}, which does not fit {ctype.spelling} ({lo}..{hi})"
    elif ctype.kind == "float":
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"is {shown}, not a number"
    elif ctype.kind == "bool" and not isinstance(value, bool):
        return f"is {shown}, not true or false"
    elif ctype.kind == "char":
        ok = (isinstance(value, str) and len(value.encode("utf-8")) == 1) or (
            isinstance(value, int) and not isinstance(value, bool) and -128 <= value <= 127)
        if not ok:
            return f"is {shown}, not a single ASCII character"
    elif ctype.kind == "string" and value is not None and not isinstance(value, str):
        return f"is {shown}, not a string"
    elif ctype.kind == "json":
        return None  # any value a document can hold is JSON
    elif ctype.kind == "void" and value is not None:
        return f"is {shown}, but the function returns void"
    return None


def _int_range(ctype: CType) -> tuple[int, int]:
    if ctype.signed:
        return -(1 << (ctype.bits - 1)), (1 << (ctype.bits - 1)) - 1
    return 0, (1 << ctype.bits) - 1


def _spell(ctype: CType) -> str:
    return {"int": f"an integer that fits {ctype.spelling}", "float": "a number",
            "bool": "true or false", "char": "a one-character string such as 'a'",
            "string": "a string (or null for NULL)", "void": "null (~)",
            "json": "any value"}[ctype.kind]

