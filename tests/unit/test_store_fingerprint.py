"""``store verify``'s fast walk (engine/store/fingerprint.py, check.fingerprints): the same NAR
hash and shape as the thorough ``nar.scan``, and the thorough check wherever it cannot tell."""

import os
import sqlite3
from pathlib import Path

import pytest

from engine.store import Damage, Store, check
from engine.store.fingerprint import Fingerprinter
from engine.store.nar import scan


def _shape(path: Path) -> tuple[str, str]:
    """What the fingerprint must be: ``nar.scan``'s hash, and its manifest's paths and modes as
    the database gives them."""
    found = scan(path, strict=False, digests=False)
    return found.nar_hash, "".join(sorted(f"{e.file}\0{e.mode}\0" for e in found.entries))


def _tree(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "run").write_bytes(b"#!/bin/sh\n")
    (root / "bin" / "run").chmod(0o750)
    (root / "empty").write_bytes(b"")
    (root / "a.txt").write_bytes(b"a" * 13)
    (root / "a").mkdir()  # "a" < "a.txt" < "a/..." by path, "a" < "a.txt" by name
    (root / "a" / "b").write_bytes(b"b" * 8)
    (root / "a" / "deep" / "er").mkdir(parents=True)
    (root / "a" / "deep" / "er" / "ü n\ti").write_bytes(os.urandom(3000))
    (root / "link").symlink_to("bin/run")
    (root / "dangling").symlink_to("nowhere/ä")
    (root / "nothing").mkdir(mode=0o700)
    return root


@pytest.mark.parametrize("buffer", [64, 4096, 1 << 18])
def test_the_same_hash_and_shape_as_the_thorough_scan(tmp_path: Path, buffer: int) -> None:
    # A buffer smaller than a file and than the framing: every way of filling it.
    root = _tree(tmp_path / "t")
    (root / "big").write_bytes(os.urandom(100_000))
    walker = Fingerprinter(buffer)
    assert walker.fingerprint(os.fsencode(root)) == _shape(root)
    assert walker.fingerprint(os.fsencode(root / "a.txt")) == _shape(root / "a.txt")
    assert walker.fingerprint(os.fsencode(root / "link")) == _shape(root / "link")
    assert walker.fingerprint(os.fsencode(root / "empty")) == _shape(root / "empty")
    assert walker.fingerprint(os.fsencode(root)) == _shape(root)  # again, the same buffer


def test_whatever_the_walk_does_not_expect_goes_to_the_thorough_check(tmp_path: Path) -> None:
    walker = Fingerprinter()
    assert walker.fingerprint(os.fsencode(tmp_path / "missing")) is None
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / b"\xff".decode("utf-8", "surrogateescape")).write_bytes(b"not UTF-8")
    assert walker.fingerprint(os.fsencode(odd)) is None
    fifo = tmp_path / "fifo"
    fifo.mkdir()
    os.mkfifo(fifo / "f")
    assert walker.fingerprint(os.fsencode(fifo)) is None
    if os.geteuid() != 0:  # root reads any file
        locked = _tree(tmp_path / "locked")
        (locked / "a.txt").chmod(0)
        assert walker.fingerprint(os.fsencode(locked)) is None


def test_fingerprints_in_processes_are_those_of_one_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = []
    for i in range(40):
        (tmp_path / f"p{i}").mkdir()
        (tmp_path / f"p{i}" / "f").write_bytes(bytes([i]) * (i * 997))
        names.append(f"p{i}".encode())
    names.append(b"missing")
    alone = [Fingerprinter().fingerprint(os.fsencode(tmp_path) + b"/" + name) for name in names]
    monkeypatch.setattr(check, "WORKERS", 3)
    monkeypatch.setattr(check, "PER_WORKER", 1)
    assert check.fingerprints(os.fsencode(tmp_path), names, lambda: "meanwhile") == \
        (alone, "meanwhile")
    assert Path.cwd() != tmp_path  # the workers' folder, not this process's


def test_a_manifest_row_that_differs_from_the_tree_is_still_named(tmp_path: Path) -> None:
    # The archive does not record a mode but for the x bit: the manifest's shape is compared.
    with Store.open(tmp_path / "store") as store:
        tree = _tree(store.temp_dir("t"))
        name = store.make_name("t", "t")
        store.register(name, tree, "d", [])
        assert store.verify() == []
        with sqlite3.connect(store.state / "db.sqlite") as db:
            db.execute("UPDATE files SET mode = mode | 128 WHERE file = 'a.txt'")
        assert store.verify() == [Damage(name, "a.txt", "mode")]


def test_the_pieces_of_a_worker_that_fails_are_taken_by_the_caller(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    caller = os.getpid()

    class FailingInWorkers(Fingerprinter):
        def fingerprint(self, path: bytes) -> tuple[str, str] | None:
            if os.getpid() != caller:
                raise RuntimeError("a worker dies")
            return super().fingerprint(path)

    roots = []
    for i in range(20):
        (tmp_path / f"p{i}").write_bytes(bytes([i]) * i)
        roots.append(os.fsencode(tmp_path / f"p{i}"))
    monkeypatch.setattr(check, "Fingerprinter", FailingInWorkers)
    monkeypatch.setattr(check, "WORKERS", 2)
    monkeypatch.setattr(check, "PER_WORKER", 1)
    assert check.fingerprints(b"/", roots, lambda: None)[0] == \
        [Fingerprinter().fingerprint(root) for root in roots]


def test_verify_in_workers_of_paths_that_are_a_file_or_a_symlink(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "WORKERS", 2)
    monkeypatch.setattr(check, "PER_WORKER", 1)
    with Store.open(tmp_path / "store") as store:
        names = {}
        for kind in ("file", "link", "tree"):
            temp = store.temp_dir(kind)
            if kind == "file":
                (temp / "x").write_bytes(b"#!/bin/sh\n")
                (temp / "x").chmod(0o755)
            elif kind == "link":
                (temp / "x").symlink_to("target")
            else:
                _tree(temp / "x")
            names[kind] = store.make_name(kind, kind)
            store.register(names[kind], temp / "x", kind, [])
        assert store.verify() == []
        store.path(names["file"]).chmod(0o755)  # writable, the x bits kept: the same archive
        assert store.verify() == [Damage(names["file"], "", "mode")]


def test_workers_answer_where_sigchld_is_ignored(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel then reaps the workers itself: waitpid has nothing to wait for.
    import signal

    roots = []
    for i in range(8):
        (tmp_path / f"p{i}").write_bytes(bytes([i]) * 100)
        roots.append(os.fsencode(tmp_path / f"p{i}"))
    monkeypatch.setattr(check, "WORKERS", 2)
    monkeypatch.setattr(check, "PER_WORKER", 1)
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        found = check.fingerprints(b"/", roots, lambda: None)[0]
    finally:
        signal.signal(signal.SIGCHLD, previous)
    assert found == [Fingerprinter().fingerprint(root) for root in roots]


def test_the_record_is_read_as_one_string_and_a_name_with_a_newline_still_checked(
        tmp_path: Path) -> None:
    # valid_names and nar_hashes split one string per column; a row that would split wrong
    # (a damaged database's name with a newline) sends them back to a row at a time.
    with Store.open(tmp_path / "store") as store:
        names = []
        for i in range(3):
            temp = store.temp_dir(f"p{i}")
            (temp / "x").write_bytes(bytes([i]) * 100)
            names.append(store.make_name(f"p{i}", f"p{i}"))
            store.register(names[-1], temp / "x", "d", [])
        db = store._db
        assert db.valid_names() == names  # in the order they became valid
        assert db.nar_hashes() == {name: store.info(name).nar_hash for name in names}
        assert store.verify() == []
        with sqlite3.connect(store.state / "db.sqlite") as conn:
            conn.execute("UPDATE paths SET name = name || char(10) || 'x' WHERE name = ?",
                         (names[1],))
        odd = names[1] + "\nx"
        assert db.valid_names() == [names[0], odd, names[2]]
        assert db.nar_hashes().keys() == {names[0], odd, names[2]}
        assert store.verify() == [Damage(odd, "", "missing path")]
