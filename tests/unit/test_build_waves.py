"""How a derivation's waves run (engine/build/builder.py): cached actions answered without a
thread, a miss prepared and started at once, the cached inputs of the link that follows put in
place while the compile runs, and a build that fails before its actions start leaves nothing
behind. Real gcc, a real store."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from engine.build import realise as building
from engine.build.builder import DerivationBuild, StopFlag
from engine.build.events import Silent
from engine.build.realise import BuildFailed
from engine.derive.derivation import Recorded
from engine.documents.load import load_plan
from engine.hashing import canonical
from engine.store import Store
from tests.conftest import run_recipe, write_tree

UNITS = 6


def _project(root: Path, units: int = UNITS) -> Path:
    total = " + ".join(f"u{i}()" for i in range(1, units))
    files = {
        "plan.yaml": """
            kind: plan
            projects: ["app/project.yaml"]
            targets: {release: {opt: release}}
            default_targets: [release]
        """,
        "app/project.yaml": """
            kind: project
            name: app
            version: 1.0.0
            language: c
            standard: c17
            sources: ["src/*.c"]
            headers: ["src/*.h"]
            outputs:
              - {name: app, kind: executable}
        """,
        "app/src/units.h": "".join(f"int u{i}(void);\n" for i in range(1, units)),
        "app/src/main.c": '#include <stdio.h>\n#include "units.h"\nint main(void) {\n'
                          f'    printf("%d\\n", {total});\n    return 0;\n}}\n',
    }
    for i in range(1, units):
        files[f"app/src/u{i}.c"] = f'#include "units.h"\nint u{i}(void) {{ return {i}; }}\n'
    return write_tree(root, files)


@pytest.mark.parametrize("units", [UNITS, 40])
def test_a_one_file_edit_compiles_that_file_and_links_with_the_rest_cached(
        tmp_path: Path, units: int) -> None:
    src = _project(tmp_path / "src", units)
    store = tmp_path / "store"
    first = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert first.returncode == 0, first.stderr
    (src / "app/src/u3.c").write_text('#include "units.h"\nint u3(void) { return 30; }\n')
    again = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert again.returncode == 0, again.stderr
    path = Path(again.stdout.split()[-1])
    log = run_recipe("store", "--store", store, "log", path.name)
    assert log.returncode == 0, log.stderr
    lines = log.stdout.splitlines()
    compiled = [line for line in lines if line.startswith("$ ") and " -c " in line]
    assert len(compiled) == 1 and "src/u3.c" in compiled[0]
    assert sum(line.startswith("# cached ") for line in lines) == units - 1
    ran = os.popen(str(path / "bin/app")).read()  # noqa: S605 - our own program, no shell input
    assert ran == f"{sum(range(1, units)) - 3 + 30}\n"


# 40 units too: the edited one early or late among the inputs staged.
@pytest.mark.parametrize(("units", "edited"), [(UNITS, 2), (40, 12), (40, 35)])
def test_a_source_edited_after_it_was_hashed_fails_the_build_and_leaves_nothing(
        tmp_path: Path, units: int, edited: int) -> None:
    src = _project(tmp_path / "src", units)
    with Store.open(tmp_path / "store") as store:
        plan = load_plan(src / "plan.yaml")
        drv, = building.derive(plan, store, ["release"])
        # Edited between hashing (the derivation) and staging (the build): the bytes the
        # derivation names are nowhere, and what is there now is not them.
        (src / f"app/src/u{edited}.c").write_text(
            f'#include "units.h"\nint u{edited}(void) {{ return 7; }}\n')
        with pytest.raises(BuildFailed, match=rf"app: src/u{edited}\.c changed while building"):
            building._build(store, [drv], 2, False, False, building.Silent(),
                            building.LocalCache(store))
        assert not store.is_valid(drv.name)
        assert not store.build_dir(drv.name).exists()
        assert not any(store.path(drv.name).parent.glob(f"{drv.name}*"))


def test_a_derivation_names_the_inputs_edited_since_the_last_run(
        tmp_path: Path) -> None:
    src = _project(tmp_path / "src")
    time.sleep(2.1)  # older than the digest cache's racily-clean window
    with Store.open(tmp_path / "store") as store:
        plan = load_plan(src / "plan.yaml")
        first, = building.derive(plan, store, ["release"])
        assert first.edited == {f"w/src/{name}" for name in
                                ["units.h", "main.c", *(f"u{i}.c" for i in range(1, UNITS))]}
        (src / "app/src/u4.c").write_text('#include "units.h"\nint u4(void) { return 40; }\n')
        again, = building.derive(load_plan(src / "plan.yaml"), store, ["release"])
        assert again.edited == {"w/src/u4.c"}  # the rest answered from their stat data
        unchanged, = building.derive(load_plan(src / "plan.yaml"), store, ["release"])
        assert unchanged.edited == {"w/src/u4.c"}  # written just now: racily clean, hashed


def test_a_derivation_and_its_record_give_the_fingerprint_its_name_hashes(tmp_path: Path) -> None:
    """The canonical JSON made once when deriving is what registering records, and what a
    derivation read back from the store (``store verify --repair``) gives again."""
    src = _project(tmp_path / "src")
    with Store.open(tmp_path / "store") as store:
        drv, = building.derive(load_plan(src / "plan.yaml"), store, ["release"])
        assert drv.fingerprint == canonical(drv.data)
        assert drv.name == store.make_name(canonical(drv.data), drv.name.partition("-")[2])
        recorded = Recorded.load(drv.name, drv.fingerprint)
        assert recorded.fingerprint == drv.fingerprint


#: A compiler wrapper's start: anything but a compile in a build folder (the toolchain's
#: probes, the link) is plain gcc.
_ONLY_COMPILES = """#!/bin/sh
case "$(/bin/pwd)" in
    */.recipe/build/*/w) ;;
    *) exec /usr/bin/gcc "$@" ;;
esac
case " $* " in
    *" -c "*) ;;
    *) exec /usr/bin/gcc "$@" ;;
esac
"""


def _use_cc(src: Path, tools: Path, script: str) -> None:
    """The plan's target compiles with ``script`` (its ``{d}``: the folder ``tools``)."""
    tools.mkdir()
    cc = tools / "cc"
    cc.write_text(script.format(d=tools))
    cc.chmod(0o755)
    plan = (src / "plan.yaml").read_text().replace(
        "{release: {opt: release}}", f"{{release: {{opt: release, toolchain: {{cc: {cc}}}}}}}")
    (src / "plan.yaml").write_text(plan)


_COUNTING_CC = _ONLY_COMPILES + """\
# a compile first notes how many compiles run with it (itself included), then sleeps
/bin/mkdir "{d}/run.$$"
/bin/ls "{d}" | /bin/grep -c '^run\\.' >> "{d}/counts"
/bin/sleep 0.3
/bin/rmdir "{d}/run.$$"
exec /usr/bin/gcc "$@"
"""


def test_jobs_bound_the_tools_at_once_though_more_threads_finish_actions(tmp_path: Path) -> None:
    """``-j 2``: two compilers at a time, never three (the pool's other threads only hash
    and record what a tool made), and two do run together."""
    src = _project(tmp_path / "src")
    tools = tmp_path / "tools"
    _use_cc(src, tools, _COUNTING_CC)
    done = run_recipe("realise", src / "plan.yaml", "--store", tmp_path / "store", "-j", "2")
    assert done.returncode == 0, done.stderr
    counts = [int(n) for n in (tools / "counts").read_text().split()]
    assert len(counts) == UNITS
    assert max(counts) == 2, counts


def test_staged_copies_are_read_only_and_become_their_blobs_when_taken(tmp_path: Path) -> None:
    """A new store's inputs are copied from the checkout (checked as they are copied) and
    become their blobs only once the first tools run (``_take_inputs``, from the build's
    thread): the copies are read-only from the start, as the blobs they become, so no tool
    started before the take can write one; and once taken, each is its blob (one inode)."""
    src = _project(tmp_path / "src")
    with Store.open(tmp_path / "store") as store, ThreadPoolExecutor(2) as pool:
        drv, = building.derive(load_plan(src / "plan.yaml"), store, ["release"])
        build = DerivationBuild(store, drv, pool, Silent(), StopFlag(False))
        build._stage()
        blobs = {rel: tmp_path / "store/.recipe/cas" / d[7:9] / d[7:]
                 for rel, d in drv.data["inputs"].items()}
        staged = {rel: build.staging / "w" / rel for rel in blobs}
        assert {oct(p.stat().st_mode & 0o777) for p in staged.values()} == {"0o444"}
        assert not any(b.exists() for b in blobs.values())  # not yet: after the first tools
        build._take_inputs()
        for rel, blob in blobs.items():
            assert blob.is_file() and blob.stat().st_ino == staged[rel].stat().st_ino, rel
        assert build.kept == {d.removeprefix("sha256:") for d in drv.data["inputs"].values()}


_LOGGING_CC = _ONLY_COMPILES + """\
# a compile first notes its source and takes 0.1 s (longer than looking up the rest); u5.c
# takes 0.8 s while {d}/slow is there
next=""
for arg in "$@"; do
    [ -n "$next" ] && source="$arg" && next=""
    [ "$arg" = "-c" ] && next=1
done
/bin/echo "$source" >> "{d}/order"
case "$source" in
    *u5.c) [ -e "{d}/slow" ] && /bin/sleep 0.7 ;;
esac
/bin/sleep 0.1
exec /usr/bin/gcc "$@"
"""


def test_a_wave_starts_first_the_tools_that_took_longest_the_last_time(tmp_path: Path) -> None:
    """The compiles of a wave start in the plan's order the first time; the next time the
    one that took longest starts as soon as a thread is free, not last (timings.py)."""
    src = _project(tmp_path / "src")
    tools = tmp_path / "tools"
    _use_cc(src, tools, _LOGGING_CC)
    store = tmp_path / "store"
    (tools / "slow").touch()
    first = run_recipe("realise", src / "plan.yaml", "--store", store, "-j", "1")
    assert first.returncode == 0, first.stderr
    sources = ["src/main.c", *(f"src/u{i}.c" for i in range(1, UNITS))]
    assert sorted((tools / "order").read_text().split()) == sources
    recorded = json.loads((store / ".recipe/caches/timings/app-1.0.0-release.json").read_text())
    assert recorded["format"] == 1
    seconds = recorded["seconds"]
    assert set(seconds) == {f"compile {s}" for s in sources} | {"link app"}
    assert max(seconds, key=seconds.get) == "compile src/u5.c"
    assert seconds["compile src/u5.c"] >= 0.8

    (tools / "slow").unlink()
    (tools / "order").unlink()
    (src / "app/src/units.h").write_text((src / "app/src/units.h").read_text() + "\n")
    again = run_recipe("realise", src / "plan.yaml", "--store", store, "-j", "1")
    assert again.returncode == 0, again.stderr
    order = (tools / "order").read_text().split()
    assert sorted(order) == sources
    # The pool's two threads take the first two misses as the lookups find them (main.c,
    # u1.c); the next one free takes u5.c, the longest, before u2.c..u4.c (in the plan's
    # order it came last). Which of two waiting threads gets the one tool slot first is the
    # system's choice: u5.c may start one place later.
    assert order.index("src/u5.c") <= 3, order
    later = json.loads((store / ".recipe/caches/timings/app-1.0.0-release.json").read_text())
    assert later["seconds"]["compile src/u5.c"] < seconds["compile src/u5.c"]  # averaged in


@pytest.mark.parametrize("damage", [b"{not json", b'{"format": 1, "seconds": [1]}',
                                    b'{"format": 1, "seconds": {"compile src/u1.c": "x"}}',
                                    b'{"format": 1, "seconds": {"compile src/u1.c": 1e999}}',
                                    b'{"format": 1, "seconds": {"compile src/u1.c": 1%s}}'
                                    % (b"0" * 400),
                                    b'{"format": 99, "seconds": {}}', b"\xff\xfe"])
def test_damaged_timings_only_cost_the_order(tmp_path: Path, damage: bytes) -> None:
    src = _project(tmp_path / "src")
    store = tmp_path / "store"
    first = run_recipe("realise", src / "plan.yaml", "--store", store)
    assert first.returncode == 0, first.stderr
    timings = store / ".recipe/caches/timings/app-1.0.0-release.json"
    timings.write_bytes(damage)
    (src / "app/src/units.h").write_text((src / "app/src/units.h").read_text() + "\n")
    again = run_recipe("realise", src / "plan.yaml", "--store", store, "-j", "2")
    assert again.returncode == 0, again.stderr
    assert again.stdout.split()[-1] != first.stdout.split()[-1]  # a header changed: built
    # The objects came out the same: the link was found in the cache, and has no record.
    assert set(json.loads(timings.read_text())["seconds"]) == \
        {"compile src/main.c", *(f"compile src/u{i}.c" for i in range(1, UNITS))}


def test_durations_are_written_again_only_when_one_changed_by_a_fifth(tmp_path: Path) -> None:
    """timings.py on a real store: a build whose tools took about what was recorded writes no
    file (the order is the same); one that changed by more than a fifth writes it averaged in."""
    from engine.build.timings import Timings
    from engine.derive.actions import Action

    actions = [Action("compile", "src/a.c", [], [], [], []), Action("link", "app", [], [], [], [])]
    with Store.open(tmp_path / "store") as store:
        name = store.make_name("fingerprint", "app-1.0.0-release")
        record = store.state / "caches/timings/app-1.0.0-release.json"

        def build(seconds: list[float]) -> dict[str, float]:
            timings = Timings(store, name)
            for action, took in zip(actions, seconds, strict=True):
                timings.measured(action, took)
            timings.save(actions)
            return json.loads(record.read_text())["seconds"]

        assert build([1.0, 0.5]) == {"compile src/a.c": 1.0, "link app": 0.5}
        assert build([1.2, 0.45]) == {"compile src/a.c": 1.0, "link app": 0.5}  # 1.1, 0.475
        assert build([2.0, 0.5]) == {"compile src/a.c": 1.5, "link app": 0.5}
