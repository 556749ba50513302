"""``recipe release``: byte-identical artifacts from different checkouts, stores and
environments; ``sha256sum -c``; and every bad input refused in one line with nothing written."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine import __version__
from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

CASES = """
    kind: cases
    cases:
      - name: greets
        run: hello
        expect: {stdout: "hello 2 1\\n"}
"""


def checkout(where: Path, expected: str = "hello 2 1") -> Path:
    files = {**GREET_LIB, "hello/cases/hello.yaml": CASES.replace("hello 2 1", expected)}
    return write_tree(where, files)


def release(plan: Path, store: Path, out: Path, *args: str, cwd: Path | None = None,
            umask: int = 0o022, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli.main", "release", str(plan),
                           "--store", str(store), "--out", str(out), *args],
                          cwd=cwd, env={**os.environ, **(env or {})}, umask=umask,
                          capture_output=True, text=True, timeout=300)


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_two_releases_from_two_checkouts_are_byte_identical(tmp_path: Path) -> None:
    a = checkout(tmp_path / "a")
    b = checkout(tmp_path / "elsewhere/deeper/b")
    (tmp_path / "cwd-a").mkdir()
    (tmp_path / "cwd-b").mkdir()
    first = release(a / "plan.yaml", tmp_path / "store-a", tmp_path / "out-a",
                    cwd=tmp_path / "cwd-a", umask=0o022,
                    env={"TZ": "UTC", "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"})
    second = release(b / "plan.yaml", tmp_path / "s/store-b", tmp_path / "o/out-b",
                     "-j", "1", cwd=tmp_path / "cwd-b", umask=0o077,
                     env={"TZ": "ZZZ-14", "LC_ALL": "C", "LANG": "fr_CH.UTF-8",
                          "HOME": str(tmp_path), "PYTHONHASHSEED": "12345"})
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    one, two = folder_bytes(tmp_path / "out-a"), folder_bytes(tmp_path / "o/out-b")
    assert sorted(one) == ["SHA256SUMS", "greet-1.0.0-release.tar.gz",
                           "hello-0.3.0-release.tar.gz", "provenance.intoto.jsonl"]
    assert one == two
    # Nothing of where or when it was made is in it.
    for data in one.values():
        assert str(tmp_path).encode() not in data
    # The cases ran before anything was written.
    assert "1 case passed" in first.stderr
    for out in (tmp_path / "out-a", tmp_path / "o/out-b"):
        check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out,
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert check.stdout.count(": OK") == 3


def test_tarballs_hold_normalised_entries_and_provenance_names_everything(tmp_path: Path) -> None:
    src = checkout(tmp_path / "src")
    out = tmp_path / "out"
    done = release(src / "plan.yaml", tmp_path / "store", out, "--json",
                   env={"SOURCE_DATE_EPOCH": "1600000000"})
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source_date_epoch"] == 1600000000 and report["cases"] == 1
    with tarfile.open(out / "hello-0.3.0-release.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["hello-0.3.0-release", "hello-0.3.0-release/bin",
                                         "hello-0.3.0-release/bin/hello"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == \
        {(1600000000, 0, 0, "", "")}
    assert [oct(m.mode) for m in members] == ["0o755", "0o755", "0o755"]
    with tarfile.open(out / "greet-1.0.0-release.tar.gz") as tar:
        modes = {m.name.split("/", 1)[-1]: m.mode for m in tar.getmembers()}
    assert modes["include/greet.h"] == modes["lib/libgreet.a"] == 0o644
    # gzip header: no name (FLG 0), mtime 0, maximum compression (XFL 2).
    header = (out / "greet-1.0.0-release.tar.gz").read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == b"\0\0\0\0" and header[8] == 2

    lines = (out / "provenance.intoto.jsonl").read_text().splitlines()
    statements = [json.loads(line) for line in lines]
    assert [s["subject"][0]["name"] for s in statements] == \
        ["greet-1.0.0-release.tar.gz", "hello-0.3.0-release.tar.gz"]
    hello = statements[1]
    assert hello["_type"] == "https://in-toto.io/Statement/v1"
    assert hello["predicateType"] == "https://slsa.dev/provenance/v1"
    artifact = next(a for a in report["artifacts"] if a["project"] == "hello")
    assert hello["subject"][0]["digest"] == {"sha256": artifact["sha256"]}
    build = hello["predicate"]["buildDefinition"]
    drv = build["internalParameters"]["derivation"]
    assert drv["name"] == artifact["store_path"]
    assert build["externalParameters"] == {"plan": "plan.yaml", "project": "hello",
                                           "target": "release", "sourceDateEpoch": 1600000000}
    deps = {d["name"]: d for d in build["resolvedDependencies"]}
    # every source of hello and of greet, which it links, with its digest
    for file in ("hello/src/main.c", "greet/src/greet.c", "greet/src/internal.h",
                 "greet/include/greet.h"):
        data = (src / file).read_bytes()
        assert deps[file]["digest"] == {"sha256": hashlib.sha256(data).hexdigest()}, file
    assert drv["object"]["toolchain"]["cc"] == deps["toolchain:cc"]["uri"][len("file://"):]
    assert "toolchain:cc1" in deps
    builder = hello["predicate"]["runDetails"]["builder"]
    assert builder == {"id": f"urn:recipe:builder:{__version__}",
                       "version": {"recipe": __version__}}
    # canonical JSON: sorted keys, no whitespace
    assert lines[1] == json.dumps(hello, sort_keys=True, separators=(",", ":"),
                                  ensure_ascii=False)


def test_a_non_empty_out_is_refused_unless_forced(tmp_path: Path) -> None:
    src = checkout(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine\n")
    done = release(src / "plan.yaml", tmp_path / "store", out)
    assert done.returncode == 2
    assert done.stderr == f"recipe: --out {out} exists and is not empty; pass --force to " \
                          "replace it, or name another folder\n"
    assert sorted(os.listdir(out)) == ["keep.txt"]
    assert not (tmp_path / "store").exists()  # refused before anything was built
    forced = release(src / "plan.yaml", tmp_path / "store", out, "--force")
    assert forced.returncode == 0, forced.stderr
    assert "keep.txt" not in os.listdir(out) and (out / "SHA256SUMS").is_file()
    assert sorted(os.listdir(tmp_path)) == ["out", "src", "store"]  # no temporary left


def test_failing_cases_stop_the_release_unless_skipped(tmp_path: Path) -> None:
    src = checkout(tmp_path / "src", expected="goodbye")
    out = tmp_path / "out"
    done = release(src / "plan.yaml", tmp_path / "store", out)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "recipe: 1 of 1 cases did not pass (hello/release: greets); nothing released; fix "
        "them (see 'recipe verify'), or pass --skip-verify to release anyway")
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["src", "store"]
    skipped = release(src / "plan.yaml", tmp_path / "store", out, "--skip-verify")
    assert skipped.returncode == 0, skipped.stderr
    assert "cases not run (--skip-verify)" in skipped.stderr


@pytest.mark.parametrize("args, env, line", [
    (["-t", "nope"], {}, "recipe: unknown target 'nope'; the plan has: release, debug"),
    (["-p", "nope"], {}, "recipe: unknown project 'nope'; the plan has: greet, hello"),
    ([], {"SOURCE_DATE_EPOCH": "yesterday"},
     "recipe: SOURCE_DATE_EPOCH='yesterday' is not a time a tarball can hold; set it to "
     "whole seconds since 1970 (e.g. $(git log -1 --format=%ct)), or unset it"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path: Path, args: list[str],
                                                         env: dict[str, str], line: str) -> None:
    src = checkout(tmp_path / "src")
    done = release(src / "plan.yaml", tmp_path / "store", tmp_path / "out", *args, env=env)
    assert done.returncode == 2
    assert done.stderr == line + "\n"
    assert sorted(os.listdir(tmp_path)) == ["src"]


def test_out_overlapping_the_plan_or_the_store_is_refused_even_forced(tmp_path: Path) -> None:
    src = checkout(tmp_path / "src")
    store = tmp_path / "store"
    for out, line in ((src, f"recipe: --out {src} overlaps the plan's folder"),
                      (store / "x", f"recipe: --out {store / 'x'} overlaps the store"),
                      (src / "greet/src", f"recipe: --out {src / 'greet/src'} holds "
                                          f"{src / 'greet/src/greet.c'}, a file of the plan")):
        done = run_recipe("release", src / "plan.yaml", "--store", store, "--out", out,
                          "--force")
        assert done.returncode == 2
        assert done.stderr == f"{line}; name a folder of its own for the release\n"
    assert (src / "greet/src/greet.c").is_file() and not store.exists()
    # A folder of its own inside the plan's folder is fine (``--out dist`` beside the plan).
    done = run_recipe("release", src / "plan.yaml", "--store", store, "--out", src / "dist")
    assert done.returncode == 0, done.stderr
