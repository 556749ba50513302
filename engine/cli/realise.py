"""recipe realise PLAN: build what is missing, print one store path per project x target."""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import open_plan_and_store, print_json
from engine.cli.progress import Progress
from engine.errors import UsageError


def add_build_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by the commands that realise: realise, verify."""
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    parser.add_argument("-t", "--target", action="append", metavar="TARGET",
                        help="a target of the plan (repeatable; default: default_targets)")
    parser.add_argument("-p", "--project", action="append", metavar="PROJECT",
                        help="a project of the plan (repeatable; default: all)")
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="actions run at once (default: the number of cores)")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failure, go on with everything that does not depend on it")


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
    if name is None:
        return
    if not name or not name.isprintable() or name.startswith("realise:") or \
            name != name.strip("/") or "//" in name:
        raise UsageError(f"--root {name!r} is not a usable root name",
                         "use printable characters, not starting with 'realise:' and "
                         "without leading, trailing or doubled '/'")


def run(args: argparse.Namespace) -> int:
    from engine.build import realise

    plan, store = open_plan_and_store(args, lambda _plan: check_root_name(args.root))
    progress = Progress(quiet=args.json)
    try:
        result = realise(plan, store, args.target, args.project, args.jobs,
                         keep_going=args.keep_going, keep_failed=args.keep_failed,
                         reporter=progress, named_root=args.root)
    finally:
        progress.close()
    if args.json:
        print_json([{"project": d.project.name, "target": d.target.name,
                     "path": str(result.paths[d.key]), "built": d.name in result.built}
                    for d in result.derivations])
    else:
        for drv in result.derivations:
            print(Path(result.paths[drv.key]))
    return 0
