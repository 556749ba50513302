"""Paths and patterns inside the plan's folder.

Patterns are gitignore-style (pathspec), relative to the folder of the document that holds them;
a leading ``!`` excludes. Nothing may leave the plan's folder: no absolute paths, no ``..``
components, no symlink whose target lies outside (a broken symlink or a symlink loop is an error
too, when a pattern selects it). Each folder is scanned at most once per ``Tree``: a plan's
projects, cases files and patterns all share the scans.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine import watch
from engine.documents.errors import DocumentError
from engine.errors import Pos, display_path

_GLOB = re.compile(r"[*?\[\\]")
_CONTROL = re.compile("[\x00-\x1f\x7f]")
# Patterns read without pathspec (its import is 20 ms, on every full run): names of letters,
# digits and '_.+-' in segments of one '*' at most, positive, not a folder's
# ("x/"). gitignore's meaning: '*' is any run of characters but '/'; a pattern with a '/' is
# anchored at the document's folder, one without matches at any depth; a match of a folder
# selects everything below it. tests/unit/test_paths_simple.py holds them to pathspec's answers.
_SEGMENT = r"(?:(?:[\w.+-]*\*)?[\w.+-]+|[\w.+-]*\*)"
_SIMPLE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*\Z", re.ASCII)
# pathspec turns each '*' into a backtracking '[^/]*': '*a*a*a*a*b' takes seconds per file name.
MAX_STARS = 3
_OUTSIDE = "is a symlink that leaves the plan's folder"
_LOOP = "is a symlink loop"
_BROKEN = "is a broken symlink"


def check_relative(text: str, pos: Pos, what: str = "path") -> str:
    """Reject absolute paths, ``..`` and control characters; return the path without leading
    ``./``."""
    if _CONTROL.search(text):  # a NUL would reach the OS (ValueError), a newline is a typo
        raise DocumentError(f"{what} '{text}' holds a control character",
                            "write it on one line, without control characters", pos=pos)
    negated = what == "pattern" and text.startswith("!")
    body = text[1:] if negated else text
    if body.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", body):
        raise DocumentError(f"{what} '{text}' is absolute",
                            "write it relative to the document's folder", pos=pos)
    if ".." in body.replace("\\", "/").split("/"):
        raise DocumentError(f"{what} '{text}' leaves its folder with '..'",
                            "keep files inside the plan's folder and name them from there",
                            pos=pos)
    while body.startswith("./"):
        body = body[2:].lstrip("/")
    if not body or body == ".":
        if what == "pattern":
            raise DocumentError(f"empty {what} '{text}'", "name files or remove it", pos=pos)
        return "."
    return ("!" if negated else "") + body


def static_prefix(pattern: str) -> tuple[str, ...]:
    """The literal folders a pattern is anchored under: ``src/**/*.c`` -> ("src",)."""
    parts = pattern.rstrip("/").split("/")
    if len(parts) == 1:  # no slash: gitignore matches it at any depth
        return ()
    prefix: list[str] = []
    for part in parts[:-1]:
        if _GLOB.search(part):
            break
        prefix.append(part)
    return tuple(p for p in prefix if p)


class Tree:
    """The files below ``root`` (the plan's folder), scanned lazily and once per folder."""

    def __init__(self, root: Path, skip: Iterable[Path] = ()) -> None:
        self.root = os.path.realpath(root)
        self._skip = {os.path.realpath(p) for p in skip}
        self._scans: dict[str, list[tuple[str, str, str]]] = {}

    def inside(self, real: str) -> bool:
        return below(real, self.root)

    def _scan(self, real_dir: str) -> list[tuple[str, str, str]]:
        """(name, "file" | "dir" | "bad", real path or why bad) for each entry of a folder."""
        if real_dir in self._scans:
            return self._scans[real_dir]
        watch.seen(real_dir)
        entries: list[tuple[str, str, str]] = []
        try:
            listing = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError:
            listing = []
        for entry in listing:
            if not entry.is_symlink():
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name, "dir", entry.path))
                elif entry.is_file(follow_symlinks=False):
                    entries.append((entry.name, "file", entry.path))
                continue
            try:
                target = os.path.realpath(entry.path, strict=True)
            except OSError as error:
                entries.append((entry.name, "bad", _LOOP if error.errno == errno.ELOOP
                                else _BROKEN))
                continue
            watch.seen(entry.path)
            watch.seen(target)
            if not self.inside(target):
                entries.append((entry.name, "bad", _OUTSIDE))
            else:
                entries.append((entry.name, "dir" if os.path.isdir(target) else "file", target))
        self._scans[real_dir] = entries
        return entries

    def files(self, base: Path, prefix: Sequence[str] = ()) -> dict[str, str | None]:
        """Files below ``base``/``prefix`` as POSIX paths relative to ``base``, each mapped to
        None, or to why it cannot be used. Dot-folders are skipped unless ``prefix`` names them."""
        out: dict[str, str | None] = {}
        start = os.path.realpath(base)
        stack = [(start, "", (start,), 0)]
        while stack:
            real, rel, chain, depth = stack.pop()
            for name, kind, detail in self._scan(real):
                if depth < len(prefix) and name != prefix[depth]:
                    continue
                if kind == "file":
                    out[rel + name] = None
                elif kind == "bad":
                    out[rel + name] = detail
                elif detail in chain:  # a symlink to a folder above it
                    out[rel + name] = _LOOP
                elif (depth >= len(prefix) and name.startswith(".")) or detail in self._skip:
                    continue
                else:
                    stack.append((detail, f"{rel}{name}/", (*chain, detail), depth + 1))
        return out

    def expand(self, patterns: Sequence[tuple[str, Pos]], base: Path, *,
               allow_empty: bool = False) -> tuple[str, ...]:
        """The sorted files below ``base`` selected by ``patterns`` (text, position).

        Every positive pattern must select a file unless ``allow_empty`` (an unwritten default).
        """
        checked = [(check_relative(text, pos, "pattern"), pos) for text, pos in patterns]
        simple = all(_SIMPLE.match(text) and "." not in text.split("/") for text, _ in checked)
        compiled = [] if simple else [_compile(text, pos) for text, pos in checked]
        positives = [(text, pos) for text, pos in checked if not text.startswith("!")]
        candidates: dict[str, str | None] = {}
        for prefix in dict.fromkeys(static_prefix(text) for text, _ in positives):
            candidates.update(self.files(base, prefix))
        singles: list[tuple[Any, str, Pos]]
        if simple:  # every pattern positive, plain names and one '*' a segment at most
            singles = [(_simple_regex(text).match, text, pos) for text, pos in checked]
            selected = sorted(f for f in candidates if any(m(f) for m, _, _ in singles))
        else:
            import pathspec

            spec = pathspec.GitIgnoreSpec(compiled)
            selected = sorted(f for f in candidates if spec.match_file(f))
            singles = [(pathspec.GitIgnoreSpec([pattern]).match_file, text, pos)
                       for pattern, (text, pos) in zip(compiled, checked, strict=True)
                       if not text.startswith("!")]
        for name in selected:
            if candidates[name]:
                pos = next(p for match, _, p in singles if match(name))
                raise _unusable(name, candidates[name], pos)
        if not allow_empty:
            for match, text, pos in singles:
                if not any(match(f) for f in candidates):
                    _raise_unmatched(text, pos, base, candidates)
        return tuple(selected)

    def check_path(self, text: str, base: Path, pos: Pos, *, what: str = "file",
                   must_exist: bool = True, missing_fix: str | None = None,
                   within: Path | None = None) -> str:
        """A literal path: inside the plan's folder (and ``within``, when given), and an existing
        ``what`` ("file" | "folder") when ``must_exist``. Returns it normalised, relative to
        ``base``."""
        rel = posixpath.normpath(check_relative(text, pos))
        full = os.path.join(base, rel)
        watch.seen(full)
        try:
            real = os.path.realpath(full, strict=True)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise _unusable(text, _LOOP, pos) from None
            if must_exist:
                raise DocumentError(f"{what} '{text}' does not exist",
                                    missing_fix or f"create it or fix the path (relative to "
                                    f"{_shown_dir(base)})", pos=pos) from None
            real = os.path.realpath(full)
        watch.seen(real)
        if not self.inside(real):
            raise _unusable(text, "leaves the plan's folder through a symlink", pos)
        if within is not None and not below(real, os.path.realpath(within)):
            raise DocumentError(f"{what} '{text}' leaves the project's folder through a symlink",
                                f"name a {what} inside the project", pos=pos)
        if os.path.exists(real) and os.path.isdir(real) != (what == "folder"):
            raise DocumentError(f"'{text}' is not a {what}",
                                f"name a {what} here", pos=pos)
        return rel


def _simple_regex(text: str) -> re.Pattern[str]:
    """A ``_SIMPLE`` pattern as gitignore reads it (as pathspec translates it)."""
    body = "[^/]*".join(re.escape(part) for part in text.split("*"))
    return re.compile(("" if "/" in text else "(?:.*/)?") + body + "(?:/.*)?\\Z", re.DOTALL)


def _compile(text: str, pos: Pos) -> Any:
    """One gitignore pattern, compiled; a pattern pathspec cannot compile is the document's
    error, and so is one whose matching could take exponential time."""
    import pathspec

    for segment in text.lstrip("!").split("/"):
        if segment != "**" and segment.count("*") > MAX_STARS:
            raise DocumentError(f"pattern '{text}' has more than {MAX_STARS} '*' in "
                                f"'{segment}'", "use fewer wildcards, or '**' for any folders",
                                pos=pos)
    try:
        with warnings.catch_warnings():  # re's FutureWarning about '[[' is not for the user
            warnings.simplefilter("ignore")
            return pathspec.GitIgnoreSpec.from_lines([text]).patterns[0]
    except re.error as error:  # a character class pathspec passes on: [z-a]
        reason = error.msg
    except Exception:  # pathspec's own error: a trailing '\\'
        reason = "not a gitignore pattern"
    raise DocumentError(f"invalid pattern '{text}' ({reason})", "write a gitignore-style "
                        "pattern; escape a special character with '\\'", pos=pos)


def below(real: str, folder: str) -> bool:
    """Whether the resolved path ``real`` is ``folder`` or lies inside it (both resolved)."""
    return real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)


def _unusable(name: str, why: str, pos: Pos) -> DocumentError:
    return DocumentError(f"'{name}' {why}",
                         "replace the symlink by the file itself, inside the plan's folder",
                         pos=pos)


def _raise_unmatched(text: str, pos: Pos, base: Path, candidates: dict[str, str | None]) -> None:
    """A pattern that selects nothing: blame a bad symlink on its way if there is one."""
    prefix = "/".join(static_prefix(text))
    for name, why in candidates.items():
        if why and prefix and (prefix == name or prefix.startswith(name + "/")):
            raise _unusable(name, why, pos)
    raise DocumentError(f"pattern '{text}' matches no file",
                        f"fix the pattern (relative to {_shown_dir(base)})", pos=pos)


def _shown_dir(base: Path) -> str:
    shown = display_path(base)
    return "the current folder" if shown == "." else f"{shown}/"
