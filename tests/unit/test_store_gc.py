"""Roots, garbage collection, and verification."""

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Damage, Store, StoreError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store")
    yield opened
    opened.close()


def _add(store: Store, label: str, refs: tuple[str, ...] = (),
         files: dict[str, bytes] | None = None) -> str:
    name = store.make_name(f"drv of {label}", label)
    tree = store.temp_dir(label)
    for rel, data in (files or {"lib/lib.a": label.encode()}).items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    store.register(name, tree, f"drv of {label}", refs)
    return name


def _writable(path: Path) -> None:
    for folder in [path, *[p for p in path.rglob("*") if p.is_dir() and not p.is_symlink()]]:
        folder.chmod(0o755)


# -- roots and collection --------------------------------------------------------------------

def test_roots(store: Store) -> None:
    a, b = _add(store, "a"), _add(store, "b")
    store.add_root("plan/release", a)
    store.add_root("plan/release", b)  # replaces
    store.add_root("other", a)
    assert store.roots() == {"other": a, "plan/release": b}
    store.remove_root("other")
    store.remove_root("never there")
    assert store.roots() == {"plan/release": b}
    with pytest.raises(StoreError, match="not a valid store path"):
        store.add_root("x", store.make_name("nothing", "x"))


def test_gc_deletes_exactly_what_no_root_reaches(store: Store) -> None:
    base = _add(store, "base")
    lib = _add(store, "lib", (base,))
    app = _add(store, "app", (lib, base))
    loose = _add(store, "loose")
    user = _add(store, "user", (loose,))
    selfref = _add(store, "selfref")
    store.add_root("release", app)
    sizes = {info.name: info.size for info in store.paths()}

    preview = store.gc(dry_run=True)
    assert all(store.is_valid(name) for name in sizes)
    report = store.gc()
    assert report == preview
    assert set(report.deleted) == {loose, user, selfref}
    assert report.deleted.index(user) < report.deleted.index(loose)  # referrer first
    assert report.freed == sizes[loose] + sizes[user] + sizes[selfref]
    assert {info.name for info in store.paths()} == {base, lib, app}
    assert sorted(n for n in os.listdir(store.root) if n != ".recipe") == sorted([base, lib, app])

    store.remove_root("release")
    assert store.gc().deleted[0] == app
    assert store.paths() == [] and os.listdir(store.root) == [".recipe"]


def test_gc_deletes_an_unrooted_path_that_refers_to_a_live_one(store: Store) -> None:
    # An old build of an application, rebuilt since, refers to the library that is still
    # rooted: the collection deletes the old build and keeps the library (it raised KeyError).
    lib = _add(store, "lib")
    old_app = _add(store, "oldapp", (lib,))
    older_app = _add(store, "olderapp", (old_app, lib))
    store.add_root("release", lib)
    assert store.gc(dry_run=True).deleted == [older_app, old_app]
    assert store.gc().deleted == [older_app, old_app]
    assert [info.name for info in store.paths()] == [lib] and store.verify() == []


def test_gc_gives_back_the_cycle_collector_as_it_found_it(store: Store) -> None:
    import gc as cyclic

    _add(store, "loose")
    assert cyclic.isenabled()
    store.gc(dry_run=True)
    assert cyclic.isenabled()
    cyclic.disable()
    try:
        store.gc()
        assert not cyclic.isenabled()
    finally:
        cyclic.enable()
    assert store.paths() == []


def test_deletion_order_puts_referrers_first_and_breaks_ties_by_name() -> None:
    import random

    from engine.store.gc import deletion_order

    rng = random.Random(7)
    names = [f"p{i:04d}" for i in range(3000)]
    refs = {n: set(rng.sample(names[:i], min(i, rng.randint(0, 3)))) for i, n in enumerate(names)}
    for n in names[::50]:
        refs[n].add(n)  # a path may refer to itself
    dead = set(names[1000:])  # closed under referrers: later paths refer to earlier ones
    order = deletion_order(dead, refs)
    assert sorted(order) == sorted(dead)
    at = {name: i for i, name in enumerate(order)}
    assert all(at[n] < at[r] for n in dead for r in refs[n] if r in dead and r != n)
    # The order the first version gave (a sorted list, its smallest name taken each time).
    count = dict.fromkeys(dead, 0)
    for m in dead:
        for ref in refs[m] - {m}:
            if ref in count:
                count[ref] += 1
    ready, expected = sorted(n for n in dead if count[n] == 0), []
    while ready:
        name = ready.pop(0)
        expected.append(name)
        for ref in sorted(refs[name] - {name}):
            if ref in count:
                count[ref] -= 1
                if count[ref] == 0:
                    ready.append(ref)
        ready.sort()
    assert order == expected


def test_gc_waits_for_builders(store: Store) -> None:
    _add(store, "garbage")
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from engine.store import Store
        with Store.open({str(store.root)!r}).gc_shared():
            print("building", flush=True)
            input()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "building"
    done = threading.Event()
    collector = threading.Thread(target=lambda: (store.gc(), done.set()))
    collector.start()
    assert not done.wait(0.3)
    assert store.gc(dry_run=True).deleted  # a dry run shares the lock
    child.stdin.write("\n")
    child.stdin.flush()
    assert done.wait(10)
    collector.join()
    child.wait()
    assert store.paths() == []


# -- verification ----------------------------------------------------------------------------

def test_verify_a_sound_store(store: Store) -> None:
    _add(store, "a", files={"bin/a": b"a", "lib/x": b"x"})
    assert store.verify() == []


def test_verify_names_damaged_files(store: Store) -> None:
    name = _add(store, "a", files={"bin/run": b"#!/bin/sh\n", "lib/a.a": b"archive",
                                   "doc/x": b"x", "share/y": b"y", "etc/conf": b"c"})
    out = store.path(name)
    _writable(out)
    (out / "lib" / "a.a").chmod(0o644)
    (out / "lib" / "a.a").write_bytes(b"tampered")
    (out / "doc" / "x").unlink()
    (out / "extra" / "deep").mkdir(parents=True)
    (out / "extra" / "deep" / "file").write_bytes(b"")
    (out / "share" / "y").unlink()
    (out / "share" / "y").mkdir()
    (out / "bin" / "run").chmod(0o755)
    (out / "etc" / "conf").chmod(0o444)  # unchanged: no damage
    for folder in ("bin", "lib", "doc", "share", "etc", "extra/deep", "extra", ""):
        (out / folder).chmod(0o555)  # put the folders' modes back
    assert store.verify() == [
        Damage(name, "bin/run", "mode"),
        Damage(name, "doc/x", "missing"),
        Damage(name, "extra", "extra"),
        Damage(name, "lib/a.a", "modified"),
        Damage(name, "share/y", "type"),
    ]


def test_verify_names_damage_the_nar_hash_does_not_see(store: Store) -> None:
    # The archive records only a file's executable bit: a clean hash must not hide the rest of
    # its mode, nor a database row whose hash no longer matches the tree.
    name = _add(store, "m", files={"lib/a.a": b"archive", "doc/x": b"x"})
    out = store.path(name)
    _writable(out)
    mode = (out / "doc" / "x").stat().st_mode & 0o777
    (out / "doc" / "x").chmod(mode | 0o200)  # writable: the same archive
    for folder in ("lib", "doc", ""):
        (out / folder).chmod(0o555)
    assert store.verify() == [Damage(name, "doc/x", "mode")]


def test_verify_in_processes_reports_what_one_process_reports_in_path_order(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.store import check

    names = [_add(store, f"p{i:02d}", files={"bin/p": bytes([i]) * (3000 + 70_000 * (i % 3)),
                                             "lib/l": b"l"}) for i in range(24)]
    damaged = sorted(names)[1::5]
    for name in damaged:
        out = store.path(name)
        _writable(out)
        (out / "bin" / "p").chmod(0o644)
        (out / "bin" / "p").write_bytes(b"tampered")
        (out / "bin" / "p").chmod(0o444)
        for folder in ("bin", "lib", ""):
            (out / folder).chmod(0o555)
    expected = [Damage(name, "bin/p", "modified") for name in damaged]
    monkeypatch.setattr(check, "WORKERS", 4)
    monkeypatch.setattr(check, "PER_WORKER", 1)  # 4 forked workers for 24 paths
    assert store.verify() == expected
    monkeypatch.setattr(check, "WORKERS", 1)
    assert store.verify() == expected


def test_verify_symlink_target_and_missing_path(store: Store) -> None:
    tree = store.temp_dir("l")
    (tree / "run").symlink_to("a")
    name = store.make_name("l", "l")
    store.register(name, tree, "d", [])
    other = _add(store, "other")
    out = store.path(name)
    out.chmod(0o755)
    (out / "run").unlink()
    (out / "run").symlink_to("b")
    out.chmod(0o555)
    _writable(store.path(other))
    shutil.rmtree(store.path(other))
    assert sorted(store.verify(), key=str) == sorted(
        [Damage(name, "run", "modified"), Damage(other, "", "missing path")], key=str)
    assert str(Damage(other, "", "missing path")) == f"{other}: missing path"
    assert str(Damage(name, "run", "modified")) == f"{name}/run: modified"
