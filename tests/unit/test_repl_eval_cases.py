"""Eval cases under recipe verify: compared like process cases, cached, re-recorded."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_recipe
from tests.repl_projects import calls, make_plan, make_wrappers

CASES = {
    "calc/cases/eval.yaml": """
        kind: cases
        cases:
          - name: quad
            eval: 'printf("%d\\n", calc_quad(3));'
            expect: {stdout: "12\\n"}
          - name: exit and stderr
            eval: 'fputs("oops\\n", stderr); return 4;'
            expect: {stdout: "", stderr: "oops\\n", exit: 4}
          - name: a fresh workspace each time
            eval: |
              FILE *f = fopen("mark", "r");
              printf("%s\\n", f ? "seen" : "fresh");
              f = fopen("mark", "w"); fclose(f);
            expect: {stdout: "fresh\\n"}
    """,
    "shapes/cases/eval.yaml": """
        kind: cases
        cases:
          - name: area
            eval: 'std::cout << shapes::area(2, 4) << "\\n";'
            expect: {stdout: "8\\n"}
    """,
}


def verify(plan: Path, *args: str) -> tuple[int, dict]:
    done = run_recipe("verify", plan, "--json", *args)
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout)


def statuses(data: dict) -> dict[str, str]:
    return {f"{o['project']}/{o['case']}": o["status"] + ("+cached" if o["cached"] else "")
            for o in data["outcomes"]}


def test_eval_cases_run_compare_and_are_cached(tmp_path: Path) -> None:
    cc, cxx, log = make_wrappers(tmp_path / "tc")
    plan = make_plan(tmp_path / "src", (cc, cxx), CASES)
    code, data = verify(plan, "-k", "/")
    assert code == 0, data
    assert statuses(data) == {"calc/quad": "passed", "calc/exit and stderr": "passed",
                              "calc/a fresh workspace each time": "passed",
                              "shapes/area": "passed"}
    runners = calls(log, "runner.c") + calls(log, "runner.cpp")
    assert runners == 4
    code, data = verify(plan, "-k", "/")
    assert code == 0 and set(statuses(data).values()) == {"passed+cached"}
    code, data = verify(plan, "-k", "/", "--no-cache")  # runs again, compiles nothing
    assert code == 0 and set(statuses(data).values()) == {"passed"}
    assert calls(log, "runner.c") + calls(log, "runner.cpp") == runners


def test_a_mismatch_fails_and_update_records_it(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src", extra={"calc/cases/eval.yaml": """
        kind: cases
        cases:
          - name: quad  # keep this comment
            eval: 'printf("%d\\n", calc_quad(5)); return 2;'
            expect: {stdout: "wrong\\n"}
    """})
    done = run_recipe("verify", plan, "-k", "calc/quad")
    assert done.returncode == 1
    assert "-wrong" in done.stdout and "+20" in done.stdout
    done = run_recipe("verify", plan, "-k", "calc/quad", "--update")
    assert done.returncode == 0, done.stdout + done.stderr
    text = (tmp_path / "src/calc/cases/eval.yaml").read_text()
    assert "# keep this comment" in text and "20\\n" in text and "exit: 2" in text
    assert run_recipe("verify", plan, "-k", "calc/quad").returncode == 0


def test_a_case_that_does_not_compile_fails_with_the_diagnostics(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src", extra={"calc/cases/eval.yaml": """
        kind: cases
        cases:
          - name: broken
            eval: 'calc_quad(;'
            expect: {stdout: ""}
    """})
    code, data = verify(plan, "-k", "broken")
    assert code == 1
    [outcome] = data["outcomes"]
    assert (outcome["status"], outcome["message"]) == ("failed",
                                                       "the submission does not compile")
    assert "error: expected expression" in outcome["detail"]


def test_an_eval_case_cannot_write_into_the_store_or_the_plan(tmp_path: Path) -> None:
    root = tmp_path / "src"
    store = tmp_path / "store"
    plan = make_plan(root, extra={"calc/cases/eval.yaml": f"""
        kind: cases
        cases:
          - name: writes
            eval: |
              printf("%d%d\\n", fopen("{store}/planted", "w") != NULL,
                     fopen("{root}/planted", "w") != NULL);
            expect: {{stdout: "00\\n"}}
    """})
    code, data = verify(plan, "-k", "writes", "--store", str(store))
    assert code == 0, data
    assert not (store / "planted").exists() and not (root / "planted").exists()


def test_the_bundled_tally_example_has_passing_eval_cases() -> None:
    plan = Path(__file__).resolve().parents[2] / "recipes" / "plan.yaml"
    code, data = verify(plan, "-k", "tally/")
    assert code == 0, data
    names = {o["case"] for o in data["outcomes"]}
    assert "counts survive a save and a reopen" in names
