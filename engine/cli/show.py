"""recipe show (being written)."""

import argparse


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    sub.add_parser("show", parents=[parent], help="(being written)").set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("recipe show: not yet written")
