"""recipe validate (being written)."""

import argparse


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    sub.add_parser("validate", parents=[parent], help="(being written)").set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("recipe validate: not yet written")
