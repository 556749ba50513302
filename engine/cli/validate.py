"""recipe validate FILE...: schema and reference checks of documents, by their kind.

A plan is checked whole (every project, cases file and reference); a project with its cases
(paths inside the project's folder); a cases or targets file on its own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine.cli.common import print_json
from engine.errors import display_path


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("validate", parents=[parent],
                            help="check documents against their schema and references",
                            description="Check each FILE by its kind (its first key, kind:): a "
                            "plan with everything it loads, a project with its cases, a cases "
                            "or a targets file. Stops at the first error.")
    parser.add_argument("files", nargs="+", metavar="FILE", type=Path,
                        help="a plan, project, cases or targets document")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.documents import validate_file

    results = []
    for file in args.files:
        kind = validate_file(file)  # a DocumentError propagates: main renders it, exit 2
        results.append({"file": display_path(file.absolute()), "kind": kind, "valid": True})
        if not args.json:
            print(f"{display_path(file.absolute())}: valid ({kind})")
    if args.json:
        print_json(results)
    return 0
