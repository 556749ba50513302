"""Store path names, ``<32 nix-base-32 chars>-<label>``, and the labels in them."""

from __future__ import annotations

import re

from engine.store.base32 import ALPHABET
from engine.store.errors import StoreError

_LABEL = re.compile(r"[A-Za-z0-9+._?=-]{1,200}")
NAME = re.compile(rf"[{ALPHABET}]{{32}}-[A-Za-z0-9+._?=-]{{1,200}}")
#: The store's state folder beside its paths (database, CAS, action cache, locks, caches): no
#: path's name can be it.
STATE = ".recipe"


def checked(name: str) -> str:
    """``name`` when it is a store path name; ``StoreError`` otherwise."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise StoreError(f"{name!r} is not a store path name",
                         "a name is 32 base-32 characters, '-', and a label")
    return name


def label_of(name: str) -> str:
    """A store path name's label, without its hash (the same project, version and target from
    one edit to the next); a string of no hash is its own."""
    return name.partition("-")[2] or name


def label(text: str) -> str:
    """``text`` when it can be the label of a store name (or of a state folder)."""
    if not _LABEL.fullmatch(text):
        raise StoreError(f"{text!r} cannot be part of a store name",
                         "use 1 to 200 of the characters A-Z a-z 0-9 + . _ ? = -")
    return text
