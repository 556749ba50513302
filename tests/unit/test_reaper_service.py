"""One reaper serving every action of a build (engine/build/reaper_service.py): each action
contained as by a reaper of its own, on the real reaper (compiled with the C compiler here)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.build import reaper
from engine.build.reaper_service import Service
from engine.store import Store

ENV = {"PATH": "/usr/bin:/bin"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store")
    if reaper.executable(opened) is None:
        pytest.skip("no reaper here (no C compiler)")
    yield opened
    opened.close()


def _marked(token: str) -> list[int]:
    """Live processes (not zombies) whose environment holds ``token``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if token.encode() not in Path(f"/proc/{name}/environ").read_bytes():
                continue
            state = Path(f"/proc/{name}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(name))
    return found


def _gone(token: str, seconds: float = 5) -> bool:
    deadline = time.monotonic() + seconds
    while _marked(token) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not _marked(token)


def _kill_all(token: str) -> None:
    for pid in _marked(token):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_an_action_runs_as_asked(store: Store, tmp_path: Path) -> None:
    """Its folder, umask and environment, stdin closed, stdout and stderr together; its exit
    code, or minus the signal that ended it; an OSError when it cannot be executed."""
    with Service(store) as service:
        code, out = service.run(["/bin/sh", "-c", "pwd; umask; echo $ONLY; cat; echo e >&2; "
                                 "exit 3"], tmp_path, {**ENV, "ONLY": "this"}, 0o027)
        assert (code, out) == (3, f"{tmp_path}\n0027\nthis\ne\n".encode())
        assert service.run(["/bin/sh", "-c", "kill -9 $$"], tmp_path, ENV, 0o022)[0] == -9
        with pytest.raises(OSError):
            service.run([str(tmp_path / "missing")], tmp_path, ENV, 0o022)


def test_two_actions_leftovers_die_each_with_its_own_action(store: Store) -> None:
    """What an action leaves (a daemon out of its process group) is killed when that action
    ends, while another action of the same build is still running, untouched."""
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    results: dict[str, tuple[int, bytes]] = {}
    try:
        with Service(store) as service:
            def long() -> None:  # the second action: leaves a daemon too, runs on
                results["second"] = service.run(
                    ["/bin/sh", "-c", "setsid sleep 60 & sleep 1.5; echo second"], "/",
                    {**ENV, "MARK": second}, 0o022)

            thread = threading.Thread(target=long)
            thread.start()
            deadline = time.monotonic() + 10
            while len(_marked(second)) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            results["first"] = service.run(
                ["/bin/sh", "-c", "setsid sleep 60 & sleep 0.2; echo first"], "/",
                {**ENV, "MARK": first}, 0o022)
            assert results["first"] == (0, b"first\n")
            assert _gone(first)  # its daemon is dead as soon as it ended...
            assert len(_marked(second)) == 3  # ...the other action and its daemon are not
            thread.join()
            assert results["second"] == (0, b"second\n")
            assert _gone(second)
    finally:
        _kill_all(first)
        _kill_all(second)


def test_closing_the_service_ends_what_still_runs(store: Store) -> None:
    token = uuid.uuid4().hex
    results: dict[str, tuple[int, bytes]] = {}
    try:
        service = Service(store)
        thread = threading.Thread(target=lambda: results.update(
            run=service.run(["/bin/sh", "-c", "setsid sleep 60 & sleep 60"], "/",
                            {**ENV, "MARK": token}, 0o022)))
        thread.start()
        deadline = time.monotonic() + 10
        while len(_marked(token)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_marked(token)) == 3
        service.close()
        thread.join(10)
        assert results["run"][0] < 0 and _gone(token)
        # closed: an action still asked for runs on a reaper of its own
        assert service.run(["/bin/sh", "-c", "echo late"], "/", ENV, 0o022) == (0, b"late\n")
    finally:
        _kill_all(token)


KILLED = """
import os, signal, sys, threading
from pathlib import Path
from engine.build.reaper_service import Service
from engine.store import Store
service = Service(Store.open(Path(sys.argv[1])))
threading.Thread(target=service.run, args=(["/bin/sh", "-c", "setsid sleep 60 & sleep 60"],
                 "/", {"PATH": "/usr/bin:/bin", "MARK": sys.argv[2]}, 0o022)).start()
sys.stdin.readline()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_recipe_takes_the_service_and_its_actions_down(store: Store,
                                                                   tmp_path: Path) -> None:
    """recipe SIGKILLed mid-build: the service sees its socket close and kills every action
    and what escaped them."""
    token = uuid.uuid4().hex
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    recipe = subprocess.Popen([sys.executable, str(script), str(store.root), token],
                              stdin=subprocess.PIPE, cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 10
        while len(_marked(token)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(_marked(token)) == 3  # the action's shell, its sleep and the daemon
        assert recipe.stdin is not None
        recipe.stdin.write(b"die\n")
        recipe.stdin.close()
        assert recipe.wait(5) == -signal.SIGKILL
        assert _gone(token)
    finally:
        recipe.kill()
        recipe.wait()
        _kill_all(token)


def test_a_new_store_takes_the_reaper_from_the_users_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built once per user, not once per store (every cold build has a new store); a copy in
    the user's cache that does not match its recorded digest is built again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiles: list[list[str]] = []
    real_run = reaper.subprocess.run

    def counted(argv: list[str], *args: object, **kw: object) -> object:
        compiles.append(argv)
        return real_run(argv, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(reaper.subprocess, "run", counted)
    built = {}
    for n in range(3):
        if n == 2:  # damaged in the user's cache (and the last store is new too)
            (copy,) = [p for p in (tmp_path / "cache/recipe/reaper").iterdir()
                       if not p.name.endswith(".sha256")]
            copy.write_bytes(b"not the reaper")
        with Store.open(tmp_path / f"store{n}") as store:
            built[n] = reaper._binary(store)
        assert len(compiles) == (1 if n < 2 else 2), n
    assert built[0] == built[1] == built[2]
