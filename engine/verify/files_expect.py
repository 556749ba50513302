"""Files a case writes: ``expect: files:`` and ``expect: tree:``.

When the case ends (before its scratch folder is removed) the files its expectation names are
read from its working folder — each path of ``files:`` (None when there is no regular file
there: a symlink or a folder counts as none), and for ``tree:`` every regular file below the
working folder but the case's input ``files:`` it left unchanged. Symlinks are never followed,
so nothing outside the scratch folder is read. What is read is part of the observation (and
of its cache entry); more than ``CAP`` bytes in all fails the case, as a stream past the cap
does.

Comparing: a ``files:`` entry as a stream is compared (patterns allowed; ``{absent: true}``: no
file there); a tree names its missing, extra and differing files. Re-recording: an entry is
rewritten where it stands (inline text, its golden file, or ``{absent: true}`` when the file
is gone); inline text over 2 KiB or not UTF-8 moves to ``golden/<case>/<path>``; a tree's
golden folder gets each differing or extra file written and each missing one deleted.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import watch
from engine.documents.models import Case
from engine.verify.diffs import unified_diff
from engine.verify.outcome import Observed
from engine.verify.patterns import Redactions, matches, normalize

if TYPE_CHECKING:  # ruamel is imported where --update writes YAML, not by every verify
    from ruamel.yaml.comments import CommentedMap

Files = tuple[tuple[str, bytes | None], ...]
INLINE_LIMIT = 2048


def wanted(case: Case) -> bool:
    return bool(case.expect.files or case.expect.tree)


def capture_key(case: Case) -> dict[str, Any] | None:
    """What is captured, for the outcome cache key (None: nothing)."""
    if not wanted(case):
        return None
    return {"files": sorted(case.expect.files), "tree": case.expect.tree is not None}


def capture(case: Case, work: Path, cap: int) -> tuple[Files, Files | None, bool]:
    """``(files, tree, over the cap)`` read from the working folder ``work``."""
    total = 0
    files = []
    for rel in sorted(case.expect.files):
        data = _read(work / rel)
        total += len(data or b"")
        files.append((rel, data))
    tree = None
    if case.expect.tree is not None:
        found = []
        for rel, path in _walk(work):
            data = _read(path)
            if data is None or _unchanged_input(case, rel, data):
                continue
            total += len(data)
            if total > cap:
                break
            found.append((rel, data))
        tree = tuple(found)
    return tuple(files), tree, total > cap


def _read(path: Path) -> bytes | None:
    """A regular file's bytes; None for anything else (symlinks not followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return f.read()
    finally:
        os.close(fd)


def _walk(folder: Path, golden: bool = False) -> list[tuple[str, Path]]:
    """Every entry below ``folder`` that is not a folder, as ('/'-separated path, path).
    ``golden``: a folder of the plan's, whose folders and files a remembered verify watches."""
    out = []
    for top, dirs, names in os.walk(folder):  # symlinks to folders are listed, not entered
        dirs.sort()
        if golden:
            watch.seen(top)
        for name in sorted(names) + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            path = Path(top) / name
            if golden:
                watch.seen(path)
            out.append((path.relative_to(folder).as_posix(), path))
    return sorted(out)


def _unchanged_input(case: Case, rel: str, data: bytes) -> bool:
    """Whether ``rel`` is one of the case's input ``files:`` (a pattern's file, or a ``{from,
    to}`` entry's, a folder's files included), as it was copied in."""
    for source, place in [(r, r) for r in case.files] + list(case.copies):
        place = place.rstrip("/")
        if rel == place:
            return _read(case.folder / source) == data
        if rel.startswith(place + "/"):
            return _read(case.folder / source / rel[len(place) + 1:]) == data
    return False


def read_tree(folder: Path) -> dict[str, bytes]:
    """The regular files below a golden folder (none when it is missing)."""
    out = {}
    watch.seen(folder)
    for rel, path in _walk(folder, golden=True) if folder.is_dir() else []:
        data = _read(path)
        if data is not None:
            out[rel] = data
    return out


def golden_file(case: Case, file: str) -> bytes | None:
    watch.seen(case.folder / file)
    try:
        return (case.folder / file).read_bytes()
    except OSError:
        return None


def compare(case: Case, observed: Observed, marks: Redactions) -> tuple[list[str], list[str]]:
    """``(what differs, details)``: the ``files:`` entries and the tree."""
    differs: list[str] = []
    details: list[str] = []
    got = dict(observed.files)
    for rel, want in sorted(case.expect.files.items()):
        have = got.get(rel)
        if want.absent:
            if have is not None:
                differs.append(f"file {rel}")
                details.append(f"file {rel} exists, but must not\n")
            continue
        exp = want.text if want.text is not None else golden_file(case, want.file or "")
        if exp is None:
            differs.append(f"file {rel}")
            details.append(f"{want.file} does not exist (re-record with --update)\n")
        elif have is None:
            differs.append(f"file {rel}")
            details.append(f"file {rel} was not written (or is not a regular file)\n")
        elif not matches(exp, have, marks):
            differs.append(f"file {rel}")
            details.append(unified_diff(exp, normalize(have, exp, marks, substitute=False),
                                        f"file {rel}"))
    if case.expect.tree is not None:
        golden = read_tree(case.folder / case.expect.tree)
        tree = dict(observed.tree or ())
        lines = [f"missing {rel}\n" for rel in sorted(set(golden) - set(tree))]
        lines += [f"extra {rel}\n" for rel in sorted(set(tree) - set(golden))]
        diffs = [unified_diff(golden[rel], normalize(tree[rel], golden[rel], marks,
                                                     substitute=False), f"file {rel}")
                 for rel in sorted(set(golden) & set(tree))
                 if not matches(golden[rel], tree[rel], marks)]
        if lines or diffs:
            differs.append(f"tree {case.expect.tree}")
            lines += [f"differs {d.splitlines()[0].removeprefix('--- expected file ')}\n"
                      for d in diffs]
            details.append(f"tree {case.expect.tree}:\n" + "".join(f"  {x}" for x in lines))
            details += diffs
    return differs, details


class Recording:
    """What re-recording a case's files and tree would do; nothing is done before ``apply``
    (the caller first checks ``texts`` for the store or the scratch folder)."""

    def __init__(self) -> None:
        self.fields: list[str] = []
        self.writes: list[tuple[Path, bytes | None]] = []  # None: delete
        self.texts: list[bytes] = []
        self.edits: list[tuple[CommentedMap, Any, Any]] = []  # (mapping, key, new value)
        self.edited = False  # an entry the run compared against is no longer in the file

    def apply(self) -> None:
        for mapping, key, value in self.edits:
            mapping[key] = value


def record(expect: CommentedMap, case: Case, observed: Observed, marks: Redactions,
           golden_dir: str) -> Recording:
    """How to re-record the files and the tree into ``expect`` (the cases file's entry)."""
    from engine.verify.yaml_edit import styled

    out = Recording()
    fields, writes, texts = out.fields, out.writes, out.texts
    got = dict(observed.files)
    entries = expect.get("files") if isinstance(expect.get("files"), dict) else {}
    from engine.documents.cases import scratch_path  # the document loader: --update only

    keys = {scratch_path(str(k)): k for k in entries}
    for rel, want in sorted(case.expect.files.items()):
        have = got.get(rel)
        key = keys.get(rel)
        if key is None:
            out.edited = True
            continue
        if want.absent and have is None:
            continue
        if have is None:
            out.edits.append((entries, key, _flow(absent=True)))
            fields.append(f"file {rel}")
            continue
        exp = want.text if want.text is not None else golden_file(case, want.file or "")
        if exp is not None and matches(exp, have, marks):
            continue
        new = normalize(have, exp or b"", marks)
        texts.append(new)
        fields.append(f"file {rel}")
        if want.file is not None:
            writes.append((case.folder / want.file, new))
            continue
        text = _text(new)
        if text is not None:
            old = entries[key] if isinstance(entries[key], str) else None
            out.edits.append((entries, key, styled(old, text)))
        else:
            golden = f"{golden_dir}/{rel}"
            writes.append((case.folder / golden, new))
            out.edits.append((entries, key, _flow(file=golden)))
    if case.expect.tree is not None:
        folder = case.folder / case.expect.tree
        golden = read_tree(folder)
        tree = dict(observed.tree or ())
        changed = False
        for rel, data in sorted(tree.items()):
            exp = golden.get(rel)
            if exp is not None and matches(exp, data, marks):
                continue
            new = normalize(data, exp or b"", marks)
            texts.append(new)
            writes.append((folder / rel, new))
            changed = True
        for rel in sorted(set(golden) - set(tree)):
            writes.append((folder / rel, None))
            changed = True
        if changed:
            fields.append(f"tree {case.expect.tree}")
    return out


def _flow(**items: Any) -> CommentedMap:
    """A small mapping written on one line: ``{file: golden/...}``, ``{absent: true}``."""
    from ruamel.yaml.comments import CommentedMap

    mapping = CommentedMap(items)
    mapping.fa.set_flow_style()
    return mapping


def _text(data: bytes) -> str | None:
    """``data`` as text to write inline, or None when it belongs in a golden file."""
    if len(data) > INLINE_LIMIT:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None
