"""The store: opening, naming, registration, atomicity and locks."""

import hashlib
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Store, StoreError, nix_base32, tree_hash


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store")
    yield opened
    opened.close()


def _tree(store: Store, files: dict[str, bytes], label: str = "t") -> Path:
    tree = store.temp_dir(label)
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    return tree


def _child(script: str) -> subprocess.Popen:
    """A Python child that prints one line when it has done its setup."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


# -- opening ---------------------------------------------------------------------------------

def test_open_creates_the_layout(tmp_path: Path) -> None:
    with Store.open(tmp_path / "new" / "store") as store:
        for sub in ("db.sqlite", "tmp", "locks", "cas", "ac", "logs", "build"):
            assert (store.root / ".recipe" / sub).exists()
        assert store.root == tmp_path / "new" / "store"
        assert store.paths() == []
    with sqlite3.connect(store.root / ".recipe" / "db.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("PRAGMA user_version").fetchone() == (2,)
    Store.open(tmp_path / "new" / "store", create=False).close()  # and opens again


def test_open_accepts_a_folder_kept_by_git(tmp_path: Path) -> None:
    (tmp_path / ".gitkeep").write_text("")
    with Store.open(tmp_path) as store:
        name = store.make_name("x", "x")
        store.register(name, _tree(store, {"a": b"1"}), "d", [])
    assert (tmp_path / ".gitkeep").exists() and (tmp_path / name).is_dir()


def test_open_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "project.yaml").write_text("kind: project\n")
    with pytest.raises(StoreError, match="not a recipe store") as caught:
        Store.open(tmp_path)
    assert caught.value.fix
    assert not (tmp_path / ".recipe").exists()


def test_open_without_create_refuses_a_missing_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store"):
        Store.open(tmp_path / "none", create=False)
    assert not (tmp_path / "none").exists()


def test_open_refuses_a_newer_schema(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    with sqlite3.connect(tmp_path / "s" / ".recipe" / "db.sqlite") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99, newer"):
        Store.open(tmp_path / "s")


def test_open_refuses_another_programs_database(tmp_path: Path) -> None:
    (tmp_path / ".recipe").mkdir()
    with sqlite3.connect(tmp_path / ".recipe" / "db.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="another program"):
        Store.open(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to any folder")
def test_open_refuses_a_read_only_store(tmp_path: Path) -> None:
    Store.open(tmp_path / "s").close()
    (tmp_path / "s").chmod(0o555)
    try:
        with pytest.raises(StoreError, match="not writable"):
            Store.open(tmp_path / "s")
    finally:
        (tmp_path / "s").chmod(0o755)


# -- names -----------------------------------------------------------------------------------

def test_make_name(store: Store) -> None:
    name = store.make_name("fingerprint", "hello-1.0-release")
    digest = hashlib.sha256(b"fingerprint").digest()[:20]
    assert name == f"{nix_base32(digest)}-hello-1.0-release"
    assert name == "amsgsim315lm40jvw00736whx41kp1j4-hello-1.0-release"  # pinned: names persist
    assert store.path(name) == store.root / name


@pytest.mark.parametrize("label", ["", "has space", "a/b", "ü", "x" * 201])
def test_make_name_refuses_bad_labels(store: Store, label: str) -> None:
    with pytest.raises(StoreError):
        store.make_name("f", label)


@pytest.mark.parametrize("name", ["../etc", "short-x", ".recipe"])
def test_path_refuses_what_is_not_a_name(store: Store, name: str) -> None:
    with pytest.raises(StoreError):
        store.path(name)
    assert not store.is_valid(name)
    assert store.info(name) is None


# -- registration ----------------------------------------------------------------------------

def test_register_normalises_and_records(store: Store) -> None:
    name = store.make_name("drv", "app")
    tree = _tree(store, {"bin/app": b"#!/bin/sh\n", "share/doc.txt": b"doc"})
    (tree / "bin" / "app").chmod(0o750)
    (tree / "share" / "doc.txt").chmod(0o600)
    (tree / "latest").symlink_to("bin/app")
    with store.lock(name):
        info = store.register(name, tree, '{"drv":1}', [], log=b"compiled\n")
    out = store.path(name)
    assert not tree.exists()
    modes = {str(p.relative_to(out)): stat.S_IMODE(os.lstat(p).st_mode) for p in out.rglob("*")}
    assert modes["bin/app"] == 0o555
    assert modes["share/doc.txt"] == 0o444
    assert modes["bin"] == modes["share"] == 0o555
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o555
    assert os.readlink(out / "latest") == "bin/app"
    assert {os.lstat(p).st_mtime for p in [out, *out.rglob("*")]} == {1.0}
    assert (info.nar_hash, info.size) == tree_hash(out)
    assert store.is_valid(name)
    assert store.info(name) == info
    assert store.paths() == [info]
    assert store.log(name) == b"compiled\n"


def test_register_records_references_and_refuses_invalid_ones(store: Store) -> None:
    lib = store.make_name("lib", "lib")
    app = store.make_name("app", "app")
    with pytest.raises(StoreError, match="not a valid store path"):
        store.register(app, _tree(store, {"a": b"1"}), "d", [lib])
    assert not store.is_valid(app)
    store.register(lib, _tree(store, {"l": b"1"}), "d", [])
    info = store.register(app, _tree(store, {"a": b"1"}), "d", [lib, app, lib])
    assert info.references == tuple(sorted([lib, app]))
    assert store.info(app).references == info.references


def test_register_refuses_a_valid_name_and_keeps_it(store: Store) -> None:
    name = store.make_name("x", "x")
    store.register(name, _tree(store, {"a": b"first"}), "d", [])
    with pytest.raises(StoreError, match="already a valid"):
        store.register(name, _tree(store, {"a": b"second"}), "d", [])
    assert (store.path(name) / "a").read_bytes() == b"first"


def test_register_refuses_a_fifo_and_registers_nothing(store: Store) -> None:
    name = store.make_name("x", "x")
    tree = _tree(store, {"a": b"1"})
    os.mkfifo(tree / "pipe")
    with pytest.raises(StoreError, match="file, folder or symlink"):
        store.register(name, tree, "d", [])
    assert not store.is_valid(name)
    assert not store.path(name).exists()


def test_register_replaces_a_stale_unregistered_folder(store: Store) -> None:
    name = store.make_name("x", "x")
    with store.lock(name):
        store.path(name).mkdir()
        (store.path(name) / "junk").write_bytes(b"half a build")
        store.register(name, _tree(store, {"a": b"1"}), "d", [])
    assert sorted(os.listdir(store.path(name))) == ["a"]


def test_register_does_not_touch_a_hard_linked_file_outside(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "source.c"
    outside.write_bytes(b"int x;")
    outside.chmod(0o644)
    tree = store.temp_dir("t")
    os.link(outside, tree / "source.c")
    store.register(store.make_name("x", "x"), tree, "d", [])
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert outside.stat().st_nlink == 1


# -- atomicity: what dead builds leave is cleaned on open ------------------------------------

def test_temp_dir_of_a_killed_build_is_removed_on_open(store: Store) -> None:
    child = _child(f"""
        from engine.store import Store
        tree = Store.open({str(store.root)!r}).temp_dir("victim")
        (tree / "half.o").write_bytes(b"partial")
        print(tree, flush=True)
        input()
    """)
    tree = Path(child.stdout.readline().strip())
    assert tree.is_dir()
    Store.open(store.root).close()
    assert tree.is_dir(), "a live build's folder must survive"
    child.send_signal(signal.SIGKILL)
    child.wait()
    Store.open(store.root).close()
    assert not tree.exists()
    assert os.listdir(store.state / "tmp") == []  # its owner file too


def test_leftover_of_an_earlier_process_with_our_pid_is_removed(tmp_path: Path) -> None:
    # Containers reuse pids: an entry named with our pid is not ours unless we own it.
    Store.open(tmp_path / "s").close()
    leftover = tmp_path / "s" / ".recipe" / "tmp" / f"{os.getpid()}-abc-old"
    leftover.mkdir()
    store = Store.open(tmp_path / "s")
    assert not leftover.exists()
    mine = store.temp_dir("mine")
    Store.open(tmp_path / "s").close()
    assert mine.is_dir()


def test_unregistered_folder_is_removed_on_open_unless_locked(store: Store) -> None:
    """A registration killed after its rename leaves the folder and its name noted in
    .recipe/pending: the next open removes both, unless somebody holds the name's lock (it is
    being built). A folder nobody noted (made by hand, or by an older recipe) is not looked
    for by every open (a store holds thousands of paths): the next collection removes it."""
    dead, busy, unnoted = (store.make_name(n, "x") for n in ("dead", "busy", "unnoted"))
    pending = store.root / ".recipe" / "pending"
    (store.root / dead / "bin").mkdir(parents=True)
    (store.root / dead / "bin").chmod(0o555)
    (store.root / busy).mkdir()
    (store.root / unnoted).mkdir()
    (pending / dead).touch()
    (pending / busy).touch()
    (store.root / "README").write_text("not a store path name: left alone")
    with store.lock(busy):
        Store.open(store.root).close()
    assert not (store.root / dead).exists() and not (pending / dead).exists()
    assert (store.root / busy).exists() and (pending / busy).exists()
    assert (store.root / unnoted).exists()
    store.gc()
    assert not (store.root / unnoted).exists() and not (store.root / busy).exists()
    assert (store.root / "README").exists()


# -- locks -----------------------------------------------------------------------------------

def test_lock_excludes_another_process(store: Store) -> None:
    name = store.make_name("x", "x")
    child = _child(f"""
        from engine.store import Store
        store = Store.open({str(store.root)!r})
        with store.lock({name!r}):
            print("locked", flush=True)
            input()
    """)
    assert child.stdout.readline().strip() == "locked"
    got = threading.Event()

    def take() -> None:
        with store.lock(name):
            got.set()

    waiter = threading.Thread(target=take)
    waiter.start()
    assert not got.wait(0.3)
    child.stdin.write("\n")
    child.stdin.flush()
    assert got.wait(10)
    waiter.join()
    child.wait()


def test_lock_excludes_another_thread(store: Store) -> None:
    name = store.make_name("x", "x")
    inside, overlaps = [], []

    def work() -> None:
        for _ in range(20):
            with store.lock(name):
                inside.append(1)
                overlaps.append(len(inside))
                time.sleep(0.001)
                inside.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(overlaps) == 1


def test_threads_share_one_store(store: Store) -> None:
    errors: list[BaseException] = []

    def build(i: int) -> None:
        try:
            name = store.make_name(f"drv {i}", f"p{i}")
            with store.gc_shared(), store.lock(name):
                store.register(name, _tree(store, {"out": str(i).encode()}), "d", [])
        except BaseException as error:  # reported below, with the thread's error
            errors.append(error)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.paths()) == 8
    assert store.verify() == []


def test_concurrent_realisers_build_once(store: Store) -> None:
    builds = store.root.parent / "builds.txt"
    script = f"""
        import os
        from engine.store import Store
        store = Store.open({str(store.root)!r})
        name = store.make_name("same derivation", "x")
        input()
        with store.gc_shared(), store.lock(name):
            if not store.is_valid(name):
                with open({str(builds)!r}, "a") as f:
                    f.write(f"{{os.getpid()}}\\n")
                tree = store.temp_dir("x")
                (tree / "out").write_bytes(b"same")
                store.register(name, tree, "d", [])
        print("ok", flush=True)
    """
    children = [_child(script) for _ in range(4)]
    for child in children:
        child.stdin.write("\n")
        child.stdin.flush()
    assert [child.stdout.readline().strip() for child in children] == ["ok"] * 4
    for child in children:
        child.wait()
    assert len(builds.read_text().splitlines()) == 1
    assert store.is_valid(store.make_name("same derivation", "x"))
