"""A blob's note that its bytes were hashed, so that linking it out of the CAS need not hash
them again while it is untouched (git's index, kept on the inode itself).

A blob linked into a build folder is the CAS's own inode: a tool that wrote through that link
(as root, read-only modes do not stop it) would change the blob. So every link out of the CAS
is checked against the digest. Hashing each one (110 sources staged and 100 objects linked for
a one-file edit) is most of what linking costs; instead, a blob whose bytes were hashed carries
an extended attribute ``user.recipe.sha256`` = ``<digest> <size> <mtime_ns>`` of that moment.
A write through any link changes the mtime (the kernel sets it on every write; only a tool
that deliberately puts an old mtime back would not), so a blob whose size and mtime are still
those of its mark has the marked bytes, and only then is the hash skipped.

Marks are only written for blobs whose mtime is older than ``RACY_NS``: within the clock's
resolution a write could leave the mtime as it was ("racily clean" in git's words). A file
system without user extended attributes, or a blob nobody may mark, is simply hashed each
time, as before. A copy out of the CAS (a path's own files) and a read are hashed every time,
whatever the mark says.
"""

from __future__ import annotations

import os
import time

NAME = "user.recipe.sha256"
RACY_NS = 2_000_000_000


def trusted(path: str, digest: str) -> bool:
    """Whether ``path`` (a link of the blob ``digest``) is marked as hashed to ``digest`` and
    untouched since: same size, same mtime."""
    try:
        st = os.stat(path)
    except OSError:  # nothing there
        return False
    return trusted_stat(path, digest, st)


def trusted_stat(path: str, digest: str, st: os.stat_result) -> bool:
    """``trusted``, with the file's ``st`` taken by the caller."""
    try:
        mark = os.getxattr(path, NAME, follow_symlinks=False)
    except OSError:  # no mark, no xattrs here, or nothing there
        return False
    return mark == _value(digest, st)


def mark(path: str, digest: str) -> None:
    """Note on the blob at ``path`` that its bytes, just hashed, are ``digest``. Not when its
    mtime is too recent to tell a later write by; never an error (the mark only saves time).
    A read-only blob is made writable by its owner for the moment it takes."""
    try:
        st = os.stat(path)
        if st.st_mtime_ns >= time.time_ns() - RACY_NS:
            return
        value = _value(digest, st)
        try:
            os.setxattr(path, NAME, value)
        except PermissionError:  # a read-only blob, not root: user.* needs write permission
            os.chmod(path, st.st_mode | 0o200)
            try:
                os.setxattr(path, NAME, value)
            finally:
                # Read-only again, whatever mode another process saw meanwhile: a blob is.
                os.chmod(path, st.st_mode & ~0o222)
    except OSError:
        pass


def _value(digest: str, st: os.stat_result) -> bytes:
    return f"{digest} {st.st_size} {st.st_mtime_ns}".encode()
