"""rustup's lld started ahead, with the rustc of ``engine.repl.ahead``: a new submission's link
pays lld's work, not its start.

lld spends ~5 ms of a runner's ~13 ms link loading itself (it is linked against rustc's
200 MB LLVM library). The rustc started ahead is given a linker of ours, ``link.sh`` in its
folder (``-C linker=``, in place of rustup's ``rust-lld``), and a ``rust-lld -flavor gnu
@link.args`` is started beside it, whose response file is a FIFO: lld loads itself and waits
in ``open``. When rustc links, ``link.sh`` hands its arguments (NUL-separated) to a thread of
ours through the FIFO ``link.req``; the thread writes them, quoted as lld reads a response file,
to the waiting lld — and puts a regular file with the same text at ``link.args``, since lld
reads its response file twice —, waits for lld and answers its exit status and words through
the FIFO ``link.res``; ``link.sh`` says the words and exits with the status, as lld would
have. lld is the same program given the same arguments: the runner is the same, bit for bit.

A second link of the same rustc (rustc retries some failed links) runs a new lld. Where the
folder cannot hold a program (``noexec``), nothing is started and rustc runs rust-lld itself.
"""

from __future__ import annotations

import errno
import os
import subprocess
import threading
import time
from pathlib import Path

from engine.build import reaper

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.build.reaper import ActionCache

POLL = 0.0005  # how often a side looks whether the other has reached a FIFO yet

SCRIPT = """#!/bin/sh
# rustc's linker for a runner (recipe, engine/repl/prelink.py): hands its arguments to the lld
# started ahead, then says what lld said and exits with its status.
d=${0%/*}
printf '%s\\0' "$@" > "$d/link.req" || exit 1
{ read -r status; while IFS= read -r line || [ -n "$line" ]; do
    printf '%s\\n' "$line" >&2; done; } < "$d/link.res"
exit "${status:-1}"
"""


class Linker:
    """The lld waiting beside a rustc started ahead, and the thread that serves its links."""

    def __init__(self, folder: Path, lld: str, contained: reaper.Contained,
                 cache: ActionCache, env: dict[str, str]) -> None:
        self.folder, self.lld, self.contained, self.cache, self.env = folder, lld, contained, \
            cache, env
        self.req, self.res, self.args = (folder / name for name in (
            "link.req", "link.res", "link.args"))
        self._thread: threading.Thread | None = None
        self._closing = False
        self._rustc: reaper.Contained | None = None
        #: Read end of a pipe that gets one byte once rustc's first link is answered: ``1``
        #: when lld wrote the runner and said nothing (``engine.repl.ahead`` may run it then,
        #: before rustc's own end), ``0`` otherwise; closed by ``close``.
        self.linked, self._linked = os.pipe2(os.O_CLOEXEC)
        #: Set before the first link (``engine.repl.ahead``'s ``finish``): a clean one keeps
        #: rustc waiting for its linker's answer until ``release``, so that the runner runs
        #: with the CPU to itself, rustc's end (its teardown, ~5 ms) after it.
        self.hold = False
        self._released = threading.Event()

    @classmethod
    def start(cls, argv: list[str], folder: Path, cache: ActionCache,
              env: dict[str, str]) -> tuple[list[str], Linker | None]:
        """``argv`` (rustc's) with its linker replaced by ours, and the lld waiting for it; the
        same ``argv`` and None where the runner is not linked by rustup's lld, or the folder
        cannot hold a program."""
        lld = next((a.removeprefix("linker=") for a in argv if a.startswith("linker=")), "")
        if not lld.endswith("/rust-lld") or "linker-flavor=ld.lld" not in argv:
            return argv, None
        try:
            if os.statvfs(folder).f_flag & os.ST_NOEXEC:
                return argv, None
            for name in ("link.req", "link.res", "link.args"):
                os.mkfifo(folder / name, 0o600)
            script = folder / "link.sh"
            script.write_text(SCRIPT)
            script.chmod(0o700)
            contained = reaper.Contained.start(
                [lld, "-flavor", "gnu", f"@{folder / 'link.args'}"], cache,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                cwd=folder, env=env)
        except OSError:
            return argv, None
        ours = [f"linker={script}" if a == f"linker={lld}" else a for a in argv]
        return ours, cls(folder, lld, contained, cache, env)

    def serve(self, rustc: reaper.Contained) -> None:
        """Serve the links of ``rustc`` (from now until ``close``); a no-op once serving."""
        if self._thread is not None:
            return
        self._rustc = rustc
        self._thread = threading.Thread(target=self._serve, name="recipe-prelink", daemon=True)
        self._thread.start()

    def release(self) -> None:
        """Let rustc have its first link's answer (held by ``hold``), now or when it comes."""
        self._released.set()

    def close(self) -> None:
        """Once rustc ended (or never ran): stop serving, stop the lld if it still waits."""
        self._closing = True
        self.release()
        while self._thread is not None and self._thread.is_alive():
            try:  # wakes the thread where it waits for a request (rustc never linked)
                os.close(os.open(self.req, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
            except OSError as error:
                if error.errno != errno.ENXIO:  # the folder is gone (removed at exit): the
                    break  # thread cannot be woken; a daemon, it ends with the process
            self._thread.join(POLL)
        self._end_lld(stop=True)
        # The write end is the thread's while it lives (a daemon left behind where the folder
        # was removed under it still holds it: then it goes with the process).
        ends = [self.linked] + ([self._linked] if self._linked >= 0 and not (
            self._thread is not None and self._thread.is_alive()) else [])
        self._linked = self.linked = -1
        for fd in ends:
            os.close(fd)

    def _end_lld(self, stop: bool = False) -> tuple[int, bytes]:
        """lld's exit status and words, once it ended (``stop``: ended now)."""
        if stop:
            self.contained.stop()
        try:
            out = self.contained.proc.communicate()[0] or b""
        except ValueError:  # read to its end already
            out = b""
        finally:
            self.contained.stop()  # what it left behind (nothing, normally)
        try:
            status = self.contained.wait()
        except OSError:
            return 1, out
        return (status if status >= 0 else 1), out

    def _serve(self) -> None:
        waiting = True  # the lld started ahead is still there for the first link
        while not self._closing:
            try:
                with open(self.req, "rb") as request:  # until link.sh (or close) opens it
                    data = request.read()
            except OSError:
                return
            if self._closing or not data:
                return
            try:
                args = [a.decode(errors="surrogateescape") for a in data.split(b"\0")[:-1]]
                if args[:2] == ["-flavor", "gnu"]:
                    args = args[2:]
                done = self._handoff(args) if waiting else None
                waiting = False
                if done is None:  # a second link, or the lld started ahead is gone
                    done = reaper.run([self.lld, "-flavor", "gnu", *args], self.cache,
                                      cwd=self.folder, env=self.env)
            except Exception as error:  # noqa: BLE001 - said to rustc, which fails the link
                done = 1, f"recipe: the link could not be run: {error}\n".encode()
            linked, self._linked = self._linked, -1
            if linked >= 0:  # the first link only: a second one is rustc's retry
                clean = done == (0, b"")
                _tell(linked, b"1" if clean else b"0")
                if clean and self.hold:
                    self._released.wait()
            self._answer(*done)

    def _handoff(self, args: list[str]) -> tuple[int, bytes] | None:
        """Give ``args`` to the lld started ahead; its status and words, or None if it is gone."""
        while True:
            try:
                fd = os.open(self.args, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as error:
                if error.errno != errno.ENXIO or self.contained.proc.poll() is not None:
                    return None
            time.sleep(POLL)  # it is still starting
        try:
            body = "".join(quoted(a) + "\n" for a in args).encode(errors="surrogateescape")
            again = self.folder / "link.args.new"  # what lld's second read of it finds
            again.write_bytes(body)
            os.replace(again, self.args)
            os.set_blocking(fd, True)
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view):]
        except BrokenPipeError:
            pass  # it ended while reading: its status and words tell why
        finally:
            os.close(fd)
        return self._end_lld()

    def _answer(self, status: int, words: bytes) -> None:
        """Write lld's status and words to link.sh, which waits for them (unless rustc ended:
        then nobody reads them)."""
        while True:
            try:
                fd = os.open(self.res, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                break
            except OSError as error:
                rustc = self._rustc
                if error.errno != errno.ENXIO or rustc is None or rustc.proc.poll() is not None:
                    return
            time.sleep(POLL)
        try:
            os.set_blocking(fd, True)
            view = memoryview(f"{status}\n".encode() + words)
            while view:
                view = view[os.write(fd, view):]
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)


def _tell(fd: int, word: bytes) -> None:
    try:
        os.write(fd, word)
        os.close(fd)
    except OSError:
        pass


def quoted(arg: str) -> str:
    """``arg`` as lld's response files read it (GNU quoting: backslash escapes, even inside
    double quotes)."""
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
