"""Wrapper compilers for tests: real gcc/g++ behind a shell script that logs and can stall.

``make_toolchain(folder)`` writes ``folder/cc`` and ``folder/c++``: sh scripts that ``exec``
``/usr/bin/gcc`` and ``/usr/bin/g++`` with the same arguments. Before that, a *compile* (the
arguments hold ``-c``) appends one line ``compile <derivation> <source>`` to ``folder/log`` and a
*link* (``-o`` without ``-c``) appends ``link <derivation> <output>``; ``<derivation>`` is the
store path name of the derivation being built, read from the working folder (the builder runs
every action in ``.recipe/build/<name>/w``; a run from any other folder is not an action and is
neither logged nor held). Each line is one ``>>`` of a short line: a single
``O_APPEND`` write, so lines of concurrent compilers never interleave. Anything else (toolchain
detection runs ``--version``, ``-dumpmachine``, ``-print-prog-name=...``) passes through
untouched and unlogged.

The scripts never change: how they behave is read at run time from ``folder/control``, a file of
shell assignments that :class:`WrapperToolchain` writes. So a test changes the behaviour between
two runs without changing the toolchain's identity (the scripts' bytes enter every derivation),
and the run after a crash rebuilds the very derivation that was killed. The build environment is
cleared, so an environment variable could not reach the scripts anyway.

Behaviours (each matched against ``<derivation>:<source or output>`` with a shell pattern):

- a *hold*: the script creates a marker file holding the derivation name, then waits until a
  release file exists (or ``max_wait`` seconds pass) before it runs the compiler: the test waits
  on the marker, not on the clock, then kills the build, runs a collection, fills a disk... and
  releases it (or not);
- a *delay*: every compile sleeps that long first (to make concurrent runs overlap).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REAL_CC, REAL_CXX = "/usr/bin/gcc", "/usr/bin/g++"

_SCRIPT = r"""#!/bin/sh
# Test wrapper of {real}: see tests/toolchains.py. Behaviour: {folder}/control
here={folder}
compile=0; link=0; src=; out=; prev=
for a in "$@"; do
    case "$a" in
        -c) compile=1 ;;
        -*) ;;
        *.c|*.cc|*.cpp|*.cxx|*.C|*.c++) [ "$prev" = -o ] || src=$a ;;
    esac
    [ "$prev" = -o ] && out=$a
    prev=$a
done
[ -n "$out" ] && [ "$compile" = 0 ] && link=1
wd=$(pwd)
case "$wd" in
    */.recipe/build/*/w) ;;
    *) compile=0; link=0 ;;  # not an action of a build: detection, a probe, a person
esac
if [ "$compile" = 1 ] || [ "$link" = 1 ]; then
    HOLD=; HOLD_MARKER=; HOLD_RELEASE=; HOLD_MAX=0; DELAY=
    [ -f "$here/control" ] && . "$here/control"
    wd=${{wd%/w}}; drv=${{wd##*/}}
    if [ "$compile" = 1 ]; then kind=compile; what=$src; else kind=link; what=$out; fi
    what=${{what#../}}
    printf '%s %s %s\n' "$kind" "$drv" "$what" >> "$here/log"
    if [ "$compile" = 1 ] && [ -n "$DELAY" ]; then {sleep} "$DELAY"; fi
    if [ -n "$HOLD" ]; then
        case "$kind:$drv:$what" in
            $HOLD)
                printf '%s\n' "$drv" > "$HOLD_MARKER.$$"
                {mv} -f "$HOLD_MARKER.$$" "$HOLD_MARKER"
                i=0
                while [ ! -e "$HOLD_RELEASE" ] && [ "$i" -lt "$HOLD_MAX" ]; do
                    {sleep} 0.1; i=$((i + 1))
                done ;;
        esac
    fi
fi
exec {real} "$@"
"""

_LINE = re.compile(r"(compile|link) ([0-9a-z]{32}-(.+)-([^-]+)-([^-]+)) (.+)")


@dataclass(frozen=True)
class Invocation:
    kind: str  # "compile" | "link"
    derivation: str  # the store path name being built
    project: str
    version: str
    target: str
    file: str  # the source compiled, or the output linked (relative to the build folder)


@dataclass
class WrapperToolchain:
    folder: Path
    cc: Path
    cxx: Path
    log: Path
    control: Path
    _holds: int = field(default=0)

    def spec(self) -> dict[str, str]:
        """The ``toolchain:`` of a target that uses these wrappers."""
        return {"cc": str(self.cc), "cxx": str(self.cxx)}

    def spec_yaml(self) -> str:
        return f"{{cc: {self.cc}, cxx: {self.cxx}}}"

    # -- behaviour --------------------------------------------------------------------------

    def hold(self, kind: str = "compile", project: str = "*", file: str = "*",
             target: str = "*", max_wait: float = 300.0) -> Hold:
        """From now on, every matching compile or link (``kind``) stalls before running the
        compiler until :meth:`Hold.go` (or ``max_wait`` seconds, so that nothing is left
        waiting forever when a test dies). Replaces any earlier hold or delay."""
        self._holds += 1
        marker = self.folder / f"held-{self._holds}"
        release = self.folder / f"release-{self._holds}"
        pattern = f"{kind}:*-{project}-*-{target}:{file}"
        self._write(HOLD=pattern, HOLD_MARKER=str(marker), HOLD_RELEASE=str(release),
                    HOLD_MAX=str(int(max_wait * 10)))
        return Hold(marker, release)

    def delay_compiles(self, seconds: float) -> None:
        """Every compile sleeps ``seconds`` before it runs (replaces any hold)."""
        self._write(DELAY=f"{seconds:g}")

    def calm(self) -> None:
        """Back to plain pass-through (the log goes on)."""
        self.control.unlink(missing_ok=True)

    def _write(self, **values: str) -> None:
        text = "".join(f"{k}={shlex.quote(v)}\n" for k, v in values.items())
        tmp = self.control.with_name("control.tmp")
        tmp.write_text(text)
        tmp.replace(self.control)  # a compiler starting now reads the old or the new, whole

    # -- the log ----------------------------------------------------------------------------

    def invocations(self) -> list[Invocation]:
        if not self.log.exists():
            return []
        found = []
        for line in self.log.read_text().splitlines():
            match = _LINE.fullmatch(line)
            assert match, f"malformed wrapper log line: {line!r}"
            kind, drv, project, version, target, file = match.groups()
            found.append(Invocation(kind, drv, project, version, target, file))
        return found

    def compiles(self) -> Counter[tuple[str, str, str]]:
        """How many times each (project, target, source) was compiled."""
        return Counter((i.project, i.target, i.file) for i in self.invocations()
                       if i.kind == "compile")

    def links(self) -> Counter[tuple[str, str, str]]:
        return Counter((i.project, i.target, i.file) for i in self.invocations()
                       if i.kind == "link")

    def clear_log(self) -> None:
        self.log.unlink(missing_ok=True)


@dataclass(frozen=True)
class Hold:
    marker: Path  # appears (holding the derivation name) when a build reaches the hold
    release: Path  # create it to let the build go on

    def wait(self, timeout: float = 240.0, alive: subprocess.Popen | None = None) -> str:
        """Wait until a build reaches the hold; the derivation it holds. ``alive``: a
        ``subprocess.Popen`` whose early exit ends the wait with an assertion."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if alive is not None and alive.poll() is not None:
                _out, err = alive.communicate()
                raise AssertionError(f"the build ended (exit {alive.returncode}) before it "
                                     f"reached the hold:\n{err}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no build reached the hold within {timeout:.0f} s")
            time.sleep(0.05)
        return self.marker.read_text().strip()

    def go(self) -> None:
        self.release.touch()

    @property
    def reached(self) -> bool:
        return self.marker.exists()


def make_toolchain(folder: Path) -> WrapperToolchain:
    """Write the wrapper scripts into ``folder`` (created); see the module's docstring."""
    folder = Path(folder).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    sleep = shutil.which("sleep") or "/bin/sleep"
    mv = shutil.which("mv") or "/bin/mv"
    paths = {}
    for name, real in (("cc", REAL_CC), ("c++", REAL_CXX)):
        path = folder / name
        path.write_text(_SCRIPT.format(real=real, folder=shlex.quote(str(folder)),
                                       sleep=shlex.quote(sleep), mv=shlex.quote(mv)))
        path.chmod(0o755)
        paths[name] = path
    return WrapperToolchain(folder, paths["cc"], paths["c++"], folder / "log",
                            folder / "control")
