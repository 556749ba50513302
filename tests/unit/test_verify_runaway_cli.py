"""`recipe verify` on a plan whose cases run away: each misbehaving case fails with a clear
message, the others still pass, nothing of theirs survives the command, and nothing they tried
to write into the plan's folder or the store is there afterwards."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.verify import landlock
from tests.conftest import run_recipe, write_tree
from tests.unit.test_verify_runaway import _kill_all, _marked

TOOL_C = r"""
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int append(const char *path) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0 || write(fd, "x", 1) != 1) { perror(path); return 1; }
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    char self[4096], path[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = 0;
    char *bin = dirname(self);                        /* <store>/<name>/bin */
    if (!strcmp(mode, "ok")) { puts("ok"); return 0; }
    if (!strcmp(mode, "spin")) { for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(mode, "flood")) {
        static char buf[65536];
        memset(buf, 'x', sizeof buf);
        for (;;) if (write(1, buf, sizeof buf) < 0) return 3;
    }
    if (!strcmp(mode, "escape")) {                    /* a setsid()'d double-forked daemon */
        int p[2];
        if (pipe(p) < 0) return 2;
        if (fork() == 0) {
            setsid();
            if (fork() == 0) { signal(SIGTERM, SIG_IGN); close(p[1]); for (;;) pause(); }
            _exit(0);
        }
        close(p[1]);
        char c;
        (void)!read(p[0], &c, 1);                     /* EOF: the daemon runs */
        puts("started");
        return 0;
    }
    if (!strcmp(mode, "stdin")) {                     /* read stdin to its end, however long */
        char buf[4096];
        size_t total = 0;
        ssize_t got;
        while ((got = read(0, buf, sizeof buf)) != 0) if (got > 0) total += (size_t)got;
        printf("eof after %zu bytes\n", total);
        return 0;
    }
    if (!strcmp(mode, "scratch")) {
        snprintf(path, sizeof path, "%s/t", getenv("TMPDIR"));
        if (append("here.txt") || append(path)) return 1;
        puts("ok");
        return 0;
    }
    if (!strcmp(mode, "write")) return append(argv[2]);
    if (!strcmp(mode, "write-self")) {
        snprintf(path, sizeof path, "%s/intruder", bin);
        return append(path);
    }
    if (!strcmp(mode, "write-state")) {
        snprintf(path, sizeof path, "%s/../../.recipe/intruder", bin);
        return append(path);
    }
    return 99;
}
"""

PROJECT = """
    kind: project
    name: runaway
    version: "1.0"
    language: c
    outputs:
      - {name: tool, kind: executable, sources: [tool.c]}
    cases: [cases.yaml]
"""

CASES = {
    "passes": '{args: [ok], expect: {stdout: "ok\\n"}}',
    "spins": "{args: [spin], timeout: 0.5, expect: {}}",
    "floods": "{args: [flood], expect: {}}",
    "escapes": '{args: [escape], env: {MARK: "TOKEN"}, expect: {stdout: "started\\n"}}',
    "reads stdin": '{args: [stdin], expect: {stdout: "eof after 0 bytes\\n"}}',
    "uses its scratch folder": '{args: [scratch], expect: {stdout: "ok\\n"}}',
    "writes into the plan": "{args: [write, PLANFILE], expect: {}}",
    "writes into its store path": "{args: [write-self], expect: {}}",
    "writes into the store state": "{args: [write-state], expect: {}}",
}


def make_plan(root: Path, names: list[str], token: str = "") -> Path:
    plan_file = root / "runaway" / "project.yaml"
    lines = ["kind: cases", "cases:"]
    for name in names:
        spec = CASES[name].replace("TOKEN", token).replace("PLANFILE", str(plan_file))
        lines.append(f"  - {{name: {name}, run: tool, {spec[1:]}")
    write_tree(root, {"plan.yaml": "kind: plan\n", "runaway/project.yaml": PROJECT,
                      "runaway/tool.c": TOOL_C, "runaway/cases.yaml": "\n".join(lines) + "\n"})
    return plan_file


def _intruders(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("intruder")]


def test_runaway_cases_fail_clearly_and_leave_nothing(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    # Without Landlock the write check cannot tell which of the cases running together wrote:
    # the writers are then left to the next test, which runs one case at a time.
    names = [name for name in CASES if landlock.abi() or not name.startswith("writes")]
    plan_file = make_plan(tmp_path / "src", names, token)
    text = plan_file.read_text()
    store = tmp_path / "store"
    try:
        result = run_recipe("verify", tmp_path / "src" / "plan.yaml", "--store", store, "--json")
        survivors = _marked(token)
    finally:
        _kill_all(_marked(token))
    assert result.returncode == 1, result.stderr
    assert survivors == []  # nothing of the escaped daemon outlives `recipe verify`
    got = {o["case"]: o for o in json.loads(result.stdout)["outcomes"]}
    passed = ["passes", "escapes", "reads stdin", "uses its scratch folder"]
    assert {name for name, o in got.items() if o["status"] == "passed"} == set(passed)
    assert got["spins"]["message"] == "timed out after 0.5s"
    assert got["floods"]["message"] == "stdout exceeded 16 MiB"
    if landlock.abi():  # refused by Landlock: the program's own failure, and why
        for name in ("writes into the plan", "writes into its store path",
                     "writes into the store state"):
            assert got[name]["message"] == "exit code differs (exit 1, expected 0)", name
            assert "intruder: Permission denied" in got[name]["detail"] \
                or f"{plan_file}: Permission denied" in got[name]["detail"]
            assert "a case may write only into its working folder" in got[name]["detail"]
        assert plan_file.read_text() == text
        assert _intruders(store, tmp_path / "src") == []


def test_without_landlock_writes_fail_the_case_after_the_fact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(landlock, "ENABLED", False)
    monkeypatch.delenv("RECIPE_STORE", raising=False)
    root = tmp_path / "src"
    plan_file = make_plan(root, ["passes", "writes into the plan", "writes into its store path"])
    monkeypatch.chdir(root)
    # No --store: the store is the folder beside the plan, inside the watched folder, and the
    # outcomes recipe caches there during the run are not blamed on the cases. One case at a
    # time: the check cannot tell which of two cases running together wrote.
    assert main(["verify", "plan.yaml", "--json", "--no-cache", "-j", "1"]) == 1
    got = {o["case"]: o for o in json.loads(capsys.readouterr().out)["outcomes"]}
    assert got["passes"]["status"] == "passed"
    assert got["writes into the plan"]["message"] == f"wrote into read-only {plan_file}"
    (intruder,) = _intruders(root / "store")
    assert got["writes into its store path"]["message"] == f"wrote into read-only {intruder}"
    assert intruder.parent.name == "bin"
