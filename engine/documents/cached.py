"""A loaded plan, kept against the stat data of everything loading it looked at.

Loading a plan parses YAML (ruamel.yaml) and validates it (jsonschema): about 0.3 s, most of a
no-op run. The loaded ``Plan`` is pickled to ``.recipe/cache/plan-<key>.pickle`` beside the plan
with the stat data (mode, size, mtime, ctime, inode) of every document read, folder listed and
path checked, and of recipe's own loader and schemas. The next run trusts it when all of them
are unchanged: the documents are not read again, and neither library is imported.

As in git's index, an entry changed within the clock's resolution of when it was recorded could
keep its stat data ("racily clean"): such a cache is not trusted, and the plan is loaded again.
A cache that cannot be read or written is simply not used.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import user_cache, watch

if TYPE_CHECKING:
    from engine.documents.models import Plan

FORMAT = 2  # 2: Pos is a named tuple
RACY_NS = 2_000_000_000
_CODE = Path(__file__).parent  # the loader: its modules, and the schemas beside the package


def load_plan(path: Path, *, allow_missing_goldens: bool = False) -> Plan:
    """``engine.documents.load.load_plan``, from the cache when nothing it read has changed."""
    plan_file = os.path.abspath(path)
    key = hashlib.sha256(f"{FORMAT}\0{plan_file}\0{allow_missing_goldens}".encode()).hexdigest()
    cache = Path(plan_file).parent / ".recipe" / "cache" / f"plan-{key[:32]}.pickle"
    plan = _read(cache)
    if plan is not None:
        return plan
    from engine.documents.load import load_plan as load

    with watch.recording() as seen:
        for file in _code_files():
            watch.seen(file)
        plan = load(Path(path), allow_missing_goldens=allow_missing_goldens)
    _write(cache, plan, seen)
    return plan


def _code_files() -> list[str]:
    from importlib.resources import files

    schemas = files("engine.schema")
    return [*(str(_CODE / n) for n in sorted(os.listdir(_CODE)) if n.endswith(".py")),
            *(str(s) for s in schemas.iterdir() if s.name.endswith(".json"))]


def _read(cache: Path) -> Plan | None:
    collecting = gc.isenabled()
    gc.disable()  # a plan with a million-row table is millions of lists: no collection meanwhile
    try:
        with open(cache, "rb") as f:
            record: dict[str, Any] = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            ValueError, TypeError):
        return None
    finally:
        if collecting:
            gc.enable()
    try:
        if record["format"] != FORMAT or \
                not watch.unchanged(record["seen"], record["stamp"], RACY_NS):
            return None
        watch.merge(record["seen"])  # a no-op realise remembered later depends on them too
        return record["plan"]
    except (KeyError, TypeError, AttributeError, IndexError):
        return None


def _write(cache: Path, plan: Plan, seen: dict[str, watch.Stat]) -> None:
    record = {"format": FORMAT, "stamp": time.time_ns(), "seen": seen, "plan": plan}
    try:
        data = pickle.dumps(record, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        return
    user_cache.write_cache(cache, data)  # a cache: losing it costs only time
