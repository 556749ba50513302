"""Helpers shared by the command modules: finding the store, loading the plan, printing JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


def add_selection(parser: argparse.ArgumentParser, *, single: bool = False) -> None:
    """``-t/--target`` and ``-p/--project``, declared here for every command.

    Repeatable by default: ``args.target`` and ``args.project`` are lists, or None for the
    plan's default_targets and all its projects. ``single`` (eval, repl): one project, required,
    and at most one target, in ``args.repl_project`` and ``args.repl_target``. Each option is
    marked with the kind of plan names it takes (``plan_names``), which completion offers.
    """
    if single:
        project = parser.add_argument("-p", "--project", dest="repl_project", required=True,
                                      metavar="PROJECT",
                                      help="the project whose repl.scope the code sees")
        target = parser.add_argument("-t", "--target", dest="repl_target", metavar="TARGET",
                                     help="the target to build for (default: the plan's first "
                                          "default)")
    else:
        target = parser.add_argument("-t", "--target", action="append", metavar="TARGET",
                                     help="a target of the plan (repeatable; default: "
                                          "default_targets)")
        project = parser.add_argument("-p", "--project", action="append", metavar="PROJECT",
                                      help="a project of the plan (repeatable; default: all)")
    target.plan_names = "targets"  # type: ignore[attr-defined]
    project.plan_names = "projects"  # type: ignore[attr-defined]


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
    if hasattr(args, "remote_cache"):
        args.remote = remote_config(args, plan)
    return plan, Store.open(store_dir(args, plan.file, plan.store))


def remote_config(args: argparse.Namespace, plan: Any) -> Any:
    """The remote cache in force, checked (URL, scheme, token variable) before anything runs;
    None without one. The executor's address is checked too (``args.executor_address``)."""
    option, variable = args.remote_cache, os.environ.get("RECIPE_REMOTE_CACHE")
    in_plan = getattr(plan, "remote_cache", None)
    config = None
    if (option, variable, in_plan) != (None, None, None):
        # Only a run that names a remote cache imports its modules (netrc, shlex...).
        from engine.remote.config import choose

        config = choose(option, variable, in_plan, args.remote_upload)
    if config is None and args.remote_upload:
        raise UsageError("--remote-upload needs a remote cache",
                         "pass --remote-cache URL, set RECIPE_REMOTE_CACHE, or add "
                         "remote_cache: to the plan")
    executor = args.executor if args.executor is not None else \
        os.environ.get("RECIPE_EXECUTOR")
    where = "--executor" if args.executor is not None else "$RECIPE_EXECUTOR"
    args.executor_address = None
    if executor:
        from engine.executors import parse as parse_executor

        args.executor_address = parse_executor(executor, where)
    if args.executor_address and config is None:
        raise UsageError(f"{where} {executor} needs a remote cache: workers take inputs from "
                         "it and put outputs on it",
                         "pass --remote-cache URL, set RECIPE_REMOTE_CACHE, or add "
                         "remote_cache: to the plan")
    if config is not None:
        _require("google.protobuf", "a remote cache")
    if args.executor_address:
        _require("distributed", "an executor")
    return config


def _require(module: str, what: str) -> None:
    """The optional dependencies of the distributed extra, checked before anything runs."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise UsageError(f"{what} needs the Python package {module.split('.')[0]}, which is "
                         "not installed", "pip install 'recipe[distributed]' (or: pip install "
                         "-e '.[distributed]' in a checkout)")


@contextmanager
def action_cache(args: argparse.Namespace, store: Any) -> Iterator[Any]:
    """The cache the command builds through, with a remote cache: both levels
    (engine.remote.combined), its uploads finished when the block ends; without one, None (the
    store's own). A remote that misbehaves costs one warning line on stderr, never the run."""
    config = getattr(args, "remote", None)
    if config is None:
        yield None
        return
    from engine.remote.combined import CombinedCache
    from engine.remote.http import HttpCache

    def warn(text: str) -> None:
        sys.stderr.write(f"recipe: warning: {text}\n")
        sys.stderr.flush()

    remote = HttpCache(config, warn)
    executor = None
    if getattr(args, "executor_address", None):
        from engine.executors.dask import DaskExecutor

        executor = DaskExecutor(args.executor_address, store, remote, config, warn)
    cache = CombinedCache(store, remote, upload=config.upload, executor=executor)
    try:
        yield cache
    finally:
        cache.close()


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
