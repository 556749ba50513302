"""wasmtime for WASI programs (PyPI ``wasmtime``, in the ``cross`` extra).

The program runs in a child Python (``python -m engine.verify.runners.wasi_main``), so that it
gets the same containment as any case: its stdin, stdout and stderr are the child's, its
arguments and environment are the case's, and the case's working folder is its ``.`` (and is
there by its absolute path too). A trap (``abort()``, an out-of-bounds access) ends it as
SIGABRT would on the host. For a table harness (``engine.verify.harness``), ``WATCHDOG`` in its
environment names a row's timeout: the runner then watches the row the harness is calling and
stops a row that runs past it, with the harness's exit code for a hung row (124), as the
harness's own watchdog thread does on Windows.
"""

from __future__ import annotations

import importlib.util
import sys

from engine import watch
from engine.verify.runners.base import NoRunner, Runner

FACTOR = 4.0
WATCHDOG = "RECIPE_WASI_WATCHDOG"  # read and removed by wasi_main: the program never sees it


def runner(triple: str) -> Runner | NoRunner:
    spec = importlib.util.find_spec("wasmtime")
    # A remembered verify depends on it: the folders Python looks in (one where it is
    # installed, or removed, changes) and the module found.
    for folder in sys.path:
        watch.seen(folder or ".")
    if spec is not None and spec.origin:
        watch.seen(spec.origin)
    if spec is None:
        return NoRunner(f"no runner for {triple} (wasmtime is not installed: "
                        "pip install -e '.[cross]')")
    return Runner("wasmtime", (sys.executable, "-P", "-m", "engine.verify.runners.wasi_main"),
                  FACTOR)
