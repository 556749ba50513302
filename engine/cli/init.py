"""recipe init [DIR] [--lang c|c++|rust] [--name NAME] [--lib]: start a plan, or add a project
to the plan in DIR (see ``engine.scaffold``)."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from engine.cli.common import print_json
from engine.errors import display_path


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("init", parents=[parent], help="start a plan with one project (or "
                            "add a project to the plan in DIR)",
                            description="Write a plan, a project (a program; with --lib a "
                            "library and a program using it), its sources, two cases and a "
                            ".gitignore into DIR. When DIR holds a plan.yaml, add the project "
                            "in DIR/NAME instead. Never overwrites a file.")
    parser.add_argument("folder", nargs="?", default=".", metavar="DIR",
                        help="where to write (default: the current folder)")
    parser.add_argument("--lang", default="c", choices=("c", "c++", "rust"),
                        help="the project's language (default: c)")
    parser.add_argument("--name", metavar="NAME",
                        help="the project's name (default: DIR's name; needed to add a project)")
    parser.add_argument("--lib", action="store_true",
                        help="a library and a program using it (default: a program)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.scaffold import init

    folder = Path(args.folder)
    created = init(folder, args.lang, args.name, args.lib)
    plan_dir, plan = created.plan.parent, created.plan.name
    name = created.project
    # the commands run from the plan's folder
    where = os.path.relpath(plan_dir)  # "..", not display_path's absolute path, above cwd
    first = (f"cd {shlex.quote(where)}" if where != "." else f"recipe show {plan} -p {name}")
    verify = f"recipe verify {plan}" + ("" if created.new_plan else f" -p {name}")
    third = (f"recipe realise {plan} -p {name}" if created.language == "rust"
             else f"recipe repl {plan} -p {name}")
    steps = [first, verify, third]
    if args.json:
        print_json({"plan": display_path(created.plan.absolute()), "project": name,
                    "language": created.language, "new_plan": created.new_plan,
                    "files": [display_path(f.absolute()) for f in created.files],
                    "add_to_projects": created.add_pattern, "next": steps})
        return 0
    if created.new_plan:
        print(f"recipe init: a plan in {where}/ with the {created.language} project '{name}' "
              f"({len(created.files)} files)")
    else:
        print(f"recipe init: the {created.language} project '{name}' added to the plan in "
              f"{where}/ ({len(created.files)} files)")
    if created.add_pattern:
        print(f"{created.add_at}: the plan's projects: patterns do not select it; add "
              f"\"{created.add_pattern}\" to them")
    print("next:")
    notes = ["", "# build, then run its two cases",
             "# its store path" if created.language == "rust"
             else f"# try {name.replace('-', '_').replace('.', '_')}_count_words(\"a b\")"]
    width = max(len(s) for s in steps) + 2
    for step, note in zip(steps, notes, strict=True):
        print(f"  {step:<{width}}{note}".rstrip())
    return 0
