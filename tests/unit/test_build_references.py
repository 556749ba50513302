"""Reference scanning (engine/build/references.py): an output scanned as soon as its action ran
is not read again at the end, and the files not scanned yet are."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path

from engine.build.references import scan_file, scan_tree

A = "a" * 32 + "-dep-1.0"
B = "b" * 32 + "-other-2.0"


def _done(value: set[str]) -> Future[set[str]]:
    future: Future[set[str]] = Future()
    future.set_result(value)
    return future


def test_files_scanned_early_are_taken_from_their_scan_the_others_read(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "lib").mkdir(parents=True)
    (out / "bin").mkdir()
    (out / "lib" / "libx.so").write_bytes(b"\0rpath $ORIGIN/../../" + A.encode() + b"/lib\0")
    (out / "bin" / "x").write_bytes(b"\0nothing here\0")
    assert scan_file(out / "lib" / "libx.so", [A, B]) == {A}
    assert scan_tree(out, [A, B]) == [A]
    # The early scan's answer stands for its file (here one that says B), the rest are read.
    assert scan_tree(out, [A, B], {"out/bin/x": _done({B})}) == [A, B]
    assert scan_tree(out, [A, B], {"out/lib/libx.so": _done(set())}) == []
    assert scan_tree(out, []) == []
