"""Action results promised by their maker (engine/store/promises.py): a miss meanwhile waits for
the entry, in another process too; a killed maker's promise ends with it."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import Store, cas_listing, promises

KEY = "a1" + "0" * 62


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "store")
    yield opened
    opened.close()


def test_a_miss_waits_for_a_promised_entry_and_finds_it(store: Store) -> None:
    assert not promises.wait(store.promise_file(KEY))  # nothing promised: a plain miss, at once
    fd = promises.promise(store.promise_file(KEY))
    assert fd is not None
    assert promises.promise(store.promise_file(KEY)) is None  # promised once
    found: list[object] = []

    def look() -> None:
        found.append(promises.wait(store.promise_file(KEY)) and store.get_action(KEY))

    waiter = threading.Thread(target=look)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # waits while the maker has not written it
    store.put_action(KEY, {"outputs": {}})
    promises.fulfil(store.promise_file(KEY), fd)
    waiter.join(10)
    assert found == [{"outputs": {}}]
    assert not promises.wait(store.promise_file(KEY))  # fulfilled: no promise left
    # Not an entry of the cache: a listing leaves the promise's file alone.
    assert [e.name for e in cas_listing.entries(store._cas) if e.kind == "action"] == [KEY]


def test_a_killed_maker_s_promise_ends_with_it(store: Store) -> None:
    maker = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from engine.store import promises; "
        "assert promises.promise(sys.argv[1]) is not None; "
        "print('promised', flush=True); time.sleep(60)"), store.promise_file(KEY)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        assert maker.stdout is not None and maker.stdout.readline() == "promised\n"
        waited: list[float] = []

        def look() -> None:
            start = time.monotonic()
            assert promises.wait(store.promise_file(KEY))
            waited.append(time.monotonic() - start)

        waiter = threading.Thread(target=look)
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive()
        os.kill(maker.pid, signal.SIGKILL)
        waiter.join(10)
        assert waited and store.get_action(KEY) is None  # a miss: the result is made again
        # Its file stays; the next maker takes the promise over.
        fd = promises.promise(store.promise_file(KEY))
        assert fd is not None
        promises.fulfil(store.promise_file(KEY), fd)
    finally:
        maker.kill()
        maker.wait()


def test_store_gc_removes_the_promises_no_live_maker_holds(store: Store) -> None:
    held = promises.promise(store.promise_file(KEY))
    other = "b2" + "0" * 62
    stale = promises.promise(store.promise_file(other))
    assert held is not None and stale is not None
    os.close(stale)  # as a killed maker's lock ends: its file stays
    files = sorted(p.name for p in (store.root / ".recipe/ac").rglob("*.promised"))
    assert files == [f"{KEY}.promised", f"{other}.promised"]
    store.gc(dry_run=True)
    assert len(list((store.root / ".recipe/ac").rglob("*.promised"))) == 2  # a dry run: kept
    store.gc()
    assert [p.name for p in (store.root / ".recipe/ac").rglob("*.promised")] == \
        [f"{KEY}.promised"]  # the held one is its maker's yet
    promises.fulfil(store.promise_file(KEY), held)
