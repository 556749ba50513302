"""recipe doctor (issue 18): one line per thing recipe uses; exit 1 exactly when something the
plan needs is missing. PATH is the test's: a folder holding the real gcc and g++, and a qemu
runner or not."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree

PLAN = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets:
          native: {opt: release}
          arm64: {triple: aarch64-linux-gnu, toolchain: {cc: gcc, cxx: g++}}
        default_targets: [native]
    """,
    "hello/project.yaml": """
        kind: project
        name: hello
        version: 1.0.0
        language: c
        outputs: [{name: hello, kind: executable, sources: [main.c]}]
    """,
    "hello/main.c": "int main(void) { return 0; }\n",
}


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("gcc", "g++"):
        (folder / name).symlink_to(shutil.which(name) or f"/usr/bin/{name}")
    return folder


def doctor(*args: str | Path, path: Path | str, cwd: Path) -> tuple[int, str]:
    done = run_recipe("doctor", *args, cwd=cwd, env={**os.environ, "PATH": str(path)})
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout


def line(out: str, name: str) -> list[str]:
    """The columns of ``name``'s line (tabulate parts them by two spaces or more)."""
    return next(re.split(r"\s{2,}", row.strip(), maxsplit=3) for row in out.splitlines()
                if row.split()[1:2] == [name])


def test_a_runner_the_plan_needs_is_missing_then_present(tmp_path: Path, bin_dir: Path) -> None:
    write_tree(tmp_path, PLAN)
    code, out = doctor("plan.yaml", path=bin_dir, cwd=tmp_path)
    assert code == 1
    assert line(out, "qemu-aarch64") == ["missing", "qemu-aarch64", "-",
                                         "fix: apt-get install qemu-user"]
    assert line(out, "gcc")[:2] == ["ok", "gcc"] and line(out, "gcc")[3] == str(bin_dir / "gcc")
    assert out.splitlines()[-1] == "plan.yaml needs what is missing: qemu-aarch64"

    runner = bin_dir / "qemu-aarch64"
    runner.write_text("#!/bin/sh\necho 'qemu-aarch64 version 7.2.9 (a stand-in)'\n")
    runner.chmod(0o755)
    code, out = doctor("plan.yaml", path=bin_dir, cwd=tmp_path)
    assert code == 0, out
    assert line(out, "qemu-aarch64") == ["ok", "qemu-aarch64", "7.2.9", str(runner)]
    assert out.splitlines()[-1] == "everything plan.yaml needs is here"
    assert line(out, "store")[:2] == ["-", "store"]  # none yet, and doctor made none
    assert not (tmp_path / "store").exists()

    data = json.loads(run_recipe("doctor", "plan.yaml", "--json", cwd=tmp_path,
                                 env={**os.environ, "PATH": str(bin_dir)}).stdout)
    assert data["ok"] is True and data["missing"] == []
    assert sorted(data["checks"][0]) == ["detail", "fix", "name", "needed", "ok", "path",
                                         "version"]
    assert {c["name"] for c in data["checks"] if c["needed"]} == {"gcc", "qemu-aarch64"}


def test_without_a_plan_gcc_and_gpp_are_needed_and_the_store_is_described(
        tmp_path: Path, bin_dir: Path) -> None:
    code, out = doctor(path=bin_dir, cwd=tmp_path)
    assert code == 0 and out.splitlines()[-1] == "everything recipe needs is here"
    (bin_dir / "g++").unlink()
    code, out = doctor(path=bin_dir, cwd=tmp_path)
    assert code == 1
    assert line(out, "g++") == ["missing", "g++", "-", "fix: apt-get install g++"]
    assert out.splitlines()[-1] == "recipe needs what is missing: g++"
    write_tree(tmp_path, PLAN)
    assert run_recipe("realise", "plan.yaml", cwd=tmp_path).returncode == 0
    code, out = doctor("--store", "store", path=bin_dir, cwd=tmp_path)
    status, name, version, where = line(out, "store")
    assert (status, name, version) == ("ok", "store", "schema 2")
    # the size counts the cache too (the reaper's binary alone is about 1 MiB)
    assert re.fullmatch(r"store \(1 paths, [0-9.]+ (KiB|MiB)\)", where), where


@pytest.mark.parametrize("args, first", [
    (["nowhere.yaml"], "nowhere.yaml: no such file"),
    (["a.yaml", "b.yaml"], "recipe: unrecognized arguments: b.yaml"),
])
def test_doctor_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], first: str) -> None:
    done = run_recipe("doctor", *args, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(first), done.stderr


def test_a_running_server_is_named_with_its_pid(tmp_path: Path) -> None:
    code, out = doctor(path=os.environ["PATH"], cwd=tmp_path)
    assert line(out, "server")[0] == "-"
    started = run_recipe("server", "start", "--json")
    assert started.returncode == 0, started.stderr
    pid = json.loads(started.stdout)["pid"]
    try:
        code, out = doctor(path=os.environ["PATH"], cwd=tmp_path)
        assert line(out, "server") == ["ok", "server", "-", f"pid {pid}"]
    finally:
        assert run_recipe("server", "stop").returncode == 0
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


def test_a_foreign_rust_target_is_checked_against_the_rustc_it_names(
        tmp_path: Path, bin_dir: Path) -> None:
    if not Path("/usr/lib/rustlib/wasm32-wasi/lib").is_dir():
        pytest.fail("Debian's std for wasm32-wasi is missing (.ci/run installs "
                    "libstd-rust-dev-wasm32)")
    src = write_tree(tmp_path / "src", {
        "plan.yaml": """
            kind: plan
            projects: ["*/project.yaml"]
            targets:
              wasi: {triple: wasm32-wasi, toolchain: {rustc: /usr/bin/rustc}}
              arm64: {triple: aarch64-linux-musl, toolchain: {rustc: /usr/bin/rustc}}
            default_targets: [wasi]
        """,
        "tiny/project.yaml": """
            kind: project
            name: tiny
            version: 0.1.0
            language: rust
            outputs: [{name: tiny, kind: executable, sources: [src/main.rs]}]
        """,
        "tiny/src/main.rs": "fn main() {}\n",
    })
    code, out = doctor("plan.yaml", path=bin_dir, cwd=src)
    # Debian's rustc has wasm32-wasi's std, and no aarch64's (PATH has no rustc at all here)
    assert re.search(r"^ok\s+rust-std wasm32-wasi\s+-\s+/usr/bin/rustc$", out, re.M), out
    assert re.search(r"^missing\s+rust-std aarch64-unknown-linux-musl\s", out, re.M), out
    assert code == 1 and out.splitlines()[-1] == (
        "plan.yaml needs what is missing: rust-std aarch64-unknown-linux-musl, qemu-aarch64")
