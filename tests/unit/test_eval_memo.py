"""recipe eval from the record of an earlier eval (engine.memo, kind "eval"): no plan loaded,
nothing derived or realised, the same answers; anything that changed is a full run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import memo
from tests.conftest import run_recipe
from tests.repl_projects import make_plan

SETTLE = memo.RACY_NS / 1e9 + 0.2
# Imported only by an eval that loads the plan and prepares the scope.
FULL_RUN = ("engine.documents.cached", "engine.build.realise", "engine.repl.scope")
QUAD = 'printf("%d\\n", calc_quad(3));'


def evaluate(plan: Path, code: str, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                                          set[str]]:
    """``recipe eval`` of ``code`` in calc's scope; which of FULL_RUN it imported."""
    argv = ["eval", str(plan), "-p", "calc", "-e", code, *args]
    script = ("import sys\nfrom engine.cli.main import main\ncode = main(sys.argv[1:])\n"
              f"print('imported:', *[m for m in {FULL_RUN!r} if m in sys.modules], "
              "file=sys.stderr)\nsys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True,
                          text=True, cwd=plan.parent)
    *rest, last = done.stderr.splitlines() or ["imported:"]
    done.stderr = "".join(line + "\n" for line in rest)
    return done, set(last.split()[1:])


def remembered(plan: Path) -> None:
    """Evals SETTLE apart until one is answered from a record."""
    for _ in range(3):
        done, imported = evaluate(plan, QUAD)
        assert done.returncode == 0, done.stderr
        if not imported:
            return
        time.sleep(SETTLE)
    raise AssertionError("no eval was answered from a record")


def test_a_repeated_or_new_submission_runs_without_loading_the_plan(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    full, imported = evaluate(plan, QUAD)
    assert imported == set(FULL_RUN)
    remembered(plan)
    again, imported = evaluate(plan, QUAD)
    assert (again.stdout, again.stderr, again.returncode, imported) == (
        full.stdout, full.stderr, 0, set())
    # A submission never seen: compiled in the recorded scope, cached, and right.
    new, imported = evaluate(plan, 'printf("%d\\n", calc_quad(5) + base_twice(1)); return 3;')
    assert (new.stdout, new.returncode, imported) == ("22\n", 3, set())
    # Errors are the same lines as in a full run.
    bad, imported = evaluate(plan, "int x = ;")
    assert bad.returncode == 1 and imported == set()
    assert "error: expected expression before ';' token" in bad.stderr
    # --json reports a cached runner.
    out, imported = evaluate(plan, QUAD, "--json")
    assert '"cached": true' in out.stdout and '"stdout": "' in out.stdout and not imported


def test_an_edited_scope_header_is_a_full_run_with_the_new_answer(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    remembered(plan)
    header = plan.parent / "calc/include/calc.h"
    header.write_text(header.read_text() + "#define CALC_EXTRA 41\n")
    done, imported = evaluate(plan, 'printf("%d\\n", CALC_EXTRA + 1);')
    assert (done.stdout, done.returncode) == ("42\n", 0) and imported


def test_a_collected_library_is_a_full_run(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    store = plan.parent / "store"
    remembered(plan)
    roots = [line.split()[0] for line in run_recipe(
        "store", "roots", "--store", store).stdout.splitlines() if line.startswith("repl:")]
    assert roots
    for root in roots:
        assert run_recipe("store", "roots", "--remove", root, "--store", store).returncode == 0
    assert run_recipe("store", "gc", "--store", store).returncode == 0
    done, imported = evaluate(plan, QUAD)
    assert (done.stdout, done.returncode) == ("12\n", 0) and imported


def test_a_damaged_record_or_another_target_is_a_full_run(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    remembered(plan)
    done, imported = evaluate(plan, QUAD, "-t", "debug")
    assert done.stdout == "12\n" and imported
    for record in (plan.parent / ".recipe/cache").glob("eval-*.marshal"):
        record.write_bytes(b"\x00garbage")
    done, imported = evaluate(plan, QUAD)
    assert done.stdout == "12\n" and imported


def test_a_recalled_session_is_contained_as_a_full_one(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    remembered(plan)
    victims = [plan.parent / "store/planted", plan.parent / "calc/planted"]
    for victim in victims:
        done, imported = evaluate(plan, f'FILE *f = fopen("{victim}", "w"); '
                                        'return f == NULL ? 9 : 0;')
        assert (done.returncode, imported) == (9, set()), done.stderr
        assert not victim.exists()


def test_a_record_held_ahead_is_used_until_a_file_it_read_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``memo.hold`` (what the server's spare does ahead of a Rust eval, engine/repl/ready.py)
    reads the record, holds its closure and checks the store; ``recall`` with it then checks
    only what may change meanwhile: an edit still makes it a miss, and a record rewritten
    since is read again."""
    plan = make_plan(tmp_path / "src")
    remembered(plan)
    [file] = (plan.parent / ".recipe" / "cache").glob("eval-*.marshal")
    held = memo.hold(file)
    assert held is not None and held.file == file
    monkeypatch.chdir(plan.parent)  # the record's key has the eval's folder
    request = held.record["request"]
    assert memo.recall(plan, "eval", request, held=held) is held.record
    other = memo.Held(file, (0, 0, 0), {"request": None})  # a stamp that is no longer the file's
    assert memo.recall(plan, "eval", request, held=other) == held.record
    header = plan.parent / "calc/include/calc.h"
    header.write_text(header.read_text() + "#define CALC_EXTRA 41\n")
    assert memo.recall(plan, "eval", request, held=held) is None
