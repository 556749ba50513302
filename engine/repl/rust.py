"""Rust submissions (eval cases of ``language: rust`` projects): the scope is a list of ``use``
paths, the submission is the body of ``fn main``.

The runner is compiled by the project's rustc, edition and target flags against the crate's
rlib in the project's store path (``lib/lib<crate>.rlib``), linked by the target's C compiler.
It is content-addressed as the C runners are (``engine.repl.runner``): its key is the sha256 of
the canonical JSON of the generated source, the rlib's store path name, the argument template
and the rustc identity; result and diagnostics are CAS blobs attached to that path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from engine.build import zig_cache
from engine.build.realise import derive
from engine.derive.rust_actions import DEFAULT_EDITION, crate_name, target_flags
from engine.documents.models import Plan
from engine.hashing import canonical_hash
from engine.repl.runner import CompileError, Runner, check_code, lookup, runner_folder
from engine.store import Store
from engine.toolchain import rust_cross

FORMAT = "recipe-repl-rust-1"
_FOLDER = "@FOLDER@"


def runner_source(scope: tuple[str, ...], code: str) -> str:
    uses = "".join(f"use {path};\n" for path in scope)
    return f"#![allow(unused_imports)]\n{uses}fn main() {{\n{code.rstrip()}\n}}\n"


class Submission:
    """A Rust submission made concrete: its source, compile template and key."""

    def __init__(self, plan: Plan, store: Store, project: str, target: str, path: Path,
                 code: str) -> None:
        check_code(code)
        proj, spec = plan.projects[project], plan.targets[target]
        (drv,) = derive(plan, store, [target], [project])
        crate = crate_name(proj.name)
        self.store, self.library = store, path.name
        self.cc = drv.toolchain.cc
        # A foreign target's runner is compiled for it (zig links it) and run by its runner.
        linker, self.env = (["-C", f"linker={self.cc}"], {}) if spec.triple == "host" \
            else rust_cross.linker(spec, self.cc)
        self.template = [
            drv.data["rust"]["rustc"], "--edition", proj.standard or DEFAULT_EDITION,
            *target_flags(spec), *linker,
            f"--remap-path-prefix={_FOLDER}=.", "--extern",
            f"{crate}={path}/lib/lib{crate}.rlib",
            # The crates the rlib was compiled against: the Rust projects of its closure and
            # the registry crates they use.
            *(f"-Ldependency={store.path(d.name)}/lib" for d in drv.deps
              if d.project.language == "rust"),
            *(f"-Ldependency={store.path(c.name)}/lib" for c in drv.crates),
            "-o", "runner", "runner.rs"]
        self.text = runner_source(proj.repl_scope, code)
        self.key = canonical_hash({
            "format": FORMAT, "source": self.text, "library": path.name,
            "argv": [a.replace(str(path), "@LIBRARY@") for a in self.template],
            "rust": drv.data["rust"], "toolchain": drv.data["toolchain"]})

    def build(self) -> Runner:
        """The runner: from the action cache, else compiled (and cached)."""
        folder = runner_folder(self.store)
        try:
            found = lookup(self.store, self.key, folder)
            return found if found is not None else self._compile(folder)
        except BaseException:  # a compile error too: its diagnostics are in the error
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def _compile(self, folder: Path) -> Runner:
        (folder / "runner.rs").write_text(self.text)
        argv = [a.replace(_FOLDER, str(folder)) for a in self.template]
        env = {"PATH": os.pathsep.join([os.path.dirname(self.cc), "/usr/bin", "/bin"]),
               "LC_ALL": "C", "TMPDIR": str(folder), **self.env}
        if "RECIPE_ZIG" in self.env:  # zig's cache: the one the target's builds filled
            env.update(zig_cache.env(self.store, {"toolchain": {"family": "zig"}}))
        done = subprocess.run(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, errors="replace")
        diagnostics = done.stderr + done.stdout
        if done.returncode != 0:
            error = CompileError("the submission does not compile")
            error.detail = diagnostics
            raise error
        executable = folder / "runner"
        self.store.put_action(self.key, {"outputs": {
            "runner": self.store.put_file(executable),
            "diagnostics": self.store.put_blob(diagnostics.encode())}})
        self.store.attach(self.library, actions=[self.key])
        return Runner(self.key, executable, folder, False, diagnostics)
