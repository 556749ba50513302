"""Caches that layers above keep in the store's state (``Store.state_folder``, e.g. zig's built
libraries): no path's input, and ``store gc --max-size`` removes them whole when they do not fit."""

from __future__ import annotations

from pathlib import Path

from engine.store import Store
from tests.conftest import run_recipe


def _fill(store_dir: Path, name: str, size: int) -> Path:
    with Store.open(store_dir) as store:
        folder = store.state_folder(name)
    (folder / "lib").mkdir()
    (folder / "lib" / "libc.a").write_bytes(b"x" * size)
    return folder


def test_gc_max_size_removes_a_state_cache_that_does_not_fit(tmp_path: Path) -> None:
    folder = _fill(tmp_path / "store", "zig", 1 << 20)
    assert folder == tmp_path / "store" / ".recipe" / "caches" / "zig"
    done = run_recipe("store", "gc", "--max-size", "100K", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    assert not folder.exists()
    with Store.open(tmp_path / "store") as store:  # made again on demand
        assert store.state_folder("zig").is_dir()


def test_gc_keeps_a_state_cache_that_fits_or_is_in_use(tmp_path: Path) -> None:
    folder = _fill(tmp_path / "store", "zig", 1 << 20)
    assert run_recipe("store", "gc", "--store", tmp_path / "store").returncode == 0
    assert run_recipe("store", "gc", "--max-size", "1G", "--store",
                      tmp_path / "store").returncode == 0
    assert (folder / "lib" / "libc.a").stat().st_size == 1 << 20
    with Store.open(tmp_path / "store") as store, store.state_lock("zig"):
        done = run_recipe("store", "gc", "--max-size", "1K", "--store", tmp_path / "store")
    assert done.returncode == 0, done.stderr
    assert (folder / "lib" / "libc.a").exists()  # being filled: left alone
