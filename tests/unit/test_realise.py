"""recipe realise and recipe show on real projects with the real gcc."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB


def realise(plan: Path, store: Path, *extra: str) -> list[Path]:
    done = run_recipe("realise", plan, "--store", store, *extra)
    assert done.returncode == 0, done.stderr
    return [Path(line) for line in done.stdout.splitlines()]


def tree_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_realise_builds_library_and_dependent_executable(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    paths = realise(src / "plan.yaml", tmp_path / "store")
    assert [p.name.split("-", 1)[1] for p in paths] == ["greet-1.0.0-release",
                                                       "hello-0.3.0-release"]
    greet, hello = paths
    assert (greet / "lib/libgreet.a").is_file()
    assert (greet / "include/greet.h").read_text().startswith("#ifndef GREET_H")
    assert not (greet / "include/internal.h").exists()  # not public
    out = subprocess.run([hello / "bin/hello", "x"], capture_output=True, text=True)
    assert out.stdout == "hello 4 1\n"
    # Immutable: read-only files and folders with a fixed mtime.
    exe = hello / "bin/hello"
    assert oct(exe.stat().st_mode & 0o777) == "0o555"
    assert oct(hello.stat().st_mode & 0o777) == "0o555"
    assert exe.stat().st_mtime == 1


def test_second_realise_builds_nothing_and_prints_the_same(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    first = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "--json")
    second = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "--json")
    assert [r["built"] for r in json.loads(first.stdout)] == [True, True]
    assert [r["built"] for r in json.loads(second.stdout)] == [False, False]
    assert [r["path"] for r in json.loads(first.stdout)] == \
        [r["path"] for r in json.loads(second.stdout)]


def test_two_stores_two_checkouts_give_identical_trees(tmp_path):
    """DESIGN 3.3: relocatable and reproducible, including debug info (-g)."""
    a = write_tree(tmp_path / "checkout-a", GREET_LIB)
    b = write_tree(tmp_path / "elsewhere/checkout-b", GREET_LIB)
    for target in ("release", "debug"):
        pa = realise(a / "plan.yaml", tmp_path / "store1", "-t", target)
        pb = realise(b / "plan.yaml", tmp_path / "deeper/store2", "-t", target)
        assert [p.name for p in pa] == [p.name for p in pb]
        for x, y in zip(pa, pb, strict=True):
            assert tree_files(x) == tree_files(y)
            assert str(tmp_path).encode() not in b"".join(tree_files(x).values())


def test_lto_strip_min_size_is_reproducible_and_stripped(tmp_path):
    files = dict(GREET_LIB)
    files["plan.yaml"] = """
        kind: plan
        targets: {small: {opt: min-size, strip: true, lto: true}}
        default_targets: [small]
    """
    a = write_tree(tmp_path / "a", files)
    b = write_tree(tmp_path / "b", files)
    pa = realise(a / "plan.yaml", tmp_path / "s1")
    pb = realise(b / "plan.yaml", tmp_path / "s2")
    assert tree_files(pa[1]) == tree_files(pb[1])
    symbols = subprocess.run(["nm", pa[1] / "bin/hello"], capture_output=True, text=True)
    assert "no symbols" in symbols.stderr
    out = subprocess.run([pa[1] / "bin/hello"], capture_output=True, text=True)
    assert out.stdout == "hello 2 1\n"


def test_derivation_hash_follows_inputs(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"

    def names() -> list[str]:
        done = run_recipe("show", src / "plan.yaml", "--store", store, "--json")
        assert done.returncode == 0, done.stderr
        return [r["path"].rsplit("/", 1)[1] for r in json.loads(done.stdout)]

    base = names()
    # A comment in a document changes nothing.
    (src / "greet/project.yaml").write_text((src / "greet/project.yaml").read_text() + "# c\n")
    assert names() == base
    # A private header of greet changes greet and, through its store path, hello.
    (src / "greet/src/internal.h").write_text('#define GREETING "hi"\n')
    changed = names()
    assert changed[0] != base[0] and changed[1] != base[1]
    # A define of hello changes only hello.
    text = (src / "hello/project.yaml").read_text().replace("SHOUT: 1", "SHOUT: 2")
    (src / "hello/project.yaml").write_text(text)
    again = names()
    assert again[0] == changed[0] and again[1] != changed[1]


def test_show_reports_validity_and_full_derivation(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    before = run_recipe("show", src / "plan.yaml", "--store", store)
    assert before.returncode == 0 and before.stdout.count("missing") == 2
    realise(src / "plan.yaml", store)
    after = run_recipe("show", src / "plan.yaml", "--store", store, "--json")
    rows = json.loads(after.stdout)
    assert all(r["valid"] for r in rows)
    drv = rows[1]["derivation"]
    assert drv["format"] == "recipe-derivation-1"
    assert set(drv["inputs"]) == {"src/main.c"}
    assert drv["depends"] == {"greet": rows[0]["path"].rsplit("/", 1)[1]}
    assert drv["toolchain"]["digests"]["cc1"].startswith("sha256:")
    assert str(src) not in json.dumps(drv) and str(store) not in json.dumps(drv)


def test_compile_error_is_shown_verbatim_and_nothing_registered(tmp_path):
    files = dict(GREET_LIB)
    files["greet/src/twice.c"] = "int greet_twice(int x) { return x +; }\n"
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 1
    assert "src/twice.c:1:" in done.stderr and "error:" in done.stderr  # gcc's own words
    assert done.stderr.rstrip().splitlines()[-1] == \
        "recipe: greet (release): compile src/twice.c failed"
    assert "Traceback" not in done.stderr
    listing = run_recipe("store", "ls", "--store", store, "--json")
    assert json.loads(listing.stdout) == []
    assert not [p for p in store.iterdir() if not p.name.startswith(".")]


def test_undeclared_include_fails_naming_the_file(tmp_path):
    files = dict(GREET_LIB)
    files["greet/project.yaml"] = GREET_LIB["greet/project.yaml"].replace(
        '"include/*.h", "src/*.h"', '"include/*.h"')
    src = write_tree(tmp_path / "src", files)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 1
    assert done.stderr.rstrip().splitlines()[-1] == (
        "recipe: greet: src/greet.c includes 'internal.h', which the project does not declare "
        "(src/internal.h is not in headers:); add src/internal.h to headers: in project.yaml")


def test_explicit_toolchain_and_target_flags(tmp_path):
    wrapper = tmp_path / "bin/my-cc"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('gcc')} \"$@\"\n")
    wrapper.chmod(0o755)
    files = dict(GREET_LIB)
    files["plan.yaml"] = f"""
        kind: plan
        targets:
          custom: {{toolchain: {{cc: {wrapper}}}, opt: release, cpu: x86-64-v2,
                   features: [EXTRA]}}
        default_targets: [custom]
    """
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    paths = realise(src / "plan.yaml", store)
    out = subprocess.run([paths[1] / "bin/hello"], capture_output=True, text=True)
    assert out.stdout == "extra\nhello 2 1\n"
    drv = json.loads(run_recipe("show", src / "plan.yaml", "--store", store, "--json").stdout)
    argv = drv[1]["derivation"]["actions"][0]["argv"]
    assert argv[0] == str(wrapper) and "-march=x86-64-v2" in argv and "-DEXTRA" in argv
    # Changing the compiler's content changes every derivation; its identity is cached by stat.
    wrapper.write_text(wrapper.read_text() + "# changed\n")
    os.utime(wrapper, (1, 1))
    drv2 = json.loads(run_recipe("show", src / "plan.yaml", "--store", store, "--json").stdout)
    assert drv2[0]["hash"] != drv[0]["hash"]


def test_shared_library_output_is_linked_with_relative_rpath(tmp_path):
    files = dict(GREET_LIB)
    files["greet/project.yaml"] = GREET_LIB["greet/project.yaml"].replace(
        "kind: static-library", "kind: shared-library")
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    greet, hello = realise(src / "plan.yaml", store)
    assert (greet / "lib/libgreet.so").is_file()
    out = subprocess.run([hello / "bin/hello"], capture_output=True, text=True)
    assert out.stdout == "hello 2 1\n"
    # Moving the whole store keeps it working: the rpath is relative to the executable.
    moved = tmp_path / "moved"
    shutil.copytree(store, moved, symlinks=True)
    out = subprocess.run([moved / hello.name / "bin/hello"], capture_output=True, text=True)
    assert out.stdout == "hello 2 1\n"
    info = json.loads(run_recipe("store", "ls", "--store", store, "--json").stdout)
    refs = {row["name"]: row["references"] for row in info}
    assert refs[hello.name] == [greet.name]


def test_wrong_input_writes_nothing_to_the_store(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    for args in (["-t", "nightly"], ["-p", "gret"], ["-j", "0"]):
        done = run_recipe("realise", src / "plan.yaml", "--store", store, *args)
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
        assert not store.exists()
    assert "unknown target 'nightly'; the plan has: release, debug" in \
        run_recipe("realise", src / "plan.yaml", "--store", store, "-t", "nightly").stderr
    text = (src / "greet/project.yaml").read_text().replace("sources:", "sorces:")
    (src / "greet/project.yaml").write_text(text)
    done = run_recipe("verify", src / "plan.yaml", "--store", store)
    assert done.returncode == 2 and not store.exists()
    assert done.stderr == (f"{src}/greet/project.yaml:6:1: unknown key 'sorces' in project; "
                           "did you mean 'sources'?\n")


def test_lto_with_debug_info_is_reproducible(tmp_path):
    files = dict(GREET_LIB)
    files["plan.yaml"] = """
        kind: plan
        targets: {rd: {opt: release-debug, lto: true}}
    """
    pa = realise(write_tree(tmp_path / "a", files) / "plan.yaml", tmp_path / "s1")
    pb = realise(write_tree(tmp_path / "b/c", files) / "plan.yaml", tmp_path / "s2")
    assert tree_files(pa[1]) == tree_files(pb[1])


def test_c_program_links_a_cxx_library_with_the_cxx_runtime(tmp_path):
    files = dict(GREET_LIB)
    files["greet/project.yaml"] = GREET_LIB["greet/project.yaml"].replace(
        "language: c\n        standard: c17", "language: c++").replace('"src/*.c"', '"src/*.cpp"')
    files["greet/src/greet.cpp"] = """
        #include <string>
        #include "internal.h"
        static std::string word = GREETING;
        extern "C" const char *greet_word(void) { return word.c_str(); }
        extern "C" int greet_twice(int x) { return 2 * x; }
    """
    src = write_tree(tmp_path / "src", files)
    _greet, hello = realise(src / "plan.yaml", tmp_path / "store")
    out = subprocess.run([hello / "bin/hello"], capture_output=True, text=True)
    assert out.stdout == "hello 2 1\n"


def test_include_that_climbs_out_of_the_project_fails(tmp_path):
    files = dict(GREET_LIB)
    files["secret.h"] = "#define SECRET 1\n"
    # From <store>/.recipe/build/<name>/w/src, six levels up is tmp_path: the file exists.
    files["greet/src/twice.c"] = ('#include "../../../../../../src/secret.h"\n'
                                  "int greet_twice(int x) { return x; }\n")
    src = write_tree(tmp_path / "src", files)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "recipe: greet: src/twice.c includes 'src/../../../../../../src/secret.h', which lies "
        "outside the project's declared files; declare the file in headers: of a project of "
        "the plan")


def test_a_no_op_realise_writes_nothing_to_the_database(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    first = realise(src / "plan.yaml", store)
    # An open connection keeps the write-ahead log from being folded back at exit: every
    # transaction that wrote anything leaves frames in it.
    watcher = sqlite3.connect(store / ".recipe/db.sqlite")
    watcher.execute("SELECT count(*) FROM paths").fetchone()
    wal = store / ".recipe/db.sqlite-wal"
    before = wal.read_bytes()
    assert realise(src / "plan.yaml", store) == first
    assert wal.read_bytes() == before
    watcher.close()


TWO_UNITS = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          release: {opt: release}
        default_targets: [release]
    """,
    "two/project.yaml": """
        kind: project
        name: two
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs:
          - {name: two, kind: executable}
    """,
    "two/src/a.c": """
        void b(void);
        int main(void) { b(); return 0; }
    """,
    "two/src/b.c": """
        void b(void) {}
    """,
}


def test_what_only_actions_read_is_hard_linked_from_the_cas_not_copied(tmp_path):
    """Zero-copy materialisation: a cached object the link reads and a declared input whose
    blob is in the CAS are the CAS's read-only inode in the build folder; a new source is
    copied from the checkout once, and that copy becomes the blob (linked into the CAS), as
    does a new object. The path itself holds copies (its files are sealed)."""
    src = write_tree(tmp_path / "src", TWO_UNITS)
    store = tmp_path / "store"
    (first,) = realise(src / "plan.yaml", store)
    cas = store / ".recipe/cas"

    def blob_of(path: Path) -> Path:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return cas / digest[:2] / digest

    assert (first / "bin/two").stat().st_nlink == 1
    # Compiles, but the link fails: the build folder is kept with what the link read.
    (src / "two/src/b.c").write_text("void missing(void);\nvoid b(void) { missing(); }\n")
    done = run_recipe("realise", src / "plan.yaml", "--store", store, "--keep-failed")
    assert done.returncode != 0 and "missing" in done.stderr + done.stdout
    (kept,) = (store / ".recipe/failed").iterdir()
    cached_object, old_source = kept / "o/src/a.c.o", kept / "w/src/a.c"
    for linked in (cached_object, old_source):
        assert os.path.samefile(linked, blob_of(linked)), linked
        assert not os.access(linked, os.W_OK) or os.geteuid() == 0
        assert linked.stat().st_mode & 0o777 == 0o444
    for new in (kept / "w/src/b.c", kept / "o/src/b.c.o"):
        assert os.path.samefile(new, blob_of(new)), new
        assert new.stat().st_mode & 0o777 == 0o444
    assert os.path.samefile(kept / "w/src/b.c", src / "two/src/b.c") is False
