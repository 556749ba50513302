"""``Store.open_ahead`` (engine/store/store.py): a store opened by this process for its next
``Store.open`` of that root, as a server's spare does for the next command
(engine/serving_notes.py). What the taken store reads is the store as it is now."""

from __future__ import annotations

import shutil
from pathlib import Path

from engine.store import Store
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB


def built(src: Path, store: Path) -> list[str]:
    done = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert done.returncode == 0, done.stderr
    return [Path(line).name for line in done.stdout.splitlines()]


def test_the_next_open_takes_the_store_and_sees_what_was_registered_meanwhile(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    root = tmp_path / "store"
    first = built(src, root)
    ahead = Store.open_ahead(root)
    assert ahead is not None and all(ahead.is_valid(name) for name in first)
    # Another process registers paths after the store was opened ahead.
    (src / "greet/src/twice.c").write_text("int greet_twice(int x) { return 3 * x; }\n")
    second = built(src, root)
    assert set(second) != set(first)
    taken = Store.open(root)
    assert taken is ahead
    assert all(taken.is_valid(name) for name in second)
    assert Store.open(root) is not ahead  # taken once
    taken.close()


def test_a_store_made_anew_since_is_opened_anew(tmp_path):
    src = write_tree(tmp_path / "src", GREET_LIB)
    root = tmp_path / "store"
    built(src, root)
    ahead = Store.open_ahead(root)
    shutil.rmtree(root)
    names = built(src, root)  # a new database at the same place
    taken = Store.open(root)
    assert taken is not ahead
    assert all(taken.is_valid(name) for name in names)
    taken.close()


def test_no_store_is_opened_ahead_where_there_is_none(tmp_path):
    assert Store.open_ahead(tmp_path / "nothing") is None
    assert not (tmp_path / "nothing").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other/notes.txt").write_text("mine\n")
    assert Store.open_ahead(tmp_path / "other") is None
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]
