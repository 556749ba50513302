"""``release``: realise, verify the cases, and write the release folder.

The folder ``out`` receives, per selected project x target, ``<project>-<version>-<target>.tar.gz``
(``engine.release.archive``), one ``provenance.intoto.jsonl`` with a statement per tarball
(``engine.release.provenance``) and ``SHA256SUMS`` over both (``sha256sum -c SHA256SUMS``
checks them). Everything is written into a temporary folder beside ``out`` and renamed into
place at the end: a failed or interrupted release leaves ``out`` as it was.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from engine.build.cache import PathCache
from engine.build.events import Reporter
from engine.build.realise import realise
from engine.derive.derivation import Derivation
from engine.documents.models import Plan
from engine.errors import Failure, UsageError, display_path
from engine.release import provenance
from engine.release.archive import write_tarball
from engine.release.rebuild import plan_files
from engine.store import Store
from engine.store.fsutil import exchange, remove_tree
from engine.toolchain.flags import SOURCE_DATE_EPOCH
from engine.verify import distributed, runner
from engine.verify.outcome import Outcome

PROVENANCE = "provenance.intoto.jsonl"
SUMS = "SHA256SUMS"


class CasesFailed(Failure):
    """The plan's cases do not all pass: a release would ship what was not verified."""


@dataclass(frozen=True)
class Artifact:
    file: str  # its name in the release folder
    sha256: str
    project: str | None = None  # None for the provenance
    target: str | None = None
    store_path: str | None = None


@dataclass
class Release:
    out: Path
    epoch: int
    artifacts: list[Artifact] = field(default_factory=list)
    cases: int = 0  # cases run (and passed); 0 with skip_verify
    verified: bool = True


def source_date_epoch(environ: Mapping[str, str]) -> int:
    """``$SOURCE_DATE_EPOCH`` (reproducible-builds.org's convention) or recipe's constant,
    1980-01-01T00:00:00Z, the same date every build uses."""
    text = environ.get("SOURCE_DATE_EPOCH")
    if text is None or text == "":
        return SOURCE_DATE_EPOCH
    if not text.isascii() or not text.isdigit() or int(text) >= 8 ** 11:
        raise UsageError(f"SOURCE_DATE_EPOCH={text!r} is not a time a tarball can hold",
                         "set it to whole seconds since 1970 (e.g. $(git log -1 --format=%ct)),"
                         " or unset it")
    return int(text)


def check_out(out: Path, force: bool) -> None:
    """Refuse an output folder that would lose something: before anything is built."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise UsageError(f"--out {out} exists and is not a folder", "name a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(f"--out {out} exists and is not empty",
                         "pass --force to replace it, or name another folder")


def check_out_against(out: Path, plan: Plan, store_root: Path) -> None:
    """``--force`` must never delete the plan's documents or sources, or the store."""
    out = Path(os.path.realpath(out))
    store_root = Path(os.path.realpath(store_root))
    if plan.dir.is_relative_to(out) or store_root.is_relative_to(out) or \
            out.is_relative_to(store_root):
        what = "the store" if out.is_relative_to(store_root) or \
            store_root.is_relative_to(out) else "the plan's folder"
        raise UsageError(f"--out {out} overlaps {what}",
                         "name a folder of its own for the release")
    inside = [f for f in plan_files(plan) if Path(os.path.realpath(f)).is_relative_to(out)]
    if inside:
        raise UsageError(f"--out {out} holds {display_path(min(inside))}, a file of the plan",
                         "name a folder of its own for the release")


def release(plan: Plan, store: Store, out: Path, *, targets: list[str],
            projects: list[str] | None = None, jobs: int | None = None, force: bool = False,
            skip_verify: bool = False, epoch: int = SOURCE_DATE_EPOCH,
            reporter: Reporter | None = None,
            observe: Callable[[Outcome], None] | None = None,
            cache: PathCache | None = None) -> Release:
    """Realise the selection, run its cases (unless ``skip_verify``), write ``out``; actions
    and outcomes are looked up in ``cache`` (default: the store's own)."""
    check_out(out, force)
    check_out_against(out, plan, store.root)
    result = realise(plan, store, targets, projects, jobs, reporter=reporter, cache=cache)
    done = Release(out, epoch, verified=not skip_verify)
    if not skip_verify:
        cases = runner.select(plan, result.paths)
        executor = getattr(cache, "executor", None)
        on_cluster = {} if executor is None else distributed.on_cluster(executor)
        outcomes = runner.run_jobs(cases, runner.Settings(store=store, outcomes=cache,
                                                          **on_cluster),
                                   workers=jobs or os.cpu_count() or 1, observe=observe)
        failed = [o for o in outcomes if not o.ok]  # xfailed and skipped do not stop it
        if failed:
            names = ", ".join(o.ident for o in failed[:3]) + (", ..." if len(failed) > 3 else "")
            raise CasesFailed(f"{len(failed)} of {len(outcomes)} cases did not pass ({names}); "
                              "nothing released",
                              "fix them (see 'recipe verify'), or pass --skip-verify to "
                              "release anyway")
        done.cases = len(outcomes)

    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    os.mkdir(temp)
    try:
        statements = []
        for drv in sorted(result.derivations, key=_label):
            label = _label(drv)
            tarball = f"{label}.tar.gz"
            write_tarball(result.paths[drv.key], temp / tarball, label, epoch)
            digest = _sha256(temp / tarball)
            info = store.info(drv.name)
            assert info is not None  # realised just now, and rooted
            statements.append(provenance.statement(plan, drv, tarball, digest, info.nar_hash,
                                                   epoch))
            done.artifacts.append(Artifact(tarball, digest, drv.project.name,
                                           drv.target.name, drv.name))
        (temp / PROVENANCE).write_bytes(provenance.jsonl(statements))
        done.artifacts.append(Artifact(PROVENANCE, _sha256(temp / PROVENANCE)))
        done.artifacts.sort(key=lambda a: a.file)
        (temp / SUMS).write_bytes("".join(f"{a.sha256}  {a.file}\n"
                                          for a in done.artifacts).encode())
        _put_in_place(temp, out)
    finally:
        remove_tree(temp)
    return done


def _put_in_place(temp: Path, out: Path) -> None:
    """``temp`` becomes ``out``; what ``out`` held is removed (``temp`` ends up holding it)."""
    if not out.exists():
        os.rename(temp, out)
        return
    if not exchange(temp, out):  # one atomic swap where the kernel can, else two renames
        aside = temp.with_suffix(".old")
        os.rename(out, aside)
        os.rename(temp, out)
        os.rename(aside, temp)


def _label(drv: Derivation) -> str:
    """``<project>-<version>-<target>``, and the triple of a cross target after it."""
    triple = drv.target.triple
    suffix = f"-{triple}" if triple != "host" and triple != drv.target.name else ""
    return f"{drv.project.name}-{drv.project.version}-{drv.target.name}{suffix}"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
