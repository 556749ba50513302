"""The README's main job: every bundled case passes, built into a fresh store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import run_recipe

PLAN = Path(__file__).parent.parent / "recipes" / "plan.yaml"


@pytest.mark.parametrize("target", ["release", pytest.param("small", marks=pytest.mark.slow)])
def test_bundled_recipes_verify(tmp_path, target):
    done = run_recipe("verify", PLAN, "-t", target, "--store", tmp_path / "store")
    assert done.returncode == 0, done.stdout + done.stderr
    # 45 + rstats (10) + tally (7) + the wordcount eval case, then one example per kind of
    # ending and input: a crash expected by tally, wc's file placed by from/to, strutil's
    # expected failure (xfail) and wordcount's skipped case; then tally's 2 cases of files it
    # writes and wordcount's 4 of patterns; then wordcount's function case
    assert done.stdout.splitlines()[-1] == "72 passed, 1 xfailed, 1 skipped"


def test_the_generated_functions_plan_verifies(tmp_path):
    # recipes/generated: its own plan, with crates from Debian's registry (.ci/run installs them)
    if not any(Path("/usr/share/cargo/registry").glob("serde_json-*")) and not os.environ.get("CI"):
        pytest.skip("needs Debian's packaged crates (librust-serde-json-dev)")
    plan = PLAN.parent / "generated" / "plan.yaml"
    done = run_recipe("verify", plan, "--store", tmp_path / "store")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == "5 passed"
