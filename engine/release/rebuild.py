"""A second realise of a plan, as unlike the first as can be without privileges.

The rebuild runs recipe itself again (``python -m engine.cli.main realise``) in a child process,
so that every process-wide thing really differs: from a copy of the checkout at another path,
into a fresh store (no action-cache hit can hide a difference), with another umask, TZ,
locale, HOME, TMPDIR, working folder, PYTHONHASHSEED (dict and set order), SOURCE_DATE_EPOCH,
number of jobs (scheduling order), and compiler variables a leaky build would pick up (CFLAGS,
CPATH, LIBRARY_PATH, ...). Builds run in a clean environment (``engine.build.actions``), so
none of these may change an output; the rebuild proves it rather than trusting it.

The copy holds exactly what the plan declares: its documents, every declared source and header,
and the files its cases name. A build that reads anything else fails in both runs alike.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import engine
from engine.derive.derivation import declared_files
from engine.documents.models import Plan
from engine.errors import Failure

# Set in the rebuild's environment: none of them may reach a build.
NOISE = {
    "CFLAGS": "-O0 -g3 -DRECIPE_CHECK_NOISE=1",
    "CXXFLAGS": "-O0 -g3 -DRECIPE_CHECK_NOISE=1",
    "LDFLAGS": "-Wl,--build-id=uuid",
    "CPATH": "/nonexistent/recipe-check/include",
    "LIBRARY_PATH": "/nonexistent/recipe-check/lib",
    "MAKEFLAGS": "-j7",
    "RECIPE_CHECK_NOISE": "1",
}
# For each varied setting, two values: the rebuild takes the first that differs from this run.
CHOICES = {
    "TZ": ("ZZZ-14", "YYY+12"),  # POSIX TZ strings: no tzdata needed; UTC+14 and UTC-12
    "LC_ALL": ("fr_CH.UTF-8", "C"),
    "LANG": ("fr_CH.UTF-8", "C"),
    "LANGUAGE": ("fr_CH:fr", "en_US:en"),
    "PYTHONHASHSEED": ("271828", "314159"),
    "SOURCE_DATE_EPOCH": ("1700000000", "1"),
}


class RebuildFailed(Failure):
    """The second realise, in the varied environment, did not succeed."""


@dataclass(frozen=True)
class Variation:
    what: str
    first: str  # in this run ("" when unset)
    second: str  # in the rebuild


@dataclass
class Rebuild:
    folder: Path  # holds everything below: remove it when done
    plan: Path  # the copied plan document
    store: Path  # the fresh store
    variations: list[Variation] = field(default_factory=list)
    # how the child runs
    env: dict[str, str] = field(default_factory=dict)
    umask: int = 0o022
    cwd: Path | None = None
    jobs: int = 1


def prepare(plan: Plan, store_root: Path, folder: Path, jobs: int) -> Rebuild:
    """Copy the checkout into ``folder`` (empty) and choose how the child differs."""
    checkout = folder / "elsewhere" / "checkout"
    copied = copy_checkout(plan, checkout)
    rebuild = Rebuild(folder, copied, folder / "store")
    for name in ("home", "tmp", "cwd"):
        (folder / name).mkdir()
    env = dict(os.environ)
    env.pop("RECIPE_STORE", None)
    here = str(Path(engine.__file__).resolve().parent.parent)  # this very recipe
    if env.get("PYTHONPATH", "").split(os.pathsep)[0] != here:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    add = rebuild.variations.append
    add(Variation("checkout", str(plan.dir), str(checkout)))
    add(Variation("store", str(store_root), str(rebuild.store)))
    for name, value in (("HOME", folder / "home"), ("TMPDIR", folder / "tmp")):
        add(Variation(name, os.environ.get(name, ""), str(value)))
        env[name] = str(value)
    add(Variation("working folder", os.getcwd(), str(folder / "cwd")))
    for name, choices in CHOICES.items():
        value = next(c for c in choices if c != os.environ.get(name))
        add(Variation(name, os.environ.get(name, ""), value))
        env[name] = value
    umask = _umask()
    other = 0o077 if umask != 0o077 else 0o002
    add(Variation("umask", f"{umask:04o}", f"{other:04o}"))
    second_jobs = 1 if jobs > 1 else 2
    add(Variation("jobs", str(jobs), str(second_jobs)))
    env.update(NOISE)
    add(Variation("added", "", " ".join(sorted(NOISE))))
    rebuild.env, rebuild.umask, rebuild.cwd, rebuild.jobs = env, other, folder / "cwd", \
        second_jobs
    return rebuild


def run(rebuild: Rebuild, targets: list[str],
        projects: list[str] | None) -> dict[tuple[str, str], str]:
    """Realise the copied plan into the fresh store; (project, target) -> store path name."""
    argv = [sys.executable, "-m", "engine.cli.main", "realise", str(rebuild.plan),
            "--store", str(rebuild.store), "--json", "-j", str(rebuild.jobs)]
    argv += [a for t in targets for a in ("-t", t)]
    argv += [a for p in projects or () for a in ("-p", p)]
    done = subprocess.run(argv, env=rebuild.env, cwd=rebuild.cwd, umask=rebuild.umask,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        error = RebuildFailed(f"the rebuild in a varied environment failed (exit "
                              f"{done.returncode})",
                              "the build depends on something that differs between the two "
                              "runs; see its output above")
        error.detail = done.stderr
        raise error
    try:
        return {(e["project"], e["target"]): Path(e["path"]).name
                for e in json.loads(done.stdout)}
    except (ValueError, KeyError, TypeError) as problem:
        raise RebuildFailed(f"the rebuild printed what recipe cannot read ({problem})",
                            "run the same recipe in both") from None


def plan_files(plan: Plan) -> set[Path]:
    """Every file the plan declares: documents, sources and headers, the files cases name."""
    files = {plan.dir / plan.file.name}
    for project in plan.projects.values():
        files.add(project.file)
        files.update(project.dir / f for f in declared_files(project))
        for case in project.cases:
            files.add(case.file)
            named = [case.stdin_file, case.expect.stdout_file, case.expect.stderr_file,
                     *case.files]
            files.update(case.folder / n for n in named if n)
    return files


def copy_checkout(plan: Plan, dest: Path) -> Path:
    """Copy what the plan declares below ``dest``, at the same relative paths; the plan."""
    for file in sorted(plan_files(plan)):
        rel = os.path.relpath(os.path.realpath(file), plan.dir)
        if rel.startswith(".."):  # the loader refused escapes: a link swapped since
            raise RebuildFailed(f"{file} is no longer inside the plan's folder",
                                "run the check again")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return dest / plan.file.name


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask

