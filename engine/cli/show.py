"""recipe show PLAN: the resolved derivations, their store paths, and whether they are valid."""

from __future__ import annotations

import argparse

from engine.cli.common import add_selection, open_plan_and_store, print_json


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("show", parents=[parent], help="the resolved derivations: "
                            "inputs, hashes, store paths, built or not")
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    add_selection(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from engine.build.realise import derive

    plan, store = open_plan_and_store(args)
    drvs = derive(plan, store, list(args.target or plan.default_targets), args.project)
    if args.json:
        print_json([{"project": d.project.name, "target": d.target.name,
                     "hash": d.name.split("-", 1)[0], "path": str(store.path(d.name)),
                     "valid": store.is_valid(d.name), "derivation": d.data} for d in drvs])
        return 0
    rows = [(d.project.name, d.target.name, d.name.split("-", 1)[0], store.path(d.name),
             "valid" if store.is_valid(d.name) else "missing") for d in drvs]
    print(tabulate(rows, headers=["project", "target", "hash", "store path", "state"]))
    return 0
