"""recipe doctor: placeholder, written next."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("doctor", parents=[parent], help="what recipe finds on this machine")
    parser.set_defaults(func=lambda args: 0)
