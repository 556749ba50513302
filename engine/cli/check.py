"""recipe check PLAN: rebuild every derivation elsewhere, in a varied environment, and compare
bit for bit. Exit 1 when any differs."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    from engine.cli.realise import add_build_options

    parser = sub.add_parser("check", parents=[parent], help="rebuild everything elsewhere, in "
                            "a varied environment, and compare bit for bit")
    add_build_options(parser)
    parser.add_argument("--keep", action="store_true",
                        help="keep the rebuild's checkout and store (its folder is printed)")
    parser.add_argument("--no-diffoscope", action="store_true",
                        help="only list the differing files, even when diffoscope is installed")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import action_cache, open_plan_and_store, print_json
    from engine.cli.progress import Progress
    from engine.release.check import check

    plan, store = open_plan_and_store(args)
    progress = Progress(quiet=args.json)

    def announce(what: str) -> None:
        if progress.live:
            sys.stderr.write(f"\r\x1b[K{what}")
            sys.stderr.flush()
        elif not args.json:
            print(what, file=sys.stderr, flush=True)

    try:
        with action_cache(args, store) as cache:
            report = check(plan, store, args.target or list(plan.default_targets),
                           args.project, args.jobs, keep=args.keep,
                           use_diffoscope=not args.no_diffoscope, reporter=progress,
                           announce=announce, cache=cache)
    finally:
        progress.close()
    if args.json:
        print_json({"reproducible": report.reproducible,
                    "kept": str(report.kept) if report.kept else None,
                    "variations": {v.what: {"first": v.first, "rebuild": v.second}
                                   for v in report.variations},
                    "derivations": [vars(v) for v in report.verdicts]})
        return 0 if report.reproducible else 1
    second = {v.what: v.second for v in report.variations}
    others = [v.what for v in report.variations
              if v.what not in ("checkout", "store", "umask", "jobs", "added")]
    print(f"rebuilt from a copy of the checkout into a fresh store, with umask "
          f"{second['umask']}, -j {second['jobs']}, another {', '.join(others)}, "
          f"and {second['added']} set")
    for v in report.verdicts:
        print(f"{v.status:<13} {v.name}")
        if v.rebuilt and v.rebuilt != v.name:
            print(f"  the rebuild's derivation differs ({v.rebuilt}) at: "
                  f"{', '.join(v.derivation)}")
        for line in v.files:
            print(f"  {line}")
        if v.diffoscope:
            print(v.diffoscope.rstrip("\n"))
    if report.kept:
        print(f"the rebuild is kept in {report.kept}")
    differ = sum(v.status == "differs" for v in report.verdicts)
    if differ:
        print(f"recipe: {differ} of {len(report.verdicts)} derivations are not reproducible",
              file=sys.stderr)
        return 1
    return 0
