"""Shared fixtures: real document trees in temporary folders, and running the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# A suite started in the background by a script (`cmd &`, `nohup`) inherits SIGINT, SIGQUIT or
# SIGHUP ignored, and so would every recipe it starts, since ignored signals survive exec: a ^C
# test then waits forever, a SIGHUP test finds its eval still running, and the server refuses
# its callers (their ignored signals differ from its own). The tests run recipe as a terminal's
# user does.
signal.signal(signal.SIGINT, signal.default_int_handler)
for _number in (signal.SIGHUP, signal.SIGQUIT):
    signal.signal(_number, signal.SIG_DFL)

# A `recipe server` the developer left running must not take the tests' evals (those that are
# about the server say otherwise: tests/test_server.py).
os.environ["RECIPE_SERVER"] = "off"


def write_tree(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` below root (text is dedented)."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def run_recipe(*args: str | Path, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a child process: exit codes and streams as a user sees them."""
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *map(str, args)],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@contextmanager
def recipe_server(env: dict[str, str] | None = None) -> Iterator[int]:
    """``recipe server start``; its pid. Stopped, and its process gone, afterwards."""
    import json

    started = run_recipe("server", "start", "--json", env=env)
    assert started.returncode == 0, started.stderr
    pid = int(json.loads(started.stdout)["pid"])
    try:
        yield pid
    finally:
        run_recipe("server", "stop", env=env)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def tree(tmp_path: Path):
    def make(files: dict[str, str], where: str = "src") -> Path:
        return write_tree(tmp_path / where, files)
    return make


# -- past one machine (tests/remote.py, tests/servers.py): one definition for every test module

@pytest.fixture
def tc(tmp_path: Path):
    """Wrapper compilers that log every compile and link (tests/toolchains.py)."""
    from tests.toolchains import make_toolchain

    return make_toolchain(tmp_path / "toolchain")


@pytest.fixture
def server(tmp_path: Path):
    """Debian's nginx as a Bazel HTTP remote cache on 127.0.0.1 (tests/servers.py)."""
    from tests.servers import Nginx

    with Nginx(tmp_path / "nginx") as running:
        yield running


@pytest.fixture
def cluster(tmp_path: Path):
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (tests/servers.py)."""
    from tests.servers import DaskCluster

    with DaskCluster(tmp_path / "dask") as running:
        yield running
