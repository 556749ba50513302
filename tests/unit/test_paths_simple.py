"""Simple patterns (plain names, one '*' a segment) are matched without pathspec, and a realise
of a plan that has only those, with versions like 1.0.0, imports neither pathspec nor ruamel
(issue 16: 20 ms and 16 ms of a fresh clone's realise). The simple reading must agree with
pathspec's on every name."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pathspec
import pytest

from engine.documents import paths
from engine.documents.yaml_fast import fast_load
from engine.errors import Pos
from tests.conftest import write_tree
from tests.projects import GREET_LIB

PATTERNS = ["a.c", "src/a.c", "*.c", "src/*.c", "*/project.yaml", "src", "a*", "src/a*",
            "x*y.h", "include/*.h", "p*/project.yaml", "b+-_.c", "*c", "src/*/a.c", "lib",
            "*", "src/*", "*/a.c", "*/*"]
NAMES = ["a.c", "src/a.c", "src/b/a.c", "b/src/a.c", "src/a.cc", "x/a.c", "src", "src/x",
         "lib/src/z", "ab", "xay.h", "x/y.h", "include/g.h", "include/sub/g.h", "p1/project.yaml",
         "q/p1/project.yaml", "project.yaml", "a/project.yaml/x", ".c", "src/.c", "b+-_.c",
         "c", "src/c/a.c", "lib", "lib/a", "a.c/b", "srcx/a.c"]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_simple_patterns_match_as_pathspec_does(pattern: str) -> None:
    assert paths._SIMPLE.match(pattern)
    ours = paths._simple_regex(pattern)
    spec = pathspec.GitIgnoreSpec.from_lines([pattern])
    for name in NAMES:
        assert bool(ours.match(name)) == spec.match_file(name), (pattern, name)


@pytest.mark.parametrize("pattern", ["**/a.c", "a/**", "src/", "!a.c", "a?.c", "[ab].c",
                                     "a\\*.c", "#a", "a .c", "*a*", "./a.c", "src/./a.c"])
def test_others_go_to_pathspec(pattern: str) -> None:
    assert not (paths._SIMPLE.match(pattern) and "." not in pattern.split("/"))


@pytest.mark.parametrize("value", ["1.0.0", "0.3.0", "2.1.3-rc1", "10.20.30+build.1",
                                   "1.2.3.4", "-Wall", "-O2", "+x", "-Inf", "-fPIC",
                                   "-std=c17", "-o7"])
def test_versions_and_flags_are_strings_without_ruamel(value: str) -> None:
    from ruamel.yaml import YAML

    data, _ = fast_load(f"version: {value}\n")
    assert data["version"] == value == YAML().load(f"version: {value}\n")["version"]


def test_a_plain_c_realise_imports_neither_pathspec_nor_ruamel(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", GREET_LIB)
    project = src / "greet" / "project.yaml"
    project.write_text(project.read_text().replace('"include/*.h", "src/*.h"',
                                                   '"include/*.h", src/internal.h'))
    plan, store = src / "plan.yaml", tmp_path / "store"
    code = ("import sys\nfrom engine.cli.main import main\n"
            f"code = main(['realise', {str(plan)!r}, '--store', {str(store)!r}])\n"
            "print('imported:', *sorted(m for m in sys.modules if m.startswith("
            "('pathspec', 'ruamel'))), file=sys.stderr)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines()[-1] == "imported:"


def test_every_combination_of_a_few_simple_patterns_selects_as_pathspec(tmp_path: Path) -> None:
    files = {name: "" for name in NAMES if not any(
        other.startswith(name + "/") for other in NAMES)}
    root = write_tree(tmp_path / "tree", files)
    tree = paths.Tree(root)
    for chosen in itertools.combinations(["*.c", "src/*.c", "src", "a*", "lib", "c"], 2):
        pos = Pos(root / "x.yaml", 1, 1)
        ours = tree.expand([(p, pos) for p in chosen], root, allow_empty=True)
        spec = pathspec.GitIgnoreSpec.from_lines(list(chosen))
        assert list(ours) == sorted(f for f in files if spec.match_file(f)), chosen
