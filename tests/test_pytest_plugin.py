"""The pytest plugin (issue 18): ``pytest --recipe PLAN`` runs a real tiny C plan's cases as
pytest items, through pytest's own ``pytester`` (each run a fresh pytest process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import write_tree

pytest_plugins = ["pytester"]

PLAN = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets: {release: {opt: release}, debug: {opt: debug}}
        default_targets: [release]
    """,
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs: [{name: hello, kind: executable}]
    """,
    "hello/src/main.c": """
        #include <stdio.h>
        int main(void) { puts("hi"); return 0; }
    """,
    "hello/src/twice.c": """
        int twice(int x) { return 2 * x; }
    """,
    "hello/cases/hello.yaml": """
        kind: cases
        cases:
          - name: greets
            run: hello
            expect: {stdout: "hi\\n"}
          - name: says bye
            run: hello
            expect: {stdout: "bye\\n"}
          - name: doubles
            function: int twice(int x)
            table: [[2, 4], [0, 0]]
    """,
}


@pytest.fixture
def plan_dir(pytester: pytest.Pytester) -> Path:
    write_tree(pytester.path, PLAN)
    return pytester.path


def test_cases_are_items_a_failure_shows_recipes_diff(pytester: pytest.Pytester,
                                                      plan_dir: Path) -> None:
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml", "-v",
                                           f"--junitxml={plan_dir / 'report.xml'}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "plan.yaml::hello/release/greets PASSED*",
        "plan.yaml::hello/release/says bye FAILED*",
        "plan.yaml::hello/release/doubles PASSED*",
    ])
    # the failure text is recipe's report: the message, then the unified diff
    result.stdout.fnmatch_lines(["*_ hello/release/says bye _*", "failed: stdout differs",
                                 "--- expected stdout", "+++ observed stdout", "@@ -1 +1 @@",
                                 "-bye", "+hi"])
    result.stdout.fnmatch_lines(["FAILED plan.yaml::hello/release/says bye - failed: stdout "
                                 "differs"])
    assert "Traceback" not in result.stdout.str()
    # realised once for the session, whatever the number of items
    assert result.stdout.lines.count(
        next(line for line in result.stdout.lines if line.startswith("recipe: realised"))) == 1
    result.stdout.fnmatch_lines(["recipe: realised 1 path of plan.yaml (1 built) in *"])
    xml = (plan_dir / "report.xml").read_text()
    assert 'name="hello/release/says bye"' in xml and "stdout differs" in xml


def test_selection_by_k_target_and_last_failed(pytester: pytest.Pytester,
                                               plan_dir: Path) -> None:
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml", "--recipe-target", "debug",
                                           "--recipe-target", "release", "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"plan.yaml::hello/{t}/{c}" for t in ("debug", "release")
                                 for c in ("greets", "says bye", "doubles")])
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml", "-k", "greets")
    result.assert_outcomes(passed=1, deselected=2)
    pytester.runpytest_subprocess("--recipe", "plan.yaml").assert_outcomes(passed=2, failed=1)
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml", "--lf", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure",
                                 "plan.yaml::hello/release/says bye FAILED*"])
    # an item named by its node id, as an IDE runs one
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml",
                                           "plan.yaml::hello/release/doubles")
    result.assert_outcomes(passed=1)


def test_xfail_and_skip_cases_are_pytest_xfail_skip_and_a_strict_xpass(
        pytester: pytest.Pytester, plan_dir: Path) -> None:
    (plan_dir / "hello" / "cases" / "hello.yaml").write_text(textwrap.dedent("""\
        kind: cases
        cases:
          - {name: known bug, run: hello, xfail: prints hi, expect: {stdout: "bye\\n"}}
          - {name: fixed bug, run: hello, xfail: was broken, expect: {stdout: "hi\\n"}}
          - {name: later, run: hello, skip: not yet, expect: {stdout: ""}}
    """))
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml", "-rsx")
    result.assert_outcomes(xfailed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["SKIPPED * not yet"])
    result.stdout.fnmatch_lines(["XFAIL plan.yaml::hello/release/known bug - xfail: prints hi*"])


def test_a_build_failure_fails_the_items_with_the_compilers_words(
        pytester: pytest.Pytester, plan_dir: Path) -> None:
    (plan_dir / "hello/src/main.c").write_text("int main(void) { return nope; }\n")
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*'nope' undeclared*"])
    assert "Traceback" not in result.stdout.str()


def test_a_wrong_plan_is_one_line_not_a_traceback(pytester: pytest.Pytester,
                                                  plan_dir: Path) -> None:
    (plan_dir / "plan.yaml").write_text("kind: plan\nprojects: [\"*/project.yaml\"]\n"
                                        "targetz: {}\n")
    result = pytester.runpytest_subprocess("--recipe", "plan.yaml")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error
    result.stdout.fnmatch_lines(["plan.yaml:3:1: unknown key 'targetz' in plan*"])
    assert "Traceback" not in result.stdout.str()
    result = pytester.runpytest_subprocess("--recipe", "nowhere.yaml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --recipe nowhere.yaml: no such file; name a plan*"])


def test_without_recipe_the_plugin_is_loaded_and_does_nothing(pytester: pytest.Pytester,
                                                              plan_dir: Path) -> None:
    pytester.makepyfile(test_plain="def test_one():\n    assert True\n")
    result = pytester.runpytest_subprocess("-v")
    result.assert_outcomes(passed=1)  # the plan beside it is not collected
    result.stdout.fnmatch_lines(["plugins:*recipe-*"])
    assert "recipe: realised" not in result.stdout.str()
    # loading it imports none of recipe's modules (a normal run pays nothing for it)
    code = textwrap.dedent("""
        import sys
        import engine.pytest_plugin
        print(sorted(m for m in sys.modules if m.startswith("engine")))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "['engine', 'engine.pytest_plugin']", done.stderr
