"""recipe why PLAN: for each selected derivation that is not valid, what changed since the last
valid path of its project x target."""

from __future__ import annotations

import argparse

from engine.cli.common import add_selection, open_plan_and_store, print_json


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("why", parents=[parent], help="why a derivation is not valid: "
                            "what changed since its last valid path")
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    add_selection(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.build.realise import derive
    from engine.derive.explain import CHANGED, NEVER_BUILT, explain, words

    plan, store = open_plan_and_store(args)
    drvs = derive(plan, store, list(args.target or plan.default_targets), args.project)
    found = explain(drvs, store.history(), store.roots(),
                    (d.name for d in drvs if store.is_valid(d.name)), str(plan.file))
    if args.json:
        print_json([{"project": e.project, "target": e.target, "path": str(store.path(e.name)),
                     "status": e.status,
                     "previous": e.previous and str(store.path(e.previous)),
                     "changes": [c.as_json() for c in e.changes]} for e in found])
        return 0
    for e in found:
        title = f"{e.project} ({e.target})"
        if e.status == NEVER_BUILT:
            print(f"{title}: never built for this target")
        elif e.status == CHANGED:
            print(f"{title}: not valid; since {store.path(e.previous or '')}:")
            for change in e.changes:
                print(f"  {words(change, args.plan, e.target)}")
        else:
            print(f"{title}: up to date")
    return 0
