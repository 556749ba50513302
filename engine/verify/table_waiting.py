"""A function case's worker started before the library it calls exists.

Python's start and the worker's imports (ctypes, marshal, mmap) are ~15 ms: on an edit of a
Rust library whose function cases alone are verified, the worker is the last step before the
verdict. ``engine.verify.early`` starts one per case as the library's build begins, so that
this overlaps the compile; the worker (``table_worker.py SPEC RESULTS PROGRESS --wait``) waits
for SPEC, which ``table.call_rows`` puts in place (by rename, whole) once the library is there,
and then runs exactly as a worker started then would, under the same containment (the reaper;
Landlock or the write guard) in the case's scratch folder, its run bounded by the same limit
(``limit`` in SPEC, counted from then). ``cancel`` ends one that is not needed (the rows were
cached, the build failed, the library was not built): SPEC holding None.
"""

from __future__ import annotations

import marshal
import os
import sys
import threading
from pathlib import Path
from typing import Any

from engine.verify import table_worker
from engine.verify.cache import ActionCache
from engine.verify.outcome import Observed
from engine.verify.process import CAP, CLEAN_ENV, run_argv

WORKER = Path(table_worker.__file__)
_WAIT = 7 * 86400.0  # the outer bound while it waits (poll takes < 2**31 ms); then SPEC's limit


def files(scratch: Path, attempt: int) -> tuple[Path, Path, Path]:
    """SPEC, RESULTS and PROGRESS of one attempt of a case's rows."""
    return scratch / f"spec.{attempt}", scratch / f"out.{attempt}", scratch / f"at.{attempt}"


def prepare(scratch: Path, attempt: int) -> None:
    """The case's folders, and RESULTS and PROGRESS as the worker expects them."""
    (scratch / "work").mkdir(parents=True, exist_ok=True)
    (scratch / "tmp").mkdir(exist_ok=True)
    _, results, progress = files(scratch, attempt)
    progress.write_bytes(table_worker.NOT_STARTED.to_bytes(8, sys.byteorder, signed=True))
    results.write_bytes(b"")


def argv(scratch: Path, attempt: int) -> list[str]:
    return [sys.executable, "-I", "-S", str(WORKER), *map(str, files(scratch, attempt))]


def environment(scratch: Path) -> dict[str, str]:
    return {**CLEAN_ENV, "TMPDIR": str(scratch / "tmp")}


class Waiting:
    """A worker started in ``scratch`` for the first attempt of a case's rows."""

    def __init__(self, scratch: Path, cache: ActionCache | None) -> None:
        self.scratch = scratch
        prepare(scratch, 1)
        self._observed: Observed | None = None
        self._error: BaseException | None = None
        self._sent = False
        self._thread = threading.Thread(target=self._run, args=(cache,), daemon=True,
                                         name="table-worker")
        self._thread.start()

    def _run(self, cache: ActionCache | None) -> None:
        try:
            self._observed = run_argv([*argv(self.scratch, 1), "--wait"],
                                      cwd=self.scratch / "work", env=environment(self.scratch),
                                      stdin=b"", timeout=_WAIT, cap=CAP,
                                      writable=[self.scratch], cache=cache)
        except BaseException as error:  # noqa: BLE001 - handed to the thread that waits
            self._error = error

    def send(self, spec: dict[str, Any]) -> Observed:
        """Hand the worker its spec; what it did, once it has ended."""
        self._put(spec)
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._observed is not None
        return self._observed

    def cancel(self) -> None:
        """End it unused (nothing when it was sent its spec)."""
        if not self._sent:
            self._put(None)
        self._thread.join()

    def _put(self, spec: dict[str, Any] | None) -> None:
        self._sent = True
        final = files(self.scratch, 1)[0]
        temporary = final.with_name(".spec.1")
        with open(temporary, "wb") as f:
            marshal.dump(spec, f)
        os.replace(temporary, final)
