"""Runs answered again from memory, without redoing them (as Nix answers from its eval cache).

A command whose answer depends only on files and on the store writes, after a run that
succeeded, a record at ``.recipe/cache/<kind>-<key>.marshal`` beside the plan. ``<key>`` covers
the request (the command's arguments), the working folder, the environment that steers the
toolchains (``ENVIRONMENT``) and the Python that runs recipe. The record holds the stat data of
everything the run depended on (``engine.watch``: documents, folders listed, sources hashed,
compilers and the folders searched for them; and recipe's own modules), the store, the closure
of store path names, the roots, and what the command needs to answer again.

``recall`` gives the record back when every stat is unchanged and the store still holds the
whole closure valid and the roots in place (``engine.store.peek``, which adds temporary roots
before it checks, as a full run does), and every action result the run read from the action
cache unchanged (each read again, and touched as a hit is) with the blobs it names. Anything
else, a damaged record included, is a miss: the full run happens and explains what changed.
Users: ``recipe realise`` (kind ``noop``, a realise with nothing to do), ``recipe verify``
(kind ``verify``, a verify whose every outcome came from the outcome cache: what it printed
and its exit code) and ``recipe eval`` (kind ``eval``, a project's prepared REPL scope).

A record is written only when nothing it relies on changed within ``RACY_NS`` of the start of
the run: a change made after the run read a file then always shows as a change of its stat data
(git's "racily clean" entries). So the run after an edit is a full one, the next is remembered.
"""

from __future__ import annotations

import marshal
import os
import sys
from collections import namedtuple
from pathlib import Path

from engine import user_cache, watch
from engine.store import peek

FORMAT = 3
RACY_NS = 2_000_000_000
#: What a full run reads from the environment besides its arguments: where the store is, where
#: compilers are found, and what picks rustup's toolchain.
ENVIRONMENT = ("PATH", "RECIPE_STORE", "HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN", "CARGO_HOME")
#: What a kind's full run reads besides: a verify, the remote cache and executor (a run with
#: either is never remembered, a record without them must not answer a run with them), the diff
#: tool (handed the mismatches), the user cache's folder, and where Python finds modules
#: (wasmtime, the WASI runner).
ALSO = {"verify": ("RECIPE_REMOTE_CACHE", "RECIPE_EXECUTOR", "RECIPE_DIFF_TOOL",
                   "XDG_CACHE_HOME", "PYTHONPATH")}
Request = tuple[tuple[str, object], ...]
#: Stat data of recipe's own files that need no stat: the server's (``engine.serving``), taken
#: under a watch that makes it leave when one changes, and long enough after each file's last
#: change that a later one shows (``RACY_NS``). A served child runs a command only while none
#: changed. In-process: empty.
KNOWN: dict[str, watch.Stat] = {}


def request_of(args: object, leave_out: tuple[str, ...] = ()) -> Request:
    """An argparse namespace as a record's request: every argument but ``leave_out``."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in vars(args).items() if k != "func" and k not in leave_out))


def _sha256(data: bytes) -> str:
    """hashlib's sha256 of a small key, without importing hashlib where CPython has its own
    sha256 module: hashlib starts OpenSSL, 11 M instructions, 7 % of a no-op realise."""
    try:
        from _sha256 import sha256  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # type: ignore[no-redef]  # CPython 3.12 and later
        except ImportError:
            from hashlib import sha256  # type: ignore[no-redef]
    return sha256(data).hexdigest()


def record_file(plan: str | os.PathLike[str], kind: str, request: Request) -> Path:
    plan_file = os.path.abspath(plan)
    # repr, not marshal: marshal's bytes depend on reference counts
    key = repr((FORMAT, kind, sys.version, sys.executable, os.getcwd(), plan_file,
                [os.environ.get(name) for name in ENVIRONMENT + ALSO.get(kind, ())], request))
    digest = _sha256(key.encode())[:32]
    return Path(plan_file).parent / ".recipe" / "cache" / f"{kind}-{digest}.marshal"


def recall(plan: str | os.PathLike[str], kind: str, request: Request,
           held: Held | None = None) -> dict | None:
    """The record of an earlier run of this request, if it still holds; None otherwise. The
    closure is then kept from collection for as long as this process lives. ``held``: what
    ``hold`` gave this process earlier; when it is this very record (the file unchanged since),
    its closure is held and the store was checked then: what may have changed since (the
    files it depends on, the action results) is checked now."""
    try:
        file = record_file(plan, kind, request)
        if held is not None and held.file == file and held.stamp == _stamp(os.stat(file)):
            record = held.record
        else:
            held, record = None, read(file)
        if record is None or record["request"] != request:
            return None
        if not watch.unchanged(record["seen"], record["started"], RACY_NS):
            return None
        if held is None and not peek.hold_valid(Path(record["store"]), record["closure"],
                                                record["roots"]):
            return None
        if not _cache_holds(Path(record["store"]), record["actions"], record["blobs"]):
            return None
        return record
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


#: A record read, its closure held and its store checked, ahead of the command that will use
#: it (``hold``); ``stamp``: the record file's (inode, mtime, size) when it was read.
Held = namedtuple("Held", "file stamp record")


def hold(file: Path) -> Held | None:
    """Read the record ``file`` and do now what ``recall`` does with it that stays true for
    as long as this process lives: hold its closure from collection and check that the store
    holds it valid, its roots in place. None when that is not so."""
    try:
        stamp = _stamp(os.stat(file))
        record = read(file)
        if record is None or _stamp(os.stat(file)) != stamp or not peek.hold_valid(
                Path(record["store"]), record["closure"], record["roots"]):
            return None
        return Held(file, stamp, record)
    except (OSError, EOFError, ValueError, TypeError, KeyError, AttributeError, IndexError):
        return None


def read(file: Path) -> dict | None:
    """The record in ``file``, written by this user in this format; None otherwise."""
    with open(file, "rb") as f:
        if os.fstat(f.fileno()).st_uid != os.getuid():
            return None  # a record holds commands to run: only ever one's own
        # One read: marshal.load reads a file by a Python call per object (7 ms, not 0.2).
        record = marshal.loads(f.read())
    return record if record["format"] == FORMAT else None


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return st.st_ino, st.st_mtime_ns, st.st_size


def _cache_holds(root: Path, actions: dict[str, dict], blobs: list[str]) -> bool:
    """Each action result as it was read (read, and touched, as a hit is: ``gc --max-size``
    evicts by last use), and each blob named, in the store at ``root``."""
    if not actions and not blobs:
        return True
    from engine.store.cas import Cas

    def no_temp(suffix: str) -> tuple[int, str]:
        raise AssertionError("reading only")

    cas = Cas(root / peek.STATE, no_temp)
    try:
        return all(cas.get_action(key) == result for key, result in actions.items()) and \
            all(cas.has_blob(digest) for digest in blobs)
    except Exception:  # noqa: BLE001 - a key or digest the store refuses: a damaged record
        return False


def remember(plan: str | os.PathLike[str], kind: str, request: Request, started_ns: int,
             seen: dict[str, watch.Stat], store: Path, closure: list[str],
             roots: dict[str, str], actions: dict[str, dict] | None = None,
             blobs: list[str] | None = None, **answer: object) -> bool:
    """Record a run that succeeded; whether the record was written. ``seen`` is what the run
    recorded, ``started_ns`` the time before it read anything, ``actions`` and ``blobs`` what
    it read of the action cache, ``answer`` what a recalled run needs (plain data: marshal
    writes it)."""
    limit = started_ns - RACY_NS
    # What the run read, as it read it, first: after an edit, what changed too recently to
    # tell is found there without a stat (~0.3 ms), nor one of recipe's ~150 modules (~1 ms)
    if any(stat is not None and max(stat[2], stat[3]) >= limit for stat in seen.values()) \
            or not watch.unchanged(seen, started_ns, RACY_NS):
        return False  # something changed during the run, or too recently to tell
    seen = dict(seen)
    for module in list(sys.modules.values()):  # the code that computed the answer
        file = getattr(module, "__file__", None)
        if file and module.__name__.startswith("engine"):
            stat = KNOWN.get(file)
            if stat is None:  # stat now: only too recent a change can make it wrong
                file = os.path.abspath(file)
                if file in seen:
                    continue
                stat = watch.stat_of(file)
                if stat is not None and max(stat[2], stat[3]) >= limit:
                    return False
            seen.setdefault(file, stat)
    record = {**answer, "format": FORMAT, "request": request, "started": started_ns,
              "seen": seen, "store": str(store), "closure": list(closure),
              "roots": dict(roots), "actions": dict(actions or {}), "blobs": sorted(blobs or ())}
    try:
        file = record_file(plan, kind, request)
    except OSError:  # no working folder any more
        return False
    try:
        data = marshal.dumps(record)
    except ValueError:  # not plain data: nothing to remember
        return False
    return user_cache.write_cache(file, data)  # a cache: losing it costs only time
