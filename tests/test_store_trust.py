"""The store's guarantees (DESIGN 3.3) proven through the real CLI, real gcc, real processes.

- Concurrent: processes sharing a store build each derivation once, and leave a sound store.
- Collectable while building: ``store gc`` during a ``realise`` neither waits for it nor
  deletes what it uses (temporary roots, as Nix's).
- Atomic: a build killed (SIGKILL, compiler included) while compiling, while linking, or
  between the rename into the store and the database commit leaves nothing valid, a store that
  verifies, and leftovers that the next run removes.
- Store errors: a disk that fills during a build, a disk already full and a read-only store
  fail with one line that names the cause, nothing partial, and a store that works once there
  is room again.

Leftovers: once a process has ended, normally or not, nothing of it may stay in ``.recipe/tmp``
(its ``<pid>.owner`` and ``<pid>.roots`` included; Nix, too, deletes its temporary-roots file
when it exits) or ``.recipe/build``, and no unregistered folder at the top of the store; a
killed process's are removed by the next run. Only a live process's entries are allowed.

Builds use wrapper compilers (tests/toolchains.py) that log every compile and link and can be
held at a chosen one: tests wait on marker files, never on the clock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import write_tree
from tests.projects import GREET_LIB
from tests.toolchains import WrapperToolchain

NAME = re.compile(r"[0-9a-z]{32}-(.+)-([^-]+)-([^-]+)")  # <hash>-<project>-<version>-<target>
TIMEOUT = 300  # for one command; generous, for a loaded 2-core machine


# -- running the CLI -----------------------------------------------------------------------------

def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("RECIPE_STORE", "RECIPE_TEST_FAULT")}
    env.update(extra)
    return env


def recipe(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", *map(str, args)],
                          capture_output=True, text=True, env=_env(**env), timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL)


class Started:
    """``recipe`` processes started in their own session, so that a kill of the process group
    reaches the compilers too; whatever is still running at the end of a test is killed."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def __call__(self, *args: str | Path, **env: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", *map(str, args)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_env(**env), stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen[str]) -> None:
        """SIGKILL the process and everything it started (its process group)."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate(timeout=TIMEOUT)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                self.kill(proc)
            elif proc.stdout and not proc.stdout.closed:
                proc.communicate()


@pytest.fixture
def started() -> Iterator[Started]:
    procs = Started()
    yield procs
    procs.cleanup()


def finish(proc: subprocess.Popen[str], what: str = "realise") -> tuple[str, str]:
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, f"{what} exited {proc.returncode}:\n{err}"
    return out, err


# -- looking into a store --------------------------------------------------------------------

def db_names(store: Path) -> set[str]:
    """The valid paths, read from the database itself (opening the store would clean it)."""
    con = sqlite3.connect(store / ".recipe" / "db.sqlite")
    try:
        return {name for (name,) in con.execute("SELECT name FROM paths")}
    finally:
        con.close()


def listed(store: Path) -> set[str]:
    """The valid paths as ``recipe store ls`` lists them."""
    done = recipe("store", "ls", "--json", "--store", store)
    assert done.returncode == 0, done.stderr
    return {p["name"] for p in json.loads(done.stdout)}


def assert_sound(store: Path) -> None:
    """SQLite finds the database intact, and ``store verify`` finds every path as recorded."""
    con = sqlite3.connect(store / ".recipe" / "db.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        con.close()
    done = recipe("store", "verify", "--store", store)
    assert done.returncode == 0 and done.stdout.startswith("store is valid"), \
        f"store verify exited {done.returncode}:\n{done.stdout}{done.stderr}"


def _owner_alive(owner: Path) -> bool:
    try:
        fd = os.open(owner, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def leftovers(store: Path) -> list[str]:
    """What no live process owns and no valid path explains: entries of ``.recipe/tmp`` whose
    owner is gone, anything in ``.recipe/build``, and anything at the top of the store that is
    not a valid path."""
    state = store / ".recipe"
    found = []
    for name in sorted(os.listdir(state / "tmp")):
        pid = re.match(r"(\d+)[-.]", name)
        if pid and _owner_alive(state / "tmp" / f"{pid[1]}.owner"):
            continue
        found.append(f".recipe/tmp/{name}")
    if (state / "build").exists():
        found += [f".recipe/build/{name}" for name in sorted(os.listdir(state / "build"))]
    valid = db_names(store)
    found += sorted(name for name in os.listdir(store) if name not in valid | {".recipe"})
    return found


def label(path: str | Path) -> tuple[str, str]:
    """(project, target) of a store path."""
    match = NAME.fullmatch(Path(path).name)
    assert match, path
    return match[1], match[3]


# -- projects --------------------------------------------------------------------------------

def targets_yaml(tc: WrapperToolchain, targets: tuple[str, ...] = ("release", "debug")) -> str:
    lines = "".join(f"  {t}: {{opt: {t}, toolchain: {tc.spec_yaml()}}}\n" for t in targets)
    return f"targets:\n{lines}default_targets: [{', '.join(targets)}]\n"


def greet_tree(root: Path, tc: WrapperToolchain) -> Path:
    """GREET_LIB (library greet, executable hello that depends on it), built by ``tc``."""
    files = dict(GREET_LIB)
    files["plan.yaml"] = "kind: plan\n" + targets_yaml(tc, ("release",))
    return write_tree(root, files)


def _project(name: str, language: str, sources: str, kind: str, depends: list[str],
             public: bool) -> str:
    text = (f"kind: project\nname: {name}\nversion: 1.0.0\nlanguage: {language}\n"
            f"sources: [\"{sources}\"]\n")
    if public:
        text += ("headers: [\"include/*.h\"]\npublic_headers: [\"include/*.h\"]\n"
                 "include_dirs: [include]\n")
    if depends:
        text += f"depends: [{', '.join(depends)}]\n"
    return text + f"outputs:\n  - {{name: {name}, kind: {kind}}}\n"


STACK = {
    "base/project.yaml": _project("base", "c", "src/*.c", "static-library", [], True),
    "base/include/base.h": """
        #ifndef BASE_H
        #define BASE_H
        int base_add(int a, int b);
        int base_mul(int a, int b);
        #endif
    """,
    "base/src/base_add.c": '#include "base.h"\nint base_add(int a, int b) { return a + b; }\n',
    "base/src/base_mul.c": '#include "base.h"\nint base_mul(int a, int b) { return a * b; }\n',
    "mid/project.yaml": _project("mid", "c", "src/*.c", "static-library", ["base"], True),
    "mid/include/mid.h": '#include "base.h"\nint mid_calc(int x);\n',
    "mid/src/mid.c": """
        #include "mid.h"
        int mid_calc(int x) { return base_add(base_mul(x, 3), 1); }
    """,
    "app/project.yaml": _project("app", "c", "src/*.c", "executable", ["mid"], False),
    "app/src/app.c": """
        #include <stdio.h>
        #include "mid.h"
        int main(void) { printf("app %d\\n", mid_calc(2)); return 0; }
    """,
    "tool/project.yaml": _project("tool", "c++", "src/*.cpp", "executable", ["base"], False),
    "tool/src/tool.cpp": """
        #include <iostream>
        extern "C" {
        #include "base.h"
        }
        int main() { std::cout << "tool " << base_add(40, 2) << std::endl; return 0; }
    """,
}
STACK_UNITS = {"base": ["src/base_add.c", "src/base_mul.c"], "mid": ["src/mid.c"],
               "app": ["src/app.c"], "tool": ["src/tool.cpp"]}


def stack_tree(root: Path, tc: WrapperToolchain) -> Path:
    """Four projects (base <- mid <- app, base <- tool, tool in C++) and three plans in one
    folder that select overlapping parts of them."""
    files = dict(STACK)
    selections = {"plan-a.yaml": ["base", "mid", "app"], "plan-b.yaml": ["base", "mid", "tool"],
                  "plan-c.yaml": ["base", "mid", "app", "tool"]}
    for plan, projects in selections.items():
        files[plan] = (f"kind: plan\nprojects: [{', '.join(f'{p}/project.yaml' for p in projects)}]"
                       f"\n{targets_yaml(tc)}")
    return write_tree(root, files)


# -- 1. concurrency --------------------------------------------------------------------------

@pytest.mark.slow
def test_concurrent_realises_build_each_unit_once_and_leave_a_sound_store(
        tmp_path: Path, tc: WrapperToolchain, started: Started) -> None:
    src = stack_tree(tmp_path / "src", tc)
    store = tmp_path / "store"
    tc.delay_compiles(0.4)  # every compile takes a while: the four runs overlap for seconds
    runs = [
        ("plan-a.yaml",),
        ("plan-b.yaml",),
        ("plan-c.yaml", "-t", "release"),
        ("plan-c.yaml", "-t", "debug", "-p", "app", "-p", "tool"),
    ]
    procs = [started("realise", src / args[0], *args[1:], "--store", store) for args in runs]
    outputs = [finish(proc, f"realise {' '.join(args)}") for proc, args in zip(procs, runs,
                                                                              strict=True)]
    left = leftovers(store)  # before any other command opens the store, which cleans it

    # Every translation unit (source x target) was compiled exactly once, in all four runs.
    expected = Counter({(p, t, s): 1 for p, units in STACK_UNITS.items() for s in units
                        for t in ("release", "debug")})
    assert tc.compiles() == expected
    # Each derivation was built by exactly one of the runs.
    building = Counter(line.split()[1] for _out, err in outputs for line in err.splitlines()
                       if line.startswith("building "))
    assert sorted(label(n) for n in building) == sorted(
        (p, t) for p in STACK_UNITS for t in ("release", "debug"))
    assert set(building.values()) == {1}, building
    # The runs agree on every path, and every path they printed is valid.
    paths: dict[tuple[str, str], set[str]] = {}
    for out, _err in outputs:
        for line in out.splitlines():
            paths.setdefault(label(line), set()).add(line)
    assert all(len(p) == 1 for p in paths.values()), paths
    valid = listed(store)
    assert {Path(p).name for found in paths.values() for p in found} <= valid
    assert valid == set(building)
    app = next(iter(paths["app", "release"]))
    tool = next(iter(paths["tool", "debug"]))
    assert subprocess.run([f"{app}/bin/app"], capture_output=True, text=True).stdout == "app 7\n"
    assert subprocess.run([f"{tool}/bin/tool"], capture_output=True,
                          text=True).stdout == "tool 42\n"
    # Each plan's roots name valid paths.
    roots = json.loads(recipe("store", "roots", "--json", "--store", store).stdout)
    for plan in ("plan-a.yaml", "plan-b.yaml", "plan-c.yaml"):
        assert any(plan in root for root in roots), roots
    assert set(roots.values()) <= valid
    assert_sound(store)
    assert left == [], f"the four runs, all ended, left these behind: {left}"


# -- 2. collection during a build ------------------------------------------------------------

def _edit(file: Path, comment: str) -> None:
    file.write_text(file.read_text() + f"/* {comment} */\n")


@pytest.mark.slow
def test_gc_during_realise_neither_waits_nor_deletes_what_the_build_uses(
        tmp_path: Path, tc: WrapperToolchain, started: Started) -> None:
    src = greet_tree(tmp_path / "src", tc)
    store = tmp_path / "store"
    plan = src / "plan.yaml"
    # Generation A, then B: the plan's roots move to B, so A is garbage.
    old = []
    for generation in ("A", "B"):
        _edit(src / "greet/src/twice.c", generation)
        done = recipe("realise", plan, "--store", store)
        assert done.returncode == 0, done.stderr
        old.append({Path(line).name for line in done.stdout.splitlines()})
    garbage, rooted = old
    # Generation C: greet is built and registered (but not rooted: realise roots what it
    # prints only at its end), then hello's link is held (its compile is a cache hit: it
    # reads no file that changed).
    _edit(src / "greet/src/twice.c", "C")
    hold = tc.hold("link", project="hello")
    proc = started("realise", plan, "--store", store)
    hello = hold.wait(alive=proc)
    greet = next(n for n in db_names(store) - garbage - rooted)
    assert label(greet) == ("greet", "release")

    gc = started("store", "gc", "--json", "--store", store)
    try:
        out, err = gc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        waited = True
    else:
        waited = False
    if waited:
        hold.go()  # let both finish before failing, so that nothing stays behind
        finish(proc)
        gc.communicate(timeout=TIMEOUT)
        pytest.fail("store gc did not finish within 60 s while a realise was building: it "
                    "waits for the realise (it should rely on temporary roots instead)")
    assert gc.returncode == 0, err
    report = json.loads(out)
    assert proc.poll() is None, "the realise ended before the hold was released"
    # Exactly the garbage went; the dependency just built (a temporary root of the running
    # realise), the rooted generation and the build in progress stayed.
    assert set(report["deleted"]) == garbage
    assert greet in db_names(store) and (store / greet / "lib/libgreet.a").is_file()
    assert rooted <= db_names(store)
    assert (store / ".recipe/build" / hello / "w/src/main.c").is_file()
    assert_sound(store)  # also while the realise is running

    hold.go()
    out, _err = finish(proc)
    left = leftovers(store)
    assert [Path(line).name for line in out.splitlines()] == [greet, hello]
    ran = subprocess.run([store / hello / "bin/hello"], capture_output=True, text=True)
    assert ran.stdout == "hello 2 1\n"
    assert_sound(store)
    # Now B is garbage, and nothing of C is.
    again = recipe("store", "gc", "--json", "--store", store)
    assert again.returncode == 0, again.stderr
    assert set(json.loads(again.stdout)["deleted"]) == rooted
    assert db_names(store) == {greet, hello}
    assert_sound(store)
    assert left == [], f"the realise, ended, left these behind: {left}"


# -- 3. crash safety -------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["compile", "link", "register:after-rename"])
def test_a_killed_realise_leaves_nothing_valid_and_the_next_run_cleans_up(
        tmp_path: Path, tc: WrapperToolchain, started: Started, where: str) -> None:
    src = greet_tree(tmp_path / "src", tc)
    store = tmp_path / "store"
    plan = src / "plan.yaml"
    if where == "register:after-rename":
        # The process SIGKILLs itself after renaming greet's tree into the store, before the
        # database commit (engine/faults.py).
        proc = started("realise", plan, "--store", store, RECIPE_TEST_FAULT=where)
        proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == -signal.SIGKILL
        unregistered = [n for n in os.listdir(store) if NAME.fullmatch(n)]
        assert [label(n) for n in unregistered] == [("greet", "release")]
        killed = unregistered[0]
        assert (store / killed / "lib/libgreet.a").is_file()  # renamed, complete, not valid
    else:
        hold = tc.hold(where, project="hello")
        proc = started("realise", plan, "--store", store)
        killed = hold.wait(alive=proc)
        started.kill(proc)
        assert label(killed) == ("hello", "release")
        assert (store / ".recipe/build" / killed).is_dir()
    # The crash left something behind (the check below would see it if it stayed).
    left = leftovers(store)
    assert left, "the killed build left nothing: the check of leftovers proves nothing"
    assert killed not in db_names(store)

    assert_sound(store)
    assert killed not in listed(store)
    tc.calm()
    done = recipe("realise", plan, "--store", store)
    assert done.returncode == 0, done.stderr
    after = leftovers(store)
    paths = [Path(line) for line in done.stdout.splitlines()]
    assert killed in {p.name for p in paths}
    ran = subprocess.run([paths[-1] / "bin/hello"], capture_output=True, text=True)
    assert ran.stdout == "hello 2 1\n"
    assert db_names(store) == {p.name for p in paths}
    assert_sound(store)
    assert after == [], f"left after the next run: {after} (the killed run had left {left})"


def _working_in(folder: Path) -> list[str]:
    """The processes whose working folder is below ``folder``: a build's compilers."""
    root = os.path.realpath(folder) + os.sep
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.readlink(f"/proc/{pid}/cwd").startswith(root):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{pid}: {command[:120]}")
        except OSError:
            continue  # gone, or not ours to look at
    return found


def test_a_killed_realise_leaves_no_compiler_running_and_store_verify_clean(
        tmp_path: Path, tc: WrapperToolchain, started: Started) -> None:
    """recipe alone SIGKILLed mid-compile (not its process group: no cleanup of ours runs):
    the compiler goes with it, and the next command finds nothing writing into the store."""
    src = greet_tree(tmp_path / "src", tc)
    store = tmp_path / "store"
    hold = tc.hold("compile", project="greet")
    proc = started("realise", src / "plan.yaml", "--store", store)
    hold.wait(alive=proc)
    assert _working_in(store), "no compiler seen: the check below would prove nothing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    deadline = time.monotonic() + 5
    while (left := _working_in(store)) and time.monotonic() < deadline:
        time.sleep(0.05)
    hold.go()  # an orphaned compiler would go on writing into the dead build's folder now
    done = recipe("store", "verify", "--store", store)
    assert left == [], f"still running after recipe was killed: {left}"
    assert done.returncode == 0, done.stderr
    tc.calm()
    done = recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    assert_sound(store)


# -- 4. store errors -------------------------------------------------------------------------

class Mounts:
    """Mounts made by a test, undone at its end (as root; the test is skipped otherwise)."""

    def __init__(self) -> None:
        self.points: list[Path] = []

    def __call__(self, *args: str | Path) -> None:
        if os.geteuid() != 0:
            pytest.skip("mounting a file system needs root")
        target = Path(args[-1])
        target.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"mount is not permitted here: {done.stderr.strip()}")
        self.points.append(target)

    def remount(self, target: Path, options: str) -> None:
        done = subprocess.run(["mount", "-o", f"remount,{options}", str(target)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def undo(self) -> None:
        for target in reversed(self.points):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    done = Mounts()
    yield done
    done.undo()


def assert_one_line_error(done: subprocess.CompletedProcess[str], codes: set[int]) -> str:
    """Failed with an exit code of ``codes``, no traceback, and one ``recipe:`` line, the last
    (the compiler's own words and progress lines may come before it); that line."""
    assert done.returncode in codes, f"exit {done.returncode}:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    ours = [line for line in lines if line.startswith("recipe:")]
    assert len(ours) == 1 and lines[-1] == ours[0], done.stderr
    return ours[0]


def big_tree(root: Path, kib: int) -> Path:
    """An executable whose object holds an initialised array of ``kib`` KiB."""
    return write_tree(root, {
        "plan.yaml": "kind: plan\n",
        "big/project.yaml": _project("big", "c", "src/*.c", "executable", [], False),
        "big/src/big.c": f"int big_table[{kib * 256}] = {{1}};\n"
                         "int main(int argc, char **argv) {\n"
                         "    (void)argv;\n"
                         "    return big_table[argc * 1000];\n"
                         "}\n",
    })


@pytest.mark.parametrize("kib", [4096, 1800, 900], ids=lambda k: f"{k}KiB-object")
def test_a_full_disk_fails_cleanly_and_the_store_works_once_there_is_room(
        tmp_path: Path, mounts: Mounts, kib: int) -> None:
    """A 3 MiB store: 4 MiB fail in the compiler, 1.8 MiB when the object is copied into the
    CAS, 0.9 MiB once the executable is (so far; which step fails is not the point)."""
    store = tmp_path / "store"
    mounts("-t", "tmpfs", "-o", "size=3m", "tmpfs", store)
    src = big_tree(tmp_path / "src", kib)
    done = recipe("realise", src / "plan.yaml", "--store", store)
    line = assert_one_line_error(done, {1, 2})
    print(f"{kib} KiB: exit {done.returncode}: {line}")
    # The cause is named: by our line, or by the compiler's own words just before it.
    assert re.search(r"space|full", done.stderr.replace(str(tmp_path), "<tmp>"), re.I), line
    # Nothing partial is visible; what the dead run left is collected for the end.
    assert db_names(store) == set()
    left = leftovers(store)
    assert_sound(store)
    assert listed(store) == set()

    mounts.remount(store, "size=64m")
    done = recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    after = leftovers(store)
    (path,) = done.stdout.split()
    assert subprocess.run([f"{path}/bin/big"]).returncode == 0
    assert_sound(store)
    assert (left, after) == ([], []), \
        f"left by the failed run: {left}; left after the next one: {after}"


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte; the filler file."""
    filler = folder / "filler"
    # Unbuffered: a partial write leaves nothing behind for close() to fail on.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    return filler


def test_a_store_on_a_full_disk_says_so_and_works_once_there_is_room(
        tmp_path: Path, mounts: Mounts, tc: WrapperToolchain) -> None:
    """The store was fine; then something else filled its file system. A build must say that
    the disk is full, not that the database is unusable."""
    store = tmp_path / "store"
    mounts("-t", "tmpfs", "-o", "size=3m", "tmpfs", store)
    src = greet_tree(tmp_path / "src", tc)
    done = recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    before = db_names(store)
    # What no path keeps (the build's reaper, 0.8 MB) goes now: the collection on the full
    # disk below must have nothing big to free, or it would take its reserve again.
    assert recipe("store", "gc", "--store", store).returncode == 0
    filler = fill(store)
    _edit(src / "hello/src/main.c", "a change to build")
    done = recipe("realise", src / "plan.yaml", "--store", store)
    line = assert_one_line_error(done, {1, 2})
    print(f"exit {done.returncode}: {line}")
    assert re.search(r"space|full", line.replace(str(tmp_path), "<tmp>"), re.I), line
    # A collection still runs on the full disk: the store gives back its reserve (as Nix's
    # gc-reserved-space), and takes it again once there is room.
    gc = recipe("store", "gc", "--store", store)
    assert gc.returncode == 0, gc.stderr
    assert not (store / ".recipe/reserve").exists()
    filler.unlink()
    assert db_names(store) == before
    left = leftovers(store)
    assert_sound(store)
    done = recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    assert left == [], f"left by the failed run: {left}"
    assert (store / ".recipe/reserve").stat().st_size > 0


def test_a_read_only_store_fails_with_one_line(tmp_path: Path, mounts: Mounts,
                                               tc: WrapperToolchain) -> None:
    # An existing store, mounted read-only (as root, permission bits would not stop a write).
    src = greet_tree(tmp_path / "src", tc)
    rw = tmp_path / "rw"
    done = recipe("realise", src / "plan.yaml", "--store", rw)
    assert done.returncode == 0, done.stderr
    before = db_names(rw)
    ro = tmp_path / "ro"
    mounts("--bind", rw, ro)
    mounts.remount(ro, "bind,ro")
    _edit(src / "hello/src/main.c", "a change to build")
    done = recipe("realise", src / "plan.yaml", "--store", ro)
    line = assert_one_line_error(done, {2})
    assert str(ro) in line and re.search(r"not writable|read-only", line, re.I), line
    assert db_names(rw) == before
    # An empty read-only file system: the store cannot even be created.
    empty = tmp_path / "empty"
    mounts("-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", empty)
    done = recipe("realise", src / "plan.yaml", "--store", empty)
    line = assert_one_line_error(done, {2})
    assert str(empty) in line and re.search(r"not writable|read-only", line, re.I), line
    assert os.listdir(empty) == []
