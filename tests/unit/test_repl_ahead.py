"""engine.repl.ahead for C and C++, with real gcc/g++: a compiler started before its submission
(its precompiled scope loaded, the rest of the runner from a FIFO) makes the plain compile's
runner bit for bit, and what gcc says is always a plain compile's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.build import reaper
from engine.documents.load import load_plan
from engine.repl import runner as compiled
from engine.repl import source
from engine.repl.ahead import Ahead
from engine.repl.runner import CompileError
from engine.repl.session import Session
from engine.store import Store
from tests.repl_projects import make_plan

CASES = {  # project: a submission that uses its scope, __FILE__ and __LINE__
    "calc": 'printf("%d %s %d\\n", calc_quad(3), __FILE__, __LINE__);',
    "shapes": 'std::cout << shapes::area(2, 3) << " " << __FILE__ << " " << __LINE__ << "\\n";',
}


def session(plan: Path, store: Path, project: str, target: str = "release") -> Session:
    return Session.prepare(load_plan(plan), Store.open(store), project, target=target)


def warmed(s: Session) -> Ahead:
    """What ``recipe repl`` does before it reads a submission: the next one's gcc started."""
    s.warm()
    assert s._ahead is not None
    return s._ahead


def plain(s: Session, code: str) -> tuple[tuple[int, bytes], Path]:
    """The runner of ``code`` compiled the plain way: gcc's status and words, its folder."""
    folder = compiled.runner_folder(s.store)
    src = folder / source.runner_name(s.spec.language)
    src.write_text(source.runner_source(s.spec.language, code, s.spec.title))
    argv, cwd, _ = compiled.command(s.spec, folder, src)
    return reaper.run(argv, s.store, cwd=cwd, env={**s.spec.env, "TMPDIR": str(folder)}), folder


@pytest.mark.parametrize("target", ["release", "debug"])
@pytest.mark.parametrize("project", sorted(CASES))
def test_a_compiler_started_ahead_makes_the_runner_a_plain_compile_makes(
        tmp_path: Path, project: str, target: str) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", project, target) as s:
        ahead = Ahead.start(s.spec, s.store)
        assert ahead is not None and (ahead.folder / source.REST).is_fifo()
        assert ahead.finish(CASES[project]) == (0, b"")
        (status, said), folder = plain(s, CASES[project])
        assert (status, said) == (0, b"")
        name = source.runner_name(s.spec.language)
        assert ahead.executable.read_bytes() == (folder / "runner").read_bytes()
        # The folder as a plain compile leaves it: the runner's whole text, no FIFO.
        assert sorted(p.name for p in ahead.folder.iterdir()) == sorted(
            p.name for p in folder.iterdir())
        assert (ahead.folder / name).read_text() == (folder / name).read_text()
        with (tmp_path / "out").open("wb") as out:  # the runner says its file and line
            assert s.run(s.compile(CASES[project]), stdout=out).code == 0
        assert (tmp_path / "out").read_text().split()[1:] == ["./" + name, "5"]
        shutil.rmtree(ahead.folder)
        shutil.rmtree(folder)


@pytest.mark.parametrize("code, word", [
    ("#warning look here\nreturn 0;", "warning: #warning look here"),
    ("int x = no_such_thing;", "error: 'no_such_thing' undeclared"),
])
def test_what_gcc_says_is_what_a_plain_compile_says(tmp_path: Path, code: str,
                                                    word: str) -> None:
    """A compile started ahead that says anything is not taken: the runner is compiled the
    plain way, so its words name no FIFO and no include of it."""
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", "calc") as s:
        waiting = warmed(s)
        (status, said), folder = plain(s, code)
        try:
            words = s.compile(code).diagnostics
        except CompileError as error:
            words = error.detail
        assert status == (1 if "error" in word else 0)
        assert word in words and source.REST not in words and "included from" not in words
        assert _folded(words) == _folded(said.decode())
        assert not waiting.folder.exists()  # not taken


def _folded(words: str) -> str:
    """gcc's words without the runner's folder (each compile has its own)."""
    return re.sub(r"\S*/runner\.c\b", "runner.c", words)


def test_a_c_session_compiles_new_submissions_by_the_gcc_it_started(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", "calc") as s:
        ahead = warmed(s)
        first = s.compile('printf("%d\\n", calc_quad(4));')
        assert not first.cached and first.folder == ahead.folder and s._ahead is None
        out = tmp_path / "out"
        with out.open("wb") as f:
            assert s.run(first, stdout=f).code == 0
        assert out.read_text() == "16\n"
        # Closing the session stops the gcc that waits and removes its folder.
        last = warmed(s)
    assert last.contained.proc.returncode is not None
    assert not last.folder.exists()


def test_a_submission_that_names_the_include_depth_is_compiled_the_plain_way(
        tmp_path: Path) -> None:
    """``__INCLUDE_LEVEL__`` is 0 in the plain runner, 1 in a rest included from a FIFO."""
    plan = make_plan(tmp_path / "src")
    with session(plan, tmp_path / "store", "calc") as s:
        waiting = warmed(s)
        runner = s.compile('return __INCLUDE_LEVEL__ + 3;')
        assert runner.folder != waiting.folder and not waiting.folder.exists()
        assert s.run(runner).code == 3
