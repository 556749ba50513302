"""``recipe``: argument parsing, dispatch, and the one place errors become lines and exit codes.

Exit codes: 0 success; 1 a build failed or a case did not match; 2 the input is wrong.
Each command lives in its own module with ``register(subparsers)`` and ``run(args) -> int``;
only the module of the command given is imported (all of them for ``recipe --help``).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from engine import __version__

COMMANDS = ("realise", "verify", "show", "validate", "store", "eval", "repl", "check",
            "release")

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_INPUT, f"{self.prog}: {message}; see '{self.prog} --help'\n")


def common_options() -> argparse.ArgumentParser:
    """Options every command takes: ``--store DIR`` and ``--json``."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--store", metavar="DIR", help="the store (default: $RECIPE_STORE, "
                        "the plan's store:, or a folder 'store' beside the plan)")
    parent.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return parent


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, with only the command it names (when it names one)."""
    parser = _Parser(prog="recipe", description="Declarative, reproducible build-and-verify.")
    parser.add_argument("--version", action="version", version=f"recipe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    parent = common_options()
    # The first word that is not an option is the command: the top level has no option
    # that takes a value.
    word = next((a for a in argv or () if not a.startswith("-")), None)
    for name in [word] if word in COMMANDS else COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(sub, parent)
    return parser


def exit_code_for(error: Exception) -> int:
    """Failures of a build or a case are 1; everything else the user must fix in the input is 2."""
    from engine.errors import Failure

    return EXIT_FAILED if isinstance(error, Failure) else EXIT_INPUT


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("recipe: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return _report(error)


def _report(error: Exception) -> int:
    """The one place an error becomes a line on stderr and an exit code (``engine.errors`` is
    imported only now: a run that raises nothing does not need it)."""
    from engine.errors import RecipeError

    if isinstance(error, RecipeError):
        if error.detail:
            print(error.detail.rstrip("\n"), file=sys.stderr)
        print(f"recipe: {error.render()}" if error.pos is None else error.render(),
              file=sys.stderr)
        return exit_code_for(error)
    if isinstance(error, BrokenPipeError):
        return EXIT_FAILED
    if isinstance(error, OSError):
        # The last resort for the file system saying no (permissions, a full disk): one line.
        where = f": {error.filename}" if error.filename else ""
        print(f"recipe: {error.strerror or error}{where}", file=sys.stderr)
        return EXIT_INPUT
    raise error


if __name__ == "__main__":
    sys.exit(main())
