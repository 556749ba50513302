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
does), and run from an in-memory file (``memfd``), so it needs no writable or executable folder.

Protocol: ``reaper CONTROL_FD PROGRAM ARGV0 [ARG...]``. It runs PROGRAM, which sees ARGV0 as
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

SOURCE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int ctl = -1;

static void report(const char *kind, int value) {
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d\n", kind, value);
    /* Never block or die on it: recipe may be gone, or not reading. */
    if (send(ctl, line, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) { /* nobody to tell */ }
}

/* No descriptor but 0, 1 and 2 may reach the program (the control socket, our own memfd). */
static void cloexec_all(void) {
    DIR *dir = opendir("/proc/self/fd");
    if (!dir) { for (int fd = 3; fd < 1024; fd++) fcntl(fd, F_SETFD, FD_CLOEXEC); return; }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(dir)) fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    closedir(dir);
}

/* SIGKILL every child of ours; orphaned descendants are our children (we are a subreaper). */
static void kill_children(void) {
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        long pid = 0;
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] >= '0' && buf[i] <= '9') { pid = pid * 10 + (buf[i] - '0'); continue; }
                if (pid > 0) kill((pid_t)pid, SIGKILL);
                pid = 0;
            }
        if (pid > 0) kill((pid_t)pid, SIGKILL);
        close(fd);
        return;
    }
    DIR *dir = opendir("/proc");  /* kernels without CONFIG_PROC_CHILDREN: scan every process */
    if (!dir) return;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        int pid = atoi(e->d_name);
        if (pid <= 0) continue;
        snprintf(path, sizeof path, "/proc/%d/stat", pid);
        int sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0) continue;
        ssize_t n = read(sfd, buf, sizeof buf - 1);
        close(sfd);
        if (n <= 0) continue;
        buf[n] = 0;
        char *end = strrchr(buf, ')');
        int ppid = 0;
        if (end && sscanf(end + 1, " %*c %d", &ppid) == 1 && ppid == getpid()) kill(pid, SIGKILL);
    }
    closedir(dir);
}

int main(int argc, char **argv) {
    if (argc < 4) return 125;
    ctl = atoi(argv[1]);
    cloexec_all();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD); sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT); sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    pid_t parent = getpid();
    int errp[2];
    if (sfd < 0 || pipe2(errp, O_CLOEXEC) < 0) { report("error", errno); return 0; }
    pid_t child = fork();
    if (child < 0) { report("error", errno); return 0; }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        /* Dies with us (we are single-threaded, so "us" is this process); if we died before
           this line, the parent is another process already. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        setpgid(0, 0);  /* its own group: a `kill 0` in the program spares us */
        execv(argv[2], argv + 3);  /* argv[3] is the program's argv[0] */
        int e = errno;
        if (write(errp[1], &e, sizeof e) < 0) { /* nothing to do */ }
        _exit(127);
    }
    close(errp[1]);
    int e = 0;
    ssize_t n;
    while ((n = read(errp[0], &e, sizeof e)) < 0 && errno == EINTR) {}
    close(errp[0]);
    /* The streams are the program's: drop our copies so that nothing waits on us. */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    for (int fd = 0; fd < 3; fd++) { if (null >= 0) dup2(null, fd); else close(fd); }

    int status = 0, done = 0, stop = 0;
    if (n == (ssize_t)sizeof e) { waitpid(child, &status, 0); report("error", e); return 0; }
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {ctl, POLLIN, 0}};
    while (!done && !stop) {
        if (poll(fds, 2, -1) < 0) { if (errno == EINTR) continue; stop = 1; break; }
        if (fds[0].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                if (si.ssi_signo != SIGCHLD) stop = 1;
            pid_t pid;
            int st;
            while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
                if (pid == child) { status = st; done = 1; }
        }
        if (fds[1].revents) stop = 1;  /* recipe gone (EOF) or asking */
    }
    for (;;) {  /* kill, then reap one; killed processes' children come to us: repeat */
        kill_children();
        int st;
        pid_t pid = waitpid(-1, &st, 0);
        if (pid < 0) { if (errno == EINTR) continue; break; }  /* ECHILD: all gone */
        if (pid == child) { status = st; done = 1; }
    }
    if (WIFSIGNALED(status)) report("signal", WTERMSIG(status));
    else report("exit", WEXITSTATUS(status));
    return 0;
}
"""

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
    import tempfile

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise Unavailable("no C compiler on PATH")
    real = Path(compiler).resolve()
    info = real.stat()
    # Pinned (engine/store/cas.py): no path keeps it, and a collection that took it would make
    # the next build compile it again (about a second of gcc -static).
    key = "pin.reaper-" + canonical_hash({
        "v": 3, "kind": "verify-reaper", "machine": os.uname().machine,
        "source": hashlib.sha256(SOURCE.encode()).hexdigest(),
        "compiler": [str(real), info.st_size, info.st_mtime_ns]})
    if cache is not None:
        try:
            result = cache.get_action(key)
            if result is not None:
                return cache.read_blob(result["outputs"]["reaper"])
        except Exception:  # noqa: BLE001 - a damaged or collected entry is only a miss
            pass
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
        data = out.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if cache is not None:
        try:
            cache.put_action(key, {"outputs": {"reaper": cache.put_blob(data)}})
        except Exception:  # noqa: BLE001 - not caching only costs a compile next time
            pass
    return data


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
