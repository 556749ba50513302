"""A runner's compiler started ahead of its submission, while the user types.

Of rustc's ~50 ms on a new runner, ~10 ms go before it reads its source file: loading itself
(its driver and LLVM, 350 MB of shared libraries) and setting up its session. A ``recipe repl``
session of a Rust project (``Session.warm``) starts the next submission's rustc early, on a
source file that is a FIFO, so rustc waits in ``open`` until the submission comes; then the
runner's text is written into the FIFO, rustc reads it to its end and compiles.

rustup's lld, which links the runner, is started ahead beside it (``engine.repl.prelink``).

Its runner may be taken before rustc ends (``finish(early=True)``): when rustc's first link
wrote it and neither rustc nor lld said anything, rustc is kept waiting for its linker's
answer (``engine.repl.prelink``) while the runner runs, and ends after (``settle``).

Nothing of the runner depends on this: the argument list, the runner's folder, the source's
name and the text rustc reads are those of a runner compiled the plain way
(``engine.repl.runner.command``), so the runner is the same, bit for bit, under the same key.
rustc runs under the reaper in a process group of its own, so a ^C at the prompt does not
stop it (it stops a compile that is under way: ``finish`` ends it on any exception).

C and C++: gcc reads its whole source file before it looks at the first line, and what costs
before the submission is loading the scope's precompiled header (~10 % of a new runner's
compile and link here). So the source file started ahead is a plain file that includes the
scope header, then a FIFO (``source.REST``) that gives the rest of the runner from a ``#line``
naming the plain runner's line and file: gcc loads the precompiled header and waits in
``open``. The runner is the plain compile's, bit for bit (the tests compare, with and without
debug information); a submission that names ``__INCLUDE_LEVEL__``, which would see 1, is
compiled the plain way. Only what gcc says differs (``In file included from``): a compile that
said anything or failed is not taken, and the runner is compiled again the plain way, so its
words are a plain compile's; a taken one's source file is then the plain runner's text.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

from engine.build import reaper
from engine.repl import source
from engine.repl.prelink import Linker
from engine.repl.runner import Spec, command, runner_folder

TYPE_CHECKING = False
if TYPE_CHECKING:
    from engine.store import Store

#: How often ``finish`` looks whether rustc has reached its source, when it has not yet.
POLL = 0.0005
#: The one thing a C or C++ submission could see of its rest being included: gcc's nesting
#: depth (1, not 0). A submission that names it is compiled the plain way.
_SPLIT_SHOWS = "__INCLUDE_LEVEL__"


class Ahead:
    """A rustc of ``spec`` waiting for its source in ``folder`` (one submission, once)."""

    def __init__(self, spec: Spec, folder: Path, src: Path, executable: Path,
                 contained: reaper.Contained, linker: Linker | None = None) -> None:
        self.spec, self.folder, self.src, self.executable = spec, folder, src, executable
        self.contained, self.linker = contained, linker
        self.split = spec.language != "rust"  # gcc: the source's rest from a FIFO beside it
        self.fifo = folder / source.REST if self.split else src
        self.used = False
        self.fed: str | None = None  # the submission given to rustc early (``feed``)
        self.reached = False  # whether rustc read it
        self.settling = False  # ``finish`` returned at the link: ``settle`` waits for the rest
        self._said = b""  # what rustc wrote, read while waiting for its link
        self._status = 1

    @classmethod
    def start(cls, spec: Spec, store: Store) -> Ahead | None:
        """The waiting rustc, or None where it cannot be had (no FIFO, no rustc): then a
        submission is compiled the plain way."""
        folder = runner_folder(store)
        try:
            src = folder / source.runner_name(spec.language)
            if spec.language == "rust":
                os.mkfifo(src, 0o600)
            elif spec.key.get("toolchain", {}).get("family") == "gcc" and _literal(str(src)):
                src.write_text(source.runner_parts(spec.language, "", spec.title, str(src))[0])
                os.mkfifo(folder / source.REST, 0o600)
            else:  # zig's clang (not tried), or a store path a #line cannot name as it is
                shutil.rmtree(folder, ignore_errors=True)
                return None
            argv, cwd, executable = command(spec, folder, src)
            env = {**spec.env, "TMPDIR": str(folder)}
            argv, linker = Linker.start(argv, folder, store, env)  # lld, started ahead too
            try:
                contained = reaper.Contained.start(
                    argv, store, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT, cwd=cwd, env=env)
            except BaseException:
                if linker is not None:
                    linker.close()
                raise
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return cls(spec, folder, src, executable, contained, linker)

    def serve_links(self) -> None:
        """Start the thread that serves rustc's link now, not when the submission comes (its
        start is a thread's: a scheduler's wait on a busy machine)."""
        if self.linker is not None:
            self.linker.serve(self.contained)

    def feed(self, code: str) -> None:
        """Give rustc the runner of submission ``code`` now, to compile while its caller does
        something else (``engine.repl.ready``); ``finish`` of the same ``code`` has its result,
        that of another code none. A no-op once fed or used."""
        if self.used or self.fed is not None:
            return
        self.fed = code
        self.reached = self._give(code)

    def finish(self, code: str, early: bool = False) -> tuple[int, bytes] | None:
        """Compile the runner of submission ``code``: rustc's exit code and words, or None when
        this rustc ended before it read its source, or was fed another submission (compile the
        plain way instead). ``early``: return ``(0, b"")`` as soon as lld has written the
        runner, when neither rustc nor lld said anything; ``settling`` is then true, rustc
        waits for its link's answer, and ``settle`` gives it and waits for rustc's end (its
        teardown, ~5 ms of CPU: after the run, not before it)."""
        self.used = True
        reached = self.reached
        if early and self.linker is not None:
            self.linker.hold = True  # a link before this (fed long ago) is not held: no harm
        try:
            if self.fed is None:
                reached = self._give(code)
            elif self.fed != code:
                reached = False  # not this submission's runner: stopped below
                self.contained.stop()
            if reached and early and self._linked_clean():
                self.settling = True
                return 0, b""
            output = self._said + self.contained.proc.communicate()[0]
        except BaseException:
            self._end()
            shutil.rmtree(self.folder, ignore_errors=True)  # a ^C: nothing of it is kept
            raise
        self._end()
        if not reached or self.split and (self._status, output) != (0, b""):
            shutil.rmtree(self.folder, ignore_errors=True)  # gcc's words: see the module
            return None
        if self.split:  # the folder as a plain compile leaves it
            self.fifo.unlink()
            self.src.write_text(source.runner_source(self.spec.language, code, self.spec.title))
        return self._status, output

    def settle(self) -> tuple[int, bytes]:
        """After ``finish`` returned early: rustc's exit code and all it said, once it ended.
        Anything but ``(0, b"")`` (rustc failing after its link: it could not remove its
        temporary files) means the runner must not be cached."""
        self.settling = False
        if self.linker is not None:
            self.linker.release()  # rustc has its link's answer only now
        try:
            output = self._said + self.contained.proc.communicate()[0]
        finally:
            self._end()
        return self._status, output

    def _end(self) -> None:
        """rustc stopped (a no-op once it ended) and waited for, lld's serving ended."""
        self.contained.stop()
        try:
            self._status = self.contained.wait()
        finally:
            if self.linker is not None:
                self.linker.close()

    def _linked_clean(self) -> bool:
        """Wait until rustc ends or its first link is answered; whether that link wrote the
        runner with lld and rustc silent so far, so that nothing rustc does after it can change
        what the submission's caller sees: rustc prints its diagnostics as it finds them, before
        code generation, and its closing count of warnings only after some."""
        if self.linker is None:
            return False
        if not self._linked_silent():
            self.linker.release()  # rustc ends the plain way, its link answered
            return False
        return True

    def _linked_silent(self) -> bool:
        import select

        assert self.linker is not None
        out = self.contained.proc.stdout
        assert out is not None
        pipe, linked = out.fileno(), self.linker.linked
        ready = select.select([pipe, linked], [], [])[0]
        if linked not in ready:  # rustc said something, or ended: wait for all of it
            self._said += os.read(pipe, 1 << 16)
            return False
        if os.read(linked, 1) != b"1":
            return False
        # What rustc wrote before it started its linker is in the pipe by now.
        os.set_blocking(pipe, False)
        try:
            self._said += os.read(pipe, 1 << 16)  # words, or b"" when rustc ended already
            return False
        except BlockingIOError:
            return True  # silent: the runner is whole (lld renames it into place)
        finally:
            os.set_blocking(pipe, True)

    def _give(self, code: str) -> bool:
        """Start serving rustc's link; write the runner of ``code`` into the FIFO; whether
        the compiler was there to read it (and was given it: see ``_SPLIT_SHOWS``)."""
        if self.split and _SPLIT_SHOWS in code:
            self.contained.stop()  # compiled the plain way
            return False
        text = (source.runner_parts(self.spec.language, code, self.spec.title,
                                    str(self.src))[1] if self.split else
                source.runner_source(self.spec.language, code, self.spec.title,
                                     tuple(self.spec.uses))).encode()
        if self.linker is not None:
            self.linker.serve(self.contained)
        fd = self._writer()
        if fd is None:
            return False
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view):]
        except BrokenPipeError:
            pass  # rustc ended while reading: its exit code and words tell why
        finally:
            os.close(fd)
        return True

    def _writer(self) -> int | None:
        """Our end of the FIFO once rustc holds its own (it is still starting when the
        submission comes quickly); None if it ended first."""
        while True:
            try:
                fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            else:
                os.set_blocking(fd, True)
                return fd
            if self.contained.proc.poll() is not None:
                return None
            time.sleep(POLL)

    def cancel(self) -> None:
        """Stop the waiting rustc and remove its folder (a session that ends, a submission
        compiled otherwise); a no-op once ``finish`` took it."""
        if self.used:
            return
        self.used = True
        self.contained.stop()
        try:
            self.contained.proc.communicate()
            self.contained.wait()
        except OSError:
            pass
        if self.linker is not None:
            self.linker.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _literal(text: str) -> bool:
    """Whether ``text`` is its own C string literal (no quote, backslash or control
    character to escape), as a ``#line`` names the runner's file."""
    return text.isprintable() and not any(c in text for c in ('"', "\\", "??"))
