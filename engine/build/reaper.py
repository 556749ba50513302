"""The reaper: a tiny C helper between recipe and a program it starts (a build action, a case, a
REPL submission) that kills every process the program leaves behind, including those that left
its process group (``setsid``, double fork), and all of them when recipe dies.

Why a helper: an orphan is re-parented to its nearest *subreaper* ancestor
(``PR_SET_CHILD_SUBREAPER``, unprivileged, Linux 3.4+). That is a per-process attribute, so each
case needs its own subreaper process; forking recipe itself for that is unsafe (it runs cases
from threads) and starting a Python interpreter per case would cost more than the case. A cgroup
with ``cgroup.kill`` would need a writable, delegated cgroup tree, which unprivileged users (and
most CI runners) do not have. So the helper is compiled once, with the C compiler on ``PATH``,
cached as a blob in the store's action cache (the store knows nothing of compilers: this module
does) and in the user's cache (``engine.user_cache``: a new store does not compile it again),
and run from an in-memory file (``memfd``), so it needs no writable or executable folder.

Protocol: ``reaper CONTROL_FD PROGRAM ARGV0 [ARG...]`` (the C source, and its second mode, one
reaper serving every action of a build: ``engine/build/reaper_source.py``, ``reaper_service``).
It runs PROGRAM, which sees ARGV0 as
its ``argv[0]`` (a case's program sees its own name, not its store path), in a new process
group, and once PROGRAM ends, or on SIGTERM, SIGINT or SIGHUP, or when CONTROL_FD (a socket
recipe holds) reaches EOF because recipe died, it SIGKILLs every descendant still there, reaps
them all, writes one line to CONTROL_FD: ``exit N``, ``signal N`` or ``error ERRNO`` (PROGRAM
could not be executed), and exits 0.

Why the control socket and not a parent-death signal (``PR_SET_PDEATHSIG``) for the reaper
itself: that signal fires when the *thread* that forked the child ends, not the process, and
recipe starts programs from threads (the build's pool, Landlock's short-lived spawn thread, see
``engine/verify/landlock.py``): the reaper would be killed as soon as that thread ended. The
socket's EOF comes when the last descriptor of recipe's end closes, which is when the process
ends, however it ends (SIGKILL too). Between the reaper and PROGRAM a parent-death signal is
right (the reaper has one thread): a SIGKILLed reaper takes PROGRAM with it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from pathlib import Path

from engine.build.reaper_source import SOURCE
from engine.hashing import canonical_hash

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, Protocol

    class ActionCache(Protocol):
        """What the reaper needs of ``engine.store.Store``: a place to keep its binary."""

        def get_action(self, key: str) -> dict[str, Any] | None: ...
        def put_action(self, key: str, result: dict[str, Any]) -> None: ...
        def put_blob(self, data: bytes) -> str: ...
        def read_blob(self, digest: str) -> bytes: ...

ENABLED = True  # tests switch it off to exercise the process-group fallback


_lock = threading.Lock()
_fd: int | None = None
_tried = False


class Unavailable(Exception):
    """The reaper cannot be built here (no C compiler, or it failed)."""


def executable(cache: ActionCache | None = None) -> int | None:
    """A file descriptor of the built reaper (exec it as ``/proc/self/fd/N``), or None when it
    cannot be had; the first call builds it (or takes it from ``cache``), later calls reuse it."""
    global _fd, _tried
    if not ENABLED:
        return None
    with _lock:
        if not _tried:
            _tried = True
            try:
                _fd = _memfd(_binary(cache))
            except (Unavailable, OSError):
                _fd = None
        return _fd


def disable() -> None:
    """Stop using the reaper in this process (its memfd turned out not to be executable)."""
    global _fd, _tried
    with _lock:
        _tried, _fd = True, None


def _binary(cache: ActionCache | None) -> bytes:
    import shutil  # here: a repeated ``recipe eval`` pays for no import it does not use

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise Unavailable("no C compiler on PATH")
    real = Path(compiler).resolve()
    info = real.stat()
    # Pinned (engine/store/cas.py): no path keeps it, and a collection that took it would make
    # the next build compile it again (about a second of gcc -static).
    key = "pin.reaper-" + canonical_hash({
        "v": 4, "kind": "verify-reaper", "machine": os.uname().machine,
        "source": hashlib.sha256(SOURCE.encode()).hexdigest(),
        "compiler": [str(real), info.st_size, info.st_mtime_ns]})
    if cache is not None:
        try:
            result = cache.get_action(key)
            if result is not None:
                return cache.read_blob(result["outputs"]["reaper"])
        except Exception:  # noqa: BLE001 - a damaged or collected entry is only a miss
            pass
    data = _from_user_cache(key)
    if data is None:
        data = _compile(compiler, cache)
        _to_user_cache(key, data)
    if cache is not None:
        try:
            cache.put_action(key, {"outputs": {"reaper": cache.put_blob(data)}})
        except Exception:  # noqa: BLE001 - not caching only costs a compile next time
            pass
    return data


def _from_user_cache(key: str) -> bytes | None:
    """The reaper built by an earlier run into another store (``engine.user_cache``: a new
    store, such as every cold build's, would otherwise pay gcc -static, 0.16 s of CPU and
    more of wall while every action waits). Checked against the digest written beside it."""
    from engine import user_cache

    for path in user_cache.file(f"reaper/{key}"):
        try:
            data = path.read_bytes()
            recorded = path.with_name(f"{key}.sha256").read_text().strip()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() == recorded:
            return data
    return None


def _to_user_cache(key: str, data: bytes) -> None:
    """Keep the built reaper for every store of this user (a cache: failing costs time)."""
    from engine import user_cache

    for path in user_cache.file(f"reaper/{key}"):
        for name, content in ((f"{key}.sha256", hashlib.sha256(data).hexdigest().encode()),
                              (key, data)):
            target = path.with_name(name)
            tmp = target.with_name(f".{name}.{os.getpid()}")
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp.write_bytes(content)
                os.replace(tmp, target)
            except OSError:
                tmp.unlink(missing_ok=True)
                return


def _compile(compiler: str, cache: ActionCache | None) -> bytes:
    import shutil
    import tempfile

    # In the store's temporary folder when there is a store: a killed run's is removed by the
    # next run, where the system's temporary folder would keep it (the compiler's too).
    make = getattr(cache, "temp_dir", None)
    tmp = Path(make("reaper")) if make is not None else Path(
        tempfile.mkdtemp(prefix="recipe-reaper-"))
    try:
        source, out = tmp / "reaper.c", tmp / "reaper"
        source.write_text(SOURCE)
        # Static when the C library allows it: no dynamic loading saves ~0.3 ms per case.
        for link in (["-static"], []):
            run = subprocess.run([compiler, "-O2", "-s", *link, "-o", str(out), str(source)],
                                 capture_output=True, text=True, timeout=120,
                                 env={**os.environ, "TMPDIR": str(tmp)})
            if run.returncode == 0:
                break
        else:
            raise Unavailable(f"{compiler} failed: {run.stderr.strip()}")
        return out.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _memfd(data: bytes) -> int:
    fd = os.memfd_create("recipe-reaper", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o500)
    except OSError:
        os.close(fd)
        raise
    return fd


class Contained:
    """A program started under the reaper; where there is none (no C compiler, a memfd that
    cannot be executed), the program itself, in its own process group with ``group`` (then
    what leaves the group survives it, and so does the program a SIGKILLed recipe leaves)."""

    def __init__(self, proc: subprocess.Popen[bytes], control: Any, group: bool) -> None:
        self.proc, self.control, self.group = proc, control, group
        self.reaped = control is not None  # under the reaper
        self.status = ""  # the reaper's last word: "exit N", "signal N" or "error ERRNO"

    @classmethod
    def start(cls, argv: list[str], cache: ActionCache | None, *, group: bool = True,
              spawn: Callable[[Callable[[], subprocess.Popen[bytes]]],
                              subprocess.Popen[bytes]] | None = None,
              program: str | None = None, **popen: Any) -> Contained:
        """Start ``argv`` (``popen``: the rest of ``subprocess.Popen``'s arguments). ``group``:
        the reaper (or the program) gets a process group of its own, in the terminal's
        background, so that ^C reaches recipe alone; else it shares ours and takes a ^C as an
        order to stop. ``spawn(start)`` calls ``start`` where the process must be started (a
        Landlock-restricted thread). ``program``: the file to run when ``argv[0]`` is only the
        name it should see (a shell's ``exec -a``)."""
        import socket

        fd = executable(cache)
        control = child_end = None
        path = program or argv[0]
        full: list[str] = argv
        if fd is not None:
            control, child_end = socket.socketpair()
            full = [f"/proc/self/fd/{fd}", str(child_end.fileno()), path, *argv]
            popen["pass_fds"] = (fd, child_end.fileno())
        run = full[0] if fd is not None else path

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(full, executable=run, process_group=0 if group else None,
                                    **popen)

        try:
            return cls(spawn(start) if spawn is not None else start(), control, group)
        except OSError as error:
            if control is not None:
                control.close()
            if fd is not None and error.filename == full[0]:
                disable()  # its memfd cannot be executed here (vm.memfd_noexec=2)
                popen.pop("pass_fds", None)
                return cls.start(argv, cache, group=group, spawn=spawn, program=program,
                                 **popen)
            raise
        except BaseException:
            if control is not None:
                control.close()
            raise
        finally:
            if child_end is not None:
                child_end.close()

    def stop(self) -> None:
        """End the program and everything it started (a no-op once it all ended by itself)."""
        import signal

        try:
            if self.proc.returncode is not None:
                return  # reaped: its pid may be another process's by now
            if self.reaped:
                os.kill(self.proc.pid, signal.SIGTERM)  # unreaped: the pid is still ours
            elif self.group:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def wait(self) -> int:
        """Wait for the end (of the reaper's cleanup too); the program's exit code, or minus the
        signal that ended it. An OSError when the program could not be executed."""
        self.proc.wait()
        if self.control is not None:
            try:
                self.control.setblocking(False)
                self.status = self.control.recv(256).decode("ascii", "replace").strip()
            except OSError:
                pass
            self.control.close()
            self.control = None
        kind, _, value = self.status.partition(" ")
        if kind == "exit" and value.isdigit():
            return int(value)
        if kind == "signal" and value.isdigit():
            return -int(value)
        if kind == "error" and value.isdigit():
            raise OSError(int(value), os.strerror(int(value)), list(self.proc.args)[2])
        return self.proc.returncode  # no reaper, or the reaper itself was killed


def run(argv: list[str], cache: ActionCache | None, **popen: Any) -> tuple[int, bytes]:
    """Run ``argv`` to its end under the reaper, in our process group (a ^C stops it), with
    stdin closed; its exit code (minus the signal that ended it) and its stdout and stderr,
    read together. OSError when it cannot be executed, as ``subprocess.run`` says it."""
    contained = Contained.start(argv, cache, group=False, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen)
    try:
        output = contained.proc.communicate()[0]
    finally:
        contained.stop()
        code = contained.wait()
    return code, output
