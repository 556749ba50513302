"""A Rust static library on crates whose build scripts ask for native libraries, linked into a C
program of the plan (issue 15 point 7): what rustc says the library needs (`--print
native-static-libs`: the standard library's and the build scripts' `rustc-link-lib`s that
are not bundled) reaches the C link, with no link flags written by hand."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree
from tests.unit.test_rust_crates import write_crate

pytestmark = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                reason="needs rustc")

# A build script as the cc crate writes them: it compiles a C file into a static library in
# OUT_DIR, points rustc at it (bundled into the rlib) and asks for libm (passed on).
NATIVE_BUILD = r"""
    use std::{env, process::Command};
    fn main() {
        let out = env::var("OUT_DIR").unwrap();
        let cc = env::var("RUSTC_LINKER").unwrap();
        let ok = Command::new(&cc).args(["-O2", "-fPIC", "-c", "csrc/helper.c", "-o"])
            .arg(format!("{}/helper.o", out)).status().unwrap().success();
        assert!(ok, "cc failed");
        let ok = Command::new("ar").arg("crs").arg(format!("{}/libhelper.a", out))
            .arg(format!("{}/helper.o", out)).status().unwrap().success();
        assert!(ok, "ar failed");
        println!("cargo:rustc-link-search=native={}", out);
        println!("cargo:rustc-link-lib=static=helper");
        println!("cargo:rustc-link-lib=m");
    }
"""
NATIVE_LIB = """
    extern "C" { fn helper_cbrt(x: f64) -> f64; }
    pub fn cbrt(x: f64) -> f64 { unsafe { helper_cbrt(x) } }
"""
HELPER_C = "#include <math.h>\ndouble helper_cbrt(double x) { return cbrt(x) + 0.0 * x; }\n"


def test_a_c_program_links_a_rust_static_library_with_its_crates_native_libraries(
        tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    write_crate(registry, "nativehelp", "0.1.0", NATIVE_LIB, build=NATIVE_BUILD)
    write_tree(registry / "nativehelp-0.1.0", {"csrc/helper.c": HELPER_C})
    src = write_tree(tmp_path / "src", {
        "plan.yaml": f"kind: plan\nregistry: {registry}\nprojects: ['*/project.yaml']\n",
        "roots/project.yaml": """
            kind: project
            name: roots
            version: 0.1.0
            language: rust
            sources: [src/lib.rs]
            crates: {nativehelp: "0.1"}
            outputs: [{name: roots, kind: static-library}]
        """,
        "roots/src/lib.rs": "#[no_mangle]\npub extern \"C\" fn roots_cbrt(x: f64) -> f64 "
                            "{ nativehelp::cbrt(x) }\n",
        "prog/project.yaml": """
            kind: project
            name: prog
            version: 1.0.0
            language: c
            depends: [roots]
            outputs: [{name: prog, kind: executable, sources: [main.c]}]
        """,
        "prog/main.c": '#include <stdio.h>\ndouble roots_cbrt(double);\n'
                       'int main(void) { printf("%g\\n", roots_cbrt(27.0)); return 0; }\n',
    })
    done = run_recipe("realise", src / "plan.yaml", "-p", "prog", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[0])
    assert subprocess.run([path / "bin/prog"], capture_output=True, text=True).stdout == "3\n"
    # What the link was given: the file beside the static library, read as @file.
    (roots,) = (tmp_path / "store").glob("*-roots-0.1.0-*")
    native = (roots / "lib/libroots.native-libs").read_text().split()
    assert "-lm" in native and "-lhelper" not in native  # helper is inside libroots.a


@pytest.mark.skipif(not Path("/usr/share/cargo/registry/serde_derive-1.0.152").is_dir()
                    and not os.environ.get("CI"), reason="needs librust-serde-derive-dev")
def test_proc_macros_and_build_scripts_are_built_for_the_host_whatever_the_target(
        tmp_path: Path) -> None:
    """Derived for a foreign target (not built: this rustc has no std for it),
    the crates that run on the host (serde_derive and its closure, build scripts' crates) are
    the very derivations of the host target; the crates of the target are not."""
    import dataclasses

    from engine.derive.derivation import Deriver
    from engine.documents.load import load_plan
    from engine.store import Store

    src = write_tree(tmp_path / "src", {
        "plan.yaml": "kind: plan\nregistry: /usr/share/cargo/registry\n"
                     "projects: ['*/project.yaml']\n",
        "app/project.yaml": """
            kind: project
            name: app
            version: 0.1.0
            language: rust
            sources: [src/lib.rs]
            crates: {serde: {version: "1", features: [derive]}}
            outputs: [{name: app, kind: static-library}]
        """,
        "app/src/lib.rs": "",
    })
    plan = load_plan(src / "plan.yaml")
    deriver = Deriver(plan, Store.open(tmp_path / "store").make_name, tmp_path / "cache")
    host = next(iter(plan.targets.values()))
    cross = dataclasses.replace(host, name="arm", triple="aarch64-linux-gnu")
    toolchain, rust = deriver.toolchain(host), deriver.rust_toolchain(host)

    def crates(spec: object) -> dict[str, str]:
        found, _ = deriver.crates.for_project(plan.projects["app"], [], spec, toolchain, rust)
        return {c.node: c.name for c in found}

    here, there = crates(host), crates(cross)
    runs_on_host = {n for n in here if n.endswith("-host")}
    assert {"serde_derive-1.0.152-host", "syn-1.0.107-host"} <= runs_on_host
    assert {n: there[n] for n in runs_on_host} == {n: here[n] for n in runs_on_host}
    assert there["serde-1.0.152"] != here["serde-1.0.152"]  # built for aarch64
    (drv,) = [c for c in deriver.crates.derived.values()
              if c.node == "proc-macro2-1.0.47-host" and c.manifest.build][:1]
    script = next(a for a in drv.actions if a.kind == "build-script")
    assert script.env["TARGET"] == rust.host
