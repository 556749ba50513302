"""Compiling a submission into a runner, through the store's action cache.

A runner is content-addressed. Its key is the sha256 (hex) of the canonical JSON of::

    {"format": "recipe-repl-1", "kind": "repl-runner",
     "pch": <the scope's key: library store path name, scope, flags, toolchain identity>,
     "compile": <driver and flags, with @SCOPE@/@STORE@ placeholders>,
     "link": <libraries by store path name, link flags>,
     "toolchain": <the toolchain identity>, "title": <project (target)>,
     "code": <the submission, exactly>}

No clock, no absolute path of the store, the sources or a temporary folder, no environment.
Its result maps ``runner`` (the executable) and ``diagnostics`` (what the compiler printed: the
warnings, replayed on every hit as ccache does) to blobs of the CAS, and is attached to the
library's store path, so a collection keeps it for as long as that path lives.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import namedtuple
from pathlib import Path

from engine.build import reaper
from engine.errors import Failure, RecipeError, UsageError
from engine.hashing import canonical_hash
from engine.repl import source
from engine.store import promises

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Protocol

    from engine.store import Store

    class Ahead(Protocol):
        """A compiler started before its submission (``engine.repl.ahead.Ahead``)."""

        folder: Path
        src: Path
        executable: Path

        settling: bool

        def finish(self, code: str, early: bool = False) -> tuple[int, bytes] | None: ...
        def settle(self) -> tuple[int, bytes]: ...

#: What compiling a runner needs, as plain data (a ``recipe eval`` record keeps it, see
#: ``engine.memo``): ``key``, the runner key's fields but the code; ``language``; ``title``;
#: ``folder``, the scope folder; ``compile`` and ``link``, the concrete driver, flags and
#: libraries; ``env``, the compiles' environment; ``library``, the store path name runners are
#: attached to; ``uses``, a Rust scope's ``use`` paths. Made by ``engine.repl.scope.Scope.spec``
#: and ``engine.repl.rust.RustScope.spec``.
Spec = namedtuple("Spec", "key language title folder compile link env library uses",
                  defaults=((),))


class EmptySubmission(UsageError):
    """A submission with nothing but white space."""


class CompileError(Failure):
    """The submission does not compile; ``detail`` holds the compiler's words verbatim."""


class Runner:
    """A compiled submission, ready to run from ``folder`` (a temporary folder of ours);
    ``diagnostics`` are the compiler's warnings (empty when it said nothing). ``settle``:
    what is left of making it (``build``'s ``defer``), done by ``settle()``."""

    def __init__(self, key: str, executable: Path, folder: Path, cached: bool,
                 diagnostics: str, settle: Callable[[], None] | None = None) -> None:
        self.key, self.executable, self.folder = key, executable, folder
        self.cached, self.diagnostics = cached, diagnostics
        self._settle = settle

    def settle(self) -> None:
        """Finish what ``build`` left for after the run (a no-op after the first call): the
        compiler's end waited for and the runner put into the action cache."""
        job, self._settle = self._settle, None
        if job is not None:
            job()

    def remove(self) -> None:
        self.settle()  # before its folder goes: the cache entry is copied from it
        shutil.rmtree(self.folder, ignore_errors=True)


def check_code(code: str) -> str:
    if not code.strip():
        raise EmptySubmission("the submission is empty", "pass some C or C++ code with -e")
    if "\0" in code:
        raise UsageError("the submission holds a NUL character", "remove it")
    try:
        code.encode()
    except UnicodeEncodeError as error:  # bytes that are not UTF-8, kept as lone surrogates
        at = len(code[:error.start].encode(errors="surrogateescape")) + 1
        raise UsageError(f"the submission is not valid UTF-8 at byte {at}",
                         "write it in UTF-8; a string can hold any byte as an escape "
                         "such as \\xff") from None
    return code


def runner_folder(store: Store, keep: bool = False) -> Path:
    """A new folder for a runner: in the store's temporary folder, so that what a killed
    session leaves is removed by the next run that opens the store; one kept for the user
    (``--keep-tmp``) goes to the system's temporary folder, where nobody removes it."""
    if keep:
        return Path(tempfile.mkdtemp(prefix="recipe-repl-"))
    return Path(store.temp_dir("repl"))


def runner_key(spec: Spec, code: str) -> str:
    return canonical_hash({**spec.key, "code": code})


def lookup(store: Store, key: str, folder: Path | Callable[[], Path]) -> Runner | None:
    """The cached runner of ``key``, copied into ``folder`` (or the one it makes, on a hit);
    None on a miss."""
    result = store.get_action(key)
    if result is None and promises.wait(store.promise_file(key)):  # being written by its maker
        result = store.get_action(key)
    if result is None:
        return None
    folder = folder if isinstance(folder, Path) else folder()
    executable = folder / "runner"
    try:
        store.copy_blob(result["outputs"]["runner"], executable, executable=True)
        diagnostics = store.read_blob(result["outputs"]["diagnostics"]).decode(errors="replace")
    except (RecipeError, OSError, KeyError, TypeError):
        executable.unlink(missing_ok=True)
        return None  # a damaged entry is a miss: compile again
    return Runner(key, executable, folder, True, diagnostics)


def build(spec: Spec, store: Store, code: str, keep: bool = False, wrap: bool = True,
          ahead: Ahead | None = None, defer: bool = False) -> Runner:
    """The runner of ``code``: from the cache, else compiled and linked (and cached). The
    generated source stays in the runner's folder with ``keep``. ``wrap``: ``code`` is a
    submission, put inside the runner's ``main``; else it is a whole translation unit (a
    function case's table harness, ``engine.verify.harness``), compiled as it is. ``ahead``:
    a compiler waiting for this submission (``engine.repl.ahead``), used on a miss.

    ``defer``: a new runner is returned before it is cached, its ``settle()`` caches it (the
    caller runs it first; a served command caches it after it answered). It is promised
    meanwhile (``engine.store.promises``): a lookup of the same key waits for it. A runner of
    ``ahead`` is then returned as soon as lld wrote it, rustc's end left to ``settle``."""
    check_code(code)
    key = runner_key(spec, code)
    # With a compiler started ahead, its folder is the runner's: one is made only for a hit.
    folder = runner_folder(store, keep) if ahead is None or keep else None
    promised: int | None = None

    def made() -> Path:
        nonlocal folder
        folder = runner_folder(store, keep)
        return folder

    try:
        if keep:
            _write_source(spec, code, folder, wrap)  # type: ignore[arg-type]
        found = lookup(store, key, folder or made)
        if found is not None:
            return found
        # Promised while it compiles, not after: taking it then would delay the run.
        promised = promises.promise(store.promise_file(key)) if defer else None
        return _compile(spec, store, code, key, folder or made, keep, wrap, ahead, defer,
                        promised)
    except BaseException:
        if promised is not None:
            promises.fulfil(store.promise_file(key), promised)
        if not keep and folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def command(spec: Spec, folder: Path, src: Path) -> tuple[list[str], Path, Path]:
    """The compiler's argument list for the runner of source ``src`` in ``folder``, the folder
    it runs in and the executable it writes."""
    executable = folder / "runner"
    if spec.language == "rust":  # rustc compiles and links in one run
        return ([*spec.compile, f"--remap-path-prefix={folder}=.", "-o", str(executable),
                 str(src)], folder, executable)
    # One driver run compiles and links: a second one would cost its start-up again.
    argv = [*spec.compile, f"-ffile-prefix-map={folder}=.", str(src), "-o", str(executable),
            *spec.link]
    # From the scope's w/ (its include folders are relative to it); a harness has no scope.
    return argv, Path(spec.folder, "w") if spec.folder else folder, executable


def _compile(spec: Spec, store: Store, code: str, key: str,
             folder: Path | Callable[[], Path], keep: bool, wrap: bool = True,
             ahead: Ahead | None = None, defer: bool = False,
             promised: int | None = None) -> Runner:
    """``folder``: the runner's, or what makes it when the compiler started ahead cannot
    be used. ``defer``: the runner's ``settle`` caches it, and ends the promise ``promised``."""
    done = ahead.finish(code, early=defer) if ahead is not None else None
    if done is not None:  # rustc, started ahead, read the runner from its FIFO
        if isinstance(folder, Path):
            shutil.rmtree(folder, ignore_errors=True)
        folder, src, executable = ahead.folder, ahead.src, ahead.executable
        status, output = done
    else:
        folder = folder if isinstance(folder, Path) else folder()
        src = _write_source(spec, code, folder, wrap)
        argv, cwd, executable = command(spec, folder, src)
        # Under the reaper: the compiler dies with recipe, however recipe ends.
        status, output = reaper.run(argv, store, cwd=cwd,
                                    env={**spec.env, "TMPDIR": str(folder)})
    diagnostics = output.decode(errors="replace")
    if status != 0:
        if done is not None:
            shutil.rmtree(folder, ignore_errors=True)  # not the caller's: build removes its own
        kept = "kept" if keep else "removed; --keep-tmp keeps it"
        error = CompileError(f"the submission does not compile (generated file: {src}, {kept})")
        error.detail = diagnostics
        raise error
    early = ahead if done is not None and ahead.settling else None

    def cache() -> None:
        try:
            # rustc's end, when the runner was taken at its link: a failure after it (never
            # seen) leaves the runner uncached; what it said came after the run.
            if early is None or early.settle() == (0, b""):
                store.put_action(key, {"outputs": {
                    "runner": store.put_file(executable),
                    "diagnostics": store.put_blob(diagnostics.encode())}})
                store.attach(spec.library, actions=[key])
        except (OSError, RecipeError):
            if not defer:
                raise
            # After the run, the entry is only a cache: not written (a full disk, say), the
            # submission is compiled again next time; the run's exit code stays its own.
        finally:
            if promised is not None:
                promises.fulfil(store.promise_file(key), promised)

    if not defer:
        cache()
        return Runner(key, executable, folder, False, diagnostics)
    return Runner(key, executable, folder, False, diagnostics, settle=cache)


def _write_source(spec: Spec, code: str, folder: Path, wrap: bool = True) -> Path:
    src = folder / source.runner_name(spec.language)
    src.write_text(source.runner_source(spec.language, code, spec.title, tuple(spec.uses))
                   if wrap else code)
    return src

