"""``--diff-tool CMD`` / ``RECIPE_DIFF_TOOL``: the expected and observed output of each
mismatch handed to an external differ, as insta's ``INSTA_DIFF_TOOL``.

For each case that did not match, each stream that differs is written to two files in a
fresh folder named after the case — ``expected.stdout`` (the expectation, patterns as written)
and ``observed.stdout`` (the output, with the lines a pattern still matches shown as the
pattern, as the built-in diff does), and each file of ``expect: files:`` or ``tree:`` that
differs to ``expected.files/<path>`` and ``observed.files/<path>`` (empty where there is no
file) — and ``CMD EXPECTED OBSERVED`` is run (``CMD`` split as a
shell would split it, never run by a shell) with the terminal, one case after another. The
files are removed once the differ returns; what it exits with does not matter.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from engine.documents.models import Case
from engine.errors import UsageError
from engine.verify import files_expect
from engine.verify.compare import expected
from engine.verify.outcome import Observed, Outcome
from engine.verify.patterns import Redactions, matches, normalize, redactions


def command(text: str, option: str) -> list[str]:
    """``text`` as an argument list whose program exists; else one line, exit 2."""
    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"{option} {text!r} cannot be split into words: {error}",
                         "quote it as a shell would") from None
    if not argv or shutil.which(argv[0]) is None:
        raise UsageError(f"{option} {text!r}: no program {argv[0] if argv else ''!r} found",
                         "name a differ on PATH, such as 'diff -u' or 'meld'")
    return argv


def mismatches(outcome: Outcome) -> list[tuple[str, bytes, bytes]]:
    """``(name, expected, observed)`` for each stream (``stdout``) and each file it wrote
    (``files/out/a.txt``) of a failed case that differs; a file that is not there is empty."""
    case, seen = outcome.source, outcome.observed
    if outcome.passed or outcome.updated or case is None or seen is None:
        return []
    want = expected(case)
    marks = redactions(case, seen)
    found = []
    for stream in ("stdout", "stderr"):
        old, got = getattr(want, stream), getattr(seen, stream)
        if old is not None and (not matches(old, got, marks) or stream in want.missing_streams):
            found.append((stream, old, normalize(got, old, marks, substitute=False)))
    return found + _files(case, seen, marks)


def _files(case: Case, seen: Observed, marks: Redactions) -> list[tuple[str, bytes, bytes]]:
    """The files of ``expect: files:`` and ``tree:`` that differ."""
    pairs: dict[str, tuple[bytes | None, bytes | None]] = {}
    got = dict(seen.files)
    for rel, want in case.expect.files.items():
        old = None if want.absent else want.text if want.text is not None else \
            files_expect.golden_file(case, want.file or "")
        pairs[rel] = (old, got.get(rel))
    if case.expect.tree is not None:
        golden = files_expect.read_tree(case.folder / case.expect.tree)
        tree = dict(seen.tree or ())
        for rel in set(golden) | set(tree):
            pairs.setdefault(rel, (golden.get(rel), tree.get(rel)))
    found = []
    for rel, (old, new) in sorted(pairs.items()):
        if old is None and new is None:
            continue
        if old is not None and new is not None and matches(old, new, marks):
            continue
        shown = normalize(new, old, marks, substitute=False) if old and new else new
        found.append((f"files/{rel}", old or b"", shown or b""))
    return found


def hand_over(outcomes: Sequence[Outcome], argv: list[str], folder: Path,
              stdout: IO[bytes] | int | None = None) -> int:
    """Run the differ on every mismatch, files in ``folder`` (removed after); how many ran."""
    ran = 0
    for n, outcome in enumerate(outcomes):
        found = mismatches(outcome)
        if not found:
            continue
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{outcome.project}-{outcome.target}-"
                      f"{outcome.case}")[:80].strip("-")
        place = folder / f"{n:04d}-{name}"
        place.mkdir(parents=True)
        try:
            for stream, old, new in found:
                left, right = place / f"expected.{stream}", place / f"observed.{stream}"
                left.parent.mkdir(parents=True, exist_ok=True)
                right.parent.mkdir(parents=True, exist_ok=True)
                left.write_bytes(old)
                right.write_bytes(new)
                subprocess.run([*argv, str(left), str(right)], stdout=stdout, check=False)
                ran += 1
        finally:
            shutil.rmtree(place, ignore_errors=True)
    return ran


def from_environment(option: str | None) -> str | None:
    """``--diff-tool`` wins over ``RECIPE_DIFF_TOOL``; an empty variable is none."""
    return option if option is not None else (os.environ.get("RECIPE_DIFF_TOOL") or None)
