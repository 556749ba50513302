"""``kind: cases`` documents -> models.Case, with every path and function table checked."""

from __future__ import annotations

import math
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.documents.errors import DocumentError, did_you_mean
from engine.documents.models import Case, Expect, FileExpect, Output, Signature
from engine.documents.paths import Tree, check_relative
from engine.documents.patterns import BUILTINS, redaction_problem, unknown_placeholder
from engine.documents.schema import check_schema
from engine.documents.signals import SIGNALS
from engine.documents.signature import parse_signature
from engine.documents.values import rows_fit, spell, value_problem
from engine.documents.yaml_load import Doc, PathElem
from engine.errors import Pos, display_path

RECORD_FIX = "run recipe verify --update to record it"
_CONTROL = re.compile("[\x00-\x1f\x7f]")


@dataclass
class Context:
    """What every document of one load shares: the plan's files, and how strict to be."""

    tree: Tree
    allow_missing_goldens: bool = False


def load_cases_doc(doc: Doc, ctx: Context, *, outputs: tuple[Output, ...] | None = None,
                   seen: dict[str, Pos] | None = None, project_dir: Path | None = None
                   ) -> list[Case]:
    """The cases of ``doc``. ``outputs``: the project's, to check ``run:`` (None: unchecked).
    ``seen``: case names already used in the project, with the position of their name.
    ``project_dir``: how far up ``files: [{from: ...}]`` may reach (None: the file's folder)."""
    check_schema(doc)
    seen = {} if seen is None else seen
    shared = _redactions(doc, ["redact"], doc.data.get("redact", {}))
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
                    expect=_expect(doc, [*at, "expect"], raw.get("expect", {}), ctx), raw=raw,
                    xfail=raw.get("xfail"), **_skip(raw.get("skip")))
        case.newlines = raw.get("newlines", doc.data.get("newlines", "as-is"))
        if kind == "process":
            _process(doc, at, raw, case, ctx, outputs, project_dir or doc.file.parent)
        elif kind == "eval":
            case.code = raw["eval"]
        if "scratch_limit" in raw:
            case.scratch_limit = _size(doc, [*at, "scratch_limit"], raw["scratch_limit"])
        if kind == "function":
            _function(doc, at, raw, case, ctx)
        else:
            _patterns(doc, at, raw, case, shared)
        cases.append(case)
    return cases


def _skip(raw: str | dict[str, str] | None) -> dict[str, Any]:
    """``skip: reason`` skips everywhere; ``skip: {windows: reason}`` on some targets only."""
    if isinstance(raw, dict):
        return {"skip_on": dict(raw)}
    return {"skip": raw}


def _expect(doc: Doc, at: list[PathElem], raw: dict[str, Any], ctx: Context) -> Expect:
    expect = Expect(exit=raw.get("exit", 0))
    if "signal" in raw:
        expect.signal = _signal(doc, [*at, "signal"], raw["signal"])
    for stream in ("stdout", "stderr"):
        if stream in raw:
            setattr(expect, stream, raw[stream].encode("utf-8"))
        key = f"{stream}_file"
        if key in raw:
            path = ctx.tree.check_path(raw[key], doc.file.parent, doc.pos([*at, key]),
                                       must_exist=not ctx.allow_missing_goldens,
                                       missing_fix=RECORD_FIX)
            setattr(expect, key, path)
    if "files" in raw or "tree" in raw:
        _expect_files(doc, at, raw, ctx, expect)
    return expect


def _expect_files(doc: Doc, at: list[PathElem], raw: dict[str, Any], ctx: Context,
                  expect: Expect) -> None:
    """``files:`` (each path below the scratch working folder) and ``tree:``."""
    base = doc.file.parent
    for name, want in raw.get("files", {}).items():
        pos = doc.pos([*at, "files", name])
        rel = scratch_path(name)
        if rel is None:
            raise DocumentError(f"expect files: '{name}' is not inside the case's scratch folder",
                                "name a file below its working folder, such as out/result.txt "
                                "(no '..', not absolute)", pos=pos)
        if isinstance(want, str):
            expect.files[rel] = FileExpect(text=want.encode("utf-8"))
        elif "file" in want:
            path = ctx.tree.check_path(want["file"], base, doc.pos([*at, "files", name, "file"]),
                                       must_exist=not ctx.allow_missing_goldens,
                                       missing_fix=RECORD_FIX)
            expect.files[rel] = FileExpect(file=path)
        else:
            expect.files[rel] = FileExpect(absent=True)
    if "tree" in raw:
        expect.tree = ctx.tree.check_path(raw["tree"], base, doc.pos([*at, "tree"]),
                                          what="folder",
                                          must_exist=not ctx.allow_missing_goldens,
                                          missing_fix=RECORD_FIX)


def scratch_path(text: str) -> str | None:
    """``text`` as a normalised path below a scratch folder, or None when it is not one."""
    if text.startswith("/"):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _signal(doc: Doc, at: list[PathElem], value: str | int) -> int:
    """A signal name (``SIGSEGV``) or number (the schema bounds it) as its number."""
    if isinstance(value, int):
        return value
    if value in SIGNALS:
        return SIGNALS[value]
    hint = did_you_mean(value, list(SIGNALS)) or (
        f"did you mean '{value.upper()}'?" if value.upper() in SIGNALS else
        f"did you mean 'SIG{value.upper()}'?" if f"SIG{value.upper()}" in SIGNALS else None)
    raise DocumentError(f"unknown signal '{value}'", hint or "write a signal name such as "
                        "SIGSEGV, SIGABRT or SIGKILL, or its number", pos=doc.pos(at))


def _process(doc: Doc, at: list[PathElem], raw: dict[str, Any], case: Case, ctx: Context,
             outputs: tuple[Output, ...] | None, project_dir: Path) -> None:
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
        patterns = [(text, doc.pos([*at, "files", j])) for j, text in enumerate(raw["files"])
                    if isinstance(text, str)]
        if patterns:
            case.files = ctx.tree.expand(patterns, base)
        case.copies = _copies(doc, [*at, "files"], raw["files"], ctx, project_dir)
    case.timeout = _finite(doc, [*at, "timeout"], raw.get("timeout", 10.0))


def _redactions(doc: Doc, at: list[PathElem], raw: dict[str, str]) -> dict[str, str]:
    """Declared redactions, each name and expression checked."""
    for name, expression in raw.items():
        problem = redaction_problem(name, expression)
        if problem:
            raise DocumentError(*problem, pos=doc.pos([*at, name]))
    return dict(raw)


def _patterns(doc: Doc, at: list[PathElem], raw: dict[str, Any], case: Case,
              shared: dict[str, str]) -> None:
    """The case's redactions (the file's, then its own), and its inline expectations checked
    against them: a pattern may use only declared placeholders."""
    case.redact = {**shared, **_redactions(doc, [*at, "redact"], raw.get("redact", {}))}
    names = set(case.redact)
    inline = [(stream, getattr(case.expect, stream), [*at, "expect", stream])
              for stream in ("stdout", "stderr")]
    raw_files = raw.get("expect", {}).get("files", {})
    inline += [(f"file {name}", want.encode("utf-8"), [*at, "expect", "files", name])
               for name, want in raw_files.items() if isinstance(want, str)]
    for what, text, where in inline:
        found = unknown_placeholder(text, names) if text is not None else None
        if found:
            token, _ = found
            known = ", ".join([*sorted(names), *BUILTINS])
            raise DocumentError(
                f"unknown placeholder {token} in {what} (known here: {known})",
                f'declare it, e.g. redact: {{"{token}": "[0-9]+"}}, or match the text with [..]',
                pos=doc.pos(where))


def _copies(doc: Doc, at: list[PathElem], entries: list[Any], ctx: Context,
            project_dir: Path) -> tuple[tuple[str, str], ...]:
    """The ``{from, to}`` entries of ``files:``: each ``from`` an existing file or folder of
    the project, each ``to`` a distinct place inside the scratch folder."""
    base = doc.file.parent
    inside = Path(os.path.realpath(project_dir))
    up = Path(os.path.relpath(os.path.realpath(base), inside)).as_posix()  # cases folder
    copies: list[tuple[str, str]] = []
    places: dict[str, Pos] = {}
    for j, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        source, dest = entry["from"], entry["to"]
        pos_from, pos_to = doc.pos([*at, j, "from"]), doc.pos([*at, j, "to"])
        if _absolute(source):
            raise DocumentError(f"files: from '{source}' is absolute", "write it relative to "
                                "the cases file's folder, inside the project", pos=pos_from)
        rel = posixpath.normpath(posixpath.join(up, source))
        if rel == ".." or rel.startswith("../"):
            raise DocumentError(f"files: from '{source}' leaves the project's folder",
                                "name a file or folder of the project, relative to the cases "
                                "file's folder ('..' may climb up to the project's folder)",
                                pos=pos_from)
        if not os.path.exists(inside / rel):
            raise DocumentError(f"files: from '{source}' does not exist", "create it or fix "
                                f"the path (relative to {display_path(base)}/)", pos=pos_from)
        what = "folder" if os.path.isdir(inside / rel) else "file"
        rel = ctx.tree.check_path(rel, inside, pos_from, what=what, within=inside)
        if _CONTROL.search(dest) or _absolute(dest) or ".." in dest.replace("\\", "/").split("/"):
            raise DocumentError(f"files: to '{dest}' leaves the case's scratch folder",
                                "write a path inside it, such as data/input.txt", pos=pos_to)
        place = posixpath.normpath(check_relative(dest, pos_to))
        if place == "." and what == "file":
            raise DocumentError(f"files: to '{dest}' names the scratch folder itself, but "
                                f"'{source}' is a file", "give the file's name there, such as "
                                f"{posixpath.basename(rel)}", pos=pos_to)
        if place in places:
            raise DocumentError(f"files: to '{dest}' is already taken (at {places[place]})",
                                "give each entry its own destination", pos=pos_to)
        places[place] = pos_to
        copies.append((posixpath.relpath(rel, up) if up != "." else rel, place))
    return tuple(copies)


def _absolute(text: str) -> bool:
    return text.startswith(("/", "~", "\\")) or re.match(r"[A-Za-z]:[\\/]", text) is not None


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


_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_MAX_SIZE = 1 << 40


def _size(doc: Doc, at: list[PathElem], value: int | str) -> int:
    """Bytes, or a number and a unit (the schema checked the shape): at least 1, at most 1 TiB."""
    if isinstance(value, str):
        number, unit = re.fullmatch(r"([0-9]+) ?([A-Za-z]*)", value).groups()  # type: ignore[union-attr]
        value = int(number) * _UNITS[unit]
    if not 1 <= value <= _MAX_SIZE:
        raise DocumentError(f"'{at[-1]}' must be between 1 byte and 1TiB, not {value} bytes",
                            "write a size such as 64MiB, 1GiB or 1048576 (bytes)",
                            pos=doc.pos(at))
    return value


def _function(doc: Doc, at: list[PathElem], raw: dict[str, Any], case: Case,
              ctx: Context) -> None:
    signature = parse_signature(raw["function"], doc.pos([*at, "function"]))
    case.signature = signature
    case.tolerance = _finite(doc, [*at, "tolerance"], raw.get("tolerance", 0.0))
    case.timeout = _finite(doc, [*at, "timeout"], raw.get("timeout", 10.0))  # per row
    case.free = raw.get("free")
    if case.free is not None and signature.returns.kind not in ("json", "string"):
        raise DocumentError(f"free: '{case.free}' frees a returned string, but "
                            f"{signature.name}() returns {signature.returns.spelling}",
                            "drop free:", pos=doc.pos([*at, "free"]))
    table = raw.get("table", [])
    if not rows_fit(signature, table):
        _first_bad_row(doc, at, case, signature, table)
    case.table = [list(row) for row in table]
    if "rows" in raw:
        _rows_file(doc, at, raw["rows"], case, ctx)


def _first_bad_row(doc: Doc, at: list[PathElem], case: Case, signature: Signature,
                   table: list[Any]) -> None:
    """Raise the DocumentError of the first bad value of ``table`` (in reading order)."""
    want = len(signature.params) + 1
    for r, row in enumerate(table):
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
                                    f"write {spell(ctype)}",
                                    pos=doc.pos([*at, "table", r, c]))


def _rows_file(doc: Doc, at: list[PathElem], text: str, case: Case, ctx: Context) -> None:
    """The rows of ``rows:``, after those of ``table:``."""
    from engine.documents.data_rows import read_rows

    assert case.signature is not None
    pos = doc.pos([*at, "rows"])
    rel = ctx.tree.check_path(text, doc.file.parent, pos)
    rows, lines = read_rows(doc.file.parent / rel, text, case.signature, pos)
    case.rows_file = rel
    case.row_lines = [0] * len(case.table) + lines
    case.table += rows
