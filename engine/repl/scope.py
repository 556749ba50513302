"""Preparing a project x target for submissions: its library realised, its headers staged, its
scope header precompiled.

The *scope folder* is what every runner of one project x target compiles against, kept in the
store's cache folder ``.recipe/cache/repl/<project>-<target>-<key>/``::

    w/<header>        the project's declared headers, copied from the store's CAS (so what is
                      compiled is what the library's derivation hashed)
    d/<project>       a symlink to each dependency's store path (its include/ and lib/)
    scope.h(pp)       the generated scope header (``source.scope_header``)
    scope.h(pp).gch   gcc's precompiled form of it
    ready             written last: the folder is complete

Its key (``Scope.pch_key``) is the sha256 of the canonical JSON of the library's store path name
(which covers every source and header digest, the flags, the target and the toolchain), the
scope list, the language, the compile argument template, the toolchain identity and the
generator's template digest. A change to a scope header, or to anything else a header could
see, gives another store path name and so another key: the header is precompiled again. The
precompiled header is also an action in the store's action cache (output ``pch``), attached to
the library's store path: a lost scope folder is restored from the CAS without compiling.
"""

from __future__ import annotations

import fcntl
import os
import posixpath
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine import watch
from engine.build import zig_cache
from engine.derive.actions import STORE
from engine.derive.derivation import Derivation, check_selection
from engine.derive.repl_library import repl_plan
from engine.derive.rust_actions import LIB_ROOT
from engine.documents.models import Plan, Project, TargetSpec
from engine.errors import Failure, RecipeError
from engine.hashing import canonical_hash
from engine.repl import rust, source
from engine.repl.runner import Spec
from engine.repl.rust import RustScope
from engine.store import Store
from engine.toolchain import flags
from engine.toolchain.flags import SOURCE_DATE_EPOCH

FOLDER = "@SCOPE@"  # the scope folder in argument templates


class NoScope(RecipeError):
    """The project declares no REPL scope, or cannot have one."""


class ScopeMissing(RecipeError):
    """A scope header is not there (any more)."""


class ScopeFailed(Failure):
    """The scope header does not compile; ``detail`` holds the compiler's words."""


@dataclass
class Scope:
    """A project x target ready for submissions."""

    project: Project
    target: TargetSpec
    language: str
    library: str  # store path name of the library the runners link
    folder: Path  # the scope folder
    store_root: Path
    pch_key: str
    compile_template: list[str]  # driver and flags, with @SCOPE@ and @STORE@
    link_template: list[str]  # libraries and link flags, with @STORE@
    identity: dict[str, Any]
    env: dict[str, str]  # the environment of compiles
    paths: tuple[str, ...] = ()  # store path names: the library's and its dependencies'
    closure: tuple[str, ...] = ()  # every store path name the library needs
    roots: dict[str, str] = field(default_factory=dict)  # the roots its realise set

    @property
    def title(self) -> str:
        return f"{self.project.name} ({self.target.name})"

    def concrete(self, template: list[str]) -> list[str]:
        root = str(self.store_root)
        return [a.replace(FOLDER, str(self.folder)).replace(STORE, root) for a in template]

    def spec(self) -> Spec:
        """What compiling a runner in this scope needs, as plain data."""
        key = {"format": source.FORMAT, "kind": "repl-runner", "pch": self.pch_key,
               "compile": self.compile_template, "link": self.link_template,
               "toolchain": self.identity, "title": self.title}
        return Spec(key=key, language=self.language, title=self.title, folder=str(self.folder),
                    compile=[*self.concrete(self.compile_template), "-iquote", str(self.folder)],
                    link=self.concrete(self.link_template), env=dict(self.env),
                    library=self.library)


def check_project(plan: Plan, project: str, target: str) -> Project:
    """The errors of ``-p``/``-t`` that need no build: one line each, exit code 2."""
    check_selection(plan, [target], [project])
    found = plan.projects[project]
    if found.language not in ("c", "c++", "rust"):
        raise NoScope(f"project '{project}': the REPL supports C, C++ and Rust projects, not "
                      f"{found.language}", "use a C, C++ or Rust project", pos=found.pos)
    if found.language == "rust":
        return _check_rust(found)
    if not found.repl_scope:
        raise NoScope(f"project '{project}' has no REPL scope",
                      f"add 'repl: {{scope: [<header>]}}' to {found.file.name}", pos=found.pos)
    for header in found.repl_scope:
        if not (found.dir / posixpath.normpath(header)).is_file():
            raise ScopeMissing(f"project '{project}': REPL scope header '{header}' does not "
                               "exist", "restore it or remove it from repl.scope",
                               pos=found.pos)
    return found


def _check_rust(found: Project) -> Project:
    """A Rust submission uses the library crate (by its name, and through the scope's ``use``
    paths, which may be none)."""
    if LIB_ROOT not in found.sources:
        raise NoScope(f"project '{found.name}' has no library crate for the REPL to use",
                      f"add {LIB_ROOT} to its sources", pos=found.pos)
    return found


def prepare(plan: Plan, store: Store, project: str, target: str,
            reporter: Any = None, cache: Any = None) -> Scope | RustScope:
    """Realise the project's library (or its REPL library) for ``target`` and make its scope
    folder. The library's path is rooted as ``repl:<plan>/<project>/<target>``. A Rust
    project's scope is made by ``engine.repl.rust``."""
    from engine.build.realise import realise

    found = check_project(plan, project, target)
    if found.language == "rust":
        return rust.prepare(plan, store, project, target, reporter, cache)
    rplan, selected = repl_plan(plan, project)
    result = realise(rplan, store, [target], [selected], reporter=reporter,
                     root_prefix=f"repl:{plan.file}", cache=cache)
    drv = result.derivations[0]
    spec = plan.targets[target]
    cxx = any(d.project.language == "c++" for d in [drv, *drv.deps])
    driver = drv.toolchain.cxx if found.language == "c++" else drv.toolchain.cc
    include_dirs = [*found.include_dirs, *(f"../d/{name}/include" for name in drv.data["depends"])]
    cflags = flags.compile_flags(found, spec, include_dirs, FOLDER, STORE)
    compile_template = [*flags.compiler_argv(driver, spec, found.language == "c++",
                                             drv.toolchain.identity), *cflags, "-Winvalid-pch"]
    scope = Scope(
        project=found, target=spec, language=found.language, library=drv.name,
        folder=Path(), store_root=store.root, pch_key="",
        compile_template=compile_template,
        link_template=link_template(drv, cxx and found.language == "c", spec),
        identity=drv.toolchain.identity,
        env={"PATH": drv.toolchain.env_path, "LC_ALL": "C", "TZ": "UTC",
             "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), "HOME": "/homeless-shelter",
             **zig_cache.env(store, drv.data)},
        paths=(drv.name, *(d.name for d in drv.deps)), closure=tuple(result.closure),
        roots=dict(result.roots))
    scope.pch_key = canonical_hash({
        "format": source.FORMAT, "kind": "repl-pch", "template": source.template_digest(),
        "library": drv.name, "scope": list(found.repl_scope), "language": found.language,
        "compile": compile_template, "toolchain": drv.toolchain.identity})
    scope.folder = store.state / "cache" / "repl" / project / target / \
        scope.pch_key[:20]
    if zig_cache.is_zig(drv.data):
        # A runner compiles and links in one run (with -fPIC): zig builds another libc for
        # that, once, under the cache's lock, rather than in every first eval at once.
        link = {"kind": "link", "argv": [*compile_template, *scope.concrete(scope.link_template)]}
        zig_cache.warm(store, {**drv.data, "actions": [link]}, scope.env)
    if not (scope.folder / "ready").is_file():
        _make_folder(scope, store, drv)
        _remove_stale(scope.folder)
    for name in ("ready", source.scope_name(scope.language) + ".gch"):
        watch.seen(scope.folder / name)  # what compiling a runner relies on, besides the store
    return scope


def link_template(drv: Derivation, cxx_runtime: bool, spec: TargetSpec) -> list[str]:
    """The libraries in link order (the project's, then its dependencies', dependents first)
    and the link flags of all of them."""
    libs = []
    for dep in [drv, *reversed(drv.deps)]:
        for kind in ("static-library", "shared-library"):
            output = next((o for o in dep.project.outputs if o.kind == kind), None)
            if output is not None:
                suffix = "a" if kind == "static-library" else "so"
                libs.append(f"{STORE}/{dep.name}/lib/lib{output.name}.{suffix}")
                if dep.project.language == "rust" and kind == "static-library":
                    # what rustc said the library needs (engine.derive.rust_actions)
                    libs.append(f"@{STORE}/{dep.name}/lib/lib{output.name}.native-libs")
                    if spec.uses_zig and flags.object_format(spec) == "coff":
                        # rustc links gcc's unwinder into its own windows-gnu programs but does
                        # not list it among a static library's needs: zig's is libunwind
                        # (as engine/toolchain/zig_linker.py maps -lgcc_eh).
                        libs.append("-lunwind")
                if kind == "shared-library":
                    libs.append(f"-Wl,-rpath,{STORE}/{dep.name}/lib")
                break
    link_flags = list(dict.fromkeys(f for d in [drv, *drv.deps] for f in d.project.link_flags))
    gold = shutil.which("ld.gold", path=drv.toolchain.env_path)
    fast = ["-fuse-ld=gold"] if gold and not spec.lto else []  # links in half the time
    zig = spec.uses_zig
    runtime = (["-lc++"] if zig else ["-lstdc++", "-lm"]) if cxx_runtime else []
    return [*flags.target_flags(spec), *fast, *libs, *link_flags, *runtime]


def _make_folder(scope: Scope, store: Store, drv: Derivation) -> None:
    """Fill the scope folder under its lock; another process may be doing the same."""
    folder = scope.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _locked(folder.with_name(folder.name + ".lock")):
        if (folder / "ready").is_file():
            return
        if folder.exists():
            shutil.rmtree(folder)  # what an interrupted run left
        (folder / "w").mkdir(parents=True)
        headers = set(scope.project.headers) | set(scope.project.public_headers)
        for rel, digest in drv.data["inputs"].items():
            if rel in headers:
                _stage(store, scope.project, rel, digest.removeprefix("sha256:"),
                       folder / "w" / rel)
        (folder / "d").mkdir()
        for dep, name in drv.data["depends"].items():
            os.symlink(store.path(name), folder / "d" / dep)
        header = folder / source.scope_name(scope.language)
        header.write_text(source.scope_header(
            scope.language, tuple(posixpath.normpath(s) for s in scope.project.repl_scope)))
        _precompile(scope, store, header)
        (folder / "ready").write_text(scope.pch_key + "\n")


def _stage(store: Store, project: Project, rel: str, digest: str, dest: Path) -> None:
    """A declared header, as the library's derivation hashed it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not store.has_blob(digest):
        try:
            if store.put_file(project.dir / rel) != digest:
                raise ScopeMissing(f"project '{project.name}': {rel} changed meanwhile",
                                   "run the command again")
        except FileNotFoundError:
            raise ScopeMissing(f"project '{project.name}': {rel} was removed meanwhile",
                               "run the command again") from None
    store.copy_blob(digest, dest)


def _precompile(scope: Scope, store: Store, header: Path) -> None:
    gch = header.with_name(header.name + ".gch")
    cached = store.get_action(scope.pch_key)
    if cached is not None:
        try:
            store.copy_blob(cached["outputs"]["pch"], gch)
            return
        except (RecipeError, OSError, KeyError):
            gch.unlink(missing_ok=True)  # compile it again
    kind = "c++-header" if scope.language == "c++" else "c-header"
    argv = [*scope.concrete(scope.compile_template), "-x", kind, str(header), "-o", str(gch)]
    # From w/, as the library's compiles ran: the include folders are relative to it.
    done = subprocess.run(argv, cwd=scope.folder / "w",
                          env={**scope.env, "TMPDIR": str(scope.folder)},
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          errors="replace")
    if done.returncode != 0:
        error = ScopeFailed(f"the REPL scope of {scope.title} does not compile",
                            f"fix the headers of repl.scope in {scope.project.file.name}")
        error.detail = done.stderr + done.stdout
        raise error
    digest = store.put_file(gch)
    store.put_action(scope.pch_key, {"outputs": {"pch": digest}})
    store.attach(scope.library, actions=[scope.pch_key])


def _remove_stale(folder: Path) -> None:
    """Older scope folders of the same project x target (their headers changed since): only
    the newest is kept, a precompiled header can weigh tens of megabytes."""
    for other in folder.parent.iterdir():
        if other.name not in (folder.name, folder.name + ".lock"):
            if other.is_dir():
                shutil.rmtree(other, ignore_errors=True)
            else:
                other.unlink(missing_ok=True)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
