"""``python -m engine.verify.runners.wasi_main PROGRAM.wasm ARGS...``: run one WASI program.

With ``RECIPE_WASI_WATCHDOG=SECONDS`` (``engine.verify.runners.wasi.WATCHDOG``) and a program
that exports ``recipe_harness_watch`` (a table harness: ``engine.verify.harness_source``), a
thread reads the row being called from the program's memory every quarter of SECONDS, as the
harness's watchdog does on other systems, and when the same row has run for SECONDS, bumps
the engine's epoch: the program stops at its next epoch check (loops and calls have them), and
this exits with the harness's code for a hung row.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import threading

HUNG = 124  # engine.verify.harness_source.HUNG (standard library only here: a short start)


def main(argv: list[str]) -> int:
    import wasmtime

    program = argv[0]
    watchdog = float(os.environ.pop("RECIPE_WASI_WATCHDOG", "0") or 0)
    settings = wasmtime.Config()
    settings.epoch_interruption = watchdog > 0
    engine = wasmtime.Engine(settings)
    module = wasmtime.Module.from_file(engine, program)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    config = wasmtime.WasiConfig()
    config.argv = [os.path.basename(program).removesuffix(".wasm"), *argv[1:]]
    config.env = sorted(os.environ.items())
    config.inherit_stdin()
    config.inherit_stdout()
    config.inherit_stderr()
    config.preopen_dir(".", ".")
    # and by its absolute path, which the case's environment names (RECIPE_WORKS, a scratch
    # folder): WASI sees nothing of the host's file system but what is opened for it.
    config.preopen_dir(os.getcwd(), os.getcwd())
    store.set_wasi(config)
    instance = linker.instantiate(store, module)
    exports = instance.exports(store)
    start = exports["_start"]
    hung, done = threading.Event(), threading.Event()
    watcher = None
    if watchdog > 0:
        store.set_epoch_deadline(1)
        watch = exports.get("recipe_harness_watch")
        memory = exports.get("memory")
        if isinstance(watch, wasmtime.Global) and isinstance(memory, wasmtime.Memory):
            # The address of the harness's {u64 row; u32 running}; wasmtime reserves a 32-bit
            # memory's whole range up front, so its base does not move when it grows.
            at = ctypes.addressof(memory.data_ptr(store).contents) + int(watch.value(store))
            watcher = threading.Thread(target=_watch, args=(engine, at, watchdog, hung, done),
                                       daemon=True)
            watcher.start()
    try:
        start(store)  # type: ignore[operator]
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        if hung.is_set():
            return HUNG
        sys.stderr.write(f"wasm trap: {trap.message}\n")
        sys.stderr.flush()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGABRT)
    finally:  # before the store, and the memory the watchdog reads, are let go
        done.set()
        if watcher is not None:
            watcher.join()
    return 0


def _watch(engine: object, at: int, seconds: float, hung: threading.Event,
           done: threading.Event) -> None:
    """Stop the program once one row has been called for ``seconds`` (as the harness's own
    watchdog: four looks a quarter apart that see the same row running). Never looks once
    ``done``: the program's memory goes with its store."""
    last, stuck = -1, 0
    while not done.wait(max(seconds / 4, 0.001)):
        row = ctypes.c_uint64.from_address(at).value
        running = ctypes.c_uint32.from_address(at + 8).value
        stuck = stuck + 1 if running and row == last else 0
        last = row
        if stuck >= 4:
            hung.set()
            engine.increment_epoch()  # type: ignore[attr-defined]
            return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
