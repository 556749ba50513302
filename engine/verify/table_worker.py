"""The worker of function cases: it loads a project's shared library and calls one function
for each row it is given, in a process of its own (the verifying process never loads project
code). Started by ``engine.verify.table`` as ``python -I -S table_worker.py SPEC RESULTS PROGRESS``
under the same containment as a process case; it imports nothing but the standard library.

SPEC (marshal): ``library``, ``function``, ``returns`` and ``params`` as (kind, bits, signed),
``rows`` (the argument tuples, already converted: strings are bytes) and ``timeout``.
RESULTS: marshal records ``(first row, [results])``, one per batch of rows, flushed as written.
PROGRESS: 8 bytes, the position of the row being called, written before each call. A row that
crashes kills the worker with its signal; one that runs longer than ``timeout`` seconds is
ended by the watchdog thread with SIGALRM (ctypes releases the GIL during a foreign call, so the
watchdog runs while the row hangs). Either way the parent reads PROGRESS to name the row.
When the library or the function cannot be loaded, PROGRESS keeps ``NOT_STARTED`` and the
message is on stderr.
"""

import _thread  # not threading: 4 ms of imports per worker, for one daemon thread
import ctypes
import marshal
import mmap
import os
import sys
import time

BATCH = 4096
SETUP_FAILED = 3
NOT_STARTED = -2  # PROGRESS as the parent writes it: the function was never called
SIGALRM = 14  # Linux's number; importing signal (and enum) would cost more than the rows

_INTS = {(8, True): ctypes.c_int8, (8, False): ctypes.c_uint8,
         (16, True): ctypes.c_int16, (16, False): ctypes.c_uint16,
         (32, True): ctypes.c_int32, (32, False): ctypes.c_uint32,
         (64, True): ctypes.c_int64, (64, False): ctypes.c_uint64}


def c_type(kind: str, bits: int, signed: bool) -> object:
    if kind == "int":
        return _INTS[(bits, signed)]
    return {"bool": ctypes.c_bool, "char": ctypes.c_char, "string": ctypes.c_char_p,
            "json": ctypes.c_char_p, "void": None,
            "float": ctypes.c_float if bits == 32 else ctypes.c_double}[kind]


def _watchdog(progress: memoryview, timeout: float) -> None:
    last, since = -1, time.monotonic()
    while True:
        time.sleep(min(0.05, timeout / 4))
        now = progress[0]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > timeout:
            os.kill(os.getpid(), SIGALRM)  # no handler: the process ends of it


def _freeing(function: object, release: object) -> object:
    def call(*arguments: object) -> object:
        pointer = function(*arguments)
        if not pointer:
            return None
        try:
            return ctypes.string_at(pointer)
        finally:
            release(pointer)
    return call


def _wait(spec_file: str) -> None:
    """Started before its library was built (engine/verify/table_waiting.py): SPEC appears,
    whole, once it is; a millisecond's latency while the build runs, then less often."""
    waited = 0.0
    while not os.path.exists(spec_file):
        pause = 0.001 if waited < 5 else 0.02
        time.sleep(pause)
        waited += pause


def _limit(seconds: float) -> None:
    time.sleep(seconds)
    os.kill(os.getpid(), SIGALRM)


def main(spec_file: str, results_file: str, progress_file: str, *flags: str) -> int:
    if "--wait" in flags:
        _wait(spec_file)
    with open(spec_file, "rb") as f:
        spec = marshal.load(f)
    if spec is None:
        return 0  # not needed after all
    if spec.get("limit"):  # the outer bound of a worker that waited: from now on
        _thread.start_new_thread(_limit, (spec["limit"],))
    with open(progress_file, "r+b") as f:
        progress = memoryview(mmap.mmap(f.fileno(), 8)).cast("q")
    try:
        function = getattr(ctypes.CDLL(spec["library"]), spec["function"])
    except (OSError, AttributeError) as error:
        print(error, file=sys.stderr)
        return SETUP_FAILED  # PROGRESS still holds NOT_STARTED
    function.argtypes = [c_type(*p) for p in spec["params"]]
    function.restype = c_type(*spec["returns"])
    if spec.get("free"):  # a returned string is copied, then given back to the library
        try:
            release = getattr(ctypes.CDLL(spec["library"]), spec["free"])
        except AttributeError as error:
            print(error, file=sys.stderr)
            return SETUP_FAILED
        release.argtypes, release.restype = [ctypes.c_void_p], None
        function.restype = ctypes.c_void_p
        function = _freeing(function, release)
    _thread.start_new_thread(_watchdog, (progress, spec["timeout"]))  # ends with the process
    rows = spec["rows"]
    with open(results_file, "wb") as out:
        for first in range(0, len(rows), BATCH):
            values = []
            append = values.append
            for position, arguments in enumerate(rows[first:first + BATCH], first):
                progress[0] = position
                append(function(*arguments))
            marshal.dump((first, values), out)
            out.flush()
    progress[0] = len(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
