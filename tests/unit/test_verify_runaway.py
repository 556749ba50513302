"""Runaway cases against real compiled programs: endless loops, floods, escaped orphans, endless
readers, and writes into what a case must not touch; with the reaper and Landlock, and with the
fallbacks (process-group kill, write check after the run) forced through module switches."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from engine.build import reaper
from engine.documents.models import Case, Expect
from engine.errors import Pos
from engine.verify import landlock
from engine.verify.outcome import Outcome
from engine.verify.process import containment, kill_running, run_argv
from engine.verify.runner import Job, Settings, execute, run_jobs
from engine.verify.writeguard import Snapshot

RUNAWAY_C = r"""
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Leave a setsid()'d, double-forked daemon that ignores the polite signals, with a child in
   another group; report both pids on stderr once they run. */
static void escape(int detach) {
    int p[2];
    if (pipe(p) < 0) exit(2);
    if (fork() == 0) {
        setsid();
        if (fork() == 0) {
            signal(SIGTERM, SIG_IGN); signal(SIGHUP, SIG_IGN); signal(SIGINT, SIG_IGN);
            pid_t kid = fork();
            if (kid == 0) {
                if (detach) for (int fd = 0; fd < 3; fd++) close(fd);
                for (;;) pause();
            }
            setpgid(0, 0);
            dprintf(p[1], "%d %d\n", (int)getpid(), (int)kid);
            if (detach) for (int fd = 0; fd < 3; fd++) close(fd);
            for (;;) pause();
        }
        _exit(0);
    }
    close(p[1]);
    char line[64] = {0};
    if (read(p[0], line, sizeof line - 1) <= 0) exit(2);
    fputs(line, stderr);
    fflush(stderr);
    puts("started");
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "ok")) { puts("ok"); return 0; }
    if (!strcmp(mode, "spin")) { for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(mode, "flood-err")) {
        static char buf[65536];
        memset(buf, 'e', sizeof buf);
        for (;;) if (write(2, buf, sizeof buf) < 0) return 3;
    }
    if (!strcmp(mode, "escape")) { escape(0); return 0; }
    if (!strcmp(mode, "escape-detached")) { escape(1); return 0; }  /* a daemon closes 0-2 */
    if (!strcmp(mode, "escape-spin")) { escape(0); for (volatile unsigned long i = 0;; i++) {} }
    if (!strcmp(mode, "write")) {          /* append to (or create) every path given */
        int status = 0;
        for (int i = 2; i < argc; i++) {
            int fd = open(argv[i], O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd < 0 || write(fd, "x", 1) != 1) { perror(argv[i]); status = 1; }
            if (fd >= 0) close(fd);
        }
        return status;
    }
    if (!strcmp(mode, "remove")) {
        if (unlink(argv[2]) < 0) { perror(argv[2]); return 1; }
        return 0;
    }
    if (!strcmp(mode, "scratch")) {        /* its working folder, $TMPDIR and /dev/null are fine */
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s/t", getenv("TMPDIR"));
        const char *paths[] = {"here.txt", tmp, "/dev/null"};
        for (int i = 0; i < 3; i++) {
            FILE *f = fopen(paths[i], "w");
            if (!f || fputs("x", f) < 0 || fclose(f) != 0) { perror(paths[i]); return 1; }
        }
        if (mkdir("sub", 0755) < 0 || rename("here.txt", "sub/moved.txt") < 0) {
            perror("mv");
            return 1;
        }
        puts("ok");
        return 0;
    }
    if (!strcmp(mode, "kill")) {
        if (kill(atoi(argv[2]), SIGTERM) < 0) { perror("kill"); return 1; }
        return 0;
    }
    return 99;
}
"""


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake realised store path holding ``bin/runaway``, in a fake store root."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    root = tmp_path_factory.mktemp("store") / "0123456789abcdfghijklmnpqrsvwxyz-runaway-1-release"
    (root / "bin").mkdir(parents=True)
    (root / "share").mkdir()
    (root / "share" / "data").write_text("data\n")
    (root.parent / ".recipe").mkdir()
    source = root.parent / "runaway.c"
    source.write_text(RUNAWAY_C)
    subprocess.run(["gcc", "-O1", "-o", str(root / "bin" / "runaway"), str(source)], check=True)
    return root


@pytest.fixture
def plan_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "plan"
    (folder / "proj").mkdir(parents=True)
    (folder / "plan.yaml").write_text("kind: plan\n")
    (folder / "proj" / "cases.yaml").write_text("kind: cases\n")
    return folder


def make_case(plan_dir: Path, *args: str, name: str = "a case", index: int = 0,
              expect: Expect | None = None, **fields: object) -> Case:
    file = plan_dir / "proj" / "cases.yaml"
    raw: dict[str, object] = {"name": name, "run": "runaway", "args": list(args)}
    raw.update(fields)
    return Case(name=name, kind="process", file=file, index=index, pos=Pos(file, index + 3),
                expect=expect or Expect(), run="runaway", args=args, raw=raw,
                **fields)  # type: ignore[arg-type]


def run(store_path: Path, plan_dir: Path, *args: str, **fields: object) -> Outcome:
    case = make_case(plan_dir, *args, **fields)
    return execute(Job("proj", "release", case, store_path, plan_dir), Settings())


def _alive(pid: int) -> bool:
    """Running or sleeping; a zombie (a container's init may never reap it) is dead."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _marked(token: str) -> list[int]:
    """Live processes whose environment holds ``token`` (the cases give it in their env)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if token.encode() in Path(f"/proc/{name}/environ").read_bytes() \
                        and _alive(int(name)):
                    found.append(int(name))
            except OSError:
                pass
    return found


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- (a) endless loops, (b) floods ----------------------------------------------------------------

def test_a_busy_loop_times_out(store_path: Path, plan_dir: Path) -> None:
    start = time.monotonic()
    outcome = run(store_path, plan_dir, "spin", timeout=0.3)
    assert (outcome.status, outcome.message) == ("failed", "timed out after 0.3s")
    assert time.monotonic() - start < 2


def test_a_stderr_flood_stops_at_the_cap(store_path: Path, plan_dir: Path) -> None:
    case = make_case(plan_dir, "flood-err", timeout=5.0)
    outcome = execute(Job("proj", "release", case, store_path, plan_dir), Settings(cap=64 << 10))
    assert (outcome.status, outcome.message) == ("failed", "stderr exceeded 64 KiB")
    assert outcome.observed is not None and len(outcome.observed.stderr) == 64 << 10


# -- (c) orphans, even escaped ones ---------------------------------------------------------------

def test_escaped_orphans_are_killed_when_the_case_ends(store_path: Path, plan_dir: Path) -> None:
    token = uuid.uuid4().hex
    outcome = run(store_path, plan_dir, "escape", env={"MARK": token},
                  expect=Expect(stdout=b"started\n"))
    assert outcome.status == "passed", outcome.detail
    assert outcome.observed is not None
    pids = [int(p) for p in outcome.observed.stderr.split()]
    assert len(pids) == 2 and not any(map(_alive, pids))
    assert _marked(token) == []


def test_escaped_orphans_of_a_case_that_times_out_are_killed(store_path: Path,
                                                             plan_dir: Path) -> None:
    token = uuid.uuid4().hex
    outcome = run(store_path, plan_dir, "escape-spin", env={"MARK": token}, timeout=0.5)
    assert (outcome.status, outcome.message) == ("failed", "timed out after 0.5s")
    assert outcome.observed is not None and len(outcome.observed.stderr.split()) == 2
    assert _marked(token) == []


def test_an_interrupted_run_kills_escaped_orphans(store_path: Path, plan_dir: Path) -> None:
    token = uuid.uuid4().hex
    done = threading.Event()

    def case() -> None:
        run_argv([str(store_path / "bin" / "runaway"), "escape-spin"], cwd=plan_dir,
                 env={"MARK": token}, stdin=b"", timeout=30)
        done.set()

    threading.Thread(target=case, daemon=True).start()
    deadline = time.monotonic() + 5
    while len(_marked(token)) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        assert len(_marked(token)) >= 4  # the reaper, the program, the daemon and its child
        kill_running()
        assert done.wait(5)
        assert _marked(token) == []
    finally:
        _kill_all(_marked(token))


KILLED_RECIPE = """
import os, signal, sys, threading
from pathlib import Path
from engine.verify.process import run_argv
case = dict(cwd=Path("/"), env={"MARK": sys.argv[2]}, stdin=b"", timeout=30)
threading.Thread(target=run_argv, args=([sys.argv[1], "escape-spin"],), kwargs=case,
                 daemon=True).start()
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_recipe_takes_its_cases_down(store_path: Path, tmp_path: Path) -> None:
    """recipe SIGKILLed mid-case: no cleanup of ours runs, yet the reaper sees its control
    socket close and kills the case and what escaped it."""
    token = uuid.uuid4().hex
    script = tmp_path / "killed.py"
    script.write_text(KILLED_RECIPE)
    recipe = subprocess.Popen([sys.executable, str(script), str(store_path / "bin" / "runaway"),
                               token], stdin=subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 10
        while len(_marked(token)) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_marked(token)) >= 4  # the reaper, the program, the daemon and its child
        assert recipe.stdin is not None
        recipe.stdin.write(b"die\n")
        recipe.stdin.close()
        assert recipe.wait(5) == -signal.SIGKILL
        deadline = time.monotonic() + 5
        while _marked(token) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _marked(token) == []
    finally:
        recipe.kill()
        recipe.wait()
        _kill_all(_marked(token))


def test_without_the_reaper_only_the_process_group_dies(store_path: Path, plan_dir: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback where no C compiler can build the reaper: documented to miss escapees (this
    is what the reaper is for)."""
    monkeypatch.setattr(reaper, "ENABLED", False)
    token = uuid.uuid4().hex
    outcome = run(store_path, plan_dir, "escape-detached", env={"MARK": token},
                  expect=Expect(stdout=b"started\n"))
    survivors = _marked(token)
    try:
        assert outcome.status == "passed"
        assert len(survivors) == 2  # setsid() took them out of the killed group
    finally:
        _kill_all(survivors)


def test_a_reaper_that_cannot_be_executed_is_dropped(store_path: Path, plan_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fd = os.memfd_create("not-executable", os.MFD_CLOEXEC)  # as with vm.memfd_noexec=2
    os.write(fd, b"\x7fELF")
    os.fchmod(fd, 0o600)
    monkeypatch.setattr(reaper, "_fd", fd)
    monkeypatch.setattr(reaper, "_tried", True)
    try:
        outcome = run(store_path, plan_dir, "ok", expect=Expect(stdout=b"ok\n"))
        assert outcome.status == "passed"
        assert reaper.executable() is None  # not tried again for every case
    finally:
        os.close(fd)


class DictCache:
    """The action-cache part of ``engine.store.Store``, in memory."""

    def __init__(self) -> None:
        self.actions: dict[str, dict] = {}
        self.blobs: dict[str, bytes] = {}

    def get_action(self, key: str) -> dict | None:
        return self.actions.get(key)

    def put_action(self, key: str, result: dict) -> None:
        self.actions[key] = result

    def put_blob(self, data: bytes) -> str:
        digest = f"sha256:{len(self.blobs)}"
        self.blobs[digest] = data
        return digest

    def read_blob(self, digest: str) -> bytes:
        return self.blobs[digest]


def test_the_reaper_is_built_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = DictCache()
    for attr, value in (("_fd", None), ("_tried", False)):
        monkeypatch.setattr(reaper, attr, value)
    first = reaper.executable(cache)
    assert first is not None and len(cache.actions) == 1
    monkeypatch.setattr(reaper, "_tried", False)  # a new process, same store: no compiler run

    def no_compiler(*_args: object, **_kw: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(reaper.subprocess, "run", no_compiler)
    second = reaper.executable(cache)
    assert second is not None and os.pread(first, 1 << 20, 0) == os.pread(second, 1 << 20, 0)
    os.close(second)
    os.close(first)  # monkeypatch puts the module's own descriptor back


# -- (d) endless readers --------------------------------------------------------------------------

def test_a_reader_of_stdin_gets_eof_and_ends(store_path: Path, plan_dir: Path) -> None:
    start = time.monotonic()
    obs = run_argv(["/bin/cat"], cwd=plan_dir, env={}, stdin=b"", timeout=5)
    assert (obs.stdout, obs.exit, obs.timed_out) == (b"", 0, False)
    obs = run_argv(["/bin/cat"], cwd=plan_dir, env={}, stdin=b"given\n", timeout=5)
    assert (obs.stdout, obs.exit) == (b"given\n", 0)
    assert time.monotonic() - start < 2


# -- (e) writes into what is read-only to cases ---------------------------------------------------

needs_landlock = pytest.mark.skipif(landlock.abi() == 0, reason="no Landlock in this kernel")


def _targets(store_path: Path, plan_dir: Path) -> dict[str, Path]:
    return {"store file": store_path / "share" / "data",
            "new store file": store_path / "bin" / "intruder",
            "store state": store_path.parent / ".recipe" / "intruder",
            "plan file": plan_dir / "proj" / "cases.yaml",
            "new plan file": plan_dir / "proj" / "intruder",
            "system temp": Path("/tmp") / f"recipe-test-{uuid.uuid4().hex}"}


@needs_landlock
def test_writes_outside_the_scratch_folder_are_refused(store_path: Path, plan_dir: Path) -> None:
    targets = _targets(store_path, plan_dir)
    before = Snapshot([store_path.parent, plan_dir])
    for what, path in targets.items():
        outcome = run(store_path, plan_dir, "write", str(path))
        assert outcome.status == "failed", what
        assert outcome.message == "exit code differs (exit 1, expected 0)"
        assert f"{path}: Permission denied" in outcome.detail
        assert "may write only into its working folder and $TMPDIR" in outcome.detail
    assert not targets["system temp"].exists()
    outcome = run(store_path, plan_dir, "remove", str(targets["plan file"]))
    assert outcome.status == "failed" and targets["plan file"].exists()
    assert before.changes(Snapshot([store_path.parent, plan_dir])) == []


def test_the_scratch_folder_and_tmpdir_are_writable(store_path: Path, plan_dir: Path) -> None:
    outcome = run(store_path, plan_dir, "scratch", expect=Expect(stdout=b"ok\n"))
    assert outcome.status == "passed", outcome.detail


@needs_landlock
def test_a_case_cannot_signal_processes_outside_it(store_path: Path, plan_dir: Path) -> None:
    if landlock.abi() < 6:
        pytest.skip("signal scoping needs Landlock ABI 6")
    other = subprocess.Popen(["sleep", "30"])
    try:
        outcome = run(store_path, plan_dir, "kill", str(other.pid))
        assert outcome.status == "failed" and "kill: Operation not permitted" in outcome.detail
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_without_landlock_writes_are_found_after_the_run(store_path: Path, plan_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landlock, "ENABLED", False)
    plan_file = plan_dir / "proj" / "cases.yaml"
    outcome = run(store_path, plan_dir, "write", str(plan_file))
    assert (outcome.status, outcome.message) == ("failed", f"wrote into read-only {plan_file}")
    assert outcome.observed is not None and not outcome.observed.completed  # never cached
    new = store_path / "bin" / "intruder"
    try:
        outcome = run(store_path, plan_dir, "write", str(new), str(plan_dir / "new"))
        assert outcome.message == f"wrote into read-only {new} (and 1 more)"
        assert f"changed: {plan_dir / 'new'}\n" in outcome.detail
    finally:
        new.unlink(missing_ok=True)
    # The outcome cache, in the store's state folder, is not watched: recipe writes there.
    assert run(store_path, plan_dir, "scratch", expect=Expect(stdout=b"ok\n")).status == "passed"


def test_without_landlock_a_write_is_blamed_on_every_case_running_then(
        store_path: Path, plan_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landlock, "ENABLED", False)
    new = plan_dir / "new"
    jobs = [Job("proj", "release", make_case(plan_dir, *args, name=args[0], index=i,
                                             timeout=0.3), store_path, plan_dir)
            for i, args in enumerate([("spin",), ("write", str(new))])]
    spin, write = run_jobs(jobs, workers=2)
    assert write.message == \
        f"read-only {new} changed while it ran, by this case or one running beside it"
    assert spin.message == "timed out after 0.3s" and f"changed: {new}\n" in spin.detail
    # Alone again: certain.
    assert run(store_path, plan_dir, "write", str(new)).message == f"wrote into read-only {new}"


def test_containment_says_which_mechanisms_are_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    if landlock.abi() and reaper.executable() is not None:
        assert containment() == (f"leftovers killed by the reaper; writes confined by Landlock "
                                 f"(ABI {landlock.abi()})")
    monkeypatch.setattr(landlock, "ENABLED", False)
    monkeypatch.setattr(reaper, "ENABLED", False)
    assert containment() == ("leftovers killed by process group (no C compiler for the reaper); "
                             "writes checked after each case (no Landlock)")


def test_the_write_check_sees_every_kind_of_change(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for rel in ("a", "b", "c", "sub/d", "skip/e", ".git/f"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    before = Snapshot([root], skip=[root / "skip"])
    (root / "a").write_text("changed")
    (root / "b").unlink()
    (root / "c").chmod(0o600)
    (root / "new").write_text("")
    (root / "sub" / "gone").write_text("")
    (root / "sub" / "gone").unlink()  # the folder's times are all that is left
    (root / "skip" / "e").write_text("not watched")
    (root / ".git" / "f").write_text("not watched")
    after = Snapshot([root], skip=[root / "skip"])
    assert before.changes(after) == [str(root / p) for p in ("a", "b", "c", "new", "sub")]


# -- in every case, the other cases still run and report ------------------------------------------

def test_misbehaving_cases_do_not_stop_the_others(store_path: Path, plan_dir: Path) -> None:
    token = uuid.uuid4().hex
    specs = [("spin", {"timeout": 0.3}), ("ok", {"expect": Expect(stdout=b"ok\n")}),
             ("escape-spin", {"timeout": 0.3, "env": {"MARK": token}}),
             ("flood-err", {}), ("scratch", {"expect": Expect(stdout=b"ok\n")})]
    jobs = [Job("proj", "release", make_case(plan_dir, mode, name=mode, index=i, **fields),
                store_path, plan_dir) for i, (mode, fields) in enumerate(specs)]
    outcomes = run_jobs(jobs, Settings(cap=1 << 20), workers=3)
    assert [(o.case, o.status) for o in outcomes] == [
        ("spin", "failed"), ("ok", "passed"), ("escape-spin", "failed"), ("flood-err", "failed"),
        ("scratch", "passed")]
    assert outcomes[3].message == "stderr exceeded 1 MiB"
    assert _marked(token) == []
