"""recipe why (what changed since the last valid path) and recipe store why / gc --dry-run --why
(which roots keep a path alive), on real projects built with the real gcc."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.store import Store
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB


def realise(plan: Path, store: Path, *extra: str) -> list[Path]:
    done = run_recipe("realise", plan, "--store", store, *extra)
    assert done.returncode == 0, done.stderr
    return [Path(line) for line in done.stdout.splitlines()]


def why(plan: Path, store: Path, *extra: str) -> list[str]:
    done = run_recipe("why", plan, "--store", store, *extra)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.splitlines()


def edit(file: Path, old: str, new: str) -> None:
    text = file.read_text()
    assert old in text
    file.write_text(text.replace(old, new))


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """GREET_LIB realised for its default target: (plan, store, [greet, hello])."""
    src = write_tree(tmp_path / "src", GREET_LIB)
    store = tmp_path / "store"
    return src / "plan.yaml", store, realise(src / "plan.yaml", store)


def test_why_says_up_to_date_and_never_built(built):
    plan, store, _ = built
    assert why(plan, store) == ["greet (release): up to date", "hello (release): up to date"]
    assert why(plan, store, "-t", "debug", "-p", "hello") == \
        ["hello (debug): never built for this target"]


@pytest.mark.parametrize("kind", ["static-library", "shared-library"])
def test_why_names_the_edited_source_and_the_rebuilt_dependency(tmp_path, kind):
    files = dict(GREET_LIB)  # shared: hello's rpath spells greet's path; named once all the same
    files["greet/project.yaml"] = GREET_LIB["greet/project.yaml"].replace(
        "kind: static-library", f"kind: {kind}")
    plan = write_tree(tmp_path / "src", files) / "plan.yaml"
    store = tmp_path / "store"
    greet, hello = realise(plan, store)
    edit(plan.parent / "greet/src/twice.c", "2 * x", "3 * x")
    lines = why(plan, store)
    assert lines[0] == f"greet (release): not valid; since {greet}:"
    assert lines[1].startswith("  source src/twice.c changed (sha256 ")
    assert lines[2] == f"hello (release): not valid; since {hello}:"
    new_greet = why_json(plan, store, "-p", "greet")[0]["path"]
    assert lines[3:] == [f"  dependency greet: {greet.name} → {Path(new_greet).name} (itself "
                         f"rebuilt: run 'recipe why {plan} -p greet -t release')"]


def test_why_names_a_changed_header(built):
    plan, store, _ = built
    edit(plan.parent / "greet/src/internal.h", '"hello"', '"howdy"')
    lines = why(plan, store, "-p", "greet")
    assert lines[1].startswith("  header src/internal.h changed (sha256 ")
    assert len(lines) == 2, lines


def test_why_names_flags_and_defines_from_project_yaml(built):
    plan, store, _ = built
    edit(plan.parent / "greet/project.yaml", "[-Wall, -Wextra]", "[-Wall, -Wshadow, -O1]")
    edit(plan.parent / "hello/project.yaml", "{SHOUT: 1}", "{SHOUT: 2, NDEBUG: 1}")
    assert why(plan, store, "-p", "greet")[1:] == [
        "  flag -Wextra removed", "  flag -Wshadow added", "  flag -O1 added"]
    assert why(plan, store, "-p", "hello")[2:] == [
        "  define NDEBUG=1 added", "  define SHOUT: 1 → 2"]


def test_why_names_target_fields_and_toolchain_programs(tmp_path):
    wrapper = tmp_path / "bin/my-cc"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('gcc')} \"$@\"\n")
    wrapper.chmod(0o755)
    files = dict(GREET_LIB)
    files["plan.yaml"] = f"""
        kind: plan
        targets:
          custom: {{toolchain: {{cc: {wrapper}}}, opt: release}}
    """
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    realise(src / "plan.yaml", store, "-p", "greet")
    edit(src / "plan.yaml", "opt: release", "opt: debug, lto: true")
    wrapper.write_text(wrapper.read_text() + "# another compiler\n")
    os.utime(wrapper, (1, 1))
    lines = why(src / "plan.yaml", store, "-p", "greet")
    assert "  target field lto: false → true" in lines
    assert "  target field opt: release → debug" in lines
    assert [line for line in lines if line.startswith("  toolchain program cc changed (sha256")]
    assert "  flag -O2 → -O0" in lines
    assert "  flag -flto=1 added" in lines


def why_json(plan: Path, store: Path, *extra: str) -> list[dict]:
    done = run_recipe("why", plan, "--store", store, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_why_json_shape(built):
    plan, store, (greet, hello) = built
    edit(plan.parent / "hello/project.yaml", "{SHOUT: 1}", "{}")
    found = why_json(plan, store, "-t", "release", "-t", "debug", "-p", "hello")
    assert [(e["project"], e["target"], e["status"], e["previous"]) for e in found] == [
        ("hello", "release", "changed", str(hello)), ("hello", "debug", "never built", None)]
    assert found[0]["changes"] == [{"what": "define", "key": "SHOUT", "old": "1", "new": None}]
    assert found[1]["changes"] == []
    assert Path(found[0]["path"]).parent == store and not Path(found[0]["path"]).exists()
    assert why_json(plan, store, "-p", "greet")[0]["status"] == "up to date"


def test_why_compares_with_the_path_realise_printed_last(built):
    plan, store, (greet, _) = built
    edit(plan.parent / "greet/src/twice.c", "2 * x", "3 * x")
    (greet2,) = realise(plan, store, "-p", "greet")
    edit(plan.parent / "greet/src/greet.c", "GREETING;", "GREETING; ")
    lines = why(plan, store, "-p", "greet")
    assert lines[0] == f"greet (release): not valid; since {greet2}:"
    assert lines[1:] == [lines[1]] and lines[1].startswith("  source src/greet.c changed")
    # Without the root, the most recently registered path of greet x release.
    done = run_recipe("store", "roots", "--store", store, "--remove", f"realise:{plan}")
    assert done.returncode == 0, done.stderr
    assert why(plan, store, "-p", "greet") == lines


def test_store_why_names_each_root_chain(tmp_path):
    files = dict(GREET_LIB)  # a shared library: hello's path refers to greet's
    files["greet/project.yaml"] = GREET_LIB["greet/project.yaml"].replace(
        "kind: static-library", "kind: shared-library")
    src = write_tree(tmp_path / "src", files)
    store = tmp_path / "store"
    plan = src / "plan.yaml"
    greet, hello = realise(plan, store, "--root", "pin")
    assert run_recipe("store", "roots", "--store", store, "--remove", "pin").returncode == 0
    expected = [f"root realise:{plan}/greet/release -> {greet.name}",
                f"root realise:{plan}/hello/release -> {hello.name} -> {greet.name}"]
    for args in (["store", "why", greet / "lib"],
                 ["store", "gc", "--dry-run", "--why", greet.name]):
        done = run_recipe(*args, "--store", store)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == expected
    # Only hello's root left: the chain runs through the dependent path.
    run_recipe("store", "roots", "--store", store, "--remove", f"realise:{plan}/greet")
    done = run_recipe("store", "why", greet.name, "--store", store, "--json")
    assert json.loads(done.stdout) == {"path": str(greet), "alive": True, "roots": [
        {"root": f"realise:{plan}/hello/release", "chain": [hello.name, greet.name]}]}
    run_recipe("store", "roots", "--store", store, "--remove", f"realise:{plan}")
    done = run_recipe("store", "why", greet.name, "--store", store)
    assert done.stdout == f"no root keeps {greet} alive: 'recipe store gc' deletes it\n"
    assert greet.exists()  # asking deleted nothing
    # A running process's temporary root keeps it too.
    with Store.open(store, create=False) as running:
        running.add_temp_roots(paths=[greet.name])
        done = run_recipe("store", "why", greet.name, "--store", store)
        assert done.stdout == f"root temporary:{greet.name} -> {greet.name}\n"


@pytest.mark.parametrize("args, line", [
    (["why", "{plan}", "-p", "gret"], "recipe: unknown project 'gret'; the plan has: greet, hello"),
    (["why", "{plan}", "-t", "nightly"],
     "recipe: unknown target 'nightly'; the plan has: release, debug"),
    (["why", "{src}/nope.yaml"], "{src}/nope.yaml: no such file; check the path"),
    (["store", "why", "nope"],
     "recipe: nope is not a valid store path; see 'recipe store ls' for the valid paths"),
    (["store", "why", "/etc"], "recipe: /etc is not inside the store {store}; give a store path "
     "name or a path inside the store"),
    (["store", "gc", "--why", "nope"], "recipe: --why only explains and collects nothing; "
     "add --dry-run, or use 'recipe store why PATH'"),
])
def test_why_bad_input_is_one_line_and_exit_2(built, args, line):
    plan, store, _ = built
    names = {"plan": plan, "src": plan.parent, "store": store}
    done = run_recipe(*[a.format(**names) for a in args], "--store", store)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
    assert line.format(**names) in done.stderr
    assert done.stdout == ""
