"""The store's action results as REAPI v2 ``ActionResult`` messages, and back.

A result in the store's action cache is a JSON object: ``outputs`` maps each output (a path
relative to the action's staging folder, or a name such as ``stdout`` for a case) to the sha256
of a blob; ``log`` is what the tool printed; other keys are the result's own (a compile
manifest's ``candidates``, each with its result, a case's ``exit`` and ``signal``). On the
remote it is::

    ActionResult {
      output_files: one per output, {path, digest: {hash, size_bytes}}, sorted by path
      output_files: {path: ".recipe/result.json", digest}   # only when there are other keys:
                    # their canonical JSON (sorted keys, (',', ':')) as a blob
      stdout_digest: the log as a blob (when there is one)
      exit_code: a case's ``exit`` when it is an int32, else 0
    }

serialised deterministically, with every blob it names in the CAS (uploaded first: a manifest's
candidates' outputs too, a candidate whose blobs are gone here left out), so that a
server that validates the action cache (bazel-remote) accepts it and a reader never sees a result
whose blobs are missing. Reading one back checks every digest it names before use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from engine.remote import messages
from engine.store import BlobError, StoreError

META = ".recipe/result.json"
_DIGEST = re.compile(r"[0-9a-f]{64}")
_INT32 = range(-(1 << 31), 1 << 31)


def encode(result: dict[str, Any], blob: Callable[[str], bytes]) -> tuple[bytes, dict[str, bytes]]:
    """The serialised ``ActionResult`` and the blobs it names (digest: bytes), to upload
    first; ``blob`` reads one of the result's outputs from the local CAS."""
    blobs: dict[str, bytes] = {}
    ActionResult, Digest = messages.action_result(), messages.digest()  # noqa: N806

    def digest_of(data: bytes) -> Any:
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return Digest(hash=digest, size_bytes=len(data))

    message = ActionResult()
    for path, digest in sorted(result.get("outputs", {}).items()):
        data = blob(digest)
        message.output_files.add(path=path, digest=digest_of(data))
    extra = {k: v for k, v in result.items() if k not in ("outputs", "log")}
    if isinstance(extra.get("candidates"), list):  # a compile's manifest: results inline
        extra["candidates"] = [c for c in extra["candidates"] if _shared(c, blob, blobs)]
    if extra:
        meta = json.dumps(extra, sort_keys=True, separators=(",", ":")).encode()
        message.output_files.add(path=META, digest=digest_of(meta))
    if result.get("log") is not None:
        message.stdout_digest.CopyFrom(digest_of(str(result["log"]).encode()))
    code = result.get("exit")
    message.exit_code = code if isinstance(code, int) and code in _INT32 else 0
    return message.SerializeToString(deterministic=True), blobs


def _shared(candidate: Any, blob: Callable[[str], bytes], blobs: dict[str, bytes]) -> bool:
    """Whether a manifest's candidate goes to the remote: its outputs' blobs are put with
    the entry's (``blobs``); one whose blobs are no longer here (collected with the path that
    used them) is left out, as no reader could use it."""
    outputs = candidate.get("outputs") if isinstance(candidate, dict) else None
    if not isinstance(outputs, dict):
        return True
    found: dict[str, bytes] = {}
    try:
        for digest in outputs.values():
            found[digest] = blob(digest)
    except (BlobError, StoreError, OSError, TypeError):
        return False
    blobs.update(found)
    return True


def decode(data: bytes, fetch: Callable[[str, int], bytes | None]) -> dict[str, Any] | None:
    """The result an entry holds, or None when it is not one recipe can use (not a message,
    a digest that is not sha256, a named blob that is missing or not what its digest says).
    ``fetch(digest, size)`` gives a checked blob or None; outputs are not fetched here (the
    builder copies out only what it reads), the metadata and the log are."""
    message = messages.parse(data)
    if message is None:
        return None
    outputs: dict[str, str] = {}
    extra: dict[str, Any] = {}
    for output in message.output_files:
        digest = output.digest.hash
        if not _DIGEST.fullmatch(digest) or output.digest.size_bytes < 0 or not output.path:
            return None
        if output.path == META:
            meta = fetch(digest, output.digest.size_bytes)
            try:
                extra = json.loads(meta) if meta is not None else None
            except ValueError:
                return None
            if not isinstance(extra, dict) or "outputs" in extra or "log" in extra:
                return None
        else:
            outputs[output.path] = digest
    result: dict[str, Any] = {**extra, "outputs": outputs}
    if message.HasField("stdout_digest"):
        digest = message.stdout_digest.hash
        if not _DIGEST.fullmatch(digest):
            return None
        log = fetch(digest, message.stdout_digest.size_bytes)
        if log is None:
            return None
        result["log"] = log.decode(errors="replace")
    return result
