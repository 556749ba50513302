"""recipe graph (issue 18): projects x targets and their dependencies as JSON, DOT (parsed by
Graphviz's own dot) and SVG, coloured by valid / missing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_recipe, write_tree
from tests.projects import GREET_LIB

needs_dot = pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                               reason="needs Graphviz's dot")


@pytest.fixture
def plan(tmp_path: Path) -> Path:
    write_tree(tmp_path, GREET_LIB)
    return tmp_path / "plan.yaml"


def test_json_names_every_derivation_its_dependencies_and_whether_it_is_valid(
        plan: Path) -> None:
    done = run_recipe("graph", plan, "-t", "release", "-t", "debug", "--json")
    assert done.returncode == 0, done.stderr
    graph = json.loads(done.stdout)
    assert sorted(graph) == ["edges", "nodes"]
    assert [n["id"] for n in graph["nodes"]] == ["greet/release", "hello/release",
                                                 "greet/debug", "hello/debug"]
    assert sorted(graph["nodes"][0]) == ["id", "language", "name", "project", "target", "valid"]
    assert not any(n["valid"] for n in graph["nodes"])
    assert graph["edges"] == [{"from": "hello/release", "to": "greet/release"},
                              {"from": "hello/debug", "to": "greet/debug"}]
    assert run_recipe("realise", plan, "-p", "greet").returncode == 0
    graph = json.loads(run_recipe("graph", plan, "--format", "json").stdout)
    assert {n["id"]: n["valid"] for n in graph["nodes"]} == {"greet/release": True,
                                                             "hello/release": False}


@needs_dot
def test_dot_is_read_by_graphviz_and_svg_comes_from_it(plan: Path) -> None:
    assert run_recipe("realise", plan, "-p", "greet").returncode == 0
    done = run_recipe("graph", plan)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("digraph recipe {")
    assert '"hello/release" -> "greet/release";' in done.stdout
    import subprocess

    svg = subprocess.run(["dot", "-Tsvg"], input=done.stdout, capture_output=True, text=True)
    assert svg.returncode == 0 and svg.stderr == "", svg.stderr
    assert "<title>hello/release&#45;&gt;greet/release</title>" in svg.stdout
    assert 'fill="#b7e1a1"' in svg.stdout and 'fill="#e6e6e6"' in svg.stdout  # valid, missing
    direct = run_recipe("graph", plan, "--format", "svg")
    assert direct.returncode == 0 and direct.stdout == svg.stdout


@pytest.mark.parametrize("args, env, line", [
    (["--format", "svg"], {"PATH": "/nonexistent"},
     "recipe: --format svg needs Graphviz's dot, which is not on PATH; install it (apt-get "
     "install graphviz) or pass --format dot"),
    (["--json", "--format", "dot"], {}, "recipe: --json and --format dot ask for two formats"),
    (["-t", "nope"], {}, "recipe: unknown target 'nope'"),
    (["--format", "png"], {}, "recipe graph: argument --format: invalid choice: 'png'"),
])
def test_graph_errors_are_one_line_exit_2_and_write_nothing(plan: Path, args: list[str],
                                                            env: dict[str, str],
                                                            line: str) -> None:
    done = run_recipe("graph", plan, *args, env={**os.environ, **env})
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith(line), done.stderr
    assert not (plan.parent / "store").exists()
