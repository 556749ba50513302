"""Helpers shared by the command modules: finding the store, loading the plan, printing JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.errors import UsageError


def store_dir(args: argparse.Namespace, plan_file: Path | None = None,
              plan_store: Path | None = None) -> Path:
    """``--store`` > ``$RECIPE_STORE`` > the plan's ``store:`` > ``store`` beside the plan."""
    if getattr(args, "store", None):
        return Path(args.store).absolute()
    if os.environ.get("RECIPE_STORE"):
        return Path(os.environ["RECIPE_STORE"]).absolute()
    if plan_store is not None:
        return plan_store
    if plan_file is not None:
        return plan_file.absolute().parent / "store"
    raise UsageError("no store given", "pass --store DIR or set RECIPE_STORE")


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def print_json(data: Any) -> None:
    sys.stdout.write(json_text(data))


def open_plan_and_store(args: argparse.Namespace,
                        before_store: Callable[[Any], None] | None = None) -> tuple[Any, Any]:
    """Load ``args.plan``, check the targets and projects asked for, and open the plan's store
    (created when missing) — in that order, so that a wrong input writes nothing."""
    from engine.derive.derivation import check_selection
    from engine.documents.cached import load_plan
    from engine.store import Store

    plan = load_plan(Path(args.plan), allow_missing_goldens=getattr(args, "update", False))
    targets = getattr(args, "target", None) or list(plan.default_targets)
    check_selection(plan, targets, getattr(args, "project", None),
                    plan.file.parent / ".recipe" / "cache")
    if getattr(args, "jobs", None) is not None and args.jobs < 1:
        raise UsageError(f"-j {args.jobs} is not a number of jobs", "pass -j 1 or more")
    if before_store:
        before_store(plan)
    return plan, Store.open(store_dir(args, plan.file, plan.store))


def check_destination(option: str, value: str) -> None:
    """A report file an option names can be written, checked before any work starts: not a
    folder, nor a device, and its folder exists and takes a new file (tried, not guessed from
    mode bits: root ignores them, and a read-only mount does not show in them)."""
    import tempfile

    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{option} {value}: is a folder", f"name a file, e.g. {path / 'report'}")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {value}: is not a regular file", "name a file to write")
    folder = path.absolute().parent
    if not folder.is_dir():
        raise UsageError(f"{option} {value}: its folder does not exist",
                         "name a file in an existing folder")
    try:
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", dir=folder):
            pass
    except OSError as error:
        raise UsageError(f"{option} {value}: cannot write in {folder} ({error.strerror})",
                         "name a file in a folder you can write") from None
