"""A Rust project's function cases start on its shared library while the rest of its store path
(its programs) builds (engine/verify/early.py, issue 15 point 5b): same report, same exit codes,
the rows' results cached and kept by the path; a build that fails reports only its failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from engine.cli.main import main
from engine.store import Store
from engine.verify import runner
from tests.conftest import run_recipe, write_tree

pytestmark = pytest.mark.skipif(shutil.which("rustc") is None and not os.environ.get("CI"),
                                reason="needs rustc")

TREE = {
    "plan.yaml": "kind: plan\nprojects: ['*/project.yaml']\n",
    "gen/project.yaml": """
        kind: project
        name: gen
        version: 0.1.0
        language: rust
        sources: ["src/*.rs", "!src/main.rs"]
        outputs:
          - {name: gen, kind: shared-library}
          - {name: gen-run, kind: executable, sources: [src/main.rs]}
    """,
    "gen/src/lib.rs": """
        #[no_mangle]
        pub extern "C" fn gen_twice(x: i32) -> i32 { x * 2 }
    """,
    "gen/src/main.rs": """
        fn main() { println!("{}", gen::gen_twice(21)); }
    """,
    "gen/cases/cases.yaml": """
        kind: cases
        cases:
          - name: twice
            function: int gen_twice(int x)
            table: [[1, 2], [21, 42]]
          - name: runs
            run: gen-run
            expect: {stdout: "42\\n"}
    """,
}


def _edit(src: Path, body: str) -> None:
    (src / "gen/src/lib.rs").write_text(
        '#[no_mangle]\npub extern "C" fn gen_twice(x: i32) -> i32 { ' + body + ' }\n')


def test_function_cases_run_before_the_path_is_registered_with_the_same_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store_dir = tmp_path / "store"
    assert run_recipe("verify", src / "plan.yaml", "--store", store_dir).returncode == 0
    _edit(src, "x + x")
    store = Store.open(store_dir)
    when: dict[str, bool] = {}  # case -> whether its path was valid when it ran
    execute = runner.execute

    def spy(job: runner.Job, settings: runner.Settings) -> runner.Outcome:
        when[job.case.name] = store.is_valid(job.path.name)
        return execute(job, settings)

    monkeypatch.setattr(runner, "execute", spy)
    monkeypatch.setenv("RECIPE_SERVER", "off")
    code = main(["verify", str(src / "plan.yaml"), "--store", str(store_dir)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert when == {"twice": False, "runs": True}, when  # the function case did not wait
    assert out.index("twice") < out.index("runs") and "2 passed" in out  # the cases' order
    assert not list((store_dir / ".recipe" / "tmp").glob("early*"))  # its library's folder
    # the rows' results were recorded before the path was valid: the path keeps them now
    assert run_recipe("store", "gc", "--store", store_dir).returncode == 0
    again = run_recipe("verify", src / "plan.yaml", "--store", store_dir, "--json")
    assert again.returncode == 0, again.stderr
    assert '"cached": true' in again.stdout.replace('"cached":true', '"cached": true')


def test_a_wrong_row_fails_and_a_missing_function_is_exit_2(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    assert run_recipe("verify", src / "plan.yaml", "--store", store).returncode == 0
    _edit(src, "x * 3")
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert done.returncode == 1 and "2 of 2 rows failed" in done.stdout, done.stdout
    (src / "gen/src/lib.rs").write_text(
        '#[no_mangle]\npub extern "C" fn gen_thrice(x: i32) -> i32 { x * 3 }\n'
        'pub fn gen_twice(x: i32) -> i32 { x * 2 }\n')
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert done.returncode == 2, done.stdout + done.stderr
    said = [line for line in done.stderr.splitlines() if not line.startswith("building ")]
    assert len(said) == 1, done.stderr  # one line, the build's progress aside
    assert "libgen.so of project 'gen' has no function 'gen_twice'" in done.stderr


def test_a_program_that_fails_to_build_reports_the_failure_and_no_outcome(
        tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    (src / "gen/src/main.rs").write_text("fn main() { not_a_function(); }\n")
    done = run_recipe("verify", src / "plan.yaml", "--store", store)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not_a_function" in done.stderr and "passed" not in done.stdout, done.stdout
    assert not list((store / ".recipe" / "tmp").glob("early*"))


def _paths(store: Path) -> list[str]:
    return sorted(p.name for p in store.glob("*-gen-0.1.0-*"))


def test_function_cases_alone_build_the_library_alone_then_the_path_whole(
        tmp_path: Path) -> None:
    """``-k`` selecting only a library's function cases: an edit builds the library's actions
    and no more (no program linked, no path registered or rooted); the next verify finds them
    cached, builds the path whole (only the program links) and then answers from its record."""
    src = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    assert run_recipe("verify", src / "plan.yaml", "--store", store).returncode == 0
    before = _paths(store)
    roots = run_recipe("store", "roots", "--store", store).stdout
    _edit(src, "x + x")
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
    assert _paths(store) == before  # nothing registered
    assert run_recipe("store", "roots", "--store", store).stdout == roots
    assert not list((store / ".recipe" / "tmp").glob("early*"))
    assert not list((store / ".recipe" / "build").iterdir())
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice", "--json")
    assert done.returncode == 0, done.stderr
    (built,) = set(_paths(store)) - set(before)  # built whole, the library from the cache
    log = run_recipe("store", "log", store / built, "--store", store)
    assert log.returncode == 0 and "# cached libgen.rlib" in log.stdout, log.stdout
    assert "--crate-name gen_run" in log.stdout and "--crate-type cdylib" not in log.stdout
    again = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert again.returncode == 0 and "cached" in again.stdout, again.stdout
    assert run_recipe("verify", src / "plan.yaml", "--store", store).returncode == 0


def test_function_cases_alone_neither_wait_for_nor_report_a_broken_program(
        tmp_path: Path) -> None:
    """The program is not built for them, so its error is the next full verify's; a library
    that fails to build reports its failure and no outcome."""
    src = write_tree(tmp_path / "src", TREE)
    store = tmp_path / "store"
    (src / "gen/src/main.rs").write_text("fn main() { not_a_function(); }\n")
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout + done.stderr
    done = run_recipe("verify", src / "plan.yaml", "--store", store)
    assert done.returncode == 1 and "not_a_function" in done.stderr, done.stderr
    _edit(src, "x +")
    done = run_recipe("verify", src / "plan.yaml", "--store", store, "-k", "twice")
    assert done.returncode == 1 and "passed" not in done.stdout, done.stdout
    assert not _paths(store) and not list((store / ".recipe" / "build").iterdir())


def test_cases_that_could_not_start_on_the_library_get_the_path_built_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The library could not be taken out of the build folder (a file system without hard
    links: the store copies instead): the path that was built only up to its library is built
    whole, and the cases run on it."""
    from engine.verify import early

    src = write_tree(tmp_path / "src", TREE)
    store_dir = tmp_path / "store"
    assert run_recipe("verify", src / "plan.yaml", "--store", store_dir).returncode == 0
    before = _paths(store_dir)
    _edit(src, "x + x")

    def no_link(*_args: object) -> None:
        raise OSError("no hard links here")

    monkeypatch.setattr(early.os, "link", no_link)
    monkeypatch.setenv("RECIPE_SERVER", "off")
    code = main(["verify", str(src / "plan.yaml"), "--store", str(store_dir), "-k", "twice"])
    out = capsys.readouterr().out
    assert code == 0 and "1 passed" in out, out
    assert len(_paths(store_dir)) == len(before) + 1  # built whole after all
    assert not list((store_dir / ".recipe" / "build").iterdir())
