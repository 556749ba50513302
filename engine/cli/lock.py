"""recipe lock [PLAN] [--update [CRATE]]: resolve the crates of the plan's Rust projects and
write ``recipe.lock`` beside the plan.

Without ``--update`` the versions already locked stay wherever they still satisfy the
documents (only what changed is resolved again); ``--update`` moves every crate to the newest
version the registry holds that fits, ``--update CRATE`` (repeatable) only the ones named.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("lock", parents=[parent],
                            help="resolve the plan's crates and write recipe.lock",
                            description="Resolve the crates the plan's Rust projects name "
                            "(crates:) against its registry and write recipe.lock beside the "
                            "plan, keeping locked versions that still fit.")
    parser.add_argument("plan", nargs="?", default="plan.yaml", type=Path,
                        help="the plan (default: plan.yaml)")
    parser.add_argument("--update", nargs="?", const="", action="append", metavar="CRATE",
                        help="move every crate (or only CRATE; repeatable) to the newest "
                        "version that fits")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import print_json
    from engine.derive.crate_graph import lock_plan
    from engine.documents.cached import load_plan
    from engine.errors import display_path

    plan = load_plan(args.plan)
    update = None if args.update is None else {name for name in args.update if name}
    done = lock_plan(plan, update)
    if done is None:
        if args.json:
            print_json({"lock": None, "changed": False})
        else:
            print(f"{display_path(plan.file)}: no project names crates; nothing to lock")
        return 0
    path, changed = done
    if args.json:
        print_json({"lock": display_path(path), "changed": changed})
    else:
        print(f"{display_path(path)}: {'written' if changed else 'up to date'}")
    return 0
