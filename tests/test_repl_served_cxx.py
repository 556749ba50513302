"""A served ``recipe eval`` of a C++ project (engine/repl/ready.py, engine/repl/ahead.py): after
a first eval, the server's spare child starts the next submission's g++ (its precompiled scope
loaded, the rest of the runner from a FIFO), the next eval is compiled by it, what g++ says is
a plain compile's, and ``recipe server stop`` leaves no compiler running and no temporary file
behind. Real g++, real server, the native client."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.repl import source
from tests.conftest import recipe_server, run_recipe, write_tree
from tests.test_repl_served import until
from tests.test_server_client import environment, run

FILES = {
    "plan.yaml": """
        kind: plan
        projects: ["*/project.yaml"]
        targets: {release: {opt: release}}
        default_targets: [release]
    """,
    "geo/project.yaml": """
        kind: project
        name: geo
        version: 1.0.0
        language: c++
        sources: ["src/*.cpp"]
        headers: ["include/*.hpp"]
        public_headers: [include/geo.hpp]
        include_dirs: [include]
        outputs: [{name: geo, kind: static-library}]
        repl:
          scope: [include/geo.hpp]
    """,
    "geo/include/geo.hpp": """
        #pragma once
        namespace geo { double area(double w, double h); }
    """,
    "geo/src/geo.cpp": """
        #include "geo.hpp"
        double geo::area(double w, double h) { return w * h; }
    """,
}
#: A submission that says where its runner was linked (the folder of the g++ that made it).
WHERE = ('char where[4096] = {0}; (void)!readlink("/proc/self/exe", where, sizeof where - 1);'
         ' std::cout << geo::area({n}, 2) << " " << where << std::endl;')


@pytest.fixture(scope="module")
def client() -> Path:
    done = run_recipe("server", "client-dir", env=environment())
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()) / "recipe"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    root = write_tree(tmp_path / "src", FILES)
    (root / "geo/include/geo.hpp").write_text(
        "#pragma once\n#include <unistd.h>\nnamespace geo { double area(double w, double h); }\n")
    with recipe_server(environment()):
        yield root


def evaluate(client: Path, root: Path, code: str) -> tuple[str, str, int, bool]:
    return run(client, ("eval", "plan.yaml", "-p", "geo", "--store",
                        str(root.parent / "store"), "-e", code), root, None)


def compilers(store: Path) -> dict[int, list[str]]:
    """The g++ drivers and their cc1plus that work for ``store``, by pid."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
        except (OSError, ValueError):
            continue
        if argv and argv[0].endswith(("/g++", "/cc1plus")) and any(str(store) in a for a in argv):
            found[int(entry.name)] = argv
    return found


def waiting(store: Path) -> dict[int, Path]:
    """The g++ drivers whose runner's rest is a FIFO still there, with their runner folder."""
    found = {}
    for pid, argv in compilers(store).items():
        src = next((Path(a) for a in argv if a.endswith("/runner.cpp")), None)
        if argv[0].endswith("/g++") and src is not None:
            try:
                if stat.S_ISFIFO((src.parent / source.REST).stat().st_mode):
                    found[pid] = src.parent
            except OSError:
                continue
    return found


def test_a_served_eval_is_compiled_by_the_gcc_the_server_started_ahead(
        served: Path, client: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    out, err, code, by_server = evaluate(client, served, WHERE.replace("{n}", "1"))
    assert (code, by_server) == (0, True), err
    assert out.startswith("2 ")
    ahead = until(lambda: waiting(store), "a g++ started ahead")
    assert len(ahead) == 1
    pid, folder = next(iter(ahead.items()))
    # Opened now: the served child removes the folder after its answer (engine.later), and the
    # runner's source is rewritten in place, as a plain compile leaves it, before the answer.
    with open(folder / "runner.cpp") as runner:
        out, err, code, by_server = evaluate(client, served, WHERE.replace("{n}", "3"))
        assert (code, by_server, err) == (0, True, "")
        area, exe = out.split()
        assert area == "6" and Path(exe).resolve().parent == folder.resolve()  # linked by it
        assert runner.read().count("\n") > 4  # the whole runner, as plain
    assert not (folder / source.REST).exists()
    # In-process (nothing started ahead) into another store: the same answer.
    local = run(client, ("eval", "plan.yaml", "-p", "geo", "--store", "../local-store",
                         "-e", WHERE.replace("{n}", "3")), served,
                environment(RECIPE_SERVER="off"))
    assert local[0].split()[0] == "6" and not local[3]
    # What does not compile: g++'s words as a plain compile says them, exit 1.
    until(lambda: waiting(store), "the next g++ started ahead")
    out, err, code, by_server = evaluate(client, served, "std::cout << nope;")
    assert (out, code, by_server) == ("", 1, True), err
    assert "'nope' was not declared" in err and source.REST not in err
    assert "included from" not in err
    assert evaluate(client, served, WHERE.replace("{n}", "4"))[0].startswith("8 ")
    # recipe server stop: nothing left running, nothing in the store's temporary folder.
    until(lambda: waiting(store), "the next g++ started ahead")
    stopped = run_recipe("server", "stop", env=environment())
    assert stopped.returncode == 0, stopped.stderr
    until(lambda: not compilers(store), "no g++ left after server stop")
    until(lambda: not list((store / ".recipe" / "tmp").iterdir()),
          "nothing left in the store's temporary folder")
