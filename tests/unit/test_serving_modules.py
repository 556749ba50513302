"""Whether recipe's own files changed since the server started (engine/serving_modules.py):
told by an inotify watch when nothing happened, by every file's stat data after any event, and
by the stat data alone where no watch can be had. Real files: one module's mtime moved by a
nanosecond, and put back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.serving_modules import Modules

MODULE = Path(__file__).parents[2] / "engine" / "errors.py"


@pytest.fixture
def moved() -> Iterator[None]:
    """``engine/errors.py``'s mtime one nanosecond later while the test runs."""
    st = MODULE.stat()
    yield_at = (st.st_atime_ns, st.st_mtime_ns)
    try:
        yield
    finally:
        os.utime(MODULE, ns=yield_at)


def _move() -> None:
    st = MODULE.stat()
    os.utime(MODULE, ns=(st.st_atime_ns, st.st_mtime_ns + 1))


@pytest.mark.parametrize("watched", [True, False], ids=["inotify", "stat-only"])
def test_a_module_touched_after_the_start_is_a_change(watched: bool, moved: None) -> None:
    modules = Modules()
    if not watched:
        modules._watch = None
    else:
        assert modules._watch is not None  # inotify works here: the fast path is tested
    assert not modules.changed()
    assert not modules.changed()  # asked again: still nothing
    _move()
    assert modules.changed()
    assert modules.changed()  # the event was read, the stat data still differ


def test_an_event_that_changed_nothing_is_no_change(moved: None) -> None:
    """A file opened for writing and closed unwritten wakes the watch (IN_CLOSE_WRITE) and
    leaves the stat data as they were: the stat data decide. (A ``utime`` that puts the same
    mtime back is a change: its ctime moved, as an edit that keeps mtime and size has it.)"""
    modules = Modules()
    with open(MODULE, "a"):
        pass
    assert modules._watch is not None and not modules.changed()
    st = MODULE.stat()
    os.utime(MODULE, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert modules.changed()
