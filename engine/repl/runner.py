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

TYPE_CHECKING = False  # typing itself costs a repeated ``recipe eval`` 4 ms
if TYPE_CHECKING:
    from engine.store import Store

#: What compiling a runner needs, as plain data (a ``recipe eval`` record keeps it, see
#: ``engine.memo``): ``key``, the runner key's fields but the code; ``language``; ``title``;
#: ``folder``, the scope folder; ``compile`` and ``link``, the concrete driver, flags and
#: libraries; ``env``, the compiles' environment; ``library``, the store path name runners are
#: attached to. Made by ``engine.repl.scope.Scope.spec``.
Spec = namedtuple("Spec", "key language title folder compile link env library")


class EmptySubmission(UsageError):
    """A submission with nothing but white space."""


class CompileError(Failure):
    """The submission does not compile; ``detail`` holds the compiler's words verbatim."""


class Runner:
    """A compiled submission, ready to run from ``folder`` (a temporary folder of ours);
    ``diagnostics`` are the compiler's warnings (empty when it said nothing)."""

    def __init__(self, key: str, executable: Path, folder: Path, cached: bool,
                 diagnostics: str) -> None:
        self.key, self.executable, self.folder = key, executable, folder
        self.cached, self.diagnostics = cached, diagnostics

    def remove(self) -> None:
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


def lookup(store: Store, key: str, folder: Path) -> Runner | None:
    """The cached runner of ``key``, copied into ``folder``; None on a miss."""
    result = store.get_action(key)
    if result is None:
        return None
    executable = folder / "runner"
    try:
        store.copy_blob(result["outputs"]["runner"], executable, executable=True)
        diagnostics = store.read_blob(result["outputs"]["diagnostics"]).decode(errors="replace")
    except (RecipeError, OSError, KeyError, TypeError):
        executable.unlink(missing_ok=True)
        return None  # a damaged entry is a miss: compile again
    return Runner(key, executable, folder, True, diagnostics)


def build(spec: Spec, store: Store, code: str, keep: bool = False, wrap: bool = True) -> Runner:
    """The runner of ``code``: from the cache, else compiled and linked (and cached). The
    generated source stays in the runner's folder with ``keep``. ``wrap``: ``code`` is a
    submission, put inside the runner's ``main``; else it is a whole translation unit (a
    function case's table harness, ``engine.verify.harness``), compiled as it is."""
    check_code(code)
    key = runner_key(spec, code)
    folder = runner_folder(store, keep)
    try:
        if keep:
            _write_source(spec, code, folder, wrap)
        found = lookup(store, key, folder)
        if found is not None:
            return found
        return _compile(spec, store, code, key, folder, keep, wrap)
    except BaseException:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _compile(spec: Spec, store: Store, code: str, key: str, folder: Path,
             keep: bool, wrap: bool = True) -> Runner:
    src = _write_source(spec, code, folder, wrap)
    executable = folder / "runner"
    # One driver run compiles and links: a second one would cost its start-up again.
    argv = [*spec.compile, f"-ffile-prefix-map={folder}=.", str(src), "-o", str(executable),
            *spec.link]
    # Under the reaper: the compiler dies with recipe, however recipe ends.
    # From the scope's w/ (its include folders are relative to it); a harness has no scope.
    cwd = Path(spec.folder, "w") if spec.folder else folder
    code, output = reaper.run(argv, store, cwd=cwd,
                              env={**spec.env, "TMPDIR": str(folder)})
    diagnostics = output.decode(errors="replace")
    if code != 0:
        kept = "kept" if keep else "removed; --keep-tmp keeps it"
        error = CompileError(f"the submission does not compile (generated file: {src}, {kept})")
        error.detail = diagnostics
        raise error
    store.put_action(key, {"outputs": {"runner": store.put_file(executable),
                                       "diagnostics": store.put_blob(diagnostics.encode())}})
    store.attach(spec.library, actions=[key])
    return Runner(key, executable, folder, False, diagnostics)


def _write_source(spec: Spec, code: str, folder: Path, wrap: bool = True) -> Path:
    src = folder / source.runner_name(spec.language)
    src.write_text(source.runner_source(spec.language, code, spec.title) if wrap else code)
    return src

