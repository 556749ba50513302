"""Crates from a directory registry (issue 15, points 2 and 3): resolved with Cargo's rules,
locked in recipe.lock, each built once in the store as its own derivation, build scripts run
as actions, reproducible from any checkout, registry path and store.

The serde tests use Debian's packaged crates (/usr/share/cargo/registry, installed by .ci/run);
the others a small registry written here in Cargo's directory-source layout."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.build.realise import realise
from engine.documents.load import load_plan
from engine.store import Store
from tests.conftest import run_recipe, write_tree
from tests.unit.test_rust_depends import Counter

DEBIAN = Path("/usr/share/cargo/registry")
pytestmark = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                reason="needs rustc")
needs_serde = pytest.mark.skipif(not (DEBIAN / "serde_json-1.0.87").is_dir()
                                 and not os.environ.get("CI"),
                                 reason="needs Debian's librust-serde-json-dev")


def plan(registry: Path | str, rustc: str | None = None) -> str:
    toolchain = f", toolchain: {{rustc: {rustc}}}" if rustc else ""
    return (f"kind: plan\nregistry: {registry}\nprojects: ['*/project.yaml']\n"
            f"targets: {{release: {{opt: release{toolchain}}}}}\n")


def app(crates: str, main: str, name: str = "app") -> dict[str, str]:
    return {
        f"{name}/project.yaml": f"""
            kind: project
            name: {name}
            version: 0.1.0
            language: rust
            sources: ["src/*.rs"]
            crates: {crates}
            outputs: [{{name: {name}, kind: executable, sources: [src/main.rs]}}]
        """,
        f"{name}/src/lib.rs": "",
        f"{name}/src/main.rs": main,
    }


SERDE_MAIN = """
    use serde::{Deserialize, Serialize};
    #[derive(Serialize, Deserialize)]
    struct Point { x: i32, y: Vec<String> }
    fn main() {
        let p: Point = serde_json::from_str(r#"{"y": ["a"], "x": 1}"#).unwrap();
        println!("{}", serde_json::to_string(&p).unwrap());
    }
"""
SERDE = "{serde: {version: '1', features: [derive]}, serde_json: '1'}"


def _realise(src: Path, store: Store, project: str = "app") -> tuple[list[str], Path]:
    counter = Counter()
    result = realise(load_plan(src / "plan.yaml"), store, None, [project], reporter=counter)
    return counter.ran, result.paths[(project, "release")]


@needs_serde
def test_serde_with_derive_and_serde_json_build_lock_and_are_shared(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "one", {"plan.yaml": plan(DEBIAN), **app(SERDE, SERDE_MAIN)})
    store = Store.open(tmp_path / "store")
    ran, path = _realise(src, store)
    out = subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout
    assert out == '{"x":1,"y":["a"]}\n'
    # Every crate its own derivation in the store; proc-macros and their closure for the host.
    names = sorted(p.name.split("-", 1)[1] for p in store.root.iterdir()
                   if not p.name.startswith("."))
    for crate in ("serde-1.0.152", "serde_json-1.0.87", "serde_derive-1.0.152-host",
                  "syn-1.0.107-host", "proc-macro2-1.0.47-host", "itoa-1.0.1", "ryu-1.0.2"):
        assert crate in names, names
    lock = (src / "recipe.lock").read_text()
    checksum = json.loads((DEBIAN / "serde-1.0.152/.cargo-checksum.json").read_text())["package"]
    assert f'name = "serde"\nversion = "1.0.152"\nsource = "directory-registry"\n' \
        f'checksum = "{checksum}"' in lock
    # A second plan elsewhere using serde compiles no crate: only its own rlib and program.
    other = write_tree(tmp_path / "two", {"plan.yaml": plan(DEBIAN),
                                          **app(SERDE, SERDE_MAIN.replace("1", "2"), "other")})
    ran, _ = _realise(other, store, "other")
    assert ran == ["other", "other"]
    assert (other / "recipe.lock").read_text() == lock


def test_a_lock_is_honoured_and_a_mismatch_refused(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry")
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(registry),
                                        **app("{tally: '1'}", TALLY_MAIN)})
    store = tmp_path / "store"
    done = run_recipe("lock", src / "plan.yaml")
    assert done.returncode == 0 and "recipe.lock: written" in done.stdout, done.stderr
    lock = src / "recipe.lock"
    assert 'name = "tally"\nversion = "1.2.0"' in lock.read_text()
    # A newer tally appears in the registry: the lock keeps 1.2.0 until --update.
    write_crate(registry, "tally", "1.3.0", TALLY_LIB.replace("n * 2", "n * 3"))
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[0])
    assert subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout == "42\n"
    assert run_recipe("lock", src / "plan.yaml").stdout.endswith("recipe.lock: up to date\n")
    # A requirement the lock does not satisfy is refused, not silently resolved again.
    project = src / "app/project.yaml"
    project.write_text(project.read_text().replace("tally: '1'", "tally: '>=1.3'"))
    before = lock.read_text()
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "app/project.yaml:6:10: " in done.stderr
    assert "recipe.lock locks tally at 1.2.0, which does not match '>=1.3' (wanted by " \
        "project 'app'); run 'recipe lock' to update recipe.lock" in done.stderr
    assert lock.read_text() == before
    done = run_recipe("lock", src / "plan.yaml", "--update", "tally")
    assert done.returncode == 0 and 'version = "1.3.0"' in lock.read_text()
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    path = Path(done.stdout.split()[0])
    assert subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout == "63\n"
    # A crate changed under the lock (its package checksum) is refused.
    checksum = registry / "tally-1.3.0/.cargo-checksum.json"
    checksum.write_text(json.dumps({"package": "0" * 64, "files": {}}))
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and "the registry's tally 1.3.0 has checksum " + "0" * 64 + \
        ", but" in done.stderr and "recipe lock" in done.stderr


def test_a_build_script_runs_with_cargos_environment_and_its_directives_count(
        tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "registry")
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(registry),
                                        **app("{tally: '1', scripted: '0.1'}", SCRIPTED_MAIN)})
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[0])
    out = subprocess.run([path / "bin/app"], capture_output=True, text=True).stdout
    # rustc-cfg, cargo::rustc-env, a file generated into OUT_DIR, CARGO_FEATURE_*, TARGET
    assert out == "magic 7 generated 5 fast linux\n"
    # A failing build script: exit 1, the crate named, its output shown.
    script = registry / "scripted-0.1.0/build.rs"
    script.write_text(script.read_text().replace('fn main() {', 'fn main() {\n'
                                                 '    eprintln!("no luck here"); panic!();'))
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store2")
    assert done.returncode == 1
    assert "no luck here" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == \
        "recipe: crate scripted-0.1.0: build-script build.rs failed"


def test_two_checkouts_and_registries_at_two_paths_build_identical_paths(
        tmp_path: Path) -> None:
    paths = []
    for n in (1, 2):
        where = tmp_path / f"c{n}" / ("deep/" * n)
        registry = write_registry(where / "vendor")
        src = write_tree(where / "src", {"plan.yaml": plan(registry),
                                         **app("{tally: '1', scripted: '0.1'}", SCRIPTED_MAIN)})
        done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / f"store{n}")
        assert done.returncode == 0, done.stderr
        paths.append(Path(done.stdout.split()[0]))
    assert paths[0].name == paths[1].name
    trees = [_tree(p.parent) for p in paths]
    assert trees[0] == trees[1]
    assert any("scripted-0.1.0" in name for name in trees[0])
    for name in trees[0]:
        for file in (paths[0].parent / name).rglob("*"):
            if file.is_file():
                assert str(tmp_path).encode() not in file.read_bytes(), file


def _tree(store: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(b"".join(f.read_bytes() for f in sorted(p.rglob("*"))
                                            if f.is_file())).hexdigest()
            for p in store.iterdir() if not p.name.startswith(".")}


@pytest.mark.parametrize(("crates", "message"), [
    ("{nosuch: '1'}", "app/project.yaml:6:10: unknown crate 'nosuch' (wanted by project "
     "'app'): the registry {registry} has no such crate"),
    ("{tally: '2'}", "app/project.yaml:6:10: no version of crate 'tally' matches '2' (wanted "
     "by project 'app'); the registry holds 1.2.0, 1.0.0; loosen the requirement"),
    ("{tally: {version: '1', features: [turbo]}}", "app/project.yaml:6:10: crate tally-1.2.0 "
     "has no feature 'turbo' (asked for by project 'app'); its features: fast, name one"),
    ("{tally: '1,'}", "app/project.yaml:6:17: crate 'tally': '1,' is not a version "
     "requirement"),
    ("{future: '1'}", "plan.yaml:4:20: crate future-1.0.0 needs rustc 99.0 or newer; target "
     "'release' has rustc "),
    ("{ouro: '1'}", "plan.yaml:2:11: the registry's crates depend on each other in a cycle: "
     "boros-1.0.0 -> ouro-1.0.0 -> boros-1.0.0"),
])
def test_bad_crates_are_one_line_exit_2_and_write_nothing(tmp_path: Path, crates: str,
                                                          message: str) -> None:
    registry = write_registry(tmp_path / "registry")
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(registry),
                                        **app(crates, "fn main() {}\n")})
    store = tmp_path / "store"
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert message.format(registry=registry).split("; ")[0] in done.stderr
    assert not (src / "recipe.lock").exists()
    assert not store.exists() or [p.name for p in store.iterdir()] == [".recipe"]


def test_crates_resolve_by_backtracking_and_a_graph_without_a_solution_is_one_line(
        tmp_path: Path) -> None:
    # The newest tally (1.2.0) conflicts with pinner's ~1.0: Cargo takes tally 1.0.0.
    registry = write_registry(tmp_path / "registry")
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(registry),
                                        **app("{tally: '1', pinner: '1'}", TALLY_MAIN)})
    done = run_recipe("lock", src / "plan.yaml")
    assert done.returncode == 0, done.stderr
    lock = (src / "recipe.lock").read_text()
    assert 'name = "tally"\nversion = "1.0.0"\n' in lock and '"1.2.0"' not in lock
    # tally 1.2 and either picky (each wants tally =1.0.0) cannot be one graph; the error is
    # placed at the entry whose crates meet the conflict (picky).
    (src / "recipe.lock").unlink()
    project = src / "app/project.yaml"
    project.write_text(project.read_text().replace("{tally: '1', pinner: '1'}",
                                                   "{tally: '1.2', picky: '1'}"))
    done = run_recipe("lock", src / "plan.yaml")
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"{project}:6:24: no version of crate 'tally' matches '=1.0.0' (wanted by crate "
        "picky-1.1.0); the registry holds 1.2.0, 1.0.0; 1.2.0 is already chosen (and no older "
        "choice of versions avoids it); loosen the requirement, or add a matching version to "
        "the registry"], done.stderr
    assert not (src / "recipe.lock").exists()


def test_lock_of_a_plan_without_crates_writes_nothing(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(tmp_path / "nowhere"),
                                        **app("{}", "fn main() {}\n")})
    done = run_recipe("lock", src / "plan.yaml")
    assert done.returncode == 0 and "no project names crates; nothing to lock" in done.stdout
    assert not (src / "recipe.lock").exists()


def test_a_missing_or_absent_registry_is_one_line_exit_2(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {"plan.yaml": plan(tmp_path / "nowhere"),
                                        **app("{tally: '1'}", "fn main() {}\n")})
    for command in ("realise", "lock"):
        done = run_recipe(command, src / "plan.yaml", "--store", tmp_path / "store")
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
        assert f"plan.yaml:2:11: registry {tmp_path / 'nowhere'} cannot be read (No such " \
            "file or directory)" in done.stderr
    (src / "plan.yaml").write_text(plan(tmp_path).replace(f"registry: {tmp_path}\n", ""))
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 2 and "app/project.yaml:6:10: the plan names no registry for " \
        "the crates its projects use; add registry: PATH to the plan" in done.stderr
    assert not (src / "recipe.lock").exists()


# -- a small registry in Cargo's directory-source layout ---------------------------------------

TALLY_LIB = "pub fn double(n: u32) -> u32 { n * 2 }\n#[cfg(feature = \"fast\")]\n" \
    "pub fn speed() -> &'static str { \"fast\" }\n"
TALLY_MAIN = "fn main() { println!(\"{}\", tally::double(21)); }\n"
SCRIPTED_LIB = """
    include!(concat!(env!("OUT_DIR"), "/generated.rs"));
    #[cfg(magic)]
    pub fn magic() -> u32 { env!("MAGIC").parse().unwrap() }
    pub fn speed() -> &'static str { tally::speed() }
    pub const OS: &str = env!("SCRIPTED_OS");
"""
SCRIPTED_BUILD = """
    use std::{env, fs, path::Path};
    fn main() {
        let out = env::var("OUT_DIR").unwrap();
        fs::write(Path::new(&out).join("generated.rs"),
                  "pub fn generated() -> u32 { 5 }\\n").unwrap();
        assert_eq!(env::var("CARGO_FEATURE_DEFAULT").unwrap(), "1");
        assert!(env::var("TARGET").unwrap().contains("linux"));
        assert!(Path::new(&env::var("RUSTC").unwrap()).is_file());
        assert_eq!(env::var("CARGO_PKG_VERSION").unwrap(), "0.1.0");
        assert_eq!(env::var("DEP_LINKED_ANSWER").unwrap(), "42");  // links metadata
        println!("cargo:rerun-if-changed=build.rs");
        println!("cargo:rustc-cfg=magic");
        println!("cargo::rustc-env=MAGIC=7");
        println!("cargo:rustc-env=SCRIPTED_OS={}", env::var("CARGO_CFG_TARGET_OS").unwrap());
        println!("cargo:warning=a warning");
    }
"""
SCRIPTED_MAIN = """
    fn main() {
        println!("magic {} generated {} {} {}", scripted::magic(), scripted::generated(),
                 scripted::speed(), scripted::OS);
    }
"""


def write_crate(registry: Path, name: str, version: str, lib: str, toml: str = "",
                build: str | None = None) -> None:
    folder = registry / f"{name}-{version}"
    files = {"Cargo.toml": f"[package]\nname = \"{name}\"\nversion = \"{version}\"\n"
                           f"edition = \"2018\"\n{toml}",
             "src/lib.rs": lib}
    if build is not None:
        files["build.rs"] = build
    write_tree(folder, files)
    digest = hashlib.sha256(f"{name}{version}".encode()).hexdigest()
    (folder / ".cargo-checksum.json").write_text(json.dumps({"package": digest, "files": {}}))


def write_registry(registry: Path) -> Path:
    write_crate(registry, "tally", "1.0.0", TALLY_LIB, "[features]\nfast = []\n")
    write_crate(registry, "tally", "1.2.0", TALLY_LIB, "[features]\nfast = []\n")
    write_crate(registry, "future", "1.0.0", "", 'rust-version = "99.0"\n')
    # Only older versions of tally fit these: resolving must backtrack (or fail) to use them.
    write_crate(registry, "pinner", "1.0.0", "", '[dependencies.tally]\nversion = "~1.0"\n')
    for version in ("1.0.0", "1.1.0"):
        write_crate(registry, "picky", version, "", '[dependencies.tally]\nversion = "=1.0.0"\n')
    write_crate(registry, "ouro", "1.0.0", "", '[dependencies.boros]\nversion = "1"\n')
    write_crate(registry, "boros", "1.0.0", "", '[dependencies.ouro]\nversion = "1"\n')
    write_crate(registry, "linked", "0.3.0", "", 'links = "linked"\n',
                'fn main() { println!("cargo:answer=42"); }\n')
    write_crate(registry, "scripted", "0.1.0", SCRIPTED_LIB,
                "[dependencies.tally]\nversion = \"1.1\"\nfeatures = [\"fast\"]\n"
                "[dependencies.linked]\nversion = \"0.3\"\n"
                "[target.'cfg(windows)'.dependencies.winapi]\nversion = \"0.3\"\n"
                "[features]\ndefault = []\n", SCRIPTED_BUILD)
    return registry


@needs_serde
def test_the_bundled_generated_functions_pair_and_an_edit_rebuilds_only_the_generated_crate(
        tmp_path: Path) -> None:
    recipes = Path(__file__).resolve().parents[2] / "recipes" / "generated"
    src = tmp_path / "src"
    for name in ("tvalue", "tvgen"):
        shutil.copytree(recipes / name, src / name)
    (src / "plan.yaml").write_text(plan(DEBIAN))
    shutil.copy(recipes / "recipe.lock", src / "recipe.lock")
    store = tmp_path / "store"
    done = run_recipe("verify", src / "plan.yaml", "--store", store)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "5 passed", done.stdout
    generated = src / "tvgen/src/generated.rs"
    generated.write_text(generated.read_text().replace(
        "numbers.iter().sum::<f64>() / numbers.len() as f64",
        "numbers.iter().sum::<f64>() / numbers.len() as f64 + 1.0"))
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "applies")
    assert done.returncode == 1 and "row 3: tv_apply" in done.stdout, done.stdout
    built = [line.split("-", 1)[1] for line in done.stderr.splitlines()
             if line.startswith("building ")]
    assert built == ["tvgen-0.1.0-release"]  # no crate, not tvalue: tvgen and its outputs


@pytest.mark.skipif(not Path("/usr/bin/rustc").exists(), reason="needs Debian's rustc")
def test_recipe_check_finds_the_crates_and_the_project_reproducible(tmp_path: Path) -> None:
    """Debian's rustc by absolute path: rustup's proxy needs the HOME the check varies."""
    registry = write_registry(tmp_path / "registry")
    src = write_tree(tmp_path / "src", {
        "plan.yaml": plan(registry, rustc="/usr/bin/rustc"),
        **app("{tally: '1', scripted: '0.1'}", SCRIPTED_MAIN)})
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    verdicts = {(v["project"], v["status"]) for v in json.loads(done.stdout)["derivations"]}
    assert verdicts == {("app", "reproducible"), ("tally-1.2.0", "reproducible"),
                        ("linked-0.3.0", "reproducible"), ("scripted-0.1.0", "reproducible")}
