"""Content-addressed blobs and the action cache."""

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Store, StoreError, marks
from engine.store.errors import BlobError


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store")
    yield opened
    opened.close()


def _blob_file(store: Store, digest: str) -> Path:
    return store.root / ".recipe" / "cas" / digest[:2] / digest


def _damage(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def test_put_and_read(store: Store, tmp_path: Path) -> None:
    digest = store.put_blob(b"object code")
    assert digest == hashlib.sha256(b"object code").hexdigest()
    assert store.put_blob(b"object code") == digest
    assert store.has_blob(digest)
    assert store.read_blob(digest) == b"object code"
    assert stat.S_IMODE(_blob_file(store, digest).stat().st_mode) == 0o444
    source = tmp_path / "big.o"
    source.write_bytes(b"x" * 3_000_000)
    assert store.put_file(source) == hashlib.sha256(source.read_bytes()).hexdigest()
    # Every temporary file was renamed into place or removed.
    assert [n for n in os.listdir(store.root / ".recipe" / "tmp") if "owner" not in n] == []


def test_a_large_file_already_stored_is_touched_not_replaced(store: Store,
                                                              tmp_path: Path) -> None:
    """put_file reads a large file once (copied in while hashed); a blob already there stays
    the same file, touched as if just written, and the copy leaves nothing behind."""
    source = tmp_path / "big.so"
    source.write_bytes(b"y" * 3_000_000)
    digest = store.put_file(source)
    blob = _blob_file(store, digest)
    os.utime(blob, (1, 1))
    inode = blob.stat().st_ino
    assert store.put_file(source) == digest
    assert blob.stat().st_ino == inode and blob.stat().st_mtime > 1
    assert blob.read_bytes() == source.read_bytes()
    assert [n for n in os.listdir(store.root / ".recipe" / "tmp") if "owner" not in n] == []


def test_damaged_blob_is_detected_and_removed(store: Store) -> None:
    digest = store.put_blob(b"good")
    _damage(_blob_file(store, digest), b"evil")
    with pytest.raises(BlobError, match="damaged"):
        store.read_blob(digest)
    assert not store.has_blob(digest)
    with pytest.raises(BlobError, match="not in the store"):
        store.read_blob(digest)
    assert store.put_blob(b"good") == digest  # and the next build writes it again
    assert store.read_blob(digest) == b"good"


def test_a_damaged_blob_of_the_same_size_is_caught_on_read_not_on_put(store: Store) -> None:
    digest = store.put_blob(b"good")
    _damage(_blob_file(store, digest), b"bad!")
    store.put_blob(b"good")  # trusted by size, as Bazel does
    with pytest.raises(BlobError):
        store.read_blob(digest)


def test_copy_blob(store: Store, tmp_path: Path) -> None:
    digest = store.put_blob(b"#!/bin/sh\n")
    store.copy_blob(digest, tmp_path / "run", executable=True)
    store.copy_blob(digest, tmp_path / "data")
    assert (tmp_path / "run").read_bytes() == b"#!/bin/sh\n"
    assert stat.S_IMODE((tmp_path / "run").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o644
    store.copy_blob(digest, tmp_path / "data")  # over an existing file


def test_copy_of_a_damaged_blob_leaves_no_file(store: Store, tmp_path: Path) -> None:
    digest = store.put_blob(b"good")
    _damage(_blob_file(store, digest), b"evil")
    with pytest.raises(BlobError):
        store.copy_blob(digest, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(BlobError, match="not in the store"):
        store.copy_blob(digest, tmp_path / "out")


@pytest.mark.parametrize("digest", ["abc", "../../etc/passwd", "A" * 64])
def test_a_digest_must_be_sha256_hex(store: Store, digest: str) -> None:
    with pytest.raises(StoreError):
        store.has_blob(digest)


def test_action_cache(store: Store) -> None:
    assert store.get_action("k" * 64) is None
    obj = store.put_blob(b"main.o")
    result = {"outputs": {"main.o": obj}, "exit": 0, "stderr": "warning: x\n"}
    store.put_action("k" * 64, result)
    assert store.get_action("k" * 64) == result
    store.put_action("k" * 64, {"outputs": {}})  # replaced atomically
    assert store.get_action("k" * 64) == {"outputs": {}}


def test_action_with_a_missing_output_is_a_miss(store: Store) -> None:
    obj = store.put_blob(b"main.o")
    store.put_action("key1", {"outputs": {"main.o": obj}})
    _blob_file(store, obj).unlink()
    assert store.get_action("key1") is None


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b'{"outputs": ["x"]}',
                                     b'{"outputs": {"o": "nothex"}}'])
def test_unreadable_action_is_a_miss(store: Store, content: bytes) -> None:
    store.put_action("key1", {"outputs": {}})
    path = store.root / ".recipe" / "ac" / "ke" / "key1.json"
    path.write_bytes(content)
    assert store.get_action("key1") is None


def test_action_keys_and_results_are_checked(store: Store) -> None:
    with pytest.raises(StoreError):
        store.put_action("../x", {})
    with pytest.raises(StoreError, match="not JSON"):
        store.put_action("key1", {"outputs": {}, "bad": object()})
    assert store.get_action("key1") is None


def test_take_file_links_a_finished_file_into_the_cas(store: Store, tmp_path: Path) -> None:
    """A compiler's output becomes its blob without a copy: the same inode, read-only, with
    the right digest; nothing is left in the store's tmp/."""
    made = tmp_path / "unit.o"
    made.write_bytes(b"object code")
    digest = store.take_file(made)
    assert digest == hashlib.sha256(b"object code").hexdigest()
    blob = _blob_file(store, digest)
    assert os.path.samefile(made, blob)
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444
    assert store.read_blob(digest) == b"object code"
    assert [n for n in os.listdir(store.root / ".recipe/tmp") if not n.endswith(
        (".owner", ".roots"))] == []


def test_take_file_of_bytes_already_stored_leaves_the_file_alone(store: Store,
                                                                   tmp_path: Path) -> None:
    digest = store.put_blob(b"same bytes")
    again = tmp_path / "again.o"
    again.write_bytes(b"same bytes")
    assert store.take_file(again) == digest
    assert again.stat().st_nlink == 1 and os.access(again, os.W_OK)


def test_take_file_with_a_known_digest_does_not_hash_again(store: Store,
                                                             tmp_path: Path) -> None:
    """The caller hashed these bytes as it wrote them (a staged source): trusted, and the
    blob is still checked whenever it is read."""
    made = tmp_path / "src.c"
    made.write_bytes(b"int x;\n")
    digest = hashlib.sha256(b"int x;\n").hexdigest()
    assert store.take_file(made, digest) == digest
    assert store.read_blob(digest) == b"int x;\n"
    with pytest.raises(StoreError):
        store.take_file(made, "not-a-digest")


def test_a_fan_out_folder_removed_by_hand_is_made_again(store: Store, tmp_path: Path) -> None:
    """The CAS remembers which fan-out folders it made (one mkdir per folder per process);
    one removed meanwhile is made again, for a blob, a linked file and an action result."""
    import shutil

    digest = store.put_blob(b"first")
    shutil.rmtree(_blob_file(store, digest).parent)
    assert store.put_blob(b"first") == digest and store.read_blob(digest) == b"first"
    shutil.rmtree(_blob_file(store, digest).parent)
    made = tmp_path / "made.o"
    made.write_bytes(b"first")
    assert store.take_file(made) == digest and store.read_blob(digest) == b"first"
    store.put_action("ab-key", {"outputs": {}})
    shutil.rmtree(store.root / ".recipe/ac/ab")
    store.put_action("ab-key", {"outputs": {"x": digest}})
    assert store.get_action("ab-key") == {"outputs": {"x": digest}}


def test_a_blob_stored_by_another_action_while_linking_is_linked(
        store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two targets of one build stage the same new source: one links from the CAS and finds no
    # blob, the other stores it at that moment. The first must link what is now there (it
    # ended the build with "No such file or directory" on the blob, under load).
    data = b"int main(void) { return 0; }\n"
    digest = hashlib.sha256(data).hexdigest()
    other = tmp_path / "other.c"
    other.write_bytes(data)
    real_link = os.link
    calls: list[str] = []

    def link(source: str, dest: Path) -> None:
        if not calls:  # the first attempt loses the race, the other action wins it
            calls.append(source)
            store.take_file(other, digest)
            raise FileNotFoundError(2, "No such file or directory", source)
        real_link(source, dest)

    monkeypatch.setattr(os, "link", link)
    dest = tmp_path / "staged.c"
    store.link_blob(digest, dest)
    assert dest.read_bytes() == data and calls


def test_take_file_replaces_a_damaged_blob_of_another_size(store: Store, tmp_path: Path) -> None:
    digest = store.put_blob(b"the object's bytes")
    _damage(_blob_file(store, digest), b"short")
    made = tmp_path / "made.o"
    made.write_bytes(b"the object's bytes")
    assert store.take_file(made) == digest
    assert store.read_blob(digest) == b"the object's bytes"


def test_a_blob_hashed_once_is_linked_unhashed_until_written_through_a_link(
        store: Store, tmp_path: Path) -> None:
    """engine.store.marks: a link out of the CAS hashes the blob and marks it (once its mtime
    is old enough to tell a later write by); a marked blob with the same size and mtime is
    linked without hashing; a write through any link moves its mtime, and the next link hashes
    it, finds it damaged and removes it."""
    digest = store.put_blob(b"int x;\n")
    blob = str(_blob_file(store, digest))
    store.link_blob(digest, tmp_path / "a")
    assert not marks.trusted(blob, digest)  # written just now: racily clean, not marked
    old = (os.stat(blob).st_mtime_ns - 10 * marks.RACY_NS,) * 2
    os.utime(blob, ns=old)  # as a blob stored a while ago
    store.link_blob(digest, tmp_path / "b")
    assert marks.trusted(blob, digest)
    assert stat.S_IMODE(os.stat(blob).st_mode) == 0o444  # marked, and read-only again
    # What is trusted is the mark: bytes changed behind it with size and mtime put back (what
    # no tool does by accident) are not hashed on linking. This is how one sees it is skipped.
    _damage(tmp_path / "b", b"int y;\n")
    os.utime(blob, ns=old)
    os.chmod(blob, 0o444)
    store.link_blob(digest, tmp_path / "c")
    assert (tmp_path / "c").read_bytes() == b"int y;\n"
    # A write through a link, as a tool running as root could make, moves the mtime.
    _damage(tmp_path / "c", b"int z;\n")
    assert not marks.trusted(blob, digest)
    with pytest.raises(BlobError, match="damaged"):
        store.link_blob(digest, tmp_path / "d")
    assert not store.has_blob(digest) and not (tmp_path / "d").exists()


def test_a_collection_leaves_files_that_are_not_the_cache_s_alone(store: Store) -> None:
    """Blobs no path keeps go, beside files that are not blobs of their folder, which stay: a
    note, a digest in the wrong fan-out folder or in capitals, a folder that is no fan-out."""
    garbage = [store.put_blob(f"garbage {i}\n".encode()) for i in range(40)]
    folder = _blob_file(store, garbage[0]).parent
    other = "00" if folder.name != "00" else "01"
    strangers = [folder / "notes.txt", folder / garbage[0].upper(),
                 folder.parent / other / f"{folder.name}{garbage[0][2:]}",
                 folder.parent / "zz" / ("z" * 64)]
    for path in strangers:
        path.parent.mkdir(exist_ok=True)
        path.write_text("not a blob of this folder\n")
    old = 1_000_000_000  # written long before the collection starts: all may go
    for path in [*(_blob_file(store, digest) for digest in garbage), *strangers]:
        os.utime(path, (old, old), follow_symlinks=False)
    dry = store.gc(dry_run=True)
    assert dry.blobs == len(garbage)
    report = store.gc()
    assert report.blobs == len(garbage)
    assert not any(_blob_file(store, digest).exists() for digest in garbage)
    assert all(path.read_text() == "not a blob of this folder\n" for path in strangers)
