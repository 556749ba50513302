"""The process-case runner and the case runner, against a real compiled program."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from engine.documents.models import Case, Expect
from engine.errors import Pos
from engine.verify import cache
from engine.verify.outcome import Outcome
from engine.verify.process import CLEAN_ENV, run_process
from engine.verify.runner import Job, Settings, execute, run_jobs

TOOL_C = r"""
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

/* One program, many behaviours: argv[1] picks one. */
int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "echo";
    if (!strcmp(mode, "echo")) {            /* stdin to stdout */
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) fwrite(buf, 1, n, stdout);
        return 0;
    }
    if (!strcmp(mode, "args")) {
        for (int i = 2; i < argc; i++) printf("[%s]\n", argv[i]);
        return 0;
    }
    if (!strcmp(mode, "environ")) { for (char **e = environ; *e; e++) puts(*e); return 0; }
    if (!strcmp(mode, "stderr")) { fputs("out\n", stdout); fputs(argv[2], stderr); return 0; }
    if (!strcmp(mode, "exit")) { puts("bye"); return atoi(argv[2]); }
    if (!strcmp(mode, "sleep")) { for (;;) pause(); }
    if (!strcmp(mode, "orphan")) {
        pid_t pid = fork();
        if (pid == 0) { execl("/bin/sleep", "sleep", "1000", (char *)0); _exit(127); }
        printf("%d\n", (int)pid);
        usleep(50000); /* let the child reach exec */
        return 0;
    }
    if (!strcmp(mode, "flood")) {
        static char buf[65536];
        memset(buf, 'x', sizeof buf);
        for (;;) fwrite(buf, 1, sizeof buf, stdout);
    }
    if (!strcmp(mode, "segv")) { fflush(stdout); raise(SIGSEGV); }
    if (!strcmp(mode, "cat")) {             /* files from the working folder */
        for (int i = 2; i < argc; i++) {
            FILE *f = fopen(argv[i], "rb");
            if (!f) { printf("missing %s\n", argv[i]); continue; }
            int c;
            while ((c = fgetc(f)) != EOF) putchar(c);
            fclose(f);
        }
        return 0;
    }
    if (!strcmp(mode, "pwd")) { char b[4096]; puts(getcwd(b, sizeof b)); return 0; }
    if (!strcmp(mode, "readall")) {         /* read stdin to its end, then say so */
        size_t n = 0;
        while (getchar() != EOF) n++;
        printf("eof after %zu bytes\n", n);
        return 0;
    }
    return 99;
}
"""


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake realised store path holding ``bin/tool``."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("store") / "0123456789abcdfghijklmnpqrsvwxyz-tool-1.0-release"
    (root / "bin").mkdir(parents=True)
    source = root.parent / "tool.c"
    source.write_text(TOOL_C)
    subprocess.run(["gcc", "-O1", "-o", str(root / "bin" / "tool"), str(source)], check=True)
    return root


def make_case(folder: Path, *args: str, name: str = "a case", expect: Expect | None = None,
              index: int = 0, **fields: object) -> Case:
    file = folder / "cases.yaml"
    raw: dict[str, object] = {"name": name, "run": "tool", "args": list(args), "expect": {}}
    for key, value in fields.items():
        raw[key] = value.decode() if isinstance(value, bytes) else value
    return Case(name=name, kind="process", file=file, index=index, pos=Pos(file, index + 3),
                expect=expect or Expect(), run="tool", args=args, raw=raw,
                **fields)  # type: ignore[arg-type]


def observe(store_path: Path, case: Case, tmp_path: Path, cap: int = 1 << 20):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    try:
        return run_process(case, store_path / "bin" / "tool", scratch, cap=cap)
    finally:
        shutil.rmtree(scratch)


def run_case(store_path: Path, case: Case, **settings: object) -> Outcome:
    return execute(Job("tool", "release", case, store_path), Settings(**settings))  # type: ignore


# -- the process runner ---------------------------------------------------------------------

def test_stdin_bytes_reach_the_program(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "echo", stdin=b"a\x00b\n"), tmp_path)
    assert (obs.stdout, obs.stderr, obs.exit, obs.signal) == (b"a\x00b\n", b"", 0, None)


def test_stdin_file_is_read_relative_to_the_cases_file(store_path: Path, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "in.txt").write_bytes(b"from a file\n")
    obs = observe(store_path, make_case(tmp_path, "echo", stdin_file="data/in.txt"), tmp_path)
    assert obs.stdout == b"from a file\n"


def test_without_stdin_a_reader_sees_eof_at_once(store_path: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    obs = observe(store_path, make_case(tmp_path, "readall", timeout=5.0), tmp_path)
    assert obs.stdout == b"eof after 0 bytes\n"
    assert time.monotonic() - start < 2


def test_large_stdin_is_written_while_output_is_read(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "echo", stdin=b"y" * (3 << 20)), tmp_path,
                  cap=4 << 20)
    assert obs.stdout == b"y" * (3 << 20)


def test_arguments_are_passed_verbatim(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "args", "-w", "two words", ""), tmp_path)
    assert obs.stdout == b"[-w]\n[two words]\n[]\n"


def test_environment_is_clean_plus_the_cases_env(store_path: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEAKED_FROM_CALLER", "1")
    obs = observe(store_path, make_case(tmp_path, "environ", env={"GREETING": "hi", "TZ": "X"}),
                  tmp_path)
    seen = dict(line.split("=", 1) for line in obs.stdout.decode().splitlines())
    tmp = str(tmp_path / "scratch" / "tmp")  # the case's own temporary folder
    path = f"{store_path / 'bin'}:{CLEAN_ENV['PATH']}"  # the project's programs come first
    assert seen == {**CLEAN_ENV, "GREETING": "hi", "TZ": "X", "TMPDIR": tmp, "PATH": path}


def test_files_are_copied_with_their_layout(store_path: Path, tmp_path: Path) -> None:
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "a.txt").write_text("A\n")
    (tmp_path / "data" / "sub" / "b.txt").write_text("B\n")
    case = make_case(tmp_path, "cat", "data/a.txt", "data/sub/b.txt",
                     files=("data/a.txt", "data/sub/b.txt"))
    assert observe(store_path, case, tmp_path).stdout == b"A\nB\n"


def test_exit_code_and_stderr(store_path: Path, tmp_path: Path) -> None:
    assert observe(store_path, make_case(tmp_path, "exit", "3"), tmp_path).exit == 3
    obs = observe(store_path, make_case(tmp_path, "stderr", "warn\n"), tmp_path)
    assert (obs.stdout, obs.stderr) == (b"out\n", b"warn\n")


def test_signal_is_named(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "segv"), tmp_path)
    assert (obs.exit, obs.signal) == (None, "SIGSEGV")


def test_timeout_kills_the_group(store_path: Path, tmp_path: Path) -> None:
    start = time.monotonic()
    obs = observe(store_path, make_case(tmp_path, "sleep", timeout=0.3), tmp_path)
    assert obs.timed_out and not obs.completed
    assert time.monotonic() - start < 2


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (a container's init may never reap it) is dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _dies_soon(pid: int) -> bool:
    """SIGKILL is sent; give the kernel a moment to finish the process off."""
    deadline = time.monotonic() + 2
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _alive(pid)


def test_orphans_do_not_outlive_their_case(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "orphan", timeout=5.0), tmp_path)
    assert obs.exit == 0 and _dies_soon(int(obs.stdout))


def test_without_pidfd_exits_are_polled(store_path: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # older kernels and Pythons
    obs = observe(store_path, make_case(tmp_path, "orphan", timeout=5.0), tmp_path)
    assert obs.exit == 0 and _dies_soon(int(obs.stdout))
    assert observe(store_path, make_case(tmp_path, "sleep", timeout=0.2), tmp_path).timed_out
    assert observe(store_path, make_case(tmp_path, "exit", "4"), tmp_path).exit == 4


def test_output_past_the_cap_is_cut_and_flagged(store_path: Path, tmp_path: Path) -> None:
    obs = observe(store_path, make_case(tmp_path, "flood"), tmp_path, cap=64 << 10)
    assert obs.capped == "stdout" and len(obs.stdout) == 64 << 10


# -- the case runner --------------------------------------------------------------------------

def test_a_matching_case_passes(store_path: Path, tmp_path: Path) -> None:
    case = make_case(tmp_path, "echo", stdin=b"hi\n", expect=Expect(stdout=b"hi\n"))
    outcome = run_case(store_path, case)
    assert (outcome.status, outcome.message, outcome.cached) == ("passed", "", False)


def test_a_mismatch_names_what_differed(store_path: Path, tmp_path: Path) -> None:
    case = make_case(tmp_path, "stderr", "oops\n",
                     expect=Expect(stdout=b"out\n", stderr=b"fine\n", exit=2))
    outcome = run_case(store_path, case)
    assert outcome.status == "failed"
    assert outcome.message == "stderr and exit code differ (exit 0, expected 2)"
    assert "-fine\n+oops\n" in outcome.detail
    assert "exit code: expected 2, got 0" in outcome.detail


def test_timeout_cap_and_signal_messages(store_path: Path, tmp_path: Path) -> None:
    slow = run_case(store_path, make_case(tmp_path, "sleep", timeout=0.2))
    assert (slow.status, slow.message) == ("failed", "timed out after 0.2s")
    flood = run_case(store_path, make_case(tmp_path, "flood"), cap=32 << 10)
    assert (flood.status, flood.message) == ("failed", "stdout exceeded 32 KiB")
    crash = run_case(store_path, make_case(tmp_path, "segv"))
    assert (crash.status, crash.message) == ("failed", "killed by SIGSEGV")


def test_scratch_is_the_working_folder_and_is_removed(store_path: Path, tmp_path: Path) -> None:
    outcome = run_case(store_path, make_case(tmp_path, "pwd"))
    assert outcome.observed is not None
    work = Path(outcome.observed.stdout.decode().strip())
    assert work.name == "work" and work.parent.name.startswith("recipe-case-")
    assert not work.parent.exists()


def test_missing_executable_is_an_error_outcome(store_path: Path, tmp_path: Path) -> None:
    case = make_case(tmp_path, "echo")
    case.run = "nope"
    outcome = run_case(store_path, case)
    assert outcome.status == "error" and "no executable 'nope'" in outcome.message


def test_a_function_case_without_its_plan_is_an_error(store_path: Path,
                                                      tmp_path: Path) -> None:
    case = make_case(tmp_path)  # function cases run: tests/unit/test_function_cases.py
    case.kind = "function"
    outcome = run_case(store_path, case)
    assert outcome.status == "error" and "a function case needs the plan" in outcome.message


def test_an_eval_case_without_its_plan_is_an_error(store_path: Path, tmp_path: Path) -> None:
    case = make_case(tmp_path)  # eval cases run: tests/unit/test_repl_eval_cases.py
    case.kind = "eval"
    outcome = run_case(store_path, case)
    assert (outcome.status, outcome.message) == ("error",
                                                 "eval cases need the plan and its store")


def test_a_crashing_format_is_an_error_not_a_crash(store_path: Path, tmp_path: Path) -> None:
    case = make_case(tmp_path, "echo", stdin_file="no/such/file")
    outcome = run_case(store_path, case)
    assert outcome.status == "error" and "FileNotFoundError" in outcome.message
    assert "Traceback" in outcome.detail


def test_jobs_run_in_parallel_and_come_back_in_order(store_path: Path, tmp_path: Path) -> None:
    jobs = [Job("tool", "release", make_case(tmp_path, "sleep", name=f"slow {i}", index=i,
                                             timeout=0.3), store_path) for i in range(4)]
    seen: list[str] = []
    start = time.monotonic()
    outcomes = run_jobs(jobs, workers=4, observe=lambda o: seen.append(o.case))
    assert time.monotonic() - start < 1.0  # four 0.3 s cases at once, not one after another
    assert [o.case for o in outcomes] == [f"slow {i}" for i in range(4)]
    assert sorted(seen) == [f"slow {i}" for i in range(4)]


# -- the outcome cache --------------------------------------------------------------------------

class DictStore:
    """The action-cache part of ``engine.store.Store``, in memory."""

    def __init__(self) -> None:
        self.actions: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}

    def get_action(self, key: str) -> dict | None:
        return self.actions.get(key)

    def put_action(self, key: str, result: dict) -> None:
        self.actions[key] = result

    def attach(self, name: str, actions: list[str]) -> None:
        pass  # nothing is collected in memory

    def put_blob(self, data: bytes) -> str:
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blobs[digest]


def _real_store(tmp_path: Path):
    try:
        from engine.store import Store
    except ImportError:
        pytest.skip("engine.store.Store is not written yet")
    return Store.open(tmp_path / "store")


@pytest.fixture(params=["memory", "store"])
def action_store(request: pytest.FixtureRequest, tmp_path: Path):
    return DictStore() if request.param == "memory" else _real_store(tmp_path)


def test_outcomes_are_cached_and_rejudged(store_path: Path, tmp_path: Path,
                                          action_store) -> None:
    (tmp_path / "in.txt").write_text("one\n")
    case = make_case(tmp_path, "echo", stdin_file="in.txt", expect=Expect(stdout=b"one\n"))
    first = run_case(store_path, case, store=action_store)
    again = run_case(store_path, case, store=action_store)
    assert (first.status, first.cached) == ("passed", False)
    assert (again.status, again.cached, again.label) == ("passed", True, "passed (cached)")
    # The verdict is not cached: a new expectation is judged against the cached observation.
    case.expect = Expect(stdout=b"two\n")
    judged = run_case(store_path, case, store=action_store)
    assert (judged.status, judged.cached) == ("failed", True)
    # An input's content is part of the key.
    (tmp_path / "in.txt").write_text("two\n")
    changed = run_case(store_path, case, store=action_store)
    assert (changed.status, changed.cached) == ("passed", False)
    # --no-cache runs again.
    assert run_case(store_path, case, store=action_store, use_cache=False).cached is False


def test_signals_are_cached_timeouts_and_caps_are_not(store_path: Path, tmp_path: Path) -> None:
    store = DictStore()
    crash = make_case(tmp_path, "segv")
    run_case(store_path, crash, store=store)
    again = run_case(store_path, crash, store=store)
    assert (again.cached, again.message) == (True, "killed by SIGSEGV")
    slow = make_case(tmp_path, "sleep", timeout=0.1)
    run_case(store_path, slow, store=store)
    flood = make_case(tmp_path, "flood")
    run_case(store_path, flood, store=store, cap=1024)
    assert len(store.actions) == 1


def test_cache_key_ignores_name_and_expectation(store_path: Path, tmp_path: Path) -> None:
    a = make_case(tmp_path, "echo", name="a", stdin=b"x")
    b = make_case(tmp_path, "echo", name="b", stdin=b"x", expect=Expect(stdout=b"x"))
    b.raw["expect"] = {"stdout": "x"}
    c = make_case(tmp_path, "echo", name="c", stdin=b"y")
    key = cache.case_key(a, store_path)
    assert key == cache.case_key(b, store_path) != cache.case_key(c, store_path)
    assert key != cache.case_key(a, store_path.with_name("other-tool-1.0-release"))
    assert len(key) == 64


def test_an_executable_that_cannot_start_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x-tool-1.0-release"
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "tool").write_bytes(b"\x7fELF garbage")
    (path / "bin" / "tool").chmod(0o755)
    outcome = run_case(path, make_case(tmp_path, "echo"))
    assert outcome.status == "error" and outcome.message.startswith("cannot run ")
