"""A verify whose every outcome was cached, answered from its record (engine.memo, kind
``verify``): it runs no case, opens no store and imports none of the verify's machinery, says
exactly what the full run that wrote the record said (its exit code too, a failure included),
and gives way to a full run whenever anything the outcomes depend on changed: a case's
expectation, a golden file, a source, a case's input, the runner's program, the environment,
the store, the selection. Real gcc, real store, each run a process of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from engine import memo
from tests.conftest import run_recipe, write_tree

SETTLE = memo.RACY_NS / 1e9 + 0.2  # until freshly written files are no longer racily clean
# Imported by any verify that runs: an answered one imports none of them.
FULL_RUN = ("engine.verify.runner", "engine.build.realise", "engine.store.store")
WRAP = '#!/bin/sh\nexec "$@"\n'

TREE = {
    "plan.yaml": """
        kind: plan
        projects: [greet/project.yaml]
        targets:
          release: {opt: release}
          wrapped: {opt: release, runner: [recipe-test-wrap]}
        default_targets: [release, wrapped]
    """,
    "greet/project.yaml": """
        kind: project
        name: greet
        version: "1.0"
        language: c
        outputs:
          - {name: hi, kind: executable, sources: [hi.c]}
          - {name: upper, kind: executable, sources: [upper.c]}
        cases: [cases.yaml]
    """,
    "greet/hi.c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
    "greet/upper.c": "#include <stdio.h>\n#include <ctype.h>\nint main(void) { int c; "
                     "while ((c = getchar()) != EOF) putchar(toupper(c)); return 0; }\n",
    "greet/data/in.txt": "abc\n",
    "greet/golden/upper.out": "ABC\n",
    "greet/cases.yaml": """
        kind: cases
        cases:
          - {name: says hi, run: hi, expect: {stdout: "hi\\n"}}
          - {name: shouts, run: upper, stdin_file: data/in.txt,
             expect: {stdout_file: golden/upper.out}}
    """,
}


class Run(NamedTuple):
    code: int
    out: str
    err: str
    full: bool  # imported what a run that verifies imports


class Plan:
    """The plan above, its store, and a folder on PATH holding the runner of target wrapped."""

    def __init__(self, root: Path) -> None:
        self.src = write_tree(root / "src", TREE)
        self.store = root / "store"
        self.bin = root / "bin"
        self.bin.mkdir()
        self.wrap = self.bin / "recipe-test-wrap"
        self.wrap.write_text(WRAP)
        self.wrap.chmod(0o755)
        self.env = {**os.environ, "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}"}
        for name in ("RECIPE_STORE", "RECIPE_DIFF_TOOL", "RECIPE_REMOTE_CACHE",
                     "RECIPE_EXECUTOR"):
            self.env.pop(name, None)

    def verify(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """``recipe verify plan.yaml --store STORE ARGS`` in the plan's folder."""
        argv = ["verify", "plan.yaml", "--store", str(self.store), *args]
        code = ("import sys\nfrom engine.cli.main import main\n"
                f"code = main({argv!r})\nsys.stdout.flush()\n"
                f"print('\\nimported:', *[m for m in {FULL_RUN!r} if m in sys.modules], "
                "file=sys.stderr)\nsys.exit(code)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              cwd=self.src, env=env or self.env, timeout=300)
        err, _, imported = done.stderr.rpartition("\nimported:")
        assert done.returncode in (0, 1), done.stderr
        return Run(done.returncode, done.stdout, err, bool(imported.split()))

    def remembered(self, *args: str, env: dict[str, str] | None = None) -> Run:
        """Verify until a record answers: a full run, SETTLE, a full run that writes the
        record (or the answer already, when everything it read was old enough); then the
        answer, which must say byte for byte what the run that wrote the record said."""
        self.verify(*args, env=env)
        time.sleep(SETTLE)
        full = self.verify(*args, env=env)
        answer = self.verify(*args, env=env)
        assert not answer.full, "not answered from the record"
        assert (answer.code, answer.out, answer.err) == (full.code, full.out, full.err)
        return answer


def times_out(text: str) -> str:
    """A report without its times (each run measures its own)."""
    return re.sub(r'\d+\.\d+s\b|"seconds": [\d.]+', "T", text)


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return Plan(tmp_path)


def test_the_second_identical_verify_is_answered_byte_for_byte(plan: Plan) -> None:
    first = plan.verify()  # builds, runs every case
    assert first.full and first.code == 0 and first.out.endswith("4 passed\n")
    assert not list((plan.src / ".recipe/cache").glob("verify-*"))  # not all cached
    answer = plan.remembered()
    assert answer.out.endswith("4 passed (4 cached)\n") and answer.err == ""
    # What a full run says now, but for the times each run measures.
    full = plan.verify("-j", "1")
    assert full.full and times_out(full.out) == times_out(answer.out)
    # --json, a record of its own, says what a full run's --json says.
    json_answer = plan.remembered("--json")
    assert '"cached": true' in json_answer.out and json_answer.out != answer.out
    assert times_out(plan.verify("--json", "-j", "1").out) == times_out(json_answer.out)
    # Options that write, ask or run nothing cached are never answered.
    for args in (["--no-cache"], ["--junit", "report.xml"], ["--update"], ["--prune"]):
        assert plan.verify(*args).full
    time.sleep(SETTLE)
    assert plan.verify("--no-cache").full


def test_a_failed_verify_is_answered_with_its_exit_code(plan: Plan) -> None:
    plan.remembered()
    cases = plan.src / "greet/cases.yaml"
    cases.write_text(cases.read_text().replace('"hi\\n"', '"ho\\n"'))  # the expectation
    failed = plan.verify()
    assert failed.full and failed.code == 1 and "=== FAILED greet/release: says hi" in failed.out
    answer = plan.remembered()
    assert answer.code == 1 and times_out(answer.out) == times_out(failed.out)
    assert answer.out.endswith("2 passed, 2 failed (4 cached)\n")


@pytest.mark.parametrize("change", ["golden", "source", "input", "runner", "store", "env",
                                    "selection", "orphan"])
def test_each_change_is_a_full_run(plan: Plan, change: str) -> None:
    before = plan.remembered()
    env = None
    args: list[str] = []
    if change == "golden":  # an expected output, in its golden file: same size
        (plan.src / "greet/golden/upper.out").write_text("ABD\n")
    elif change == "source":
        source = plan.src / "greet/hi.c"
        source.write_text(source.read_text().replace('"hi"', '"ho"'))
    elif change == "input":  # the data a case reads on its stdin
        (plan.src / "greet/data/in.txt").write_text("abd\n")
    elif change == "runner":  # the runner's program replaced by another that does the same
        plan.wrap.unlink()
        plan.wrap.write_text(WRAP + "# another\n")
        plan.wrap.chmod(0o755)
    elif change == "store":  # the realised paths collected
        roots = run_recipe("store", "roots", "--store", plan.store).stdout.split()
        for root in (r for r in roots if r.startswith("realise:")):
            run_recipe("store", "roots", "--remove", root, "--store", plan.store)
        assert run_recipe("store", "gc", "--store", plan.store).returncode == 0
    elif change == "env":  # a variable verify reads: the diff tool it hands mismatches to
        env = {**plan.env, "RECIPE_DIFF_TOOL": "true"}
    elif change == "selection":
        args = ["-k", "shouts"]
    elif change == "orphan":  # a golden file no case names: the report lists it
        (plan.src / "greet/golden/stale.out").write_text("old\n")
    after = plan.verify(*args, env=env)
    assert after.full
    expected = {
        "golden": "2 passed, 2 failed (4 cached)",
        "source": "2 passed, 2 failed",  # the project's paths are new: every case runs
        "input": "2 passed, 2 failed (2 cached)",
        "runner": "4 passed (4 cached)",
        "store": "4 passed",
        "env": "4 passed (4 cached)",
        "selection": "2 passed (2 cached)",
        "orphan": "4 passed (4 cached)",
    }[change]
    assert after.out.splitlines()[-1] == expected, after.out
    if change == "orphan":
        assert "orphaned golden file greet/golden/stale.out" in after.out
    if change in ("runner", "env"):
        assert times_out(after.out) == times_out(before.out)
    # And the runs after it, from the outcome cache, are remembered again (with a diff tool
    # never: it is handed the mismatches).
    if change != "env":
        again = plan.remembered(*args)
        assert again.out.splitlines()[-1].startswith(expected.split(" (")[0])


def test_a_deleted_action_result_or_a_damaged_record_is_a_full_run(plan: Plan) -> None:
    before = plan.remembered()
    records = list((plan.src / ".recipe/cache").glob("verify-*.marshal"))
    assert len(records) == 1
    records[0].write_bytes(b"\x00garbage")
    again = plan.verify()
    assert again.full and times_out(again.out) == times_out(before.out)
    plan.remembered()
    # An outcome's action result gone (a collection, by hand): the case runs again.
    actions = sorted((plan.store / ".recipe/ac").rglob("*.json"))
    assert actions
    for action in actions:
        action.unlink()
    again = plan.verify()
    assert again.full and again.out.splitlines()[-1] == "4 passed"


def test_only_the_words_of_a_verify_that_writes_nothing_are_read_before_argparse() -> None:
    from engine.cli import noop

    read = [["verify", "p.yaml"], ["verify", "-k", "!slow", "p.yaml", "--json"],
            ["verify", "p.yaml", "-t", "debug", "-p", "a", "-j", "2", "--failing-rows", "3",
             "--keep-going", "--store", "s"]]
    assert [noop.plan_of(words) for words in read] == ["p.yaml"] * 3
    left = [["verify", "p.yaml", "--update"], ["verify", "p.yaml", "--no-cache"],
            ["verify", "p.yaml", "--prune"], ["verify", "p.yaml", "--junit", "r.xml"],
            ["verify", "p.yaml", "--html", "r.html"], ["verify", "p.yaml", "--diff-tool", "x"],
            ["verify", "p.yaml", "--interactive"], ["verify", "p.yaml", "--remote-upload"],
            ["verify", "p.yaml", "-kslow"], ["verify", "p.yaml", "q.yaml"], ["verify", "-k"],
            ["verify", "p.yaml", "--root", "r"], ["verify", "--help"]]
    assert [noop.plan_of(words) for words in left] == [None] * len(left)


def test_a_run_that_relied_on_a_probe_of_the_kernel_is_never_remembered(tmp_path: Path) -> None:
    from engine import watch

    plan = tmp_path / "plan.yaml"
    plan.write_text("kind: plan\n")
    later = time.time_ns() + 10 * memo.RACY_NS  # as if the run started long after the write
    for probed in (False, True):
        with watch.recording() as seen:
            watch.seen(plan)
            if probed:
                watch.unknowable("binfmt_misc namespace probe")
        written = memo.remember(plan, "verify", (("words", (str(probed),)),), later, seen,
                                tmp_path / "store", [], {}, output="", code=0)
        assert written is not probed
