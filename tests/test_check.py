"""``recipe check``: a real second build elsewhere, compared bit for bit (real gcc, real files).

The nondeterministic toolchain is a wrapper around gcc that appends random bytes to every
executable it links: the first build and the rebuild must then differ, and check must say
where. Everything else (compiles, the archive) stays deterministic, so the static library
must still be found reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

# gcc, then random bytes (or what ``leak`` prints) after a linked executable (trailing bytes do
# not stop it running).
NOISY_CC = """#!/bin/sh
out=; prev=; compile=0
for a in "$@"; do
    [ "$a" = -c ] && compile=1
    [ "$prev" = -o ] && out=$a
    prev=$a
done
{real} "$@" || exit $?
if [ "$compile" = 0 ] && [ -n "$out" ]; then
    {leak} >> "$out"
fi
"""


def noisy_toolchain(folder: Path, leak: str = "head -c 16 /dev/urandom") -> dict[str, str]:
    folder.mkdir(parents=True)
    spec = {}
    for name, real in (("cc", "/usr/bin/gcc"), ("cxx", "/usr/bin/g++")):
        script = folder / name
        script.write_text(NOISY_CC.format(real=real, leak=leak))
        script.chmod(0o755)
        spec[name] = str(script)
    return spec


def greet(tmp_path: Path, toolchain: dict[str, str] | None = None) -> Path:
    files = dict(GREET_LIB)
    if toolchain:
        files["plan.yaml"] = f"""
            kind: plan
            projects: ["*/project.yaml"]
            targets:
              release:
                opt: release
                toolchain: {{cc: {toolchain['cc']}, cxx: {toolchain['cxx']}}}
        """
    return write_tree(tmp_path / "checkout", files)


def test_check_passes_on_a_deterministic_plan(tmp_path: Path) -> None:
    src = greet(tmp_path)
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["reproducible"] is True
    assert [(d["project"], d["status"]) for d in report["derivations"]] == \
        [("greet", "reproducible"), ("hello", "reproducible")]
    # The rebuild really ran elsewhere, differently, and was cleaned up.
    varied = report["variations"]
    for what in ("checkout", "store", "HOME", "TZ", "LC_ALL", "umask", "working folder",
                 "PYTHONHASHSEED", "SOURCE_DATE_EPOCH", "jobs"):
        assert varied[what]["first"] != varied[what]["rebuild"], what
    assert not Path(varied["store"]["rebuild"]).exists()
    assert report["kept"] is None


@pytest.mark.parametrize("diffoscope", [True, False], ids=["diffoscope", "files-only"])
def test_check_catches_a_nondeterministic_toolchain(tmp_path: Path, diffoscope: bool) -> None:
    if diffoscope and shutil.which("diffoscope") is None:
        pytest.skip("diffoscope is not installed")
    src = greet(tmp_path, noisy_toolchain(tmp_path / "noisy"))
    args = [] if diffoscope else ["--no-diffoscope"]
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", *args)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    greet_line = next(line for line in lines if "-greet-" in line)
    hello_at = next(i for i, line in enumerate(lines) if "-hello-" in line)
    assert greet_line.startswith("reproducible ")
    assert lines[hello_at].startswith("differs ")
    assert lines[hello_at + 1].strip().startswith("bin/hello: contents differ")
    # diffoscope's report names both trees' copies of the file.
    assert ("bin/hello" in "\n".join(lines[hello_at + 2:])) == diffoscope
    assert done.stderr.strip().splitlines()[-1] == \
        "recipe: 1 of 2 derivations are not reproducible"


def test_a_toolchain_that_records_its_umask_is_still_reproducible(tmp_path: Path) -> None:
    """Actions run with a fixed umask (as with a fixed environment): the rebuild's other umask
    does not reach the compiler."""
    src = greet(tmp_path, noisy_toolchain(tmp_path / "leaky", "umask"))
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "--json",
                      "--no-diffoscope")
    assert done.returncode == 0, done.stdout + done.stderr
    assert {d["status"] for d in json.loads(done.stdout)["derivations"]} == {"reproducible"}


@pytest.mark.parametrize("leak", ["pwd"])
def test_check_catches_what_a_build_inherits_from_its_process(tmp_path: Path, leak: str) -> None:
    """Builds get a clean environment and a fixed umask, but a process's working folder (inside
    the store) still reaches a compiler: the rebuild varies it, so a toolchain that records it
    is caught."""
    src = greet(tmp_path, noisy_toolchain(tmp_path / "leaky", leak))
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "--json",
                      "--no-diffoscope")
    assert done.returncode == 1, done.stderr
    verdicts = {d["project"]: d for d in json.loads(done.stdout)["derivations"]}
    assert verdicts["greet"]["status"] == "reproducible"
    assert verdicts["hello"]["status"] == "differs"
    assert verdicts["hello"]["files"][0].startswith("bin/hello: contents differ")


def test_check_keeps_the_rebuild_when_asked(tmp_path: Path) -> None:
    src = greet(tmp_path, noisy_toolchain(tmp_path / "noisy"))
    (tmp_path / "tmp").mkdir()  # the kept rebuild goes to $TMPDIR: the test's own folder
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "--keep",
                      "--json", "--no-diffoscope",
                      env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    hello = report["derivations"][1]
    assert hello["status"] == "differs" and hello["files"] == [
        f"bin/hello: contents differ ({size} and {size} bytes)"
        for size in [(Path(report["variations"]["store"]["first"]) / hello["name"]
                      / "bin/hello").stat().st_size]]
    kept = Path(report["kept"])
    assert kept.parent == tmp_path / "tmp"
    assert (kept / "store" / hello["name"] / "bin/hello").is_file()
    assert (kept / "elsewhere/checkout/plan.yaml").is_file()


def test_check_of_an_unknown_target_is_one_line_exit_2(tmp_path: Path) -> None:
    src = greet(tmp_path)
    done = run_recipe("check", src / "plan.yaml", "--store", tmp_path / "store", "-t", "nope")
    assert done.returncode == 2
    assert done.stderr == "recipe: unknown target 'nope'; the plan has: release, debug\n"
    assert not (tmp_path / "store").exists()
