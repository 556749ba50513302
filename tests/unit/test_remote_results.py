"""The store's action results as REAPI v2 ActionResult messages (engine/remote/results.py)."""

from __future__ import annotations

import hashlib

from engine.remote.remote_execution_pb2 import ActionResult, Digest, OutputFile
from engine.remote.results import META, decode, encode


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_field_numbers_are_reapis() -> None:
    # build.bazel.remote.execution.v2: what Bazel and bazel-remote read
    numbers = {f.name: f.number for f in ActionResult.DESCRIPTOR.fields}
    assert numbers == {"output_files": 2, "exit_code": 4, "stdout_raw": 5, "stdout_digest": 6,
                       "stderr_raw": 7, "stderr_digest": 8}
    assert {f.name: f.number for f in OutputFile.DESCRIPTOR.fields} == \
        {"path": 1, "digest": 2, "is_executable": 4, "contents": 5}
    assert {f.name: f.number for f in Digest.DESCRIPTOR.fields} == {"hash": 1, "size_bytes": 2}
    assert ActionResult.DESCRIPTOR.full_name == "build.bazel.remote.execution.v2.ActionResult"


def test_a_result_round_trips_and_names_every_blob() -> None:
    obj, log = b"\x7fELF object", "warning: x\n"
    local = {sha(obj): obj}
    result = {"outputs": {"o/a.o": sha(obj)}, "log": log, "candidates": [{"key": "k"}]}
    entry, blobs = encode(result, local.__getitem__)
    message = ActionResult.FromString(entry)
    assert [(f.path, f.digest.hash, f.digest.size_bytes) for f in message.output_files][0] == \
        ("o/a.o", sha(obj), len(obj))
    assert message.output_files[1].path == META
    assert message.stdout_digest.hash == sha(log.encode())
    # every digest the message names is among the blobs to upload first
    named = {f.digest.hash for f in message.output_files} | {message.stdout_digest.hash}
    assert named == set(blobs) and all(sha(data) == d for d, data in blobs.items())
    fetched = []

    def fetch(digest: str, size: int) -> bytes | None:
        fetched.append(digest)
        return blobs[digest]

    assert decode(entry, fetch) == result
    assert sha(obj) not in fetched  # outputs are fetched when used, not when looked up
    assert encode(result, local.__getitem__)[0] == entry  # deterministic


def test_a_manifests_candidates_go_with_their_blobs_or_not_at_all() -> None:
    from engine.store import BlobError

    obj, other = b"\x7fELF new", b"\x7fELF other unit"
    local = {sha(obj): obj, sha(other): other}

    def blob(digest: str) -> bytes:
        if digest not in local:
            raise BlobError(f"blob {digest} is not in the store")
        return local[digest]

    new = {"headers": {"a.h": sha(b"2")}, "key": "k2", "log": "", "outputs": {"o/a.c.o": sha(obj)}}
    collected = {"headers": {"a.h": sha(b"1")}, "key": "k1", "log": "",
                 "outputs": {"o/a.c.o": sha(b"old")}}
    third = {"headers": {"a.h": sha(b"3")}, "key": "k3", "log": "w\n",
             "outputs": {"o/a.c.o": sha(other)}}
    entry, blobs = encode({"outputs": {}, "candidates": [new, collected, third]}, blob)
    assert {sha(obj), sha(other)} <= set(blobs)  # uploaded before the entry
    assert decode(entry, lambda d, _s: blobs[d]) == {"outputs": {}, "candidates": [new, third]}


def test_a_case_outcome_keeps_its_exit_code() -> None:
    out = b"4\n"
    result = {"outputs": {"stdout": sha(out), "stderr": sha(b"")}, "exit": 3, "signal": None}
    entry, blobs = encode(result, {sha(out): out, sha(b""): b""}.__getitem__)
    assert ActionResult.FromString(entry).exit_code == 3
    assert decode(entry, lambda d, _s: blobs[d]) == result


def test_what_cannot_be_used_is_a_miss() -> None:
    def bad(message: ActionResult) -> dict | None:
        return decode(message.SerializeToString(), lambda d, s: None)

    assert decode(b"<html>502 Bad Gateway</html>", lambda d, s: b"") is None
    assert decode(b"\xff\xff\xff", lambda d, s: b"") is None
    wrong = ActionResult()
    wrong.output_files.add(path="o/a.o", digest=Digest(hash="md5:abc", size_bytes=3))
    assert bad(wrong) is None
    meta = ActionResult()
    meta.output_files.add(path=META, digest=Digest(hash="0" * 64, size_bytes=2))
    assert bad(meta) is None  # its metadata blob is missing
    assert decode(meta.SerializeToString(), lambda d, s: b"[1]") is None  # not an object
    assert decode(meta.SerializeToString(), lambda d, s: b'{"outputs": {}}') is None
    log = ActionResult(stdout_digest=Digest(hash="1" * 64, size_bytes=1))
    assert bad(log) is None
    # a result of Bazel's own, with outputs recipe does not know, is still a result
    other = ActionResult(exit_code=0)
    other.output_files.add(path="bazel-out/k8/bin/x", digest=Digest(hash="2" * 64, size_bytes=1))
    assert decode(other.SerializeToString(), lambda d, s: None) == \
        {"outputs": {"bazel-out/k8/bin/x": "2" * 64}}


def test_a_path_entry_never_writes_outside_its_folder() -> None:
    from engine.remote.paths import _usable

    name = "x" * 32 + "-hello-1.0-release"
    meta = {"kind": "store-path", "name": name, "nar_hash": "sha256:" + "0" * 64,
            "references": [], "dirs": ["", "bin"], "symlinks": {}}
    file = [("bin/hello", "1" * 64, 3, True)]
    assert _usable(meta, name, file)
    assert not _usable({**meta, "name": "other"}, name, file)
    for bad in ("../etc/passwd", "/etc/passwd", "bin/../../x", "", "bin//x", "./x", "a\0b"):
        assert not _usable(meta, name, [(bad, "1" * 64, 3, False)]), bad
    # a link, then a file through it: /etc/passwd
    through = {**meta, "symlinks": {"lib": "/etc"}}
    assert not _usable(through, name, [("lib/passwd", "1" * 64, 3, False)])
    assert not _usable({**meta, "symlinks": {"lib": "/etc", "lib/x": "y"}}, name, [])
    assert not _usable(meta, name, file + file)  # one path twice
    assert _usable({**meta, "symlinks": {"lib/libx.so": "libx.so.1"}}, name, file)
