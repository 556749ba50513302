"""Whole store paths on the remote cache (Nix's substituters, on Bazel's protocol).

A valid path is shared as one action-cache entry at ``/ac/<path key>``, where the path key is the
sha256 (hex) of the canonical JSON ``{"kind":"store-path","name":<store path name>,"v":1}``: an
``ActionResult`` whose ``output_files`` are the tree's regular files (path relative to the store
path, digest, ``is_executable``) plus ``.recipe/result.json`` holding, as canonical JSON::

    {"kind": "store-path", "name": <name>, "nar_hash": "sha256:<hex>",
     "references": [<store path names>], "dirs": [<every folder, "" for the top>],
     "symlinks": {<path>: <target>}}

Its blobs are uploaded first and the entry last, like an action's. Fetching writes the folders,
then every file (each blob checked against its sha256), then the links, refusing a path that is
absolute, climbs with ``..`` or passes through a link; the tree's NAR hash must then be the one
the entry names, and the store checks it again as it registers the path
(``engine.build.substitute``). Anything else is a miss: the path is built.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from engine.build.cache import Fetched
from engine.remote import messages
from engine.remote.http import HttpCache
from engine.remote.results import META
from engine.store import Store
from engine.store.nar import scan

VERSION = 1


def path_key(name: str) -> str:
    text = json.dumps({"kind": "store-path", "name": name, "v": VERSION}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def describe(store: Store, name: str) -> tuple[bytes, dict[str, bytes]]:
    """The entry of valid path ``name`` and the blobs it names (digest: bytes)."""
    root, info = store.path(name), store.info(name)
    if info is None:
        raise FileNotFoundError(name)
    Digest = messages.digest()  # noqa: N806
    message, blobs = messages.action_result()(), {}
    meta: dict[str, Any] = {"kind": "store-path", "name": name, "nar_hash": info.nar_hash,
                            "references": list(info.references), "dirs": [], "symlinks": {}}
    for entry in scan(root).entries:
        if entry.type == "directory":
            meta["dirs"].append(entry.file)
        elif entry.type == "symlink":
            meta["symlinks"][entry.file] = entry.target
        else:
            data = (root / entry.file).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            blobs[digest] = data
            message.output_files.add(path=entry.file, is_executable=bool(entry.mode & 0o111),
                                     digest=Digest(hash=digest, size_bytes=len(data)))
    data = json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    message.output_files.add(path=META, digest=Digest(hash=digest, size_bytes=len(data)))
    return message.SerializeToString(deterministic=True), blobs


def fetch(remote: HttpCache, name: str, into: Path) -> Fetched | None:
    """Write path ``name``'s tree at ``into`` from the remote; None when it has none we can use."""
    data = remote.get_entry(path_key(name))
    if data is None:
        return None
    message = messages.parse(data)
    metas = [f for f in message.output_files if f.path == META] if message is not None else []
    if len(metas) != 1:
        remote.failed(f"the entry of {name} is not a result recipe can use (treated as a miss)")
        return None
    files = [(f.path, f.digest.hash, f.digest.size_bytes, f.is_executable)
             for f in message.output_files if f.path != META]
    # the description and every file at once, each checked against its digest
    blobs = remote.iter_blobs([(metas[0].digest.hash, metas[0].digest.size_bytes),
                               *((digest, size) for _, digest, size, _ in files)])
    try:
        raw = next(blobs)
        try:
            meta = json.loads(raw) if raw is not None else None
            if not _usable(meta, name, files):
                raise ValueError
        except (ValueError, TypeError, KeyError):
            remote.failed(f"the entry of {name} is not a result recipe can use (treated as a "
                          "miss)")
            return None
        into.mkdir()
        for folder in sorted(meta["dirs"]):
            if folder:
                (into / folder).mkdir(parents=True, exist_ok=True)
        for (rel, _digest, _size, executable), blob in zip(files, blobs, strict=True):
            if blob is None:
                return None
            (into / rel).parent.mkdir(parents=True, exist_ok=True)
            (into / rel).write_bytes(blob)
            os.chmod(into / rel, 0o755 if executable else 0o644)
    finally:
        blobs.close()
    for rel, target in sorted(meta["symlinks"].items()):
        os.symlink(target, into / rel)
    nar_hash = scan(into).nar_hash
    if nar_hash != meta["nar_hash"]:
        remote.failed(f"{name} from the remote does not match its NAR hash (rejected; built "
                      "locally instead)")
        return None
    return Fetched(nar_hash, tuple(meta["references"]), remote.config.url)


def _usable(meta: Any, name: str, files: list[tuple[str, str, int, bool]]) -> bool:
    """The entry describes ``name`` with paths that stay inside its folder."""
    if not isinstance(meta, dict) or meta.get("kind") != "store-path" or \
            meta.get("name") != name or not isinstance(meta.get("nar_hash"), str):
        return False
    dirs, links, refs = meta.get("dirs"), meta.get("symlinks"), meta.get("references")
    if not isinstance(dirs, list) or not isinstance(links, dict) or not isinstance(refs, list) \
            or not all(isinstance(r, str) for r in refs) \
            or not all(isinstance(t, str) and t and "\0" not in t for t in links.values()):
        return False
    paths = [p for p, *_ in files] + list(links) + [d for d in dirs if d != ""]
    if not all(isinstance(p, str) and _inside(p) for p in paths) or len(set(paths)) != len(paths):
        return False
    # nothing is written through a link: no path lies below one
    return not any(p.startswith(link + "/") for p in paths for link in links)


def _inside(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and "\0" not in rel and all(p not in ("", ".", "..") for p in parts)
