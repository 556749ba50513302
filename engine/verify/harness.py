"""Function cases through a native table harness: a program generated per signature
(``harness_source``), compiled for the case's target with the target's own toolchain, linked
against the library under test, and run contained (through the target's runner: qemu, wine64,
wasmtime; directly on the host), with the rows packed in and the results packed out.

Building: the harness is a runner of ``engine.repl.runner`` (the same content-addressed cache
as a REPL submission's): its key is the canonical JSON of ``{"format": "recipe-harness-1",
"kind": "table-harness", "library", "compile", "link", "toolchain", "title", "code"}``, with the
store written ``@STORE@``. It links the project's static library, or its REPL library (every
source that does not define ``main``, ``engine.derive.repl_library``) — static, so a static musl
or WASI program needs nothing at run time; on the host, a project's own shared library is linked
as it is (the .so its users load).

Crash isolation: the harness writes its results in whole batches, flushed as written. When a
run ends early (a crash, a hang, a result past the output cap), the rows of its finished
batches keep their results, and a new run starts at the first row without one, *careful*: one
batch that writes after every row, so that when it ends early again the row after its last
result is the one that ended it. That row alone fails (with the signal's name, or as timed
out), and the next run goes on from the row after it.
"""

from __future__ import annotations

import json
import sys
import threading
from array import array
from collections.abc import Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from engine.build import zig_cache
from engine.derive.actions import STORE
from engine.derive.repl_library import repl_plan, static_library
from engine.documents.models import Case, CType, Plan
from engine.repl import runner as compiled
from engine.repl.scope import link_template
from engine.store import Store
from engine.toolchain import flags
from engine.toolchain.flags import SOURCE_DATE_EPOCH
from engine.verify import harness_source
from engine.verify.cache import ActionCache
from engine.verify.diffs import format_size
from engine.verify.outcome import Observed
from engine.verify.process import CAP, CLEAN_ENV, run_argv
from engine.verify.runners import Runner
from engine.verify.runners.wasi import WATCHDOG
from engine.verify.table import _GRACE, _MAX_RUN, Results, TableError, _why

LANGUAGES = ("c", "c++")  # projects whose function cases a harness calls on every target
_NULL = 0xFFFFFFFF
_LITTLE = sys.byteorder == "little"
_CODES: dict[tuple[int, bool], str] = {}
for _code in "bBhHiIlLqQ":
    _CODES.setdefault((array(_code).itemsize * 8, _code.islower()), _code)


def usable(plan: Plan, project: str, target: str) -> bool:
    """Whether a harness calls the project's functions on ``target``: C and C++ everywhere
    (their libraries link into a C program); Rust on a foreign target, through its static
    library and the native libraries rustc said it needs (on the host, the Python worker
    calls a Rust project's shared library, as it always has)."""
    language = plan.projects[project].language
    return language in LANGUAGES or language == "rust" and plan.targets[target].triple != "host"


# ---------------------------------------------------------------- building

# (id(plan), id(store), project, target) -> (plan, store, spec, library): holding the plan and
# the store keeps their ids from being reused by a later run in the same process (a server's),
# which loads the plan again and so prepares again.
_prepared: dict[tuple[int, int, str, str], tuple[Plan, Store, compiled.Spec, Path]] = {}
_guard = threading.Lock()
_locks: dict[tuple[int, int, str, str], threading.Lock] = {}


def spec_for(plan: Plan, store: Store, project: str, target: str,
             path: Path) -> tuple[compiled.Spec, Path]:
    """How to compile a harness for ``project`` x ``target``, and the library it links (realised
    once per run, however many cases and threads ask)."""
    key = (id(plan), id(store), project, target)
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _prepared:
            _prepared[key] = (plan, store, *_spec(plan, store, project, target, path))
        return _prepared[key][2], _prepared[key][3]


def _spec(plan: Plan, store: Store, project: str, target: str,
          path: Path) -> tuple[compiled.Spec, Path]:
    from engine.build.realise import realise

    spec = plan.targets[target]
    found = plan.projects[project]
    own = next((o for o in found.outputs if o.kind == "shared-library"), None)
    rplan, selected = repl_plan(plan, project)
    if own is not None and spec.triple == "host" and (path / "lib" / f"lib{own.name}.so").is_file():
        # The host's own shared library, as its users load it.
        result = realise(plan, store, [target], [project])
        drv = result.derivations[0]
        lib = f"{STORE}/{drv.name}/lib"
        link = [*flags.target_flags(spec), f"{lib}/lib{own.name}.so", f"-Wl,-rpath,{lib}"]
        library = store.path(drv.name) / "lib" / f"lib{own.name}.so"
        # the program names the store's folder (its rpath): a store moved elsewhere differs
        loads: dict[str, str] = {"rpath": str(store.root)}
    else:
        result = realise(rplan, store, [target], [selected])
        drv = result.derivations[0]
        cxx = any(d.project.language == "c++" for d in [drv, *drv.deps])
        link = link_template(drv, cxx, spec)
        archive = static_library(rplan.projects[selected])
        library = store.path(drv.name) / "lib" / f"lib{archive.name if archive else selected}.a"
        loads = {}
    # Linked as the project's own executables are (flags.link_argv: no -fPIC, the same strip
    # switch), so that zig finds the libc it built for them in its cache.
    strip = ["-s"] if spec.strip else ["-Wl,--strip-debug"] \
        if spec.toolchain == "zig" and "-g" not in flags.OPT_FLAGS[spec.opt] else []
    compile_argv = [*flags.driver_argv(drv.toolchain.cc, spec), "-std=c11", "-w",
                    *flags.target_flags(spec), *strip]
    env = {"PATH": drv.toolchain.env_path, "LC_ALL": "C", "TZ": "UTC", "HOME": "/homeless-shelter",
           "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH), **zig_cache.env(store, drv.data)}
    root = str(store.root)
    concrete = [a.replace(STORE, root) for a in compile_argv]
    concrete_link = [a.replace(STORE, root) for a in link]
    if zig_cache.is_zig(drv.data):  # zig's libc for this link, built once under its lock
        zig_cache.warm(store, {**drv.data, "actions": [
            {"kind": "link", "argv": [*concrete, *concrete_link]}]}, env)
    if flags.object_format(spec) == "wasm":
        # WASI's runner watches the row being called through this export (harness_source); not
        # in the warm-up's link above, whose program has no such symbol.
        compile_argv.append("-Wl,--export=recipe_harness_watch")
        concrete.append(compile_argv[-1])
    key = {"format": harness_source.FORMAT, "kind": "table-harness", "library": drv.name,
           "compile": compile_argv, "link": link, "toolchain": drv.toolchain.identity,
           "title": f"{project} ({target})", **loads}
    return compiled.Spec(key=key, language="c", title=f"{project} ({target})", folder="",
                         compile=concrete, link=concrete_link, env=env,
                         library=drv.name), library


def build(spec: compiled.Spec, store: Store, case: Case) -> tuple[compiled.Runner, str]:
    """The case's harness, compiled (or found in the cache), and its key."""
    assert case.signature is not None
    code = harness_source.generate(case.signature, case.free, spec.title)
    try:
        made = compiled.build(spec, store, code, wrap=False)
    except compiled.CompileError as error:
        raise TableError(f"case '{case.name}': the table harness of {case.signature.name}() "
                         f"does not build for {spec.title}: {_last_line(error.detail or '')}",
                         "check that the library exports the function (not static, "
                         "extern \"C\" in C++) with this signature", pos=case.pos) from None
    return made, compiled.runner_key(spec, code)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if "error" in line] or text.splitlines() or [""]
    return lines[0].strip()


# ---------------------------------------------------------------- running

def call_rows(case: Case, executable: Path, scratch: Path, *, runner: Runner | None = None,
              cache: ActionCache | None = None, cap: int = CAP) -> Results:
    """Call the case's function with every row's arguments through the harness."""
    assert case.signature is not None
    returns = case.signature.returns
    n = len(case.table)
    values: list[Any] = [None] * n
    problems: dict[int, str] = {}
    pending: list[int] | range = range(n)
    work, tmp = scratch / "work", scratch / "tmp"
    work.mkdir(parents=True, exist_ok=True)
    tmp.mkdir(exist_ok=True)
    careful = 0
    factor = runner.factor if runner is not None else 1.0
    env = {**CLEAN_ENV, "TMPDIR": str(tmp), **(runner.env if runner is not None else {})}
    if runner is not None and runner.name == "wasmtime":  # its watchdog's row timeout
        env[WATCHDOG] = f"{case.timeout * factor:g}"
    writable = [scratch, *(runner.writable if runner is not None else ())]
    while pending:
        results = work / "results.bin"
        results.unlink(missing_ok=True)
        argv = [str(executable), str(len(pending)), str(careful),
                f"{case.timeout * factor:g}", results.name]  # a row's time, as the runner runs
        program: str | None = str(executable)
        if runner is not None:
            argv, program = runner.wrap(argv), None
        else:
            argv[0] = "harness"
        observed = run_argv(argv, cwd=work, env=env, stdin=pack(case, pending),
                            timeout=min(case.timeout * len(pending) * factor + _GRACE, _MAX_RUN),
                            cap=cap, writable=writable, cache=cache, executable=program)
        if runner is not None and runner.clean is not None:
            observed = runner.clean(observed)
        got = unpack(results.read_bytes() if results.exists() else b"", returns)[:len(pending)]
        for row, value in zip(pending, got, strict=False):
            values[row] = value
        if observed.exit == 0 and len(got) == len(pending):
            break
        # the harness's own failure (rh_fail), not a function that happened to exit(3)
        if observed.exit == 3 and not got and observed.signal is None and \
                b"recipe harness: " in observed.stderr:
            raise TableError(f"case '{case.name}': the table harness of {case.signature.name}() "
                             f"cannot run: {observed.stderr.decode(errors='replace').strip()}",
                             "report this as a bug of recipe", pos=case.pos)
        rest = pending[len(got):]
        if not rest:
            break  # every row has its result: how the harness ended after them is no row's
        if careful and len(got) < careful or len(rest) == 1:
            # the row that ended it
            problems[rest[0]] = _problem(observed, case.timeout, runner, cap)
            pending, careful = rest[1:], 0
        else:  # somewhere in the batch after the last result: again, row by row
            pending, careful = rest, min(harness_source.BATCH, len(rest))
    return Results(values, problems)


_WINE = {5: " (an access violation)", 9: " (a fail-fast abort)"}


def _problem(observed: Observed, timeout: float, runner: Runner | None, cap: int) -> str:
    if observed.capped:
        # The harness was stopped for what the function printed, not killed by the row: the
        # cap counts all that the rows of one run printed, as for one process case.
        return f"{observed.capped} exceeded {format_size(cap)} (the output cap; the rows run " \
               "together share it)"
    wine = runner is not None and runner.name.startswith("wine")
    # Only where there are no signals does the watchdog end the harness with an exit code; a
    # POSIX function may exit(124) itself.
    no_signals = wine or runner is not None and runner.name == "wasmtime"
    if no_signals and observed.exit == harness_source.HUNG and observed.signal is None:
        return f"timed out after {timeout:g} s"
    if observed.signal is None and not observed.timed_out:
        # wine reports a crash as an exit code, the status's low byte: 5 for an access
        # violation (0xC0000005), 9 for a fail-fast abort (0xC0000409: how a Rust panic that
        # reaches an extern "C" boundary ends a windows-gnu program)
        known = _WINE.get(observed.exit, "") if wine else ""
        return f"ended the harness with exit code {observed.exit}{known}"
    return _why(observed.signal, observed.exit, observed.timed_out, timeout)


def pack(case: Case, rows: Sequence[int]) -> bytes:
    """The rows' arguments, column by column (``harness_source`` describes the layout)."""
    assert case.signature is not None
    table = case.table
    every = isinstance(rows, range) and len(rows) == len(table)
    chunks: list[bytes] = []
    for k, ctype in enumerate(case.signature.params):
        column = list(map(itemgetter(k), table)) if every else [table[i][k] for i in rows]
        chunks += _column(ctype, column)
    return b"".join(chunks)


def _column(ctype: CType, column: list[Any]) -> list[bytes]:
    kind = ctype.kind
    if kind in ("int", "float"):
        code = _CODES[(ctype.bits, ctype.signed)] if kind == "int" else \
            ("f" if ctype.bits == 32 else "d")
        try:
            packed = array(code, column)
        except OverflowError:  # as a C caller's conversion would: the value modulo 2**bits
            packed = array(code, [_wrap(v, ctype) for v in column])
        if not _LITTLE:
            packed.byteswap()
        return [packed.tobytes()]
    if kind == "bool":
        return [bytes(map(bool, column))]
    if kind == "char":
        return [bytes((v.encode()[:1] or b"\0")[0] if isinstance(v, str) else v & 0xFF
                      for v in column)]
    texts = [None if v is None else v.encode() for v in column] if kind == "string" else \
        [json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode() for v in column]
    lengths = array("I", [_NULL if t is None else len(t) for t in texts])
    if not _LITTLE:
        lengths.byteswap()
    return [lengths.tobytes(), b"".join(t for t in texts if t)]


def _wrap(value: int, ctype: CType) -> int:
    value &= (1 << ctype.bits) - 1
    if ctype.signed and value >= 1 << (ctype.bits - 1):
        value -= 1 << ctype.bits
    return value


def unpack(data: bytes, returns: CType) -> list[Any]:
    """Every result of the whole batches in ``data`` (a torn last batch is dropped), as the
    Python worker gives them: ints, floats, bool, ``bytes`` (a char, a text) or None."""
    found: list[Any] = []
    at, end = 0, len(data)
    size = harness_source.width(returns) if returns.kind != "void" else 0
    text = returns.kind in ("string", "json")
    while at + 4 <= end:
        count = int.from_bytes(data[at:at + 4], "little")
        at += 4
        if text:
            batch, at = _texts(data, at, count)
            if batch is None:
                break
            found += batch
            continue
        stop = at + count * size
        if stop > end:
            break
        chunk = data[at:stop]
        at = stop
        if returns.kind == "void":
            found += [None] * count
        elif returns.kind == "bool":
            found += [b != 0 for b in chunk]
        elif returns.kind == "char":
            found += [bytes((b,)) for b in chunk]
        else:
            code = _CODES[(returns.bits, returns.signed)] if returns.kind == "int" else \
                ("f" if returns.bits == 32 else "d")
            values = array(code)
            values.frombytes(chunk)
            if not _LITTLE:
                values.byteswap()
            found += values.tolist()
    return found


def _texts(data: bytes, at: int, count: int) -> tuple[list[bytes | None] | None, int]:
    batch: list[bytes | None] = []
    end = len(data)
    for _ in range(count):
        if at + 4 > end:
            return None, at
        length = int.from_bytes(data[at:at + 4], "little")
        at += 4
        if length == _NULL:
            batch.append(None)
            continue
        if at + length > end:
            return None, at
        batch.append(data[at:at + length])
        at += length
    return batch, at
