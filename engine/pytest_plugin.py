"""pytest --recipe PLAN: every case of the plan on every selected target as a pytest item.

Installed with recipe (entry point ``pytest11``), so pytest loads it in every run; without
``--recipe`` it adds an option and does nothing else (recipe's own modules are imported only
once a plan is asked for). It sits at the level of ``engine.cli``: it drives the layers below
(documents, build, verify) and reports through pytest alone.

- Items: ``<plan file>::<project>/<target>/<case>``, in ``recipe verify``'s order, so ``-k``,
  ``-x``, ``--lf``, ``--junitxml``, ``-n`` (pytest-xdist) and IDE runners work as for any test.
- The plan is realised once per session (per xdist worker), at the first item run, for
  exactly the projects x targets of the items selected; a build that fails fails the items that
  needed it, with the compiler's words.
- A case that does not pass fails its item with recipe's own report (``recipe verify``'s details:
  the diff of what was expected and what came).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

# What a recipe outcome does to its pytest item, by the outcome's status; a status not listed
# fails the item. An xpassed case fails it, as a strict xfail does in pytest.
PYTEST_OUTCOME = {"passed": "pass", "failed": "fail", "error": "fail", "xfailed": "xfail",
                  "xpassed": "fail", "skipped": "skip"}

_PLAN = pytest.StashKey[Path]()
_SESSION = pytest.StashKey["_Session"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("recipe", "recipe's cases as tests")
    group.addoption("--recipe", metavar="PLAN", help="collect every case of the plan on every "
                    "selected target as a test: <plan>::<project>/<target>/<case>")
    group.addoption("--recipe-target", action="append", metavar="TARGET",
                    help="a target of the plan (repeatable; default: its default_targets)")


def pytest_configure(config: pytest.Config) -> None:
    given = config.getoption("recipe", None)
    if not given:
        return
    plan = Path(given).absolute()
    if not plan.is_file():
        raise pytest.UsageError(f"--recipe {given}: no such file; name a plan (plan.yaml)")
    config.stash[_PLAN] = plan
    # `pytest --recipe plan.yaml` collects the plan also when no argument reaches it
    if not any(_reaches(arg, plan, config.invocation_params.dir) for arg in config.args):
        config.args.append(str(plan))


def _reaches(arg: str, plan: Path, cwd: Path) -> bool:
    path = (cwd / arg.split("::", 1)[0]).absolute()
    return path == plan or path in plan.parents


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    plan = parent.config.stash.get(_PLAN, None)
    if plan is not None and file_path == plan:
        return PlanFile.from_parent(parent, path=file_path)
    return None


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None and session.summary:
        terminalreporter.write_line(session.summary)


def pytest_unconfigure(config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None and session.store is not None:
        session.store.close()


class PlanFile(pytest.File):
    """The plan: one item per case x selected target."""

    def collect(self) -> Any:
        from engine.derive.derivation import check_selection
        from engine.documents.cached import load_plan

        plan = load_plan(self.path)
        targets = self.config.getoption("recipe_target") or list(plan.default_targets)
        check_selection(plan, targets, None)
        for project in plan.projects.values():
            for target in targets:
                for case in project.cases:
                    yield CaseItem.from_parent(self, name=f"{project.name}/{target}/{case.name}",
                                               plan=plan, project=project.name, target=target,
                                               case=case)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        return _recipe_error(excinfo) or super().repr_failure(excinfo)


class CaseItem(pytest.Item):
    def __init__(self, *, plan: Any, project: str, target: str, case: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.plan, self.project, self.target, self.case = plan, project, target, case

    def runtest(self) -> None:
        from engine.verify import function, runner

        session = self.config.stash.setdefault(_SESSION, _Session())
        path = session.realised(self)
        job = runner.Job(self.project, self.target, self.case, path, self.plan.dir, self.plan)
        function.check_symbols(self.plan, session.store, [job])
        outcome = runner.execute(job, runner.Settings(store=session.store))
        action = PYTEST_OUTCOME.get(outcome.status, "fail")
        if action == "skip":
            pytest.skip(outcome.message)
        elif action == "xfail":
            pytest.xfail(outcome.message)
        elif action != "pass":
            raise CaseFailed(outcome)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            from engine.verify.report import render_details

            outcome = excinfo.value.outcome
            # the report's header names the case, as pytest's own header does: the status
            # and message instead (pytest's short summary shows this first line)
            _, _, detail = render_details([outcome]).partition("\n")
            return f"{outcome.status}: {outcome.message}\n{detail}".rstrip("\n")
        return _recipe_error(excinfo) or super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.case.file, (self.case.pos.line - 1 if self.case.pos.line else None), \
            f"{self.project}/{self.target}/{self.case.name}"


class CaseFailed(Exception):
    """A case that did not pass; its item's failure text is recipe's report of it."""

    def __init__(self, outcome: Any) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


def _recipe_error(excinfo: pytest.ExceptionInfo[BaseException]) -> str | None:
    """A recipe error (a document, a build) as recipe prints it, without a traceback."""
    from engine.errors import RecipeError

    error = excinfo.value
    if not isinstance(error, RecipeError):
        return None
    line = error.render() if error.pos is not None else f"recipe: {error.render()}"
    return f"{error.detail.rstrip()}\n{line}" if error.detail else line


class _Session:
    """What the items of one session share: the store, and one realisation of the projects x
    targets of every selected item."""

    def __init__(self) -> None:
        self.store: Any = None
        self.paths: dict[tuple[str, str], Path] | None = None
        self.error: BaseException | None = None
        self.summary = ""

    def realised(self, item: CaseItem) -> Path:
        if self.paths is None and self.error is None:
            self._realise(item)
        if self.error is not None:
            raise self.error
        assert self.paths is not None
        return self.paths[(item.project, item.target)]

    def _realise(self, first: CaseItem) -> None:
        import argparse

        from engine.build.realise import realise
        from engine.cli.common import store_dir
        from engine.store import Store

        plan = first.plan
        wanted = {(i.project, i.target) for i in first.session.items if isinstance(i, CaseItem)}
        start = time.monotonic()
        try:
            self.store = Store.open(store_dir(argparse.Namespace(store=None), plan.file,
                                              plan.store))
            self.paths, built = {}, 0
            for target in dict.fromkeys(t for _, t in sorted(wanted)):
                projects = sorted(p for p, t in wanted if t == target)
                result = realise(plan, self.store, [target], projects)
                self.paths.update(result.paths)
                built += len(result.built)
        except Exception as error:  # a failed build fails every item, with its own words
            self.error = error
            return
        count = len(self.paths)
        self.summary = (f"recipe: realised {count} path{'' if count == 1 else 's'} of "
                        f"{plan.file.name} ({built} built) in {time.monotonic() - start:.1f} s")
