"""A ``recipe realise`` answered from its record before argparse is even imported.

Parsing the command line was half of a no-op's instructions (argparse with gettext and locale,
the parser of realise, parsing: 79 M of 154 M). So a realise's record (``engine.memo``) is
keyed by the command's own words, and ``answer`` looks it up from them, with a reading of its
own that knows realise's options. Words it does not read exactly (an abbreviated option,
``-j2``, ``--store=DIR``, ``--help``, a second plan) are left to argparse. A record exists
only for words a full run parsed and ran to success, so nothing argparse would refuse is ever
answered here.
"""

from __future__ import annotations

import sys

#: realise's options that take a value, and those that take none (engine/cli/realise.py, and
#: main.py's common options). One missing here only sends its command lines to argparse.
WITH_VALUE = frozenset({"-t", "--target", "-p", "--project", "-j", "--jobs", "--store",
                        "--root", "--remote-cache", "--executor"})
FLAGS = frozenset({"--keep-going", "--keep-failed", "--remote-upload", "--json"})


def request(words: list[str] | tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    """The record's request: the words of the command line."""
    return (("words", tuple(words)),)


def plan_of(words: list[str]) -> str | None:
    """The plan ``recipe realise`` is given by ``words``, or None when argparse must read them."""
    if words[:1] != ["realise"]:
        return None
    plan = None
    rest = iter(words[1:])
    for word in rest:
        if word in WITH_VALUE:
            if next(rest, None) is None:
                return None
        elif word in FLAGS:
            continue
        elif word.startswith("-") or plan is not None:
            return None
        else:
            plan = word
    return plan


def answer(words: list[str]) -> bool:
    """Whether ``recipe realise`` with these words was answered from its record (printed)."""
    plan = plan_of(words)
    if plan is None:
        return False
    from engine import memo

    record = memo.recall(plan, "noop", request(words))
    if record is None:
        return False
    sys.stdout.write(record["output"])
    return True
