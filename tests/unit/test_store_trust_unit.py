"""Integrity, repair, collection of paths and of the action cache, roots: real gcc, real CLI."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine.store import Store
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB


def realise(plan: Path, store: Path, *extra: str) -> list[Path]:
    done = run_recipe("realise", plan, "--store", store, *extra)
    assert done.returncode == 0, done.stderr
    return [Path(line) for line in done.stdout.splitlines()]


def hello_runs(hello: Path) -> str:
    return subprocess.run([hello / "bin/hello", "x"], capture_output=True, text=True).stdout


@contextmanager
def writable(path: Path) -> Iterator[Path]:
    """Damage a store path as a careless user would: its modes are lifted for the block and
    put back after, so that only the changes made inside show up as damage."""
    modes = {p: p.stat().st_mode for p in [path, *path.rglob("*")]}
    for p in modes:
        p.chmod(0o755)
    try:
        yield path
    finally:
        for p, mode in modes.items():
            if p.exists():
                p.chmod(mode)


def cache_files(store: Path) -> dict[str, set[str]]:
    return {kind: {p.name.removesuffix(".json") for p in (store / ".recipe" / kind).rglob("*")
                   if p.is_file()} for kind in ("ac", "cas")}


def age_cache(store: Path, seconds: float = 60) -> None:
    """Make the cache look used a while ago: a collection keeps what was written while it ran
    (its clock margin would otherwise keep a test's just-written entries)."""
    for path in (store / ".recipe").glob("[ac][ca]*/*/*"):
        st = path.stat()
        os.utime(path, (st.st_atime - seconds, st.st_mtime - seconds))


def keeps(store: Path) -> set[str]:
    with sqlite3.connect(store / ".recipe/db.sqlite") as db:
        return {item for (item,) in db.execute("SELECT item FROM keeps")}


@contextmanager
def another_process(store: Path, statement: str) -> Iterator[None]:
    """Another live process that opened the store as ``s`` and ran ``statement`` (taking a
    lock, adding a root...): it holds on until the block ends."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from engine.store import Store;"
         f"s = Store.open({str(store)!r}); {statement};"
         "print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        yield
    finally:
        holder.communicate("")


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    return src, store, realise(src / "plan.yaml", store)


# -- integrity and repair --------------------------------------------------------------------

def test_verify_names_each_damage_and_repair_rebuilds_from_the_derivation(built) -> None:
    src, store, (greet, hello) = built
    with writable(greet), writable(hello):
        (hello / "bin/hello").write_bytes(b"#!/bin/sh\necho pwned\n")
        (greet / "include/greet.h").unlink()
        (greet / "lib/extra.txt").write_text("not registered")
        (greet / "lib/extra.txt").chmod(0o444)
    # The documents and sources are gone: the repair needs only the store.
    for path in sorted(src.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    check = run_recipe("store", "verify", "--store", store)
    assert check.returncode == 1
    assert sorted(check.stdout.splitlines()) == sorted([
        f"{greet.name}/include/greet.h: missing", f"{greet.name}/lib/extra.txt: extra",
        f"{hello.name}/bin/hello: modified"])

    repair = run_recipe("store", "verify", "--repair", "--store", store)
    assert repair.returncode == 0, repair.stderr
    assert f"repaired {greet}" in repair.stdout and f"repaired {hello}" in repair.stdout
    assert repair.stdout.endswith("store is valid (2 paths)\n")
    assert run_recipe("store", "verify", "--store", store).returncode == 0
    assert hello_runs(hello) == "hello 4 1\n"
    assert oct((hello / "bin/hello").stat().st_mode & 0o777) == "0o555"


def test_repair_of_a_deleted_path_without_the_action_cache(built) -> None:
    _src, store, (greet, hello) = built
    with writable(hello):
        shutil.rmtree(hello)
    age_cache(store)
    gc = run_recipe("store", "gc", "--max-size", "0", "--store", store)  # evicts every result
    assert gc.returncode == 0, gc.stderr
    assert cache_files(store)["ac"] == set()
    done = run_recipe("store", "verify", "--repair", "--store", store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{hello.name}: missing path"
    assert hello_runs(hello) == "hello 4 1\n"


def test_repair_refuses_a_rebuild_that_differs_from_the_record(built) -> None:
    _src, store, (greet, _hello) = built
    with sqlite3.connect(store / ".recipe/db.sqlite") as db:
        db.execute("UPDATE paths SET nar_hash = 'sha256:' || substr(nar_hash, 8, 63) || 'x' "
                   "WHERE name = ?", (greet.name,))
    done = run_recipe("store", "verify", "--repair", "--store", store)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert f"cannot repair {greet.name}: the rebuilt tree differs" in done.stderr
    assert (greet / "lib/libgreet.a").is_file()  # the recorded tree is left where it was


SHARED_UNIT = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets: {release: {opt: release}}
    """,
    **{f"{name}/project.yaml": f"""
        kind: project
        name: {name}
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs: [{{name: {name}, kind: executable}}]
    """ for name in ("one", "two")},
    **{f"{name}/src/main.c": """
        #include <stdio.h>
        int main(void) { puts("same unit"); return 0; }
    """ for name in ("one", "two")},
}


def test_a_damaged_cache_blob_is_detected_and_never_reaches_an_output(tmp_path) -> None:
    src = write_tree(tmp_path / "src", SHARED_UNIT)
    store = tmp_path / "store"
    (one,) = realise(src / "plan.yaml", store, "-p", "one")
    objects = [p for p in (store / ".recipe/cas").rglob("*")
               if p.is_file() and p.read_bytes()[:4] == b"\x7fELF" and p.read_bytes()[16] == 1]
    assert objects, "the compile of one's unit left a relocatable object in the CAS"
    for blob in objects:  # same size, other bytes: only the digest can tell
        blob.chmod(0o644)
        blob.write_bytes(b"\0" * blob.stat().st_size)
    (two,) = realise(src / "plan.yaml", store, "-p", "two")
    log = run_recipe("store", "log", two.name, "--store", store).stdout
    # Found in the cache, then compiled again when its object was copied out for the link.
    assert "# src/main.c: its cached o/src/main.c.o is damaged or gone; running it again" in log
    assert " -c src/main.c " in log
    assert subprocess.run([two / "bin/two"], capture_output=True, text=True).stdout == \
        "same unit\n"
    for blob in objects:
        assert blob.is_file() and blob.read_bytes()[:4] == b"\x7fELF"  # written anew
    assert run_recipe("store", "verify", "--store", store).returncode == 0


# -- collection --------------------------------------------------------------------------------

def test_gc_deletes_the_cache_entries_only_deleted_paths_kept(tmp_path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src / "plan.yaml", store, "-t", "debug")
    kept_by_debug = keeps(store)
    release = realise(src / "plan.yaml", store, "-t", "release")
    kept_by_release = keeps(store) - kept_by_debug
    before = cache_files(store)

    with Store.open(store) as s:
        assert s.remove_root(f"realise:{src / 'plan.yaml'}/greet/debug") == 1
        assert s.remove_root(f"realise:{src / 'plan.yaml'}/hello/debug") == 1
    age_cache(store)
    dry = run_recipe("store", "gc", "--dry-run", "--json", "--store", store)
    assert cache_files(store) == before  # a dry run deletes nothing
    done = run_recipe("store", "gc", "--json", "--store", store)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {**json.loads(dry.stdout), "dry_run": False}
    assert len(report["deleted"]) == 2 and report["cache"]["actions"] > 0
    after = cache_files(store)
    live_actions = {k[7:] for k in kept_by_release if k.startswith("action:")}
    # Exactly the results the live paths were built from, and the pinned reaper (a compile's
    # result is a candidate in its manifest, under a key that is no file of its own).
    assert {a for a in after["ac"] if not a.startswith("pin.")} == live_actions & before["ac"]
    assert live_actions - before["ac"] == {c["key"] for m in manifests(store).values()
                                           for c in m["candidates"]}
    assert len([a for a in after["ac"] if a.startswith("pin.reaper-")]) == 1
    sources = {k[5:] for k in kept_by_release if k.startswith("blob:")}
    assert sources <= after["cas"] and after["cas"] < before["cas"]
    # What stayed is enough: the live paths rebuild from the cache alone.
    with writable(release[1]):
        (release[1] / "bin/hello").write_bytes(b"damaged")
    assert run_recipe("store", "verify", "--repair", "--store", store).returncode == 0
    assert hello_runs(release[1]) == "hello 4 1\n"


def manifests(store: Path) -> dict[str, dict]:
    """The compile manifests of the store's action cache, by key."""
    found = {p.stem: json.loads(p.read_text()) for p in (store / ".recipe/ac").glob("*/*.json")}
    return {key: m for key, m in found.items() if "candidates" in m}


def test_gc_deletes_the_objects_of_a_header_set_only_a_deleted_path_was_built_from(
        tmp_path) -> None:
    """A compile's results are candidates in one manifest: the manifest stays while a live
    path was built from it, but a candidate's objects go with the paths built from it."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src / "plan.yaml", store)
    (src / "greet/src/internal.h").write_text('#define GREETING "howdy"\n')
    realise(src / "plan.yaml", store)  # greet.c compiled again; the old paths' roots replaced
    [manifest] = [m for m in manifests(store).values()
                  if "o/src/greet.c.o" in m["candidates"][0]["outputs"]]
    howdy, hello = (c["outputs"]["o/src/greet.c.o"] for c in manifest["candidates"])
    cas = store / ".recipe/cas"
    assert (cas / hello[:2] / hello).is_file() and (cas / howdy[:2] / howdy).is_file()
    age_cache(store)
    done = run_recipe("store", "gc", "--json", "--store", store)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["deleted"]) == 2  # the first greet and hello
    assert manifest in manifests(store).values()  # kept: the live greet was built from it
    assert not (cas / hello[:2] / hello).exists() and (cas / howdy[:2] / howdy).is_file()
    # The header as it was: its candidate still matches, its object is gone: compiled again.
    (src / "greet/src/internal.h").write_text('#define GREETING "hello"\n')
    greet, hello_path = realise(src / "plan.yaml", store)
    log = run_recipe("store", "log", greet.name, "--store", store).stdout
    assert " -c src/greet.c " in log and "# cached src/twice.c" in log, log
    assert hello_runs(hello_path).startswith("hello")
    assert (cas / hello[:2] / hello).is_file()  # the same bytes again
    assert run_recipe("store", "verify", "--store", store).returncode == 0


def test_gc_keeps_the_builds_reaper_so_the_next_build_does_not_compile_it(tmp_path) -> None:
    """No path keeps the reaper (engine/build/reaper.py), yet every build and case needs it: a
    collection that took it made the next realise compile it again (about a second)."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src / "plan.yaml", store)
    with Store.open(store) as s:
        assert s.remove_root(f"realise:{src / 'plan.yaml'}/greet/release") == 1
        assert s.remove_root(f"realise:{src / 'plan.yaml'}/hello/release") == 1
    age_cache(store)
    done = run_recipe("store", "gc", "--store", store)
    assert done.returncode == 0 and not done.stdout.startswith("deleted 0 paths"), done.stdout
    (pin,) = (store / ".recipe/ac").glob("pi/pin.reaper-*.json")
    blob = json.loads(pin.read_text())["outputs"]["reaper"]
    assert (store / ".recipe/cas" / blob[:2] / blob).is_file()
    assert run_recipe("store", "verify", "--store", store).returncode == 0


def test_gc_max_size_evicts_least_recently_used_results_first(tmp_path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    realise(src / "plan.yaml", store, "-t", "debug")
    realise(src / "plan.yaml", store, "-t", "release")
    # First what no path keeps (the build's reaper, engine/build/reaper.py) goes: LRU
    # eviction is about what is left.
    assert run_recipe("store", "gc", "--store", store).returncode == 0
    entries = sorted((p for p in (store / ".recipe/ac").rglob("*.json")),
                     key=lambda p: p.stat().st_mtime)
    for age, entry in enumerate(reversed(entries)):  # distinct last uses, oldest first
        os.utime(entry, (1e9 - age * 10, 1e9 - age * 10))
    sources = {k[5:] for k in keeps(store) if k.startswith("blob:")}  # not counted

    def cache_size() -> int:
        return sum(p.stat().st_size for p in (store / ".recipe").glob("[ac][ca]*/*/*")
                   if p.name not in sources)

    size = cache_size()
    done = run_recipe("store", "gc", "--max-size", str(size // 2), "--store", store)
    assert done.returncode == 0, done.stderr
    gone = [e for e in entries if not e.exists()]
    stayed = [e for e in entries if e.exists()]
    assert gone and stayed
    assert max(e.stat().st_mtime for e in stayed) >= 1e9 - (len(entries) - 1) * 10
    assert {e.name for e in gone} == {e.name for e in entries[:len(gone)]}  # the oldest
    assert cache_size() <= size // 2
    assert all((store / ".recipe/cas" / s[:2] / s).is_file() for s in sources)
    assert len(run_recipe("store", "ls", "--json", "--store", store).stdout) > 2  # paths stay


def test_named_roots_pin_paths_until_removed(tmp_path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    old = realise(src / "plan.yaml", store, "--root", "release-1")
    (src / "greet/src/internal.h").write_text('#define GREETING "howdy"\n')
    new = realise(src / "plan.yaml", store)
    assert old != new
    roots = json.loads(run_recipe("store", "roots", "--json", "--store", store).stdout)
    assert roots["release-1/greet/release"] == old[0].name
    assert roots["release-1/hello/release"] == old[1].name
    assert run_recipe("store", "gc", "--store", store).stdout.startswith("deleted 0 paths")
    assert hello_runs(old[1]) == "hello 4 1\n" and hello_runs(new[1]) == "howdy 4 1\n"

    assert run_recipe("store", "roots", "--remove", "release-1", "--store", store).returncode == 0
    done = run_recipe("store", "gc", "--store", store)
    # hello links greet's static library: no reference between them, so by name.
    assert done.stdout.splitlines()[:2] == sorted(map(str, old), key=lambda p: Path(p).name)
    assert not old[0].exists() and new[0].exists()
    bad = run_recipe("store", "roots", "--remove", "release-1", "--store", store)
    assert bad.returncode == 2 and "there is no root 'release-1'" in bad.stderr
    bad = run_recipe("realise", src / "plan.yaml", "--store", store, "--root", "realise:x")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_path_referenced_by_a_rooted_path_is_kept(tmp_path) -> None:
    files = {**GREET_LIB, "greet/project.yaml": GREET_LIB["greet/project.yaml"].replace(
        "kind: static-library", "kind: shared-library")}
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    (hello,) = realise(src / "plan.yaml", store, "-p", "hello")
    with Store.open(store) as s:
        info = s.info(hello.name)
        assert info is not None and len(info.references) == 1  # the shared greet, by rpath
        dep = info.references[0]
    assert run_recipe("store", "gc", "--store", store).stdout.startswith("deleted 0 paths")
    assert (store / dep / "lib/libgreet.so").is_file()
    assert hello_runs(hello) == "hello 4 1\n"


def test_temporary_roots_keep_what_a_live_process_uses(built) -> None:
    src, store, (greet, hello) = built
    with Store.open(store) as s:
        for root in list(s.roots()):
            s.remove_root(root)
    with another_process(store, f"s.add_temp_roots(paths=[{hello.name!r}])"):
        done = run_recipe("store", "gc", "--store", store)
        # greet is linked statically into hello: no reference, so only hello is kept.
        assert done.stdout.splitlines()[0] == str(greet), done.stdout
        assert hello_runs(hello) == "hello 4 1\n"
    done = run_recipe("store", "gc", "--store", store)
    assert done.stdout.splitlines()[0] == str(hello)  # the holder is gone: so are its roots
    assert not list((store / ".recipe/tmp").glob("*.roots"))


def test_open_removes_a_dead_builds_folder_but_not_a_live_one(built) -> None:
    _src, store, (greet, _hello) = built
    leftover = store / ".recipe/build" / ("0" * 32 + "-dead-1-release")
    (leftover / "o").mkdir(parents=True)
    live = store / ".recipe/build" / ("1" * 32 + "-live-1-release")
    with another_process(store, f"lock = s.lock({live.name!r}); lock.__enter__()"):
        (live / "o").mkdir(parents=True)  # a build in progress in another process
        Store.open(store).close()
        assert not leftover.exists() and live.exists()
    Store.open(store).close()
    assert not live.exists()


def test_repair_rebuilds_a_damaged_static_dependency_before_its_dependent(built) -> None:
    _src, store, (greet, hello) = built
    with writable(greet), writable(hello):
        (greet / "lib/libgreet.a").write_bytes(b"!<arch>\n")  # truncated archive
        (hello / "bin/hello").write_bytes(b"damaged")
    age_cache(store)
    run_recipe("store", "gc", "--max-size", "0", "--store", store)  # no cached link to reuse
    done = run_recipe("store", "verify", "--repair", "--store", store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.index(f"repaired {greet}") < done.stdout.index(f"repaired {hello}")
    assert hello_runs(hello) == "hello 4 1\n"


def test_repair_never_follows_a_symlink_out_of_the_store(built, tmp_path) -> None:
    _src, store, (_greet, hello) = built
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    with writable(hello):
        shutil.rmtree(hello)
    os.symlink(victim, hello)  # the "damaged path" points out of the store
    done = run_recipe("store", "verify", "--repair", "--store", store)
    assert done.returncode == 0, done.stderr
    assert oct(victim.stat().st_mode & 0o777) == "0o700"
    assert not hello.is_symlink() and hello_runs(hello) == "hello 4 1\n"


def test_a_repair_killed_after_the_exchange_leaves_a_whole_path(built) -> None:
    _src, store, (_greet, hello) = built
    with writable(hello):
        (hello / "bin/hello").write_bytes(b"damaged")
    env = {**os.environ, "RECIPE_TEST_FAULT": "replace:after-exchange"}
    done = run_recipe("store", "verify", "--repair", "--store", store, env=env)
    assert done.returncode == -9
    assert hello_runs(hello) == "hello 4 1\n"  # the rebuilt tree, whole
    # At worst its top folder is not sealed yet: verify says so and a repair finishes it.
    check = run_recipe("store", "verify", "--store", store)
    assert check.stdout.splitlines()[0] in (f"{hello.name}: mode", "store is valid (2 paths)")
    assert run_recipe("store", "verify", "--repair", "--store", store).returncode == 0
    assert not list((store / ".recipe/build").iterdir())


def test_gc_leaves_files_that_are_not_the_caches_alone(built) -> None:
    _src, store, _paths = built
    notes = [store / ".recipe/cas/ab/notes.txt", store / ".recipe/ac/ab/notes.txt"]
    for note in notes:
        note.parent.mkdir(exist_ok=True)
        note.write_text("mine")
    age_cache(store)
    done = run_recipe("store", "gc", "--max-size", "0", "--store", store)
    assert done.returncode == 0, done.stderr
    assert all(note.read_text() == "mine" for note in notes)
