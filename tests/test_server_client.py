"""recipe's native client (engine/client/recipe.c) in front of a real ``recipe server``: every
command a user types is served with the caller's streams, folder, environment, umask and exit
codes, and the client runs the Python command itself when there is no server, a changed one, or
one that refuses the caller, with the very same output."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import recipe_server, run_recipe, write_tree

# A process that used less CPU than this never ran Python (the client alone takes well under a
# millisecond, Python's start and recipe's imports tens of them): how a test tells a served
# command from one run in-process. (Not its peak memory: Linux counts the forking parent's.)
SERVED_CPU = 0.008
#: The client's CPU seconds in each ``run``, for a failure to say how far from served it was
#: (a few ms: a slow client; ~0.1 s: it ran the Python command)
CLIENT_CPU: list[float] = []

PROJECTS = {
    "plan.yaml": """
        kind: plan
        projects: ["calc/project.yaml", "hello/project.yaml"]
        targets:
          release: {opt: release}
        default_targets: [release]
    """,
    "calc/project.yaml": """
        kind: project
        name: calc
        version: 1.0.0
        language: c
        standard: c17
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/calc.h"]
        include_dirs: [include]
        outputs:
          - {name: calc, kind: static-library}
        repl:
          scope: [include/calc.h]
    """,
    "calc/include/calc.h": "int calc_twice(int x);\n",
    "calc/src/calc.c": '#include "calc.h"\nint calc_twice(int x) { return 2 * x; }\n',
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 1.0.0
        language: c
        standard: c17
        sources: ["main.c"]
        outputs:
          - {name: hello, kind: executable}
        cases: ["cases.yaml"]
    """,
    "hello/main.c": '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n',
    "hello/cases.yaml": """
        kind: cases
        cases:
          - {name: says-hi, run: hello, expect: {exit: 0, stdout: "hi\\n"}}
    """,
    "broken/plan.yaml": """
        kind: plan
        projects: ["oops/project.yaml"]
        targets:
          release: {opt: release}
        default_targets: [release]
    """,
    "broken/oops/project.yaml": """
        kind: project
        name: oops
        version: 1.0.0
        language: c
        sources: ["main.c"]
        outputs:
          - {name: oops, kind: executable}
    """,
    "broken/oops/main.c": "int main(void) { return missing; }\n",
    "invalid.yaml": "kind: plan\nprojects: 3\n",
}

EVAL = ("eval", "plan.yaml", "--store", "store", "-p", "calc", "-e",
        'printf("%d\\n", calc_twice(21)); fprintf(stderr, "err\\n"); return 3;')
# Each command, in order, on a fresh copy of the projects: a build, a no-op, show, verify,
# eval, a failing build (1), bad input (2) and a mistyped command (2).
SESSION = [
    ("realise", "plan.yaml", "--store", "store", "-j", "1"),
    ("realise", "plan.yaml", "--store", "store", "-j", "1"),
    ("show", "plan.yaml", "--store", "store", "--json"),
    ("verify", "plan.yaml", "--store", "store", "-j", "1"),
    EVAL,
    ("realise", "broken/plan.yaml", "--store", "store"),
    ("validate", "invalid.yaml"),
    ("realise", "nowhere.yaml"),
    ("bogus",),
]


def environment(**extra: str) -> dict[str, str]:
    """The environment with serving on (conftest turns it off for every other test)."""
    return {**{k: v for k, v in os.environ.items() if k != "RECIPE_SERVER"}, **extra}


@pytest.fixture(scope="module")
def client() -> Path:
    """The native client, compiled into the user's cache by ``recipe server client-dir``."""
    done = run_recipe("server", "client-dir", env=environment())
    assert done.returncode == 0, done.stderr
    program = Path(done.stdout.strip()) / "recipe"
    assert os.access(program, os.X_OK)
    return program


@pytest.fixture
def server() -> Iterator[int]:
    """A running server (stopped, and its process gone, afterwards)."""
    with recipe_server(environment()) as pid:
        yield pid


def run(client: Path, args: tuple[str, ...], cwd: Path, env: dict[str, str] | None = None,
        stdin: str = "", **popen: object) -> tuple[str, str, int, bool]:
    """stdout, stderr, exit code of ``recipe ARGS`` through the client; and whether it was
    served (its process never ran Python)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.TemporaryFile() as given:
        given.write(stdin.encode())
        given.seek(0)
        proc = subprocess.Popen([str(client), *args], stdin=given, stdout=out, stderr=err,
                                cwd=cwd, env=env or environment(), **popen)  # type: ignore[call-overload]
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        CLIENT_CPU.append(usage.ru_utime + usage.ru_stime)
        return (out.read().decode(), err.read().decode(), proc.returncode,
                CLIENT_CPU[-1] < SERVED_CPU)


def tidy(text: str, root: Path) -> str:
    """Without the folder, the times of cases, and the order of "building" lines (the order in
    which independent derivations start is the machine's, -j 1 or not)."""
    text = re.sub(r"\b\d+\.\d\ds\b", "T", text.replace(str(root), "ROOT"))
    lines = text.splitlines(keepends=True)
    return "".join(sorted(lines)) if all(x.startswith("building ") for x in lines) else text


def session(client: Path, root: Path, env: dict[str, str]) -> list[tuple[str, str, int, bool]]:
    write_tree(root, PROJECTS)
    found = []
    for args in SESSION:
        out, err, code, served = run(client, args, root, env)
        found.append((tidy(out, root), tidy(err, root), code, served))
    return found


def test_every_command_served_is_the_command_in_process(tmp_path: Path, client: Path,
                                                        server: int) -> None:
    served = session(client, tmp_path / "served", environment())
    local = session(client, tmp_path / "local", environment(RECIPE_SERVER="off"))
    assert all(s[3] for s in served), [a for a, s in zip(SESSION, served, strict=True)
                                       if not s[3]]
    assert not any(s[3] for s in local)
    assert [s[:3] for s in served] == [s[:3] for s in local]
    codes = [s[2] for s in served]
    assert codes == [0, 0, 0, 0, 3, 1, 2, 2, 2]
    assert served[1][0] == served[0][0] and "building" in served[0][1]  # the no-op says the same
    assert served[4][:2] == ("42\n", "err\n")
    assert json.loads(served[2][0])[0]["valid"] is True
    assert run_recipe("server", "status").stdout.startswith("recipe server: running")


def test_a_served_command_has_written_all_it_writes_when_it_answers(tmp_path: Path,
                                                                    client: Path,
                                                                    server: int) -> None:
    """Every command of the session but the eval, served: once the caller has the exit code,
    nothing more is written, removed or renamed in the project or the store (the record of
    the run for the next no-op, the digest cache, the build's folder and the process's
    temporary roots: engine/later.py), so a script's ``rm -rf store`` or ``tar`` right after
    it never races the command. A file-system watch over every folder there, read at once
    when the caller has its answer (what came before) and again half a second later."""
    from inotify_simple import INotify, flags

    root = write_tree(tmp_path / "p", PROJECTS)
    mask = flags.CREATE | flags.DELETE | flags.MODIFY | flags.ATTRIB | flags.MOVED_FROM | \
        flags.MOVED_TO | flags.DELETE_SELF
    commands = [a for a in SESSION if a != EVAL] + [SESSION[0]]  # the last after an edit
    late = []
    for n, args in enumerate(commands):
        if n == len(commands) - 1:
            (root / "calc/src/calc.c").write_text(
                '#include "calc.h"\nint calc_twice(int x) { return x + x; }\n')
        watch = INotify()
        try:
            folders = {watch.add_watch(str(folder), mask): Path(folder) for folder, _, _ in
                       os.walk(root)}
            done = run(client, args, root)
            watch.read(timeout=0)  # what the command did before it answered
            time.sleep(0.5)
            late.append([f"{folders[e.wd].relative_to(root)}/{e.name}"
                         for e in watch.read(timeout=0)])
        finally:
            watch.close()
        assert done[3] and done[2] == (0, 0, 0, 0, 1, 2, 2, 2, 0)[n], (args, done)
    assert late == [[]] * len(commands), list(zip(commands, late, strict=True))


def test_the_caller_s_stdin_umask_and_environment(tmp_path: Path, client: Path,
                                                  server: int) -> None:
    write_tree(tmp_path, PROJECTS)
    code = 'int c = getchar(); FILE *f = fopen("made", "w"); fclose(f); printf("%c\\n", c);'
    args = ("eval", "plan.yaml", "-p", "calc", "--works", str(tmp_path / "works"), "-e", code)
    env = environment(RECIPE_STORE=str(tmp_path / "other-store"))  # the caller's store
    # The umask set here, not by a preexec_fn: that forks this (large) Python process and runs
    # Python in the child, CPU the client's rusage then counts (8.4 ms once in CI: "not served")
    umask = os.umask(0o077)
    try:
        out, err, status, served = run(client, args, tmp_path, env, stdin="z")
    finally:
        os.umask(umask)
    assert (out, status, served) == ("z\n", 0, True), f"{err} (client CPU {CLIENT_CPU[-1]} s)"
    assert (tmp_path / "other-store/.recipe/db.sqlite").is_file()
    assert (tmp_path / "works/made").stat().st_mode & 0o777 == 0o600


def test_no_server_runs_the_python_command(tmp_path: Path, client: Path) -> None:
    assert run_recipe("server", "status").stdout == "recipe server: not running\n"
    mine, theirs = write_tree(tmp_path / "a", PROJECTS), write_tree(tmp_path / "b", PROJECTS)
    for args in (("realise", "plan.yaml", "--store", "store", "-j", "1"), ("bogus",)):
        out, err, code, served = run(client, args, mine)
        assert not served
        local = run_recipe(*args, cwd=theirs)
        assert (tidy(out, mine), tidy(err, mine), code) == \
            (tidy(local.stdout, theirs), tidy(local.stderr, theirs), local.returncode)


def test_ctrl_c_and_sigterm_reach_the_served_command(tmp_path: Path, client: Path,
                                                     server: int) -> None:
    write_tree(tmp_path, PROJECTS)
    works = tmp_path / "works"
    loop = ('int getpid(void); FILE *f = fopen("pid", "w"); fprintf(f, "%d", getpid()); '
            'fclose(f); printf("looping\\n"); fflush(stdout); for (;;) {}')
    for signum, code, last in ((signal.SIGINT, 130, "recipe: interrupted\n"),
                               (signal.SIGTERM, 143, "recipe: stopped by SIGTERM\n")):
        (works / "pid").unlink(missing_ok=True)
        proc = subprocess.Popen([str(client), *EVAL[:-1], loop, "--works", str(works)],
                                cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=environment())
        assert proc.stdout is not None and proc.stdout.readline() == "looping\n"
        runner = int(next(works.rglob("pid")).read_text())
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == code and err.endswith(last), err
        deadline = time.monotonic() + 10
        while Path(f"/proc/{runner}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{runner}").exists()


def test_ctrl_c_stops_a_served_build_and_its_compilers(tmp_path: Path, client: Path,
                                                      server: int, tc) -> None:  # noqa: ANN001
    # A served command is not in the terminal's process group: the ^C the client passes on
    # must reach the build's reaper and compilers too, or the build goes on to its end.
    write_tree(tmp_path, {**{k: v for k, v in PROJECTS.items() if k.startswith("hello/")},
                          "plan.yaml": f"""
        kind: plan
        projects: ["hello/project.yaml"]
        targets:
          release: {{opt: release, toolchain: {tc.spec_yaml()}}}
        default_targets: [release]
    """})
    hold = tc.hold("compile", max_wait=120)
    proc = subprocess.Popen([str(client), "realise", "plan.yaml", "--store", "store"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=environment())
    hold.wait(alive=proc)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - started < 30, err

    def compilers() -> list[str]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                line = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if entry.name.isdigit() and str(tc.folder).encode() in line:
                found.append(entry.name)
        return found

    deadline = time.monotonic() + 10
    while compilers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert compilers() == []


def test_a_changed_module_or_a_refused_caller_runs_in_process(tmp_path: Path, client: Path,
                                                              server: int) -> None:
    import resource

    write_tree(tmp_path, PROJECTS)
    args = ("realise", "plan.yaml", "--store", "store")
    first = run(client, args, tmp_path)
    assert first[2:] == (0, True)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (600, 600))

    again = run(client, args, tmp_path, preexec_fn=limited)
    assert again[2:] == (0, False) and again[0] == first[0]
    module = Path(__file__).parents[1] / "engine/errors.py"
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    try:
        changed = run(client, args, tmp_path)
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert changed[2:] == (0, False) and changed[0] == first[0]
    deadline = time.monotonic() + 10
    while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{server}").exists()  # the server left: it never serves old code


def test_server_start_replaces_a_server_whose_files_changed(tmp_path: Path, client: Path,
                                                            server: int) -> None:
    """recipe reinstalled in place while its server runs (here: a module's mtime moved): that
    server leaves at the next request it gets, so ``server start`` does not report it as
    running (the next command would have run in-process, with no server after it); it starts
    a new one, which serves."""
    write_tree(tmp_path, PROJECTS)
    module = Path(__file__).parents[1] / "engine/errors.py"
    st = module.stat()
    os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    try:
        started = run_recipe("server", "start", "--json", env=environment())
        assert started.returncode == 0, started.stderr
        pid = json.loads(started.stdout)["pid"]
        assert pid != server
        deadline = time.monotonic() + 10
        while Path(f"/proc/{server}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{server}").exists()  # the old one left
        out, err, code, served = run(client, ("realise", "plan.yaml", "--store", "store"),
                                     tmp_path)
        assert (code, served) == (0, True), err
    finally:
        os.utime(module, ns=(st.st_atime_ns, st.st_mtime_ns))
        run_recipe("server", "stop", env=environment())


def test_the_client_is_keyed_by_identity_and_source(tmp_path: Path) -> None:
    env = environment(XDG_CACHE_HOME=str(tmp_path / "cache"))
    first = run_recipe("server", "client-dir", env=env)
    other = run_recipe("server", "client-dir", env={**env, "LC_ALL": "C"})
    assert first.returncode == other.returncode == 0, first.stderr + other.stderr
    assert first.stdout != other.stdout  # another locale is another identity
    assert Path(first.stdout.strip()).parent == tmp_path / "cache/recipe/client"
    if shutil.which("cc") is not None:  # the program itself runs, and falls back
        done = subprocess.run([f"{first.stdout.strip()}/recipe", "--version"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.stdout == run_recipe("--version").stdout
