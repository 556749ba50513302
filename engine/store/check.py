"""Verification of the store's valid paths against what was recorded when each was registered.

Every byte of every path is hashed once, for its NAR hash, by ``fingerprint.Fingerprinter``,
and what the archive does not record (each entry's mode bits) is compared with the recorded
manifest's; only a path that differs (or that the fast walk cannot take) is walked again by
``check_path``, which takes each file's own digest to name the damaged file. The paths are
fingerprinted in one forked process per core, and in this one once it has read the record
(the valid names are read before the fork, as one string: their NAR hashes and shapes while
the workers hash): the walk is mostly Python and system calls, which threads cannot overlap
(on 2 cores, 10,000 paths of ~100 KB took one thread 1.9 s, two threads 2.5 s, two processes
1.0 s).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.store.fingerprint import Fingerprinter
from engine.store.nar import READ, Entry, scan
from engine.store.records import Damage

#: Processes that fingerprint paths at once: one per core this process may run on.
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else \
    os.cpu_count() or 1
#: Fewer paths than this per worker are not worth a process's fork.
PER_WORKER = 64
#: At most this many pieces of work, so that their numbers go in one atomic pipe write.
_PIECES = 1024

Fingerprint = tuple[str, str] | None
T = TypeVar("T")


def check_paths(root: Path, names: list[str], nar_hashes: Callable[[], dict[str, str]],
                shapes: Callable[[], str], all_shapes: Callable[[], dict[str, str]],
                manifest: Callable[[str], list[Entry]]) -> list[Damage]:
    """The damage of every valid path of ``names`` (in the order of the paths' ids) in the
    store folder ``root``, in the order of the paths' names. ``nar_hashes`` reads the paths'
    recorded NAR hashes and ``shapes`` their manifests' shapes concatenated in that order (both
    while the workers hash), ``all_shapes`` reads the shapes path by path and ``manifest`` one
    path's manifest, for a store that differs from its record."""
    found, (expected, nars) = fingerprints(os.fsencode(root), [name.encode() for name in names],
                                           lambda: (shapes(), nar_hashes()))
    suspects = {name for name, print_ in zip(names, found, strict=True)
                if print_ is None or print_[0] != nars.get(name)}
    if suspects or "".join(print_[1] for print_ in found) != expected:  # type: ignore[index]
        # Some path differs: which ones, path by path (a registration since the first read
        # may also have added rows; any difference sends the path to the thorough check).
        by_path = all_shapes()
        suspects.update(name for name, print_ in zip(names, found, strict=True)
                        if print_ is not None and by_path.get(name) != print_[1])
    # A name no longer recorded is no longer valid (none is while collection is held off).
    return [damage for name in sorted(suspects) if name in nars
            for damage in check_path(name, root / name, nars[name], manifest(name))]


def fingerprints(folder: bytes, names: list[bytes], meanwhile: Callable[[], T]
                 ) -> tuple[list[Fingerprint], T]:
    """``Fingerprinter.fingerprint`` of each of ``names`` in ``folder``, in order, in
    ``WORKERS`` processes and this one; and what ``meanwhile`` returns, run here first."""
    workers = min(WORKERS, len(names) // PER_WORKER)
    one = Fingerprinter()
    if workers < 2:
        return [one.fingerprint(os.path.join(folder, name)) for name in names], meanwhile()
    size = max(16, -(-len(names) // _PIECES))
    pieces = range(0, len(names), size)
    work, give = os.pipe()
    try:
        # Every piece's number before any worker starts: the workers take them in turn, so
        # one on a busier core takes fewer.
        os.write(give, b"".join(start.to_bytes(4, "little") for start in pieces))
    finally:
        os.close(give)
    children: dict[int, int] = {}
    done: dict[int, list[Fingerprint]] = {}
    try:
        for _ in range(workers):
            results, answer = os.pipe()
            try:
                with warnings.catch_warnings():
                    # Python 3.12 warns of a fork while other threads run; a worker only
                    # reads files, hashes and writes its pipe, taking no lock they may hold.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
            except OSError:  # no more processes: fewer workers, or this one alone (below)
                os.close(results)
                os.close(answer)
                break
            if pid == 0:  # pragma: no cover - the child
                _worker(folder, names, size, work, results, answer)
            os.close(answer)
            children[pid] = results
        value = meanwhile()
        # Then this process takes pieces too: on a shared machine three processes get a
        # bigger share of the two cores than two, and on an idle one the same.
        while len(number := os.read(work, 4)) == 4:
            start = int.from_bytes(number, "little")
            done[start] = [one.fingerprint(os.path.join(folder, name))
                           for name in names[start:start + size]]
        os.close(work)
        work = -1
        while children:
            pid, results = next(iter(children.items()))
            with open(results, "rb") as stream:
                data = stream.read()
            del children[pid]
            try:
                ok = os.waitpid(pid, 0)[1] == 0
            except ChildProcessError:  # reaped already (SIGCHLD ignored): its answer tells
                ok = True
            if ok:  # a worker that failed: its pieces are taken below
                with contextlib.suppress(EOFError, ValueError, TypeError):
                    done.update(marshal.loads(data))
    finally:
        if work >= 0:
            os.close(work)
        for pid, results in children.items():  # interrupted: end our workers
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            with contextlib.suppress(OSError):
                os.close(results)
    return [print_ for start in pieces
            for print_ in done.get(start) or
            [one.fingerprint(os.path.join(folder, name)) for name in names[start:start + size]]
            ], value


def _worker(folder: bytes, names: list[bytes], size: int, work: int,  # pragma: no cover
            results: int, answer: int) -> None:
    """A forked worker: fingerprints the pieces it takes from ``work``, answers them all
    (marshalled: piece -> fingerprints) on ``answer``; never returns. It works in ``folder``:
    a path named from there is looked up in fewer steps (~2 % of its CPU time)."""
    code = 1
    try:
        os.close(results)
        os.chdir(folder)
        one = Fingerprinter()
        done = {}
        while len(number := os.read(work, 4)) == 4:
            start = int.from_bytes(number, "little")
            done[start] = [one.fingerprint(name) for name in names[start:start + size]]
        data = marshal.dumps(done)
        view = memoryview(data)
        while view:
            view = view[os.write(answer, view):]
        code = 0
    finally:
        os._exit(code)  # nothing of the parent's (atexit, buffers, the database) runs here


def check_path(name: str, path: Path, nar_hash: str, recorded: list[Entry]) -> list[Damage]:
    """How the tree at ``path`` differs from what was registered; empty when it does not.

    First each byte is hashed once, for the archive: the NAR hash covers every name, type,
    executable bit, content and link target, and the manifest's other fields (mode bits, sizes)
    are compared as they are. Only a tree that differs is walked again taking every file's own
    digest, to name the damaged file: a clean store is verified at sha256's speed, not half."""
    if not os.path.lexists(path):
        return [Damage(name, "", "missing path")]
    quick = scan(path, strict=False, digests=False)
    if quick.nar_hash == nar_hash and \
            all(e.type != "regular" or e.sha256 == READ for e in quick.entries) and \
            _shape(quick.entries) == _shape(recorded):
        return []
    now = scan(path, strict=False)
    was = {entry.file: entry for entry in recorded}
    found = {entry.file: entry for entry in now.entries}
    damage = []
    for file in sorted(was.keys() | found.keys()):
        old, new = was.get(file), found.get(file)
        if old is None or new is None:
            # Name only the top of a missing or extra subtree, not every file below it.
            parent = file.rpartition("/")[0]
            if parent in was and parent in found:
                damage.append(Damage(name, file, "missing" if new is None else "extra"))
        elif old.type != new.type:
            damage.append(Damage(name, file, "type"))
        elif new.type == "regular" and not new.sha256:
            damage.append(Damage(name, file, "unreadable"))
        elif (old.sha256, old.target) != (new.sha256, new.target):
            damage.append(Damage(name, file, "modified"))
        elif old.mode != new.mode:
            damage.append(Damage(name, file, "mode"))
    if not damage and now.nar_hash != nar_hash:
        # The manifest and the hash were taken in one pass: this is a damaged database row.
        damage.append(Damage(name, "", "modified"))
    return damage


def _shape(entries: list[Entry]) -> dict[str, tuple[str, int, str, int]]:
    """A manifest but for the files' own digests."""
    return {e.file: (e.type, e.mode, e.target, e.size) for e in entries}
