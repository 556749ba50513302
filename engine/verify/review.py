"""``verify --update --interactive``: what re-recording a case would change, as a diff to
review (``cargo insta review``); the questions themselves are asked by ``engine.cli``."""

from __future__ import annotations

from typing import Any

from engine.documents.models import Case
from engine.verify import files_expect
from engine.verify.compare import expected
from engine.verify.diffs import unified_diff
from engine.verify.outcome import Observed
from engine.verify.patterns import matches, normalize, redactions

ANSWERS = {"a": "accept", "s": "skip", "A": "all", "q": "quit"}  # "a" and "A" differ
PROMPT = "record it? [a]ccept, [s]kip, accept [A]ll, [q]uit: "


def proposal(case: Case, data: Observed | dict[int, Any]) -> str:
    """The change re-recording would make to ``case``'s expectation, as unified diffs from
    what it expects to what would be written (patterns kept where they still match)."""
    if isinstance(data, dict):  # a function case's rows
        return "".join(f"row {i + 1}: expected {case.table[i][-1]!r}, now {value!r}\n"
                       for i, value in sorted(data.items()))
    want = expected(case)
    marks = redactions(case, data)
    parts = []
    for stream in ("stdout", "stderr"):
        old = getattr(want, stream)
        if old is None:
            continue  # unchecked: nothing is recorded
        got = getattr(data, stream)
        if not matches(old, got, marks) or stream in want.missing_streams:
            parts.append(unified_diff(old, normalize(got, old, marks), stream, limit=400))
    if data.exit is not None and data.exit != want.exit:
        parts.append(f"exit code: {want.exit} -> {data.exit}\n")
    if files_expect.wanted(case):  # the files it wrote, as they differ
        parts += files_expect.compare(case, data, marks)[1]
    return "".join(parts) or "(the same as recorded)\n"


def answer(text: str) -> str | None:
    """The answer a reply stands for: ``a``/``accept``, ``s``/``skip``, ``A``/``all``,
    ``q``/``quit``; None for anything else (ask again)."""
    reply = text.strip()
    if reply in ANSWERS:
        return ANSWERS[reply]
    return reply.lower() if reply.lower() in ANSWERS.values() else None
