"""One reaper for a whole build (``reaper --serve``, see ``engine/build/reaper_source.py``).

A build runs a hundred actions; starting a reaper for each (recipe's fork and exec of it, its
exec, its own fork) cost about 0.4 ms of CPU per action over a plain ``subprocess.run``. The
service is started once per build: each action is one message on its socket, with the action's
output pipe and control socket passed along; the server forks a job for it, and the job contains
the action exactly as a reaper of its own would (a subreaper per action: what one action leaves
is killed when that action ends, not when the build does). Where the reaper cannot be had (no C
compiler, a memfd that cannot be executed) or the service is gone, an action runs through
``reaper.run``, as before.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from array import array
from typing import Any

from engine.build import reaper

_LIMIT = 200_000  # bytes of one request (the socket's buffer); a longer one runs on its own


class Service:
    """The build's reaper; ``run`` from any thread, ``close`` once at the end (it ends, and
    kills, whatever is still running)."""

    def __init__(self, cache: reaper.ActionCache | None) -> None:
        self.cache = cache
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._started = self._closed = False
        self._guard = threading.Lock()

    def _socket(self) -> socket.socket | None:
        """The service's socket, the server started by the first action that runs (a build
        whose actions are all cached starts none, and does not load the reaper)."""
        with self._guard:
            if not self._started and not self._closed:
                self._started = True
                self._start()
            return self._sock

    def _start(self) -> None:
        fd = reaper.executable(self.cache)
        if fd is None:
            return
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # In our process group, as ``reaper.run``'s reaper is: a ^C reaches it and stops
            # every action.
            self._proc = subprocess.Popen(
                [f"/proc/self/fd/{fd}", "--serve", str(theirs.fileno())],
                pass_fds=(fd, theirs.fileno()), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self._sock = mine
        except OSError:
            mine.close()  # not executable here: every action goes through reaper.run
        finally:
            theirs.close()

    def start(self) -> None:
        """Start the service now (a build that knows an action will run: its exec overlaps
        the staging of the action's inputs), not at the first ``run``."""
        self._socket()

    def run(self, argv: list[str], cwd: os.PathLike[str] | str, env: dict[str, str],
            umask: int, started: threading.Event | None = None) -> tuple[int, bytes]:
        """As ``reaper.run(argv, cache, cwd=, env=, umask=)``: the exit code (minus the
        signal that ended it) and stdout and stderr together; OSError when the program cannot
        be executed. ``started`` is set once the program is the service's (or this call
        failed), before this waits for it."""
        try:
            return self._run(argv, cwd, env, umask, started)
        finally:
            if started is not None:
                started.set()

    def _run(self, argv: list[str], cwd: os.PathLike[str] | str, env: dict[str, str],
             umask: int, started: threading.Event | None) -> tuple[int, bytes]:
        payload = "\0".join([os.fspath(cwd), f"{umask:o}", argv[0], str(len(argv)), *argv,
                             str(len(env)), *(f"{k}={v}" for k, v in env.items())]) + "\0"
        data = payload.encode()
        sock = self._socket()
        # A NUL in an argument, a variable or the folder would split the service's fields:
        # reaper.run refuses such an action as the system does (ValueError).
        if sock is None or len(data) > _LIMIT or \
                payload.count("\0") != 5 + len(argv) + len(env):
            return reaper.run(argv, self.cache, cwd=cwd, env=env, umask=umask)
        read, write = os.pipe()
        control, theirs = socket.socketpair()
        try:
            try:
                sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                       array("i", [write, theirs.fileno()]))])
            finally:
                os.close(write)
                theirs.close()
        except OSError:  # the service is gone: this action on its own reaper
            os.close(read)
            control.close()
            return reaper.run(argv, self.cache, cwd=cwd, env=env, umask=umask)
        if started is not None:
            started.set()
        try:
            with open(read, "rb") as out:
                output = out.read()
            status = control.recv(256).decode("ascii", "replace").strip()
        finally:
            control.close()
        kind, _, value = status.partition(" ")
        if kind == "exit" and value.isdigit():
            return int(value), output
        if kind == "signal" and value.isdigit():
            return -int(value), output
        if kind == "error" and value.isdigit():
            raise OSError(int(value), os.strerror(int(value)), argv[0])
        return -9, output  # the job was killed before it could say (the build is stopping)

    def close(self) -> None:
        """End the service: its EOF makes it kill whatever is left, and exit."""
        with self._guard:
            sock, self._sock, self._closed = self._sock, None, True
        if sock is not None:
            sock.close()
        if self._proc is not None:
            self._proc.wait()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()
