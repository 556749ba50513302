"""``recipe``: argument parsing, dispatch, and the one place errors become lines and exit codes.

Exit codes: 0 success; 1 a build failed or a case did not match; 2 the input is wrong.
Each command lives in its own module with ``register(subparsers)`` and ``run(args) -> int``;
only the module of the command given is imported (all of them for ``recipe --help``). The
commands in ``SERVED`` go to a running ``recipe server`` first (``engine.server``), and a
``realise`` with nothing to do, or a ``verify`` whose outcomes are all cached, is answered from
its record (``engine.cli.noop``), before even argparse is imported.
"""

from __future__ import annotations

import sys

from engine import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

COMMANDS = ("realise", "verify", "show", "validate", "store", "eval", "repl", "check",
            "release", "server", "why", "lock")
COMMANDS += ("init", "completion", "graph", "doctor")  # starting, shells, drawing, the machine
#: What a running ``recipe server`` runs (all but ``server`` itself, and ``repl``, whose
#: terminal must be its own: see ``engine.client.UNSERVED``).
SERVED = tuple(c for c in COMMANDS if c not in ("server", "repl"))

EXIT_OK, EXIT_FAILED, EXIT_INPUT = 0, 1, 2


def _parser_class() -> type[argparse.ArgumentParser]:
    import argparse

    class Formatter(argparse.HelpFormatter):
        """argparse's, sized as ``shutil.get_terminal_size`` sizes it but without importing
        shutil (and bz2, lzma, zlib with it): every ``add_argument`` makes a formatter, so
        every command, a no-op too, paid that import (~1 ms)."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                     width: int | None = None) -> None:
            if width is None:
                import os

                try:
                    width = int(os.environ.get("COLUMNS", "0"))
                except ValueError:
                    width = 0
                if width <= 0:
                    try:
                        width = os.get_terminal_size(sys.__stdout__.fileno()).columns
                    except (AttributeError, ValueError, OSError):
                        width = 0
                width = (width or 80) - 2
            super().__init__(prog, indent_increment, max_help_position, width)

    class Parser(argparse.ArgumentParser):
        """argparse that reports a usage error as one line and exit code 2."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("formatter_class", Formatter)
            super().__init__(*args, **kwargs)

        def error(self, message: str) -> None:  # type: ignore[override]
            self.exit(EXIT_INPUT, f"{self.prog}: {message}; see '{self.prog} --help'\n")

    return Parser


def common_options() -> argparse.ArgumentParser:
    """Options every command takes: ``--store DIR`` and ``--json``."""

    parent = _parser_class()(add_help=False)
    parent.add_argument("--store", metavar="DIR", help="the store (default: $RECIPE_STORE, "
                        "the plan's store:, or a folder 'store' beside the plan)")
    parent.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    return parent


#: Parsers already built, by the command they hold (None: all of them). A process builds one;
#: a server builds one for all of its children.
_built: dict[str | None, argparse.ArgumentParser] = {}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; given ``argv``, with only the command it names (when it names one)."""
    # The first word that is not an option is the command: the top level has no option
    # that takes a value.
    word = next((a for a in argv or () if not a.startswith("-")), None)
    key = word if word in COMMANDS else None
    if key not in _built:
        _built[key] = _build(key)
    return _built[key]


def _build(command: str | None) -> argparse.ArgumentParser:
    import importlib

    parser_class = _parser_class()
    parser = parser_class(prog="recipe", description="Declarative, reproducible build-and-verify.")
    parser.add_argument("--version", action="version", version=f"recipe {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)
    sub.required = True
    parent = common_options()
    for name in [command] if command else COMMANDS:
        importlib.import_module(f"engine.cli.{name}").register(sub, parent)
    return parser


def exit_code_for(error: Exception) -> int:
    """Failures of a build or a case are 1; everything else the user must fix in the input is 2."""
    from engine.errors import Failure

    return EXIT_FAILED if isinstance(error, Failure) else EXIT_INPUT


def main(argv: list[str] | None = None) -> int:
    program = argv is None  # recipe's own process, not a caller in Python
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] and argv[0] in SERVED:
            from engine import server

            code = server.forward(argv)
            if code is not None:
                if program:  # the command ran in the server: tearing Python down costs 4 ms
                    import os

                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
                return code
        if argv[:1] == ["realise"] or argv[:1] == ["verify"]:
            from engine.cli import noop

            code = noop.answer(argv)  # before argparse: half of a no-op's instructions
            if code is not None:
                return code
        args = build_parser(argv).parse_args(argv)
        if argv[:1] == ["realise"] or argv[:1] == ["verify"]:
            args.words = tuple(argv)  # its record's key; the record was looked up already
        return int(args.func(args))
    except KeyboardInterrupt:
        print("recipe: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        return _report(error)
    except BaseException as error:
        from engine.errors import Terminated

        if not isinstance(error, Terminated):
            raise
        import signal

        try:  # a hung-up terminal may take no more
            print(f"recipe: stopped by {signal.Signals(error.signum).name}", file=sys.stderr)
        except OSError:
            pass
        return 128 + error.signum


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
