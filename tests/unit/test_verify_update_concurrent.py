"""``verify --update`` from several processes at once, and ``--update`` against symlinks that
leave the plan: real processes, a real C program, a real store."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.conftest import write_tree

N = 50  # wrong cases in each of the groups "a-" and "b-"
RACES = 3  # each race is likely, not sure, to interleave the two updates: run it a few times

TREE = {
    "plan.yaml": "kind: plan\ntargets: {release: {opt: release}}\n",
    "echo/project.yaml": """
        kind: project
        name: echo
        version: "1.0"
        language: c
        outputs:
          - {name: say, kind: executable, sources: [say.c]}
        cases: [cases.yaml]
    """,
    "echo/say.c": """
        #include <stdio.h>
        #include <string.h>
        int main(int argc, char **argv) {
            /* "big" prints 3000 bytes: more than --update writes inline */
            if (argc > 1 && strcmp(argv[1], "big") == 0) {
                for (int i = 0; i < 100; i++) printf("line %04d of a long output.....\\n", i);
                return 0;
            }
            for (int i = 1; i < argc; i++) printf("%s\\n", argv[i]);
            return 0;
        }
    """,
}


def wrong_cases(plan: Path, groups: tuple[str, ...] = ("a", "b")) -> None:
    """Write a cases file whose every expectation is wrong: ``x-<i>`` prints ``x<i>``. Every
    tenth case expects a golden file, and ``x-big`` prints more than fits inline."""
    lines = ["kind: cases", "cases:"]
    golden = plan / "echo" / "golden"
    golden.mkdir(exist_ok=True)
    for group in groups:
        for i in range(N):
            lines.append(f"  - name: {group}-{i}   # comment of {group}-{i}")
            lines.append(f"    run: say\n    args: [{group}{i}]")
            if i % 10 == 0:
                (golden / f"{group}{i}.out").write_text(f"stale {group}{i}\n")
                lines.append(f"    expect: {{stdout_file: golden/{group}{i}.out}}")
            else:
                lines.append(f'    expect: {{stdout: "stale {group}{i}\\n"}}')
        lines.append(f"  - {{name: {group}-big, run: say, args: [big], expect: {{stdout: ''}}}}")
    (plan / "echo" / "cases.yaml").write_text("\n".join(lines) + "\n")
    for name in ("a-big.stdout", "b-big.stdout"):
        (golden / name).unlink(missing_ok=True)


def recipe(plan: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "engine.cli.main", "verify",
                             str(plan / "plan.yaml"), "--store", str(plan.parent / "store"),
                             "-j", "2", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=plan)


def together(plan: Path, *selections: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """Start one ``verify --update`` per selection at once; each one's (exit, stdout, stderr)."""
    procs = [recipe(plan, "--update", *sel) for sel in selections]
    streams = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, *s) for p, s in zip(procs, streams, strict=True)]


def wrong(plan: Path) -> dict[str, bytes]:
    """The cases whose expectation (inline or golden file) is not what the program prints."""
    folder = plan / "echo"
    doc = YAML(typ="safe").load((folder / "cases.yaml").read_text())
    out = {}
    for case in doc["cases"]:
        expect = case["expect"]
        got = (folder / expect["stdout_file"]).read_bytes() if "stdout_file" in expect \
            else expect["stdout"].encode()
        want = BIG if case["name"].endswith("-big") else f"{case['args'][0]}\n".encode()
        if got != want:
            out[case["name"]] = got[:40]
    return out


BIG = b"".join(b"line %04d of a long output.....\n" % i for i in range(100))


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "plan", TREE)


def test_two_updates_at_once_lose_no_expectation(plan: Path) -> None:
    """Two runs re-recording different cases of one file: both exit 0, every case recorded."""
    for race in range(RACES):  # after the first race the observations come from the cache
        wrong_cases(plan)
        results = together(plan, ("-k", "echo/a-"), ("-k", "echo/b-"))
        for code, out, err in results:
            assert code == 0, f"race {race}: exit {code}\n{out[-2000:]}{err}"
            lines = out.splitlines()
            assert sum(line.startswith("updated ") for line in lines) == N + 1, out[-2000:]
        lost = wrong(plan)
        assert not lost, f"race {race}: {len(lost)} expectations lost, e.g. " \
            f"{sorted(lost.items())[:3]}"
        text = (plan / "echo" / "cases.yaml").read_text()
        assert text.count("# comment of ") == 2 * N  # comments kept through both edits


def test_two_identical_updates_at_once_both_succeed(plan: Path) -> None:
    """Whichever run comes second finds the expectations already recorded and is content."""
    for race in range(RACES):
        wrong_cases(plan, ("a",))
        results = together(plan, ("-k", "echo/a-"), ("-k", "echo/a-"))
        for code, out, err in results:
            assert code == 0, f"race {race}: exit {code}\n{out[-2000:]}{err}"
            assert "not updated" not in out
        assert not wrong(plan), f"race {race}"


def files_below(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".recipe" not in p.parts}


def test_update_never_writes_through_a_symlink_out_of_the_plan(plan: Path, tmp_path: Path) -> None:
    """golden/ links to a folder outside the plan: refused in one line, exit 2, nothing
    written there (a same-named file stays) and nothing in the plan either."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "a-big.stdout").write_text("not recipe's to overwrite\n")
    wrong_cases(plan, ("a",))
    (plan / "echo" / "golden").rename(plan / "echo" / "golden-inside")
    (plan / "echo" / "cases.yaml").write_text(
        (plan / "echo" / "cases.yaml").read_text().replace("golden/", "golden-inside/"))
    (plan / "echo" / "golden").symlink_to(outside)
    before, before_outside = files_below(plan), files_below(outside)

    code, out, err = together(plan, ("-k", "echo/a-"))[0]
    assert code == 2, out[-2000:] + err
    line = re.escape(f"--update would write echo/golden/a-big.stdout outside the plan's "
                     f"folder (to {outside}/a-big.stdout, through a symlink); replace the "
                     "symlink by a folder or file inside the plan")
    lines = [ln for ln in err.splitlines() if not ln.startswith("building ")]
    assert len(lines) == 1 and re.fullmatch(rf"echo/cases\.yaml:\d+:5: {line}", lines[0]), err
    assert files_below(outside) == before_outside
    assert files_below(plan) == before
