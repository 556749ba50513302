"""Rust projects depending on Rust projects of the plan (issue 15, point 1): each crate is its
own compile, found by ``--extern`` and ``-L dependency=``; editing one crate recompiles it and
what depends on it, nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.build.realise import realise
from engine.derive.actions import Action
from engine.derive.derivation import Derivation
from engine.documents.load import load_plan
from engine.store import Store
from tests.conftest import run_recipe, write_tree

pytestmark = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                reason="needs rustc")

CRATE = """
    kind: project
    name: {name}
    version: 1.0.0
    language: rust
    sources: ["src/*.rs"]
    depends: {depends}
    outputs: {outputs}
"""
LIB = "[{{name: {}, kind: static-library}}]"
TREE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "base/project.yaml": CRATE.format(name="base", depends="[]", outputs=LIB.format("base")),
    "base/src/lib.rs": "pub fn one() -> i32 { 1 }\n",
    "mid-crate/project.yaml": CRATE.format(name="mid-crate", depends="[base]",
                                           outputs=LIB.format("mid-crate")),
    "mid-crate/src/lib.rs": "pub fn two() -> i32 { base::one() + 1 }\n",
    "other/project.yaml": CRATE.format(name="other", depends="[]", outputs=LIB.format("other")),
    "other/src/lib.rs": "pub fn ten() -> i32 { 10 }\n",
    "app/project.yaml": CRATE.format(
        name="app", depends="[mid-crate, other]",
        outputs="[{name: app, kind: executable, sources: [src/main.rs]}]"),
    "app/src/lib.rs": "",
    "app/src/main.rs": 'fn main() { println!("{}", mid_crate::two() + other::ten()); }\n',
}


class Counter:
    """Counts the actions that really ran, by project (a registry crate: by its node)."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def action_started(self, drv: Derivation, action: Action) -> None:
        pass

    def action_finished(self, drv: Derivation, action: Action, cached: bool) -> None:
        if not cached:
            self.ran.append(drv.project.name if drv.project else drv.node)

    def derivation_started(self, drv: Derivation) -> None:
        pass

    def derivation_finished(self, drv: Derivation, built: bool) -> None:
        pass


def _realise(src: Path, store: Store) -> tuple[list[str], Path]:
    counter = Counter()
    result = realise(load_plan(src / "plan.yaml"), store, ["release"], ["app"],
                     reporter=counter)
    return sorted(counter.ran), result.paths[("app", "release")]


def test_a_rust_project_uses_rust_projects_and_an_edit_rebuilds_only_its_dependents(
        tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store = Store.open(tmp_path / "store")
    ran, path = _realise(src, store)
    # One rustc per crate: a library output whose file rustc names (lib<crate>.a) is compiled
    # with the rlib (--crate-type rlib --crate-type staticlib); mid-crate's libmid-crate.a is
    # not lib<mid_crate>.a, so it is a run of its own, as app's executable is.
    assert ran == ["app", "app", "base", "mid-crate", "mid-crate", "other"]
    assert subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout == "12\n"
    mid = src / "mid-crate/src/lib.rs"
    mid.write_text(mid.read_text().replace("+ 1", "+ 2"))
    ran, path = _realise(src, store)
    # The edited crate and the crates and links that use it (as cargo: app's rlib is
    # compiled against it too); base and other are not compiled again.
    assert ran == ["app", "app", "mid-crate", "mid-crate"]
    assert subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout == "13\n"
    assert _realise(src, store)[0] == []


def test_a_c_program_links_a_rust_library_that_uses_a_rust_project(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {
        **{k: v for k, v in TREE.items() if not k.startswith("app/")},
        "rlib/project.yaml": CRATE.format(name="rlib", depends="[mid-crate]",
                                          outputs="[{name: rlib, kind: static-library}]"),
        "rlib/src/lib.rs": '#[no_mangle]\npub extern "C" fn three() -> i32 '
                           '{ mid_crate::two() + 1 }\n',
        "prog/project.yaml": """
            kind: project
            name: prog
            version: 1.0.0
            language: c
            depends: [rlib]
            outputs: [{name: prog, kind: executable, sources: [main.c]}]
            flags: {link: [-lpthread, -ldl, -lm]}
        """,
        "prog/main.c": '#include <stdio.h>\nint three(void);\n'
                       'int main(void) { printf("%d\\n", three()); return 0; }\n',
    })
    done = run_recipe("realise", src / "plan.yaml", "-p", "prog", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[0])
    assert subprocess.run([path / "bin/prog"], capture_output=True, text=True).stdout == "3\n"
    # An eval case of a crate that uses another: its runner finds base through -L dependency=.
    write_tree(src, {"mid-crate/cases/eval.yaml": """
        kind: cases
        cases: [{name: two, eval: 'println!("{}", mid_crate::two());', expect: {stdout: "2\\n"}}]
    """})
    done = run_recipe("verify", src / "plan.yaml", "-p", "mid-crate", "--store", tmp_path / "store")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr


def test_depending_on_a_rust_project_without_a_library_crate_is_one_line_exit_2(
        tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    (src / "base/src/lib.rs").rename(src / "base/src/main.rs")
    (src / "base/project.yaml").write_text(CRATE.format(
        name="base", depends="[]",
        outputs="[{name: base, kind: executable, sources: [src/main.rs]}]"))
    store = tmp_path / "store"
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "mid-crate/project.yaml:2:7: project 'mid-crate' depends on the rust project " \
        "'base', which has no library crate (src/lib.rs is not in its sources); add " \
        "src/lib.rs to the sources of 'base', or drop the dependency" in done.stderr
    assert not store.exists()
