"""The documents that passed their schema, remembered in the user's cache
(``engine.user_cache``, ``valid-documents.json``: the newest ``KEEP`` keys) so that a fresh clone
of the same plan neither imports jsonschema nor validates them again. A pass is keyed by the
sha256 of the document's data, its kind and the rules (every schema file and ``schema.py``, whose
validators count too). Only passes are remembered: an error is always found and explained
afresh; a lost or unwritable file only costs the validation."""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from engine import user_cache
from engine.documents.yaml_load import KINDS

PASSED = "valid-documents.json"
KEEP = 4096  # keys remembered, the newest; a forgotten one is only validated again


def key(kind: str, data: Any) -> str | None:
    """What a pass is remembered by; None for data without one exact JSON form (a key that is
    not a string, a date, a NaN...: validated every time)."""
    rules = _rules()
    if rules is None or not _exact(data):
        return None
    try:
        text = json.dumps([rules, kind, data], sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(text.encode()).hexdigest()


def _exact(data: Any) -> bool:
    """Whether JSON keeps ``data`` apart from every other value (json.dumps writes the key 1
    as "1", and a tuple as a list)."""
    if type(data) is dict:
        return all(type(k) is str and _exact(v) for k, v in data.items())
    if type(data) is list:
        return all(_exact(v) for v in data)
    return data is None or type(data) in (str, int, float, bool)


@functools.cache
def _rules() -> str | None:
    """The digest of every schema file and of ``schema.py`` (its validators); None when one
    cannot be read (then nothing is remembered)."""
    digest = hashlib.sha256()
    try:
        for kind in sorted(KINDS):
            digest.update(files("engine.schema").joinpath(f"{kind}.schema.json").read_bytes())
        digest.update(Path(__file__).with_name("schema.py").read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


@functools.cache
def _passed() -> set[str]:
    """The passes remembered (read once per process)."""
    return set(_read_passed())


def _read_passed() -> list[str]:
    for path in user_cache.file(PASSED):
        try:
            keys = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
    return []


_new: list[str] = []  # passes of this process, written once when it exits


def remember(key: str) -> None:
    _passed().add(key)
    if not _new:
        atexit.register(_write_passed)
    _new.append(key)


def _write_passed() -> None:
    new = set(_new)
    keys = [k for k in _read_passed() if k not in new] + list(dict.fromkeys(_new))
    for path in user_cache.file(PASSED):
        user_cache.write_json(path, keys[-KEEP:])


def known(key: str) -> bool:
    return key in _passed()
