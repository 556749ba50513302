"""recipe verify PLAN: realise, run every selected case, compare, report (``--update``
re-records the expectations of the cases that did not match).

A verify that built nothing and found every outcome in the outcome cache is remembered
(``engine.memo``, kind ``verify``): what it printed and its exit code, against the stat data of
everything it read (documents, golden files, case inputs, sources, compilers, runners), the
store paths it realised and the action results it read. The same words answer from that record
(``engine.cli.noop``) for as long as all of them hold. Only the words ``noop`` reads are
remembered: none of them writes a file, asks, or runs a program of the user's."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from engine.cli.common import action_cache, check_destination, open_plan_and_store, print_json
from engine.cli.realise import add_build_options
from engine.errors import UsageError

if TYPE_CHECKING:
    from engine.documents.models import Plan
    from engine.verify.outcome import Outcome
    from engine.watch import Stat


def register(sub: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = sub.add_parser("verify", parents=[parent], help="realise, then run every case and "
                            "compare; --update re-records expectations")
    add_build_options(parser)
    parser.add_argument("-k", dest="pattern", metavar="PATTERN", action="append",
                        help="only the cases whose 'project/case name' contains PATTERN; "
                        "repeat it for any of several; '!PATTERN' leaves those out")
    parser.add_argument("--update", action="store_true",
                        help="re-record the expectations of the cases that did not match")
    parser.add_argument("--interactive", action="store_true",
                        help="with --update: show each change and ask before recording it")
    parser.add_argument("--prune", action="store_true",
                        help="delete the golden files no case references")
    parser.add_argument("--diff-tool", metavar="CMD",
                        help="run CMD EXPECTED OBSERVED for each mismatch (default: "
                        "$RECIPE_DIFF_TOOL)")
    parser.add_argument("--no-cache", action="store_true",
                        help="run every case even when its outcome is cached")
    parser.add_argument("--failing-rows", type=_count, default=20, metavar="N",
                        help="list the first N failing rows of a function case, then count the "
                        "rest (default 20)")
    parser.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report to FILE")
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report "
                        "to FILE")
    parser.set_defaults(func=run)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count (0 or more), not '{text}'")
    return int(text)


def run(args: argparse.Namespace) -> int:
    from engine.cli import noop

    words = getattr(args, "words", None)  # the command line, given by engine.cli.main
    if words is None or noop.plan_of(list(words)) is None:
        return _verify(args, {})
    from engine import memo, watch
    from engine.verify import cache as outcome_cache

    started = time.time_ns()
    kept: dict[str, Any] = {}
    with _Tee() as streams, watch.recording() as seen, outcome_cache.reading() as (actions,
                                                                                 blobs):
        code = _verify(args, kept)
        for folder in sys.path:  # modules imported lazily (tabulate, wcwidth): one installed
            watch.seen(folder or ".")
    if kept.get("all_cached") and code in (0, 1):
        # A failed verify too: its verdicts come from the expectations (watched documents) and
        # the observations (the action results read), as a passing one's do.
        store, result = kept["store"], kept["result"]
        outside, names = _in_store(seen, store.root)
        memo.remember(args.plan, "verify", noop.request(words), started, outside, store.root,
                      sorted({*result.closure, *names}), result.roots, actions=actions,
                      blobs=sorted(blobs), output=streams[0].text(),
                      errors=streams[1].text(), code=code)
    return code


def _in_store(seen: dict[str, Stat], root: Path) -> tuple[dict[str, Stat], list[str]]:
    """What the run saw outside the store, and the store paths it saw files of. A store path is
    immutable while valid (``memo.recall`` checks that it is), so it is held by its name, not
    by stat data that a rebuild, however recent, changes. The store's own state (caches of
    REPL scopes, of nm's answers...) is left out: an outcome read from the cache does not
    depend on them, and the action results it does depend on are checked themselves."""
    from engine.store.names import NAME

    prefix = os.path.join(os.path.abspath(root), "")
    outside, names = {}, set()
    for path, stat in seen.items():
        name = path[len(prefix):].split(os.sep, 1)[0] if path.startswith(prefix) else None
        if name == ".recipe":
            continue
        if name is not None and NAME.fullmatch(name):
            names.add(name)
        else:
            outside[path] = stat
    return outside, sorted(names)


def _verify(args: argparse.Namespace, kept: dict[str, Any]) -> int:
    """The run; ``kept`` is given the store, the realise's result and whether the run may be
    remembered (``all_cached``)."""
    from engine.build.realise import realise
    from engine.cli import review
    from engine.cli.progress import Progress
    from engine.verify import function, report, runner
    from engine.verify.early import Early

    start = time.monotonic()
    # --update may be the run that records a golden file the cases name but that is not there yet
    plan, store = open_plan_and_store(args, before_store=lambda plan: _check(args, plan))
    with action_cache(args, store) as cache:
        on_cluster = {} if cache is None or cache.executor is None else \
            _cases_on(cache.executor)
        settings = runner.Settings(store=store, outcomes=cache, use_cache=not args.no_cache,
                                   failing_rows=args.failing_rows,
                                   **on_cluster)
        workers = args.jobs or os.cpu_count() or 1
        targets = args.target or list(plan.default_targets)
        building = Progress(quiet=args.json)
        # function cases that need only a library start while the rest of its path builds
        early = None if on_cluster else Early(plan, store, settings, building, targets,
                                              args.project, args.pattern, workers)
        if early is not None and early.pool is None:
            early = None  # no such case: nothing to start early
        try:
            try:
                result = realise(plan, store, targets=targets, projects=args.project or None,
                                 jobs=args.jobs, keep_going=args.keep_going,
                                 reporter=early or building, cache=cache,
                                 library_first=early.only if early is not None else None)
            finally:
                building.close()
            jobs = runner.select(plan, result.paths, args.pattern)
            rest, done = early.take(jobs) if early is not None else (jobs, {})
            _complete(args, plan, store, cache, [j for j in rest if j.path.name in
                                                 result.partial])
            function.check_symbols(plan, store, rest)  # a function not in its library: exit 2
            progress = _Progress(len(jobs), quiet=args.json)
            try:
                for outcome in done.values():
                    progress(outcome)
                ran = iter(runner.run_jobs(rest, settings, workers=workers, observe=progress))
                outcomes = [done[i] if i in done else next(ran) for i in range(len(jobs))]
            finally:
                progress.close()
        except BaseException:
            if early is not None:
                early.close(failed=True)
            raise
        if early is not None:
            early.close(failed=False)

    kept.update(store=store, result=result, all_cached=not result.built and
                not result.partial and cache is None and
                not args.no_cache and not args.update and not args.prune and not args.differ
                and not args.junit and not args.html and
                all(o.cached or o.status in ("skipped", "not run") for o in outcomes))
    passed = all(o.ok for o in outcomes)  # xfailed, skipped and runner: none leave it green
    updated = None
    if args.update:
        from engine.verify import update  # ruamel's round trip: only --update writes YAML

        updated = update.update(outcomes, plan.dir,
                                review=review.ask if args.interactive else None)
        updated.mark(outcomes)
        passed = updated.all_match(outcomes)
    if args.differ:
        review.hand_to_differ(args.differ, store, outcomes, json=args.json)
    orphans, pruned = review.orphans(args, plan)
    if args.junit:
        report.write_junit(outcomes, Path(args.junit))
    if args.html:
        from engine.verify.html_report import write_html

        command = ["recipe", "verify", args.plan] + (["--store", args.store] if args.store else [])
        write_html(outcomes, Path(args.html), command=command,
                   seconds=time.monotonic() - start, written=time.time())
    if args.json:
        data = report.to_json(outcomes)
        if updated is not None:
            data["updated"] = [{"file": str(r.case.file), "case": r.case.name,
                                "fields": r.fields, "already": r.already}
                               for r in updated.recorded]
            data["not_updated"] = [{"file": str(case.file), "case": case.name, "why": why}
                                   for case, why in updated.refused]
        if orphans is not None:
            data["orphaned"] = [str(p) for p in orphans]
            data["pruned"] = [str(p) for p in pruned]
        print_json(data)
    else:
        notes = review.notes(updated, orphans or [], pruned, args.prune)
        sys.stdout.write(report.render_text(outcomes, notes))
    return 0 if passed else 1


def _complete(args: argparse.Namespace, plan: Plan, store: Any, cache: Any,
              jobs: list[Any]) -> None:
    """The paths that were built only up to their library for cases that did not start on it
    after all (engine/verify/early.py could not take it): built whole now."""
    if not jobs:
        return
    from engine.build.realise import realise
    from engine.cli.progress import Progress

    building = Progress(quiet=args.json)
    try:
        for project, target in sorted({(job.project, job.target) for job in jobs}):
            realise(plan, store, targets=[target], projects=[project], jobs=args.jobs,
                    reporter=building, cache=cache)
    finally:
        building.close()


def _cases_on(executor: object) -> dict[str, object]:
    """Cases run on the executor's cluster (engine/verify/distributed.py)."""
    from engine.verify.distributed import on_cluster

    return on_cluster(executor)


def _check(args: argparse.Namespace, plan: Plan) -> None:
    """Options that are wrong whatever gets built: refused before the store is touched."""
    from engine.verify import runners

    if args.pattern:
        _check_patterns(args.pattern, plan, args.project)
    for name in args.target or plan.default_targets:  # a runner the target names is missing
        runners.choose(plan.targets[name])
    from engine.cli import review

    review.check(args)  # --interactive, --prune, --diff-tool
    if args.junit:
        check_destination("--junit", args.junit)
    if args.html:
        check_destination("--html", args.html)


def _check_patterns(patterns: list[str], plan: Plan, projects: list[str] | None) -> None:
    """A -k that matches no case, or a selection left empty, is a typo: it must not pass."""
    from engine.verify.runner import matches

    if projects and not set(projects) <= set(plan.projects):
        projects = None  # an unknown -p has its own error, later
    names = [f"{p.name}/{c.name}" for p in plan.projects.values() for c in p.cases
             if not projects or p.name in projects]
    for pattern in patterns:
        if not any(pattern.removeprefix("!") in name for name in names):
            raise UsageError(f"no case matches -k {pattern!r}",
                             "-k takes a part of 'project/case name' ('!' in front leaves "
                             "those out)")
    if not any(matches(name, patterns) for name in names):
        raise UsageError(f"-k {' -k '.join(repr(p) for p in patterns)} selects no case",
                         "a case runs when it matches one -k and no -k '!...'")


class _Copy:
    """A stream that also keeps what is written to it."""

    def __init__(self, stream: TextIO) -> None:
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def text(self) -> str:
        return "".join(self.parts)

    def __getattr__(self, name: str) -> object:  # flush, isatty, fileno, encoding...
        return getattr(self.stream, name)


class _Tee:
    """sys.stdout and sys.stderr copied for the block: what a remembered verify says again."""

    def __enter__(self) -> tuple[_Copy, _Copy]:
        self.saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Copy(sys.stdout), _Copy(sys.stderr)
        return sys.stdout, sys.stderr  # type: ignore[return-value]

    def __exit__(self, *exc: object) -> None:
        sys.stdout, sys.stderr = self.saved


class _Progress:
    """On a terminal, one redrawn line on stderr: cases done of all, and the latest."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.done = total, 0
        self.live = sys.stderr.isatty() and not quiet

    def __call__(self, outcome: Outcome) -> None:
        self.done += 1
        if self.live:
            line = f"[{self.done}/{self.total}] {outcome.project}/{outcome.case}"
            sys.stderr.write(f"\r\x1b[K{line[:150]}")
            sys.stderr.flush()

    def close(self) -> None:
        if self.live and self.done:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
