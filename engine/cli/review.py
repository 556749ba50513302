"""What ``verify`` does after the run: the questions of ``--update --interactive``, asked on
the terminal (each change as a diff, then accept / skip / accept all / quit, as ``cargo insta
review``); the mismatches handed to ``--diff-tool``; the golden files no case references
(``--prune``); the lines that say what ``--update`` did."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import display_path

if TYPE_CHECKING:
    from engine.documents.models import Case, Plan
    from engine.store import Store
    from engine.verify.outcome import Observed, Outcome
    from engine.verify.update import UpdateResult

_RED, _GREEN, _CYAN, _OFF = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[0m"


def ask(case: Case, data: Observed | dict[int, Any]) -> str:
    """Show what re-recording ``case`` would change and ask; end of input quits."""
    from engine.verify.diffs import visible
    from engine.verify.review import PROMPT, answer, proposal

    out = sys.stdout
    plain = bool(os.environ.get("NO_COLOR"))  # https://no-color.org

    def paint(colour: str, text: str) -> str:
        return text if plain or not colour else f"{colour}{text}{_OFF}"

    out.write("\n" + paint(_CYAN, visible(f"{display_path(case.file)}: {case.name}")) + "\n")
    for line in visible(proposal(case, data)).splitlines():
        colour = (_RED if line.startswith("-") and not line.startswith("---") else
                  _GREEN if line.startswith("+") and not line.startswith("+++") else "")
        out.write(paint(colour, line) + "\n")
    while True:
        out.write(PROMPT)
        out.flush()
        reply = sys.stdin.readline()
        if not reply:  # end of input: nothing more is accepted
            out.write("\n")
            return "quit"
        chosen = answer(reply)
        if chosen is not None:
            return chosen


def check(args: argparse.Namespace) -> None:
    """The options of this module that are wrong whatever gets built (exit 2); sets
    ``args.differ``, the differ's argument list or None."""
    from engine.errors import UsageError
    from engine.verify.difftool import command, from_environment

    if args.interactive and not args.update:
        raise UsageError("--interactive reviews what --update records",
                         "run verify --update --interactive")
    if args.interactive and (args.json or not (sys.stdin.isatty() and sys.stdout.isatty())):
        raise UsageError("--interactive asks on a terminal, and stdin or stdout is not one",
                         "run it in a terminal, without --json; or use --update alone")
    if args.prune and args.pattern:
        raise UsageError("--prune needs a full verify: golden files are only known unused "
                         "when every case was considered", "run it without -k")
    tool = from_environment(args.diff_tool)
    option = "--diff-tool" if args.diff_tool is not None else "RECIPE_DIFF_TOOL"
    args.differ = command(tool, option) if tool else None


def hand_to_differ(argv: list[str], store: Store, outcomes: Sequence[Outcome], *,
                   json: bool) -> None:
    """Each mismatch to the differ; with --json its output goes to stderr."""
    from engine.verify.difftool import hand_over

    folder = store.temp_dir("diff")  # the store's: what a killed run leaves is removed later
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        hand_over(outcomes, argv, folder, stdout=2 if json else None)  # 2: our stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def orphans(args: argparse.Namespace, plan: Plan) -> tuple[list[Path] | None, list[Path]]:
    """After a full run (no -k): the golden files no case references, and those pruned."""
    if args.pattern:
        return None, []
    from engine.verify import orphans as found_orphans

    found = found_orphans.find(plan, args.project or list(plan.projects))
    return found, found_orphans.prune(found, plan.dir) if args.prune else []


def notes(updated: UpdateResult | None, orphaned: Sequence[Path], pruned: Sequence[Path],
          prune: bool) -> list[str]:
    """The lines after the details: what --update recorded or not and why, the orphans."""
    lines = []
    if updated is not None:
        for r in updated.recorded:
            done = "already recorded" if r.already else ", ".join(r.fields)
            lines.append(f"updated {_where(r.case)}: {done}")
        lines += [f"not updated {_where(case)}: {why}" for case, why in updated.refused]
    gone = set(pruned)
    for path in orphaned:
        if path in gone:
            lines.append(f"pruned golden file {display_path(path)}")
        elif not prune:
            lines.append(f"orphaned golden file {display_path(path)} (no case references it; "
                         "--prune deletes it)")
        else:
            lines.append(f"orphaned golden file {display_path(path)} (could not be deleted)")
    return lines


def _where(case: Case) -> str:
    return f"{display_path(case.file)}: {case.name}"
