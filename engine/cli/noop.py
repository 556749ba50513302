"""A ``recipe realise`` with nothing to do, or a ``recipe verify`` whose outcomes are all
cached, answered from its record before argparse is even imported.

Parsing the command line was half of a no-op's instructions (argparse with gettext and locale,
the parser of realise, parsing: 79 M of 154 M). So a record (``engine.memo``) is keyed by the
command's own words, and ``answer`` looks it up from them, with a reading of its own that knows
each command's options. Words it does not read exactly (an abbreviated option, ``-j2``,
``--store=DIR``, ``--help``, a second plan) are left to argparse. A record exists only for
words a full run parsed and ran to its end, so nothing argparse would refuse is ever answered
here. Of verify's options only those that write nothing are read here (``--update``,
``--prune``, ``--junit``, ``--html``, ``--diff-tool``, ``--no-cache``... always run in full).
"""

from __future__ import annotations

import sys

#: The options that take a value, and those that take none (engine/cli/realise.py,
#: engine/cli/verify.py, and main.py's common options). One missing here only sends its command
#: lines to argparse.
_BUILD = frozenset({"-t", "--target", "-p", "--project", "-j", "--jobs", "--store",
                    "--remote-cache", "--executor"})
WITH_VALUE = _BUILD | {"--root"}
FLAGS = frozenset({"--keep-going", "--keep-failed", "--remote-upload", "--json"})
#: verify's: its selection and how many failing rows it lists, and nothing that writes a file,
#: asks, or hands mismatches to a program.
VERIFY_WITH_VALUE = _BUILD | {"-k", "--failing-rows"}
VERIFY_FLAGS = frozenset({"--keep-going", "--json"})
OPTIONS = {"realise": (WITH_VALUE, FLAGS), "verify": (VERIFY_WITH_VALUE, VERIFY_FLAGS)}
KINDS = {"realise": "noop", "verify": "verify"}


def request(words: list[str] | tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    """The record's request: the words of the command line (of a verify, also whether its
    streams are terminals: a terminal is shown progress, which the record then holds)."""
    if words[:1] == ("verify",) or words[:1] == ["verify"]:
        return (("words", tuple(words)), ("tty", (_tty(sys.stdout), _tty(sys.stderr))))
    return (("words", tuple(words)),)


def _tty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def plan_of(words: list[str]) -> str | None:
    """The plan ``recipe realise`` or ``recipe verify`` is given by ``words``, or None when
    argparse must read them."""
    options = OPTIONS.get(words[0]) if words else None
    if options is None:
        return None
    with_value, flags = options
    plan = None
    rest = iter(words[1:])
    for word in rest:
        if word in with_value:
            if next(rest, None) is None:
                return None
        elif word in flags:
            continue
        elif word.startswith("-") or plan is not None:
            return None
        else:
            plan = word
    return plan


def answer(words: list[str]) -> int | None:
    """The exit code of ``recipe realise`` or ``recipe verify`` with these words when it was
    answered from its record (its output printed); None when it must run."""
    plan = plan_of(words)
    if plan is None:
        return None
    from engine import memo

    record = memo.recall(plan, KINDS[words[0]], request(words))
    if record is None:
        return None
    sys.stdout.write(record["output"])
    if record.get("errors"):
        sys.stderr.write(record["errors"])
    return int(record.get("code", 0))
