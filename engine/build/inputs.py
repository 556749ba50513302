"""A build's declared inputs, copied from the checkout or out of the CAS, and kept in the CAS
for as long as the path lives (``store verify --repair`` rebuilds from them alone)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from engine.build.actions import Buildable
from engine.errors import Failure, RecipeError
from engine.store import BlobError, Store


class SourceChanged(Failure):
    """A declared file changed between hashing and staging."""


class CannotRebuild(RecipeError):
    """A recorded derivation's input is no longer in the store's CAS."""


def copy_source(store: Store, drv: Buildable, source: Path, dest: Path | str, hex_digest: str,
                rel: str) -> None:
    """``copy_checked``, and the blob added to the CAS (read from the copy) if it is not
    there."""
    copy_checked(drv, source, dest, hex_digest, rel)
    if not store.has_blob(hex_digest):
        store.put_file(dest)


def copy_checked(drv: Buildable, source: Path | str, dest: Path | str, hex_digest: str,
                 rel: str, mode: int = 0o644) -> None:
    """One read: copy and hash together; ``SourceChanged`` unless the copy's bytes are those
    the derivation hashed (``hex_digest``). The copy gets ``mode`` whatever the umask."""
    own = hashlib.sha256()
    # Unbuffered: a file object's buffer asks the terminal and the position first
    with open(source, "rb", buffering=0) as src, open(dest, "wb", buffering=0) as dst:
        while chunk := src.read(1 << 20):
            own.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[dst.write(view):]
        os.fchmod(dst.fileno(), mode)  # not the umask's mode
    if own.hexdigest() != hex_digest:
        raise SourceChanged(f"{drv.data['project']['name']}: {rel} changed while "
                            "building", "run the command again")


def copy_out(store: Store, drv: Buildable, hex_digest: str, dest: Path | str, rel: str,
             link: bool = False) -> None:
    """A recorded derivation's declared input, out of the CAS (it has no checkout)."""
    try:
        if link:
            store.link_blob(hex_digest, dest)
        else:
            store.copy_blob(hex_digest, dest)
    except BlobError:
        raise CannotRebuild(
            f"cannot rebuild {drv.name}: its input {rel} is no longer in the store "
            "(or is damaged)", "remove its roots ('recipe store roots --remove'), "
            "collect it, and realise its plan again") from None


def keep_sources(store: Store, drv: Buildable, kept: set[str]) -> None:
    """Every declared input in the CAS, as the registered path promises (a build whose
    actions were all cached has read none of them)."""
    for rel, digest in drv.data["inputs"].items():
        hex_digest = digest.removeprefix("sha256:")
        if hex_digest in kept or store.has_blob(hex_digest):
            continue
        if drv.sources is None:
            raise CannotRebuild(f"cannot rebuild {drv.name}: its input {rel} is no "
                                "longer in the store", "realise its plan again")
        if store.put_file(drv.sources / rel) != hex_digest:
            raise SourceChanged(f"{drv.data['project']['name']}: {rel} changed "
                                "while building", "run the command again")


def input_blobs(drv: Buildable) -> list[str]:
    """The CAS digests of a derivation's declared inputs (its sources, kept for repair)."""
    return [d.removeprefix("sha256:") for d in drv.data["inputs"].values()]
