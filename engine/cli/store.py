"""recipe store (being written)."""

import argparse


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    sub.add_parser("store", parents=[parent], help="(being written)").set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("recipe store: not yet written")
