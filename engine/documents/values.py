"""Whether values written in a document can stand for a function's C arguments and result: the
checks a function case's ``table:`` (``engine.documents.cases``) and its ``rows:`` file
(``engine.documents.data_rows``) share."""

from __future__ import annotations

from typing import Any

from engine.documents.models import CType, Signature


def rows_fit(signature: Signature, rows: list[Any]) -> bool:
    """Whether every row has the signature's arity and fits its types: the quick check of a
    large table, column by column (``value_problem`` then says what is wrong, and where)."""
    types = (*signature.params, signature.returns)
    if any(type(row) is not list or len(row) != len(types) for row in rows):
        return False
    for c, ctype in enumerate(types):
        column = [row[c] for row in rows]
        kinds = set(map(type, column))  # C-speed passes: a million rows in a fraction of a second
        if ctype.kind == "int":
            lo, hi = int_range(ctype)
            ok = kinds <= {int} and (not column or lo <= min(column) and max(column) <= hi)
        elif ctype.kind == "float":
            ok = kinds <= {int, float}
        elif ctype.kind == "bool":
            ok = kinds <= {bool}
        elif ctype.kind == "string":
            ok = kinds <= {str, type(None)}
        else:
            ok = not any(value_problem(ctype, v) for v in column)
        if not ok:
            return False
    return True


def value_problem(ctype: CType, value: Any) -> str | None:
    """Why ``value`` cannot stand for a C value of ``ctype`` (None when it can)."""
    shown = repr(value) if not isinstance(value, bool) else str(value).lower()
    if ctype.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"is {shown}, not an integer"
        lo, hi = int_range(ctype)
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


def int_range(ctype: CType) -> tuple[int, int]:
    if ctype.signed:
        return -(1 << (ctype.bits - 1)), (1 << (ctype.bits - 1)) - 1
    return 0, (1 << ctype.bits) - 1


def spell(ctype: CType) -> str:
    return {"int": f"an integer that fits {ctype.spelling}", "float": "a number",
            "bool": "true or false", "char": "a one-character string such as 'a'",
            "string": "a string (or null for NULL)", "void": "null (~)",
            "json": "any value"}[ctype.kind]

