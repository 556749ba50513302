"""The outcome cache: a case run is an action in the store's action cache (as in Bazel's test
cache). What is cached is the observation, not the verdict, so a changed expectation is judged
again without running anything.

Key: sha256 (hex) of the canonical JSON (sorted keys, ``(',', ':')`` separators) of::

    {"v": 1, "kind": "case",
     "path": <basename of the store path the executable comes from>,
     "case": <the case as written, without "name", "expect", "xfail" and "skip">,
     "inputs": {<relative path>: <sha256 hex of its content>, ...}}   # stdin_file and files
                                                   # (a ``from:`` path may start with ../)

Result: ``{"outputs": {"stdout": <blob digest>, "stderr": <blob digest>},
"exit": <int: the exit code, or minus the signal number>, "signal": <name or null>}``.
Runs that timed out or passed the output cap are never cached.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Protocol

from engine.documents.models import Case
from engine.errors import RecipeError
from engine.hashing import canonical_hash, file_digest
from engine.verify.outcome import Observed

VERSION = 1


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
    # Only what changes the run: a new expectation or xfail mark is judged from the cache.
    raw = {k: v for k, v in case.raw.items() if k not in ("name", "expect", "xfail", "skip")}
    inputs = {}
    sources = [source for source, _ in case.copies]  # their places are in "case"
    for rel in ([case.stdin_file] if case.stdin_file else []) + list(case.files) + sources:
        inputs[rel] = _digest_input(case.folder / rel)
    action = {"v": VERSION, "kind": "case", "path": store_path.name, "case": raw,
              "inputs": inputs}
    if runner:
        action["runner"] = list(runner)
    return canonical_hash(action)


def lookup(store: ActionCache, key: str) -> Observed | None:
    """The cached observation, or None; a damaged or collected entry is simply a miss."""
    try:
        result = store.get_action(key)
        if result is None:
            return None
        sig = result.get("signal")
        return Observed(stdout=store.read_blob(result["outputs"]["stdout"]),
                        stderr=store.read_blob(result["outputs"]["stderr"]),
                        exit=None if sig else int(result["exit"]), signal=sig)
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
    })
    store.attach(owner, actions=[key])


def _digest_input(path: Path) -> str:
    """sha256 of a file; of a folder, of its files' relative paths and digests."""
    if not path.is_dir():
        return file_digest(path)
    return canonical_hash({p.relative_to(path).as_posix(): file_digest(p)
                           for p in sorted(path.rglob("*")) if p.is_file()})

