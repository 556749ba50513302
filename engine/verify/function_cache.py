"""The outcome cache of function cases: what every row returned (not the verdict), as an action
of the store's action cache, so that a run with nothing changed calls nothing.

Key: sha256 (hex) of the canonical JSON of::

    {"v": 1, "kind": "function-case", "marshal": <marshal.version>,
     "library": <basename of the store path of the shared library (the Python worker), or
                 "harness:" and the key of the table harness (engine.verify.harness)>,
     "on": <the runner's name and arguments, when a runner runs the harness (absent: none)>,
     "case": <the case as written, without "name", "expect", "xfail" and "skip">,
     "inputs": {<rows: file>: <sha256 hex of its content>}}

Result: ``{"values": <blob digest: the rows' results, marshalled>, "problems": {row: why}}``.
A run in which a row timed out is never cached (as a process case that timed out is not).
"""

from __future__ import annotations

import marshal

from engine import watch
from engine.documents.models import Case
from engine.errors import RecipeError
from engine.hashing import canonical_hash, file_digest
from engine.verify.cache import ActionCache, found
from engine.verify.table import Results

VERSION = 1


def rows_key(case: Case, library: str, on: tuple[str, ...] = ()) -> str | None:
    """The key of the case's run against ``library`` (a store path name, or ``harness:KEY``),
    run by the runner ``on`` (None: not cacheable)."""
    raw = {k: v for k, v in case.raw.items() if k not in ("name", "expect", "xfail", "skip")}
    inputs = {}
    if case.rows_file is not None:
        watch.seen(case.folder / case.rows_file)
        try:
            inputs[case.rows_file] = file_digest(case.folder / case.rows_file)
        except OSError:
            return None
    return canonical_hash({"v": VERSION, "kind": "function-case", "marshal": marshal.version,
                           "library": library, "case": raw, "inputs": inputs,
                           **({"on": list(on)} if on else {})})


def lookup_rows(store: ActionCache, key: str) -> Results | None:
    """The cached results, or None; a damaged or collected entry is simply a miss."""
    try:
        result = store.get_action(key)
        if result is None:
            return None
        values = marshal.loads(store.read_blob(result["values"]))
        problems = {int(k): str(v) for k, v in result["problems"].items()}
        if not isinstance(values, list):
            return None
        found(key, result, [result["values"]])
        return Results(values, problems)
    except (RecipeError, OSError, KeyError, TypeError, ValueError, EOFError, AttributeError):
        return None


def record_rows(store: ActionCache, key: str, rows: Results, owner: str) -> None:
    """Cache what the rows returned; the store path ``owner`` (the library's) keeps it."""
    if any(why.startswith("timed out") for why in rows.problems.values()):
        return
    try:
        data = marshal.dumps(rows.values)
    except ValueError:  # a value marshal cannot hold: run it again next time
        return
    store.put_action(key, {"values": store.put_blob(data),
                           "problems": {str(k): v for k, v in rows.problems.items()}})
    store.attach(owner, actions=[key])
