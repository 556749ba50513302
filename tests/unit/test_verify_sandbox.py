"""Where cases may write, and how much: not into /dev/shm (shared by every user), no more than
their scratch_limit, nothing left in the system's temporary folder by a killed run, and a
--junit that cannot be written refused before any case runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from engine.verify import landlock
from tests.conftest import run_recipe, write_tree

TOOL_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void say(const char *what, int ok) { printf("%s: %s\n", what, ok ? "ok" : strerror(errno)); }

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "ok")) { puts("ok"); return 0; }
    if (!strcmp(mode, "shm")) {            /* argv[2]: a file the test put in /dev/shm */
        int fd = open(argv[2], O_WRONLY | O_TRUNC);
        say("overwrite", fd >= 0);
        say("delete", unlink(argv[2]) == 0);
        char renamed[4096];
        snprintf(renamed, sizeof renamed, "%s.moved", argv[2]);
        say("rename", rename(argv[2], renamed) == 0);
        fd = open(argv[3], O_WRONLY | O_CREAT | O_EXCL, 0600);
        say("create", fd >= 0);
        say("shm_open", shm_open(argv[4], O_RDWR | O_CREAT | O_EXCL, 0600) >= 0);
        say("sem_open", sem_open(argv[4], O_CREAT | O_EXCL, 0600, 0) != SEM_FAILED);
        sem_t unnamed;
        say("sem_init", sem_init(&unnamed, 1, 0) == 0);
        void *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                            -1, 0);
        say("mmap shared", shared != MAP_FAILED);
        return 0;
    }
    if (!strcmp(mode, "fill")) {           /* argv[2] MiB into one file, argv[3] into many */
        static char buf[1 << 20];
        memset(buf, 'x', sizeof buf);
        FILE *f = fopen("big", "w");
        for (int i = 0; i < atoi(argv[2]); i++) fwrite(buf, 1, sizeof buf, f);
        fclose(f);
        for (int i = 0; argc > 3 && i < atoi(argv[3]); i++) {
            char name[64];
            snprintf(name, sizeof name, "small-%d", i);
            f = fopen(name, "w");
            fwrite(buf, 1, 65536, f);
            fclose(f);
        }
        puts("done");
        return 0;
    }
    if (!strcmp(mode, "sleep")) { fclose(fopen("started", "w")); sleep(60); return 0; }
    return 99;
}
"""

PROJECT = """
    kind: project
    name: sandbox
    version: "1.0"
    language: c
    outputs:
      - {name: tool, kind: executable, sources: [tool.c]}
    cases: [cases.yaml]
"""


def make_plan(root: Path, cases: dict[str, str]) -> Path:
    lines = ["kind: cases", "cases:"]
    lines += [f"  - {{name: {name}, run: tool, {spec}}}" for name, spec in cases.items()]
    write_tree(root, {"plan.yaml": "kind: plan\n", "sandbox/project.yaml": PROJECT,
                      "sandbox/tool.c": TOOL_C, "sandbox/cases.yaml": "\n".join(lines) + "\n"})
    return root / "plan.yaml"


def outcomes(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert "Traceback" not in done.stderr, done.stderr
    return {o["case"]: o for o in json.loads(done.stdout)["outcomes"]}


@pytest.mark.skipif(not landlock.abi(), reason="/dev/shm is confined by Landlock")
def test_a_case_cannot_touch_dev_shm_files_of_others_nor_make_its_own(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    theirs = Path(f"/dev/shm/recipe-test-{token}")  # another user's or another case's
    mine = f"/dev/shm/recipe-test-{token}-new"
    theirs.write_text("secret\n")
    expected = "".join(f"{what}: {result}\\n" for what, result in [
        ("overwrite", "Permission denied"), ("delete", "Permission denied"),
        ("rename", "Permission denied"), ("create", "Permission denied"),
        ("shm_open", "Permission denied"), ("sem_open", "Permission denied"),
        ("sem_init", "ok"), ("mmap shared", "ok")])
    args = f"[shm, {theirs}, {mine}, /recipe-test-{token}-obj]"
    case = f'args: {args}, expect: {{stdout: "{expected}"}}'
    plan = make_plan(tmp_path / "src", {"first": case, "second": case})
    try:
        done = run_recipe("verify", plan, "--store", tmp_path / "store", "--json")
        got = outcomes(done)
        assert got["first"]["status"] == got["second"]["status"] == "passed", got
        assert theirs.read_text() == "secret\n"
        assert not Path(mine).exists() and not Path(f"{theirs}.moved").exists()
        assert not list(Path("/dev/shm").glob(f"*recipe-test-{token}-obj"))
    finally:
        for leftover in Path("/dev/shm").glob(f"*recipe-test-{token}*"):
            leftover.unlink()


def test_a_case_writing_past_its_scratch_limit_fails_and_its_writes_go(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src", {
        "one big file": 'args: [fill, "64"], scratch_limit: 8MiB, expect: {stdout: "done\\n"}',
        "many files": 'args: [fill, "0", "400"], scratch_limit: 4MiB, '
                      'expect: {stdout: "done\\n"}',
        "within": 'args: [fill, "2"], scratch_limit: 4194304, expect: {stdout: "done\\n"}',
        "default": 'args: [fill, "300"], expect: {stdout: "done\\n"}'})
    store = tmp_path / "store"
    done = run_recipe("verify", plan, "--store", store, "--json", "-j", "1")
    got = outcomes(done)
    assert done.returncode == 1
    assert got["within"]["status"] == "passed"
    for name, limit in [("one big file", "8 MiB"), ("many files", "4 MiB"),
                        ("default", "256 MiB")]:
        assert got[name]["status"] == "failed", got[name]
        assert got[name]["message"] == f"its scratch folder exceeded {limit} (scratch_limit)"
    assert list((store / ".recipe" / "tmp").glob("*-case")) == []  # removed at once
    rerun = outcomes(run_recipe("verify", plan, "--store", store, "--json", "-k", "default"))
    assert rerun["default"]["cached"] is False  # such a run is never cached


@pytest.mark.parametrize("scratch_limit, line", [
    ('"12 PiB"', "invalid value '12 PiB' for 'scratch_limit' of case 'c'; write a size such "
                 "as 64MiB, 1GiB or 1048576 (bytes)"),
    ("0", "'scratch_limit' of case 'c' must be >= 1, not 0"),
    ('"2000 GiB"', "'scratch_limit' must be between 1 byte and 1TiB, not 2147483648000 bytes"),
])
def test_a_bad_scratch_limit_is_one_line_and_exit_2(tmp_path: Path, scratch_limit: str,
                                                    line: str) -> None:
    plan = make_plan(tmp_path / "src", {
        "c": f'args: [ok], scratch_limit: {scratch_limit}, expect: {{stdout: "ok\\n"}}'})
    done = run_recipe("verify", plan, "--store", tmp_path / "store")
    assert done.returncode == 2
    (shown,) = done.stderr.splitlines()
    assert shown.startswith(f"{tmp_path}/src/sandbox/cases.yaml:3:"), shown
    assert line in shown
    assert not (tmp_path / "store").exists()


def _wait_for(predicate, seconds: float = 120.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _recipe(args: list[str | Path], tmpdir: Path) -> subprocess.Popen[str]:
    """A recipe in its own session (so that the test can end all of it), with a private
    system temporary folder."""
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", *map(str, args)],
                            env={**os.environ, "TMPDIR": str(tmpdir)}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL to recipe alone, as a crash would; then its whole session (the test's own)."""
    proc.kill()
    proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]


def test_a_killed_verify_leaves_nothing_in_tmp_and_the_next_run_cleans_up(
        tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src", {"sleeps": 'args: [sleep], expect: {}',
                                        "passes": 'args: [ok], expect: {stdout: "ok\\n"}'})
    tmpdir, store = tmp_path / "sys-tmp", tmp_path / "store"
    tmpdir.mkdir()
    state_tmp = store / ".recipe" / "tmp"
    proc = _recipe(["verify", plan, "--store", store, "-k", "sleeps"], tmpdir)
    try:
        _wait_for(lambda: list(state_tmp.glob("*-case/work/started")))
    finally:
        _kill(proc)
    assert [p.name for p in tmpdir.iterdir()] == []
    (left,) = state_tmp.glob("*-case")
    done = run_recipe("verify", plan, "--store", store, "-k", "passes",
                      env={**os.environ, "TMPDIR": str(tmpdir)})
    assert done.returncode == 0, done.stderr
    assert not left.exists()
    assert [p.name for p in state_tmp.iterdir() if p.name.startswith(f"{proc.pid}")] == []
    assert [p.name for p in tmpdir.iterdir()] == []


def test_a_killed_eval_leaves_nothing_in_tmp(tmp_path: Path) -> None:
    from tests.repl_projects import make_plan as make_repl_plan

    plan = make_repl_plan(tmp_path / "src")
    tmpdir = tmp_path / "sys-tmp"
    tmpdir.mkdir()
    proc = _recipe(["eval", plan, "-p", "calc", "-e", 'puts("sleeping"); fflush(stdout); '
                    'for (;;) {}'], tmpdir)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "sleeping\n"
    finally:
        _kill(proc)
    assert [p.name for p in tmpdir.iterdir()] == []


@pytest.mark.parametrize("junit", ["folder", "missing/report.xml", "read-only/report.xml"])
def test_a_junit_report_that_cannot_be_written_is_refused_before_any_case_runs(
        tmp_path: Path, junit: str) -> None:
    plan = make_plan(tmp_path / "src", {"passes": 'args: [ok], expect: {stdout: "ok\\n"}'})
    (tmp_path / "folder").mkdir()
    (tmp_path / "read-only").mkdir(mode=0o555)
    if junit.startswith("read-only") and os.access(tmp_path / "read-only", os.W_OK):
        pytest.skip("root writes into a read-only folder")
    done = run_recipe("verify", plan, "--store", tmp_path / "store", "--junit",
                      tmp_path / junit, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"recipe: --junit {tmp_path / junit}: ")
    assert not (tmp_path / "store").exists()  # nothing built, no case run, nothing cached
    assert not list(tmp_path.glob("folder/*")) and not list(tmp_path.glob("read-only/*"))
