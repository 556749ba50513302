"""Saying how two builds differ: the files of two trees, the keys of two derivations, and
``diffoscope``'s own account when that tool is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.store.nar import Entry, scan

DIFFOSCOPE_LIMIT = 256 * 1024  # bytes of diffoscope's text report kept
DIFFOSCOPE_TIMEOUT = 600  # seconds


def tree_differences(first: Path, second: Path) -> list[str]:
    """One line per differing file, ``<path>: <how>``, in path order. A missing or extra
    folder is named once, not with everything below it."""
    a = {e.file: e for e in scan(first, strict=False).entries}
    b = {e.file: e for e in scan(second, strict=False).entries}
    lines = []
    for file in sorted(a.keys() | b.keys()):
        old, new = a.get(file), b.get(file)
        parent = file.rpartition("/")[0]
        if old is None or new is None:
            if parent in a and parent in b:
                where = "rebuild" if old is None else "first build"
                lines.append(f"{file}: only in the {where}")
            continue
        how = _how(old, new)
        if how:
            lines.append(f"{file or '.'}: {how}")
    return lines


def _how(old: Entry, new: Entry) -> str:
    if old.type != new.type:
        return f"a {old.type}, then a {new.type}"
    if old.type == "symlink" and old.target != new.target:
        return f"links to {old.target!r}, then to {new.target!r}"
    if old.type == "regular" and old.sha256 != new.sha256:
        return f"contents differ ({old.size} and {new.size} bytes)"
    if old.mode & 0o111 != new.mode & 0o111:
        return f"mode {old.mode:04o}, then {new.mode:04o}"
    return ""


def json_differences(first: Any, second: Any, at: str = "") -> list[str]:
    """The dotted keys at which two JSON values differ (a list is compared whole)."""
    if isinstance(first, dict) and isinstance(second, dict):
        found = []
        for key in sorted(first.keys() | second.keys()):
            where = f"{at}.{key}" if at else str(key)
            if key not in first or key not in second:
                found.append(where)
            else:
                found += json_differences(first[key], second[key], where)
        return found
    return [] if first == second else [at or "(the whole value)"]


def diffoscope(first: Path, second: Path) -> str | None:
    """diffoscope's text report of two trees, or None when it is not installed."""
    program = shutil.which("diffoscope")
    if program is None:
        return None
    argv = [program, "--text", "-", "--text-color", "never", "--no-progress",
            "--exclude-directory-metadata", "yes",
            "--max-text-report-size", str(DIFFOSCOPE_LIMIT), str(first), str(second)]
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, errors="replace", timeout=DIFFOSCOPE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"(diffoscope took more than {DIFFOSCOPE_TIMEOUT} s and was stopped)\n"
    except OSError as error:
        return f"(diffoscope could not run: {error})\n"
    if done.returncode not in (0, 1):  # 1: differences found
        return f"(diffoscope failed, exit {done.returncode}: {done.stderr.strip()})\n"
    return done.stdout
