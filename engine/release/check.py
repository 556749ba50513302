"""``check``: realise, rebuild everything elsewhere, compare bit for bit (Nix's ``--check``).

Every derivation of the selection and of its dependencies is realised as usual, then realised a
second time by another recipe process from a copy of the checkout, into a fresh store, under a
varied environment (``engine.release.rebuild``). Each is ``reproducible`` when the rebuild gave
the same store path name (the derivation did not change) holding a tree with the same NAR
hash; otherwise it ``differs``, with the files that differ (or the derivation's keys that
did), and diffoscope's report when it is installed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from engine.build.cache import PathCache
from engine.build.events import Reporter
from engine.build.realise import realise
from engine.derive.derivation import Derivation
from engine.documents.models import Plan
from engine.release import rebuild
from engine.release.diff import diffoscope, json_differences, tree_differences
from engine.store import PathInfo, Store
from engine.store.fsutil import remove_tree


@dataclass
class Verdict:
    project: str
    target: str
    name: str  # the store path name of the first build
    status: Literal["reproducible", "differs"]
    rebuilt: str | None = None  # the store path name the rebuild gave
    files: list[str] = field(default_factory=list)  # "<file>: <how it differs>"
    derivation: list[str] = field(default_factory=list)  # keys at which derivations differ
    diffoscope: str | None = None  # its text report, when installed and run


@dataclass
class CheckReport:
    verdicts: list[Verdict]
    variations: list[rebuild.Variation]
    kept: Path | None = None  # the rebuild's folder, when asked to keep it

    @property
    def reproducible(self) -> bool:
        return all(v.status == "reproducible" for v in self.verdicts)


def check(plan: Plan, store: Store, targets: list[str], projects: list[str] | None = None,
          jobs: int | None = None, keep: bool = False, use_diffoscope: bool = True,
          reporter: Reporter | None = None,
          announce: Callable[[str], None] | None = None,
          cache: PathCache | None = None) -> CheckReport:
    """Realise, rebuild in a varied environment, and compare every derivation. ``announce``
    hears, in words, when the rebuild starts (it may take as long as the first build). The
    first realise looks actions up in ``cache``; the rebuild never does (it must build)."""
    result = realise(plan, store, targets, projects, jobs, reporter=reporter, cache=cache)
    everything: dict[str, Derivation] = {}
    for drv in result.derivations:
        # Registry crates are paths of their own (of every Rust project of the closure).
        for d in [*(c for u in [*drv.deps, drv] for c in u.crates), *drv.deps, drv]:
            everything.setdefault(d.name, d)
    folder = Path(tempfile.mkdtemp(prefix="recipe-check-"))
    try:
        again = rebuild.prepare(plan, store.root, folder, jobs or os.cpu_count() or 1)
        if announce:
            announce(f"rebuilding {len(everything)} derivations in {folder}")
        rebuild.run(again, targets, projects)
        with Store.open(again.store, create=False) as second:
            rebuilt = _by_key(second.paths())
            verdicts = [_compare(drv, store, second, rebuilt.get(drv.key), use_diffoscope)
                        for drv in everything.values()]
    finally:
        if not keep:
            remove_tree(folder)
    return CheckReport(verdicts, again.variations, folder if keep else None)


def _by_key(infos: list[PathInfo]) -> dict[tuple[str, str], PathInfo]:
    """The rebuilt paths by (project, target), read from the derivations they record."""
    found = {}
    for info in infos:
        data = json.loads(info.derivation)
        if "crate" in data:  # a registry crate: its node in the crate graph
            node = f"{data['project']['name']}-{data['project']['version']}"
            found[(node + ("-host" if data["crate"]["host"] else ""), "crate")] = info
        else:
            found[(data["project"]["name"], data["target"]["name"])] = info
    return found


def _compare(drv: Derivation, first: Store, second: Store, other: PathInfo | None,
             use_diffoscope: bool) -> Verdict:
    project, target = drv.key
    verdict = Verdict(project, target, drv.name, "differs")
    mine = first.info(drv.name)
    if other is None or mine is None:  # the rebuild realised the whole closure, so cannot be
        verdict.files = ["(not realised by the rebuild)"]
        return verdict
    verdict.rebuilt = other.name
    if other.name != drv.name:
        verdict.derivation = json_differences(drv.data, json.loads(other.derivation))
    if other.name == drv.name and other.nar_hash == mine.nar_hash:
        verdict.status = "reproducible"
        return verdict
    here, there = first.path(drv.name), second.path(other.name)
    verdict.files = tree_differences(here, there)
    if verdict.files and use_diffoscope:
        verdict.diffoscope = diffoscope(here, there)
    return verdict
