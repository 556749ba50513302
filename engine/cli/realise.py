"""recipe realise PLAN: build what is missing, print one store path per project x target."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from engine.cli.common import add_selection


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that realise: realise, verify."""
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    add_selection(parser)
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="actions run at once (default: the number of cores)")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failure, go on with everything that does not depend on it")
    add_remote_options(parser)


def add_remote_options(parser: argparse.ArgumentParser) -> None:
    """The shared cache's options, on every command that realises (see engine/remote/); here,
    not in engine.cli.common, so that a no-op realise does not import that module."""
    parser.add_argument("--remote-cache", metavar="URL",
                        help="a shared cache on Bazel's HTTP remote-cache protocol, read after "
                             "the store's own (default: $RECIPE_REMOTE_CACHE, the plan's "
                             "remote_cache:; '' for none)")
    parser.add_argument("--remote-upload", action="store_true",
                        help="also write what this run builds to the remote cache (for CI)")
    parser.add_argument("--executor", metavar="dask://HOST:PORT",
                        help="run missed actions on a Dask cluster (default: $RECIPE_EXECUTOR); "
                             "needs a remote cache")


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("realise", parents=[parent], help="build what is missing and "
                            "print one store path per project x target")
    add_build_options(parser)
    parser.add_argument("--keep-failed", action="store_true",
                        help="keep the build folder of a failed derivation")
    parser.add_argument("--root", metavar="NAME",
                        help="also pin the paths under the named root NAME/<project>/<target> "
                             "(kept by 'store gc' until 'store roots --remove NAME')")
    parser.set_defaults(func=run)


def check_root_name(name: str | None) -> None:
    from engine.errors import UsageError

    if name is None:
        return
    if not name or not name.isprintable() or name.startswith("realise:") or \
            name != name.strip("/") or "//" in name:
        raise UsageError(f"--root {name!r} is not a usable root name",
                         "use printable characters, not starting with 'realise:' and "
                         "without leading, trailing or doubled '/'")


def _outputs(drv: Any, path: Path) -> list[dict[str, Any]]:
    """Each output file of a path (what the seed's compiled-binary record carries): its
    place in the path, size and sha256."""
    from engine.hashing import file_digest

    files = sorted({o.removeprefix("out/") for a in drv.actions for o in a.outputs
                    if o.startswith("out/")})
    return [{"file": rel, "size": (path / rel).stat().st_size,
             "sha256": file_digest(path / rel).removeprefix("sha256:")} for rel in files]


def run(args: argparse.Namespace) -> int:
    # Only what answering a no-op needs is imported before it is known to be one.
    from engine import memo
    from engine.cli import noop

    words = getattr(args, "words", None)  # the command line, given by engine.cli.main
    request = noop.request(words) if words is not None else memo.request_of(args)
    started = time.time_ns()
    # engine.cli.main has looked the record up already when it could read the words itself.
    looked = words is not None and noop.plan_of(list(words)) is not None
    record = None if looked else memo.recall(args.plan, "noop", request)
    if record is not None:
        sys.stdout.write(record["output"])
        return 0

    from engine import watch
    from engine.build.realise import realise
    from engine.cli.common import action_cache, json_text, open_plan_and_store
    from engine.cli.progress import Progress

    with watch.recording() as seen:
        plan, store = open_plan_and_store(args, lambda _plan: check_root_name(args.root))
        progress = Progress(quiet=args.json)
        try:
            with action_cache(args, store) as cache:
                result = realise(plan, store, args.target, args.project, args.jobs,
                                 keep_going=args.keep_going, keep_failed=args.keep_failed,
                                 reporter=progress, named_root=args.root, cache=cache)
        finally:
            progress.close()

    def render(built: list[str]) -> str:
        if args.json:
            return json_text([{"project": d.project.name, "target": d.target.name,
                               "triple": d.target.triple, "path": str(result.paths[d.key]),
                               "built": d.name in built,
                               "outputs": _outputs(d, result.paths[d.key])}
                              for d in result.derivations])
        return "".join(f"{result.paths[d.key]}\n" for d in result.derivations)

    sys.stdout.write(render(result.built))
    memo.remember(args.plan, "noop", request, started, seen, store.root, result.closure,
                  result.roots, output=render([]))
    return 0
