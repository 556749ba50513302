"""Debian's reprotest on ``recipe release`` of the bundled example plan (``recipes/plan.yaml``).

reprotest copies the plan's folder twice and runs the release in each: a control build, then an
experiment under every variation listed in ``VARIATIONS`` (the ones that need no privileges:
no sudo, no second user, no FUSE, no namespaces), and compares the artifacts with diffoscope.
Each build names its own fresh store inside its copy, so nothing is shared and no action-cache
hit can hide a difference. ``.ci/run`` installs reprotest (and faketime for ``time``); on CI
a missing reprotest is a failure, elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Listed in docs/releases.md; not varied: user_group (needs sudo and a
# second user), fileordering (disorderfs, a FUSE mount), domain_host (user namespaces/sudo).
VARIATIONS = ("environment", "build_path", "kernel", "aslr", "num_cpus", "time", "home",
              "locales", "exec_path", "timezone", "umask")
ARTIFACTS = ["SHA256SUMS", "histogram-2.0.1-release.tar.gz", "provenance.intoto.jsonl",
             "rstats-0.3.0-release.tar.gz", "strutil-0.3.0-release.tar.gz",
             "tally-0.1.0-release.tar.gz", "wordcount-1.2.0-release.tar.gz"]


@pytest.mark.slow
def test_reprotest_finds_the_release_of_the_example_plan_reproducible(tmp_path: Path) -> None:
    missing = [tool for tool in ("reprotest", "faketime") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed: .ci/run must install it")
        pytest.skip(f"{', '.join(missing)} not installed")
    source = tmp_path / "plan"
    shutil.copytree(REPO / "recipes", source, ignore=shutil.ignore_patterns(".recipe"))
    # The build sees only what reprotest passes on: the recipe under test is named here.
    # rustup's rustc proxy finds its toolchains through $RUSTUP_HOME, else $HOME, which the
    # home variation changes: name the folder (the toolchain is part of the identity anyway).
    rustup = os.environ.get("RUSTUP_HOME") or str(Path.home() / ".rustup")
    pinned = f"RUSTUP_HOME={shlex.quote(rustup)} " if Path(rustup).is_dir() else ""
    command = (f"{pinned}PYTHONPATH={shlex.quote(str(REPO))} {shlex.quote(sys.executable)} -m "
               "engine.cli.main release plan.yaml --store store --out out")
    (tmp_path / "tmp").mkdir()
    argv = ["reprotest", "--verbosity", "1",
            "--variations=" + ",".join(["-all", *(f"+{v}" for v in VARIATIONS)]),
            "--store-dir", str(tmp_path / "artifacts"), "-s", str(source), command, "out/*"]
    if shutil.which("diffoscope") is None:
        argv.insert(1, "--no-diffoscope")
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    done = subprocess.run(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=900)
    log = done.stdout + done.stderr
    assert done.returncode == 0, log[-6000:]
    assert "Reproduction successful" in log
    for variation in VARIATIONS:  # each one really applied to the experiment
        word = {"time": "FAKETIME", "locales": "LOCALE"}.get(variation, variation.upper())
        assert f"{word} variation:" in log, variation
    # reprotest keeps the control's artifacts, and links the experiment's to them only when
    # they were identical.
    stored = tmp_path / "artifacts"
    assert sorted(os.listdir(stored / "control/source-root/out")) == ARTIFACTS
    assert os.readlink(stored / "experiment-1") == "control"
    sums = (stored / "SHA256SUMS").read_text().splitlines()
    assert sorted(line.split("  ./out/")[1] for line in sums) == ARTIFACTS
