"""The outcome cache: a case run is an action in the store's action cache (as in Bazel's test
cache). What is cached is the observation, not the verdict, so a changed expectation is judged
again without running anything.

Key: sha256 (hex) of the canonical JSON (sorted keys, ``(',', ':')`` separators) of::

    {"v": 2, "kind": "case",
     "path": <basename of the store path the executable comes from>,
     "case": <the case as written, without "name", "expect", "xfail", "skip" and "redact">,
     "inputs": {<relative path>: <sha256 hex of its content>, ...}}   # stdin_file and files
                                                   # (a ``from:`` path may start with ../)

Result: ``{"outputs": {"stdout": <blob digest>, "stderr": <blob digest>},
"exit": <int: the exit code, or minus the signal number>, "signal": <name or null>,
"root": <the scratch folder it ran in, or null>, "files": [[<path>, <blob digest or null>]],
"tree": [[<path>, <blob digest>]] or null}`` (``root``: what ``[ROOT]`` stands for in that
output; ``files``/``tree``: what ``expect: files:``/``tree:`` read of its working folder, the
key then holding ``"capture": {"files": [<path>...], "tree": <bool>}``).
Version 2: the program sees its name as ``argv[0]`` and the project's ``bin/``
first on ``PATH``; version 1 observations saw its store path.
Runs that timed out or passed the output cap are never cached.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from engine import watch
from engine.documents.models import Case
from engine.errors import RecipeError
from engine.hashing import canonical_hash, file_digest
from engine.verify.outcome import Observed

VERSION = 2


class ActionCache(Protocol):
    """What the outcome cache needs of ``engine.store.Store``."""

    def get_action(self, key: str) -> dict[str, Any] | None: ...
    def put_action(self, key: str, result: dict[str, Any]) -> None: ...
    def put_blob(self, data: bytes) -> str: ...
    def read_blob(self, digest: str) -> bytes: ...
    def attach(self, name: str, actions: list[str]) -> None: ...


def case_key(case: Case, store_path: Path, runner: tuple[str, ...] = ()) -> str:
    """``runner``: the command that runs a foreign program (a different runner may see
    differently); empty for the host, whose keys stay as they were."""
    # Only what changes the run: a new expectation, xfail mark or redaction is judged from the
    # cache.
    raw = {k: v for k, v in case.raw.items()
           if k not in ("name", "expect", "xfail", "skip", "redact")}
    inputs = {}
    sources = [source for source, _ in case.copies]  # their places are in "case"
    for rel in ([case.stdin_file] if case.stdin_file else []) + list(case.files) + sources:
        inputs[rel] = _digest_input(case.folder / rel)
    action = {"v": VERSION, "kind": "case", "path": store_path.name, "case": raw,
              "inputs": inputs}
    if runner:
        action["runner"] = list(runner)
    if case.expect.files or case.expect.tree:  # what is read of the files it writes
        action["capture"] = {"files": sorted(case.expect.files),
                             "tree": case.expect.tree is not None}
    return canonical_hash(action)


#: The action results a run read, by key, and the blobs they name (``reading``).
_read: tuple[dict[str, Any], set[str]] | None = None


@contextmanager
def reading() -> Iterator[tuple[dict[str, Any], set[str]]]:
    """Record every outcome found in the cache (its action result, and its blobs) while the
    block runs: a verify answered later from its record (``engine.memo``) depends on them."""
    global _read
    _read = ({}, set())
    try:
        yield _read
    finally:
        _read = None


def found(key: str, result: dict[str, Any], blobs: list[Any]) -> None:
    """A hit in the outcome cache, for ``reading``: its result, and the blobs it names besides
    its ``outputs`` (the cases run on threads: a dict's and a set's updates are atomic)."""
    if _read is not None:
        _read[0][key] = result
        _read[1].update(b for b in blobs if isinstance(b, str))


def lookup(store: ActionCache, key: str) -> Observed | None:
    """The cached observation, or None; a damaged or collected entry is simply a miss."""
    try:
        result = store.get_action(key)
        if result is None:
            return None
        sig = result.get("signal")
        observed = Observed(stdout=store.read_blob(result["outputs"]["stdout"]),
                            stderr=store.read_blob(result["outputs"]["stderr"]),
                            exit=None if sig else int(result["exit"]), signal=sig,
                            root=result.get("root"), files=_files(store, result.get("files")),
                            tree=None if result.get("tree") is None else
                            _files(store, result["tree"]))
        # (its outputs' blobs are checked with the result itself: ``get_action``)
        found(key, result, [*(d for _, d in result.get("files") or ()),
                            *(d for _, d in result.get("tree") or ())])
        return observed
    except (RecipeError, OSError, KeyError, TypeError, ValueError):
        return None


def record(store: ActionCache, key: str, observed: Observed, owner: str) -> None:
    """Cache an observation; the store path ``owner`` it ran keeps it from collection."""
    if not observed.completed:
        return
    if observed.exit is not None:
        returncode = observed.exit
    else:
        try:
            returncode = -signal.Signals[observed.signal or ""].value
        except KeyError:
            returncode = -1
    store.put_action(key, {
        "outputs": {"stdout": store.put_blob(observed.stdout),
                    "stderr": store.put_blob(observed.stderr)},
        "exit": returncode,
        "signal": observed.signal,
        "root": observed.root,
        "files": [[rel, None if data is None else store.put_blob(data)]
                  for rel, data in observed.files],
        "tree": None if observed.tree is None else [[rel, store.put_blob(data or b"")]
                                                    for rel, data in observed.tree],
    })
    store.attach(owner, actions=[key])


def _files(store: ActionCache, entries: Any) -> tuple[tuple[str, bytes | None], ...]:
    return tuple((str(rel), None if digest is None else store.read_blob(digest))
                 for rel, digest in entries or ())


def _digest_input(path: Path) -> str:
    """sha256 of a file; of a folder, of its files' relative paths and digests."""
    watch.seen(path)  # a remembered verify depends on every input of its cases
    if not path.is_dir():
        return file_digest(path)
    found = sorted(path.rglob("*"))
    for p in found:
        watch.seen(p)  # a folder too: a file added to it
    return canonical_hash({p.relative_to(path).as_posix(): file_digest(p)
                           for p in found if p.is_file()})

