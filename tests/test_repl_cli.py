"""recipe eval through the real command line: streams, exit codes, errors, the workspace."""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_recipe
from tests.repl_projects import MIXED, make_plan


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_plan(tmp_path_factory.mktemp("repl") / "src")


def evaluate(plan: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_recipe("eval", plan, "-p", "calc", "-e", code, *args)


def one_line(stderr: str) -> str:
    lines = stderr.strip("\n\x1b[K\r").splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_output_and_exit_code_are_the_submission_s(plan: Path) -> None:
    done = evaluate(plan, 'printf("%d\\n", calc_quad(2)); fprintf(stderr, "e\\n"); return 7;')
    assert (done.stdout, done.stderr, done.returncode) == ("8\n", "e\n", 7)


def test_a_signal_is_named_and_exits_128_plus_n(plan: Path) -> None:
    done = evaluate(plan, 'printf("before\\n"); fflush(stdout); abort();')
    assert done.returncode == 134
    assert done.stdout == "before\n"
    assert one_line(done.stderr) == "recipe: the submission was killed by SIGABRT"


def test_a_compile_error_shows_the_diagnostics_and_names_the_file(plan: Path) -> None:
    done = evaluate(plan, "int x = ;")
    assert done.returncode == 1 and done.stdout == ""
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("recipe: the submission does not compile (generated file: ")
    generated = last.split("generated file: ")[1].split(",")[0]
    assert f"{generated}:5:9: error: expected expression before ';' token" in done.stderr
    assert not Path(generated).exists()
    kept = evaluate(plan, "int x = ;", "--keep-tmp")
    generated = kept.stderr.strip().splitlines()[-1].split("generated file: ")[1].split(",")[0]
    assert kept.returncode == 1 and "kept" in kept.stderr
    assert "int x = ;" in Path(generated).read_text()
    shutil.rmtree(Path(generated).parent)  # kept for the user: the test cleans up after itself


def test_warnings_are_shown_on_every_run(plan: Path) -> None:
    code = "int unused_here = 1;"
    first, second = evaluate(plan, code), evaluate(plan, code)
    assert "unused variable 'unused_here'" in first.stderr
    assert first.stderr == second.stderr and second.returncode == 0


@pytest.mark.parametrize("args, line", [
    (["-p", "nope", "-e", "return 0;"],
     "recipe: unknown project 'nope'; the plan has: base, calc, plain, shapes"),
    (["-p", "plain", "-e", "return 0;"], "plain/project.yaml:2:7: project 'plain' has no REPL "
                                          "scope; add 'repl: {scope: [<header>]}' to project.yaml"),
    (["-p", "calc", "-e", "  \n "],
     "recipe: the submission is empty; pass some C or C++ code with -e"),
    (["-p", "calc", "-t", "nope", "-e", "return 0;"],
     "recipe: unknown target 'nope'; the plan has: release, debug"),
    (["-p", "calc", "--works", "store/.recipe/x", "-e", "return 0;"],
     "recipe: the workspace {root}/store/.recipe/x is inside the store; a submission may "
     "never write into the store: pass another --works folder"),
])
def test_bad_input_is_one_line_and_exit_2(plan: Path, args: list[str], line: str) -> None:
    done = run_recipe("eval", plan, *args, cwd=plan.parent)
    assert done.returncode == 2
    assert one_line(done.stderr) == line.replace("{root}", str(plan.parent))


@pytest.mark.parametrize("code, line", [
    (b'puts("\xff");', "recipe: the submission is not valid UTF-8 at byte 7; write it in "
                        "UTF-8; a string can hold any byte as an escape such as \\xff"),
    (b'/* \xc3 */ puts("x");', "recipe: the submission is not valid UTF-8 at byte 4; write "
                              "it in UTF-8; a string can hold any byte as an escape such as "
                              "\\xff"),
])
def test_bytes_that_are_not_utf8_are_one_line_and_exit_2(plan: Path, code: bytes,
                                                          line: str) -> None:
    done = subprocess.run([sys.executable.encode(), b"-m", b"engine.cli.main", b"eval",
                           bytes(plan), b"-p", b"calc", b"-e", code], cwd=plan.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert one_line(done.stderr) == line


def test_a_missing_scope_header_is_one_line_and_exit_2(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src")
    (tmp_path / "src/calc/project.yaml").write_text(
        (tmp_path / "src/calc/project.yaml").read_text().replace(
            "scope: [include/calc.h]", "scope: [include/gone.h]"))
    done = run_recipe("eval", plan, "-p", "calc", "-e", "return 0;", cwd=plan.parent)
    assert done.returncode == 2
    assert one_line(done.stderr) == ("calc/project.yaml:16:11: REPL scope header "
                                     "'include/gone.h' is not one of the project's headers; "
                                     "add it to headers or public_headers")
    assert not (tmp_path / "src/store").exists()  # refused before the store was touched


def test_cxx_executables_only_project(plan: Path) -> None:
    done = run_recipe("eval", plan, "-p", "shapes", "-e",
                      'std::cout << shapes::name() << " " << shapes::area(1.5, 2) << "\\n";')
    assert (done.stdout, done.returncode) == ("rect 3\n", 0), done.stderr


def test_the_workspace_default_and_works_option(plan: Path, tmp_path: Path) -> None:
    code = ('FILE *f = fopen("note", "a"); fputs("x", f); fclose(f); '
            'char p[4096]; snprintf(p, sizeof p, "%s/note", getenv("RECIPE_WORKS")); '
            'f = fopen(p, "r"); char b[64] = {0}; fread(b, 1, 63, f); puts(b);')
    assert [evaluate(plan, code).stdout for _ in range(2)] == ["x\n", "xx\n"]
    assert (plan.parent / ".recipe/works/calc/note").read_text() == "xx"
    other = tmp_path / "elsewhere"
    assert evaluate(plan, code, "--works", str(other)).stdout == "x\n"
    assert (other / "note").read_text() == "x"


def test_a_submission_cannot_write_into_the_store_or_the_sources(plan: Path) -> None:
    store = plan.parent / "store"
    evaluate(plan, "return 0;")
    victims = [store / "planted", store / ".recipe" / "planted", plan.parent / "calc/planted"]
    code = " ".join(f'printf("%d", fopen("{v}", "w") != NULL);' for v in victims)
    done = evaluate(plan, code)
    assert done.stdout == "000"
    assert not any(v.exists() for v in victims)


def test_a_submission_cannot_write_in_dev_shm(plan: Path) -> None:
    import uuid

    from engine.verify import landlock

    if not landlock.abi():
        pytest.skip("/dev/shm is confined by Landlock")
    theirs = Path(f"/dev/shm/recipe-test-{uuid.uuid4().hex}")
    theirs.write_text("secret\n")
    try:
        done = evaluate(plan, f'FILE *f = fopen("{theirs}", "w"); '
                              f'puts(f ? "opened" : "refused"); '
                              f'puts(remove("{theirs}") ? "kept" : "removed"); '
                              f'puts(fopen("{theirs}.new", "w") ? "created" : "refused");')
        assert done.stdout == "refused\nkept\nrefused\n", done.stderr
        assert theirs.read_text() == "secret\n" and not Path(f"{theirs}.new").exists()
    finally:
        theirs.unlink(missing_ok=True)
        Path(f"{theirs}.new").unlink(missing_ok=True)


def test_output_is_streamed_as_produced(plan: Path) -> None:
    code = ('printf("first\\n"); fflush(stdout); '
            'for (;;) { FILE *f = fopen("go", "r"); if (f) { fclose(f); break; } } '
            'printf("second\\n");')
    works = plan.parent / ".recipe/works/stream"
    works.mkdir(parents=True, exist_ok=True)
    (works / "go").unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli.main", "eval", str(plan), "-p",
                             "calc", "--works", str(works), "-e", code],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 120)
        assert ready and proc.stdout.readline() == b"first\n"
        assert proc.poll() is None  # still running: the line came while it ran
        (works / "go").touch()
        assert proc.wait(60) == 0
        assert proc.stdout.read() == b"second\n"
    finally:
        proc.kill()
        proc.wait()


def test_json_output(plan: Path) -> None:
    import json

    done = run_recipe("eval", plan, "-p", "calc", "--json", "-e", 'printf("hi"); return 3;')
    data = json.loads(done.stdout)
    assert (data["stdout"], data["exit"], data["signal"], done.returncode) == ("hi", 3, None, 3)
    assert data["capped"] == []


def test_json_output_is_capped(plan: Path) -> None:
    import json

    from engine.verify.process import CAP

    done = run_recipe("eval", plan, "-p", "calc", "--json", "-e",
                      'static char b[1 << 20]; memset(b, 65, sizeof b); '
                      'for (int i = 0; i < 40; i++) fwrite(b, 1, sizeof b, stdout); '
                      'fputs("tail", stderr); return 4;')
    data = json.loads(done.stdout)
    assert len(data["stdout"]) == CAP == 16 << 20 and set(data["stdout"]) == {"A"}
    assert (data["stderr"], data["capped"], data["exit"], done.returncode) == \
        ("tail", ["stdout"], 4, 4)


def test_stdin_is_passed_on(plan: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "engine.cli.main", "eval", str(plan), "-p",
                           "calc", "-e", 'int x; scanf("%d", &x); printf("%d\\n", calc_quad(x));'],
                          input="5\n", capture_output=True, text=True, timeout=300,
                          env={**os.environ})
    assert proc.stdout == "20\n", proc.stderr


def test_a_repeated_eval_is_fast_enough_to_not_have_compiled(plan: Path) -> None:
    evaluate(plan, "return 0; /* warm */")
    t0 = time.monotonic()
    assert evaluate(plan, "return 0; /* warm */").returncode == 0
    assert time.monotonic() - t0 < 30  # sanity only: test_repl_runner checks the compile count


def test_a_rust_project_elsewhere_in_the_plan_does_not_stop_eval(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "src", extra=MIXED)
    done = run_recipe("eval", plan, "-p", "cuser", "-e", 'printf("%d\\n", cuser_double_len("ab"));')
    assert (done.stdout, done.returncode) == ("4\n", 0), done.stderr
