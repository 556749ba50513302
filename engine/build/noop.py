"""A realise that has nothing to do, answered from memory (as Nix answers from its eval cache).

After a realise succeeds, ``remember`` writes ``.recipe/cache/noop-<key>.marshal`` beside the
plan. ``<key>`` covers the request (every argument, the working folder, ``PATH``,
``$RECIPE_STORE``, the Python that runs recipe); the record holds the stat data of everything the
run depended on (see ``engine.watch``: documents, folders listed, sources hashed, compilers and
the folders searched for them, recipe's own modules), the store, the closure of store path names,
the roots the realise set, and what a no-op prints.

``answer`` gives that output back when every stat is unchanged and the store still holds the
whole closure valid and the roots in place (``engine.store.peek``, which adds temporary roots
before it checks, as a realise does). Then no document is read, nothing is derived, and neither
the loader nor the builder is imported. Anything else, a damaged record included, is a miss:
the full realise runs and explains what changed.

A record is written only when nothing it relies on changed within ``RACY_NS`` of the start of
the run: a change made after the run read a file then always shows as a change of its stat data
(git's "racily clean" entries). So the run after an edit is a full one, the next is remembered.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import sys
from pathlib import Path

from engine import watch
from engine.store import peek

FORMAT = 1
RACY_NS = 2_000_000_000
Request = tuple[tuple[str, object], ...]


def _file(plan: str | os.PathLike[str], request: Request) -> Path:
    plan_file = os.path.abspath(plan)
    # repr, not marshal: marshal's bytes depend on reference counts
    key = repr((FORMAT, sys.version, sys.executable, os.getcwd(), plan_file,
                os.environ.get("PATH"), os.environ.get("RECIPE_STORE"), request))
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return Path(plan_file).parent / ".recipe" / "cache" / f"noop-{digest}.marshal"


def answer(plan: str | os.PathLike[str], request: Request) -> str | None:
    """What the remembered no-op printed, if it still holds; None otherwise."""
    try:
        with open(_file(plan, request), "rb") as f:
            record = marshal.load(f)
        if record["format"] != FORMAT or record["request"] != request:
            return None
        if not watch.unchanged(record["seen"], record["started"], RACY_NS):
            return None
        if not peek.hold_valid(Path(record["store"]), record["closure"], record["roots"]):
            return None
        return str(record["output"])
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


def remember(plan: str | os.PathLike[str], request: Request, started_ns: int,
             seen: dict[str, watch.Stat], store: Path, closure: list[str],
             roots: dict[str, str], output: str) -> bool:
    """Record a realise that succeeded; whether the record was written. ``seen`` is what the
    run recorded, ``started_ns`` the time before it read anything."""
    seen = dict(seen)
    for module in list(sys.modules.values()):  # the code that computed the answer
        if module.__name__.startswith("engine") and getattr(module, "__file__", None):
            seen.setdefault(os.path.abspath(module.__file__), watch.stat_of(module.__file__))
    if not watch.unchanged(seen, started_ns, RACY_NS):
        return False  # something changed during the run, or too recently to tell
    record = {"format": FORMAT, "request": request, "started": started_ns, "seen": seen,
              "store": str(store), "closure": list(closure), "roots": dict(roots),
              "output": output}
    file = _file(plan, request)
    temp = file.with_name(f".{file.name}.{os.getpid()}")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(temp, "wb") as f:
            marshal.dump(record, f)
        os.replace(temp, file)
    except (OSError, ValueError):
        temp.unlink(missing_ok=True)  # a cache: losing it costs only time
        return False
    return True
