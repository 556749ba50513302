"""``python -m engine.verify.runners.wasi_main PROGRAM.wasm ARGS...``: run one WASI program."""

from __future__ import annotations

import os
import resource
import signal
import sys


def main(argv: list[str]) -> int:
    import wasmtime

    program = argv[0]
    engine = wasmtime.Engine()
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
    start = instance.exports(store)["_start"]
    try:
        start(store)  # type: ignore[operator]
    except wasmtime.ExitTrap as exit_trap:
        return exit_trap.code
    except wasmtime.Trap as trap:
        sys.stderr.write(f"wasm trap: {trap.message}\n")
        sys.stderr.flush()
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        signal.signal(signal.SIGABRT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGABRT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
