"""recipe release PLAN --out DIR: reproducible tarballs, SHA256SUMS and provenance."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.cli.common import add_selection


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("release", parents=[parent], help="realise, verify, and write "
                            "reproducible tarballs, SHA256SUMS and in-toto provenance")
    parser.add_argument("plan", metavar="PLAN", help="the plan document (plan.yaml)")
    parser.add_argument("--out", metavar="DIR", required=True,
                        help="the release folder (must be new or empty unless --force)")
    add_selection(parser)
    parser.add_argument("-j", "--jobs", type=int, metavar="N",
                        help="actions and cases run at once (default: the number of cores)")
    parser.add_argument("--force", action="store_true",
                        help="replace the content of a non-empty --out folder")
    parser.add_argument("--skip-verify", action="store_true",
                        help="release even if cases fail (or without running them)")
    from engine.cli.realise import add_remote_options

    add_remote_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from engine.cli.common import action_cache, open_plan_and_store, print_json, store_dir
    from engine.cli.progress import Progress
    from engine.release.release import check_out, check_out_against, release, source_date_epoch

    out = Path(args.out).absolute()
    epoch = source_date_epoch(os.environ)
    check_out(out, args.force)  # before the plan is loaded or the store opened
    plan, store = open_plan_and_store(args, lambda plan: check_out_against(
        out, plan, store_dir(args, plan.file, plan.store)))
    progress = Progress(quiet=args.json)
    try:
        with action_cache(args, store) as cache:
            done = release(plan, store, out, targets=args.target or list(plan.default_targets),
                           projects=args.project, jobs=args.jobs, force=args.force,
                           skip_verify=args.skip_verify, epoch=epoch, reporter=progress,
                           cache=cache)
    finally:
        progress.close()
    if args.json:
        print_json({"out": str(done.out), "source_date_epoch": done.epoch,
                    "verified": done.verified, "cases": done.cases,
                    "artifacts": [{"file": a.file, "sha256": a.sha256, "project": a.project,
                                   "target": a.target, "store_path": a.store_path}
                                  for a in done.artifacts]})
        return 0
    for a in done.artifacts:
        print(f"{a.sha256}  {done.out / a.file}")
    verified = f"{done.cases} case{'' if done.cases == 1 else 's'} passed" if done.verified \
        else "cases not run (--skip-verify)"
    print(f"released into {done.out} ({verified}; SOURCE_DATE_EPOCH={done.epoch}); "
          f"check with: cd {done.out} && sha256sum -c SHA256SUMS", file=sys.stderr)
    return 0
