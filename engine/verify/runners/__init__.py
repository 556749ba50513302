"""Runners: how a case's program runs when it was built for another machine.

A target's runner is chosen from its triple, one module per kind: ``qemu`` (``qemu-<arch>`` for
Linux, with the cross sysroot for glibc triples), ``wine`` (``wine64`` for Windows), ``wasi``
(wasmtime for WASI). A target's ``runner:`` overrides the choice: ``none`` runs nothing, a list is
the runner's command. A program of the host's own architecture and OS runs directly (``None``).

A runner only wraps the command line: the process still runs under the case's containment
(reaper, Landlock, timeout, output caps), with the timeout scaled by the runner's factor.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from engine import watch
from engine.documents.models import TargetSpec
from engine.verify.runners import qemu, wasi, wine
from engine.verify.runners.base import NoRunner, Runner, RunnerMissing

__all__ = ["Choice", "NoRunner", "Runner", "RunnerMissing", "choose", "choose_auto", "host_arch",
           "identity", "skip_reason"]


Choice = Runner | NoRunner | None  # None: the host runs the program itself


def identity(runner: Runner) -> tuple[str, ...]:
    """What of a runner changes what a case observes (its outcome cache key): its command
    (not where it is installed), how it names the program and whether children run too."""
    return (runner.name, *runner.prefix[1:], *(["argv0"] if runner.argv0 else []),
            *(["binfmt"] if runner.namespace else []))


def choose(spec: TargetSpec, state: Path | None = None) -> Choice:
    """The runner of ``spec``'s programs; ``state``: a folder a runner may keep state in."""
    factor = spec.timeout_factor
    if spec.runner == "none":
        return NoRunner(f"runner: none for {spec.triple}", declared=True)
    if isinstance(spec.runner, tuple):
        program = watch.which(spec.runner[0])  # a remembered verify depends on it too
        if program is None:
            raise RunnerMissing(f"target '{spec.name}': runner {spec.runner[0]} is not "
                                "installed", f"install it{_hint(spec)}, or write runner: none",
                                pos=spec.at("runner"))
        # The target's command, with what the automatic runner of its triple would add
        # (wine's prefix, qemu's cleaning of its signal line).
        base = choose_auto(spec, state)
        name = Path(spec.runner[0]).name
        template = base if isinstance(base, Runner) else Runner(name, ())
        return dataclasses.replace(template, name=name, prefix=(program, *spec.runner[1:]),
                                   factor=factor or template.factor)
    chosen = choose_auto(spec, state)
    if isinstance(chosen, Runner) and factor:
        chosen = dataclasses.replace(chosen, factor=factor)
    return chosen


def choose_auto(spec: TargetSpec, state: Path | None) -> Choice:
    """The runner the triple calls for."""
    triple = spec.triple
    if triple == "host":
        return None
    arch, _, rest = triple.partition("-")
    os_name = rest.split("-")[0]
    if os_name == "linux":
        if arch == host_arch():
            return None  # this machine runs its own architecture's Linux programs
        return qemu.runner(triple)
    if os_name == "windows":
        return wine.runner(triple, state)
    if os_name == "wasi":
        return wasi.runner(triple)
    return NoRunner(f"no runner for {triple} (nothing here runs {os_name} programs)")


def skip_reason(skip_on: dict[str, str], triple: str) -> str | None:
    """The reason of the first key of a case's ``skip:`` map that names part of ``triple``:
    ``windows`` skips on x86_64-windows-gnu, ``aarch64-linux`` on aarch64-linux-musl and
    aarch64-linux-gnu.2.28, ``host`` on the host's own targets (a glibc floor is ignored)."""
    words = _words(triple) if triple != "host" else \
        [host_arch(), os.uname().sysname.lower(), "gnu"]
    for key, reason in skip_on.items():
        if key == "host" and triple == "host":
            return reason
        want = _words(key)
        if any(words[i:i + len(want)] == want for i in range(len(words) - len(want) + 1)):
            return reason
    return None


def _words(triple: str) -> list[str]:
    return [word.split(".")[0] for word in triple.split("-")]


def host_arch() -> str:
    machine = os.uname().machine  # platform.machine()'s answer, without importing platform
    return {"amd64": "x86_64", "arm64": "aarch64", "i686": "x86", "i386": "x86"}.get(
        machine.lower(), machine)


def _hint(spec: TargetSpec) -> str:
    name = spec.runner[0] if isinstance(spec.runner, tuple) else ""
    if name.startswith("qemu-"):
        return " (Debian: apt-get install qemu-user)"
    if "wine" in name:
        return " (Debian: apt-get install wine64)"
    return ""
