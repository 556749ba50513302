"""Content-addressed blobs and the action cache (the model of Bazel's CAS and AC).

Blobs live at ``cas/<hex[:2]>/<hex>``, named by the sha256 of their bytes, read-only. Action
results live at ``ac/<key[:2]>/<key>.json``: a small JSON object whose ``outputs`` maps
names to blob digests. Every write goes to a temporary file on the same file system and is
renamed into place, or (``take_file``: a finished file its maker only reads from then on, such
as a compiler's object) is hard-linked into place, so a reader sees a whole file or none; a
blob is verified each time it is read, and a damaged one is deleted so that the next build
writes it again.
"""

from __future__ import annotations

import errno
import os
import re
from contextlib import contextmanager
from pathlib import Path

from engine.store import marks
from engine.store.errors import BlobError, StoreError

TYPE_CHECKING = False  # typing and dataclasses would cost a repeated ``recipe eval`` 15 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

_CHUNK = 1 << 20
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
DIGEST = re.compile(r"[0-9a-f]{64}")
KEY = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{1,199}")
#: An action key that starts so is kept by every collection, as if a path kept it (a tool the
#: store's user needs on every run and no path names, such as the build's reaper); ``--max-size``
#: still evicts it when it is the least recently used.
PINNED = "pin."


class Cas:
    """Blobs and action results under ``state``; ``temp(suffix)`` makes a new temporary
    file on the same file system: its descriptor, open for writing, and its path."""

    def __init__(self, state: Path, temp: Callable[[str], tuple[int, str]]) -> None:
        self.blobs = state / "cas"
        self._blob_root = str(self.blobs)
        self.actions = state / "ac"
        self._action_root = str(self.actions)
        self._temp = temp
        # Fan-out folders known to exist: a build writes hundreds of blobs and results, and
        # a ``mkdir`` per write (an EEXIST each time) was a tenth of what publishing one cost.
        self._made: set[str] = set()

    # -- blobs ------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return Path(self._blob_file(digest))

    def _blob_file(self, digest: str) -> str:
        # str paths in what a build does per action: a Path made and joined for each blob,
        # result and temporary file was a tenth of a cold build's own CPU time
        digest = _checked(digest)
        return f"{self._blob_root}/{digest[:2]}/{digest}"

    def has_blob(self, digest: str) -> bool:
        # a str path, not a Path: called for every output of every cache hit
        digest = _checked(digest)
        return os.path.isfile(f"{self._blob_root}/{digest[:2]}/{digest}")

    def put_blob(self, data: bytes) -> str:
        digest = _hashlib().sha256(data).hexdigest()
        target = self._blob_file(digest)
        if not _present(target, len(data)):
            self._publish(target, data, 0o444)
        return digest

    def put_file(self, path: Path | str) -> str:
        """Store a file's content; its digest. A blob already present is not replaced, only
        touched, as if it had just been written. Each byte is read and hashed once: a small
        file from memory, a large one while it is copied to a temporary file, renamed into
        place when new, dropped when the blob was there (a build's new output, the usual
        large file, was hashed twice before: once to look, once while copied in)."""
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read() if size <= _CHUNK else None
        if data is None:
            return self._copy_in(path)
        return self.put_blob(data)

    def take_file(self, path: Path | str, digest: str | None = None) -> str:
        """Store a file that its maker will only read from now on (a compiler's finished
        output in a build folder), without copying it: the blob becomes a hard link of the
        file, made read-only. The link appears whole or not at all, as a rename would
        (the file is complete before it is linked). ``digest``: its sha256, when the caller
        has just hashed exactly these bytes. Copied where the file system cannot link. A
        blob already present is only touched; the file is then left as it is."""
        if digest is None:
            digest, size = _sha256_and_size(path)
        else:
            digest, size = _checked(digest), os.path.getsize(path)
        target = self._blob_file(digest)
        if _present(target, size):
            return digest
        os.chmod(path, 0o444)  # the blob's mode: the file is the blob from here on
        os.utime(path)  # written now, as a published blob is (see ``_present``)
        try:
            self._into(os.link, path, target)
        except FileExistsError:
            # Another process stored the same bytes meanwhile, or the blob there is damaged
            # (of another size): that one is replaced, as a copy's rename replaces it.
            if not _present(target, size):
                return self._copy_in(path)
        except OSError as error:
            if error.errno in _FULL:
                raise StoreError(f"cannot write to the store: {error.strerror}",
                                 "free space on the store's file system, then run the "
                                 "command again") from None
            return self._copy_in(path)
        return digest

    def _copy_in(self, path: Path | str) -> str:
        own = _hashlib().sha256()
        fd, temp = self._temp("-blob")
        try:
            with _writing(), open(fd, "wb") as dst, open(path, "rb") as src:
                while chunk := src.read(_CHUNK):
                    own.update(chunk)
                    dst.write(chunk)
            digest = own.hexdigest()
            target = self._blob_file(digest)
            if not _present(target, os.path.getsize(temp)):
                os.chmod(temp, 0o444)
                self._into(os.replace, temp, target)
        finally:
            _unlink(temp)
        return digest

    def read_blob(self, digest: str) -> bytes:
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise _missing(digest) from None
        if _hashlib().sha256(data).hexdigest() != digest:
            raise self._damaged(digest)
        return data

    def copy_blob(self, digest: str, dest: Path, executable: bool = False) -> None:
        source = self.blob_path(digest)
        own = _hashlib().sha256()
        dest.unlink(missing_ok=True)
        try:
            with open(source, "rb") as src, open(dest, "xb") as dst:
                while chunk := src.read(_CHUNK):
                    own.update(chunk)
                    dst.write(chunk)
        except FileNotFoundError:
            if not source.exists():
                raise _missing(digest) from None
            raise
        if own.hexdigest() != digest:
            dest.unlink()
            raise self._damaged(digest)
        os.chmod(dest, 0o755 if executable else 0o644)

    def link_blob(self, digest: str, dest: Path | str) -> None:
        """Put a blob at ``dest`` as a hard link (ccache's ``hard_link``, Nix's optimised
        store): the same read-only inode, for a file that a build only reads and no path
        holds (a path's files are sealed: their modes and mtimes would be the blob's). Checked
        against its digest, as ``copy_blob`` checks a copy: hashed, unless its mark says it
        was hashed before and is untouched since (``engine.store.marks``); copied where the
        file system cannot link (another file system, too many links)."""
        digest = _checked(digest)
        # str paths: called for every staged input and every object a link reads
        source = f"{self._blob_root}/{digest[:2]}/{digest}"
        try:
            try:
                _link(source, dest)
            except FileNotFoundError:
                if not os.path.exists(source):
                    raise _missing(digest) from None
                # It appeared since: another action of the build stored the same bytes.
                _link(source, dest)
        except FileNotFoundError:
            raise
        except OSError:
            self.copy_blob(digest, Path(dest))
            return
        if marks.trusted(dest, digest):  # hashed before, untouched since: engine.store.marks
            return
        if sha256_file(dest) != digest:
            os.unlink(dest)
            raise self._damaged(digest)
        marks.mark(dest, digest)

    def is_linked_blob(self, path: str, digest: str, st: os.stat_result) -> bool:
        """Whether the file at ``path`` (``st``: its lstat) is the blob ``digest`` itself, marked
        as hashed to that digest and untouched since: what ``link_blob`` would put there."""
        try:
            blob = os.stat(self._blob_file(digest))
        except OSError:
            return False
        return os.path.samestat(st, blob) and marks.trusted_stat(path, digest, st)

    def _damaged(self, digest: str) -> BlobError:
        self.blob_path(digest).unlink(missing_ok=True)
        return BlobError(f"blob {digest} in the store is damaged (its content no longer "
                         "matches its digest); it has been removed",
                         "run the build again to recreate it")

    # -- action results ---------------------------------------------------------------------

    def _action_file(self, key: str) -> str:
        if not isinstance(key, str) or not KEY.fullmatch(key):
            raise StoreError(f"{key!r} is not an action key",
                             "use 2 to 200 letters, digits, '.', '_' or '-'")
        return f"{self._action_root}/{key[:2]}/{key}.json"

    def promise_file(self, key: str) -> str:
        """Where the result of ``key`` is promised while its maker writes it late
        (``engine.store.promises``): beside the entry, which the listing tells apart."""
        return f"{self._action_file(key)[:-len('.json')]}.promised"

    def get_action(self, key: str) -> dict[str, Any] | None:
        """The result recorded for ``key``, or None when there is none, it cannot be read, or
        an output it names is no longer in the CAS (the action must run again). A hit is
        touched: its mtime is its last use, which ``gc --max-size`` evicts by."""
        path = self._action_file(key)
        try:
            with open(path, "rb", buffering=0) as f:
                result = _json().loads(f.read())
        except (OSError, ValueError):
            return None
        if not isinstance(result, dict):
            return None
        outputs = result.get("outputs", {})
        if not isinstance(outputs, dict):
            return None
        root = self._blob_root
        for digest in outputs.values():
            if not isinstance(digest, str) or not DIGEST.fullmatch(digest) \
                    or not os.path.isfile(f"{root}/{digest[:2]}/{digest}"):
                return None
        try:
            os.utime(path)
        except OSError:
            pass  # a read-only cache still serves hits
        return result

    def put_action(self, key: str, result: dict[str, Any]) -> None:
        target = self._action_file(key)
        try:
            data = _json().dumps(result, sort_keys=True, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise StoreError(f"the result of action {key} is not JSON: {error}",
                             "record only strings, numbers, lists and objects") from None
        # A result recorded again, or a compile's manifest updated: the old file goes first.
        # Renamed over it, the new one's data would be flushed before the rename returned
        # (ext4's auto_da_alloc: 0.6 ms median, 21 ms for a hot-header edit's 30 manifests);
        # a reader in between finds no entry, which costs a compile, never a wrong hit.
        _unlink(target)
        self._publish(target, data, 0o644)

    def _publish(self, target: str, data: bytes, mode: int) -> None:
        """Write ``data`` to a temporary file and rename it to ``target``: all or nothing.
        Plain writes to the descriptor: a file object's buffer asks the terminal and the
        position first (two system calls of the seven a result costs)."""
        fd, temp = self._temp("-" + target.rpartition("/")[2][:16])
        try:
            with _writing():
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                    os.fchmod(fd, mode)
                finally:
                    os.close(fd)
            self._into(os.replace, temp, target)
        except BaseException:
            _unlink(temp)
            raise

    def _into(self, op: Callable[[Any, Any], None], source: Any, target: str) -> None:
        """``op(source, target)`` (a rename or a link) after making ``target``'s fan-out
        folder, once per process; made again if it went away meanwhile (removed by hand)."""
        folder = target.rpartition("/")[0]
        if folder not in self._made:
            os.makedirs(folder, exist_ok=True)
            self._made.add(folder)
        try:
            op(source, target)
        except FileNotFoundError:
            if os.path.isdir(folder):
                raise
            os.makedirs(folder, exist_ok=True)
            op(source, target)


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _link(source: str, dest: Path | str) -> None:
    try:
        os.link(source, dest)
    except FileExistsError:  # never in a new build folder: one syscall fewer there
        os.unlink(dest)
        os.link(source, dest)


def _json() -> Any:
    """json, imported when an action result is read or written: a no-op realise opens the CAS
    but reads none, and importing json is 4 % of its instructions."""
    import json

    return json


def _hashlib() -> Any:
    """hashlib, imported when a blob is hashed: importing it starts OpenSSL (11 M instructions,
    7 % of a no-op realise, which opens the CAS but hashes nothing)."""
    import hashlib

    return hashlib


def sha256_file(path: Path | str) -> str:
    """The hex sha256 of a file."""
    return _sha256_and_size(path)[0]


def _sha256_and_size(path: Path | str) -> tuple[str, int]:
    """The hex sha256 of a file, and its size. A small one (an object, a source) is read
    whole: ``hashlib.file_digest`` zeroes a 256 KiB buffer per call, most of what hashing a
    10 KB object costs. A descriptor, not a file object (whose own ``fstat`` made two)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size <= _CHUNK:
            data = os.read(fd, size + 1)  # one more: a file that grew meanwhile is read whole
            while len(data) > size and (more := os.read(fd, _CHUNK)):
                data += more
            return _hashlib().sha256(data).hexdigest(), len(data)
        with open(fd, "rb", buffering=0, closefd=False) as f:
            own = _hashlib().file_digest(f, "sha256")
            return own.hexdigest(), f.tell()
    finally:
        os.close(fd)


def _present(path: str, size: int) -> bool:
    """Whether the blob is there (trusting one of the right size, as Bazel does: reading
    verifies it anyway). One that is there is touched: a collection that started before this
    write would otherwise take it for an old, unused blob."""
    try:
        if os.stat(path).st_size != size:
            return False
        os.utime(path)
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return True  # present, in a read-only cache


@contextmanager
def _writing() -> Iterator[None]:
    """A full disk (or quota, or read-only remount) while writing the cache: one clear error;
    the temporary file is removed by the caller, so nothing half-written remains."""
    try:
        yield
    except OSError as error:
        if error.errno not in _FULL:
            raise
        raise StoreError(f"cannot write to the store: {error.strerror}",
                         "free space on the store's file system, then run the command "
                         "again") from None


def _missing(digest: str) -> BlobError:
    return BlobError(f"blob {digest} is not in the store",
                     "run the build again to recreate it")


def _checked(digest: str) -> str:
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise StoreError(f"{digest!r} is not a blob digest",
                         "a digest is 64 lowercase hexadecimal digits (sha256)")
    return digest
