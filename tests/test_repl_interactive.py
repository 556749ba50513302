"""recipe repl driven through a pseudo-terminal with real keystrokes (pexpect)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.repl_projects import make_plan

pexpect = pytest.importorskip("pexpect")

pytestmark = pytest.mark.slow
TIMEOUT = 120


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_plan(tmp_path_factory.mktemp("repl") / "src")


def start(plan: Path, project: str = "calc", *args: str):  # -> pexpect.spawn
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "repl", str(plan), "-p",
                                           project, *args],
                          cwd=str(plan.parent), env={**os.environ, "TERM": "dumb"},
                          encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))
    child.expect_exact("%help for help")
    child.expect_exact("recipe> ")
    return child


def submit(child, line: str) -> str:  # noqa: ANN001
    """Type a line; what was printed before the next prompt."""
    child.sendline(line)
    child.expect_exact("recipe> ")
    return str(child.before).replace("\r\n", "\n")


def finish(child) -> int:  # noqa: ANN001
    child.expect(pexpect.EOF)
    child.close()
    return int(child.exitstatus)


def test_prompt_output_continuation_and_quit(plan: Path) -> None:
    child = start(plan)
    assert submit(child, 'printf("%d\\n", calc_quad(5));').endswith("\n20\n")
    child.sendline("int a = 6; \\")
    child.expect_exact("   ...> ")
    child.sendline("int b = 7; \\")
    child.expect_exact("   ...> ")
    assert submit(child, 'printf("%d\\n", a * b);').endswith("\n42\n")
    assert "%quit    leave" in submit(child, "%help")
    assert "unknown command %nope" in submit(child, "%nope")
    assert submit(child, "") == "\n"  # an empty line just prompts again
    child.sendline("%quit")
    assert finish(child) == 0


def test_the_session_survives_compile_errors_crashes_and_exit_codes(plan: Path) -> None:
    child = start(plan)
    shown = submit(child, "calc_quad(;")
    assert "error: expected expression" in shown
    assert "recipe: the submission does not compile (generated file: " in shown
    assert "recipe: the submission was killed by SIGSEGV (exit 139)" in \
        submit(child, "volatile int *p = 0; *p = 1;")
    assert "recipe: exit 3" in submit(child, "return 3;")
    assert submit(child, 'puts("still here");').endswith("still here\n")
    child.sendeof()  # Ctrl-D at the prompt
    assert finish(child) == 0


def test_ctrl_c_stops_a_running_submission(plan: Path) -> None:
    child = start(plan)
    child.sendline('puts("looping"); fflush(stdout); for (;;) {}')
    child.expect_exact("looping")
    child.sendintr()
    child.expect_exact("recipe: interrupted")
    child.expect_exact("recipe> ")
    assert submit(child, 'printf("%d\\n", calc_quad(1));').endswith("\n4\n")
    child.sendintr()  # at the prompt: drops the line
    child.expect_exact("recipe> ")
    child.sendline("%quit")
    assert finish(child) == 0


def test_history_is_kept_across_sessions(plan: Path, tmp_path: Path) -> None:
    works = tmp_path / "works"
    child = start(plan, "calc", "--works", str(works))
    submit(child, 'printf("%d\\n", 1000 + calc_quad(1));')
    child.sendline("%quit")
    assert finish(child) == 0
    assert 'printf("%d\\n", 1000 + calc_quad(1));' in (tmp_path / "works.history").read_text()
    child = start(plan, "calc", "--works", str(works))
    child.send("\x10\x10")  # Ctrl-P twice: back past %quit to the submission
    child.sendline("")
    child.expect_exact("1004")
    child.expect_exact("recipe> ")
    child.sendline("%quit")
    assert finish(child) == 0


def test_state_persists_in_the_workspace_between_submissions(plan: Path) -> None:
    child = start(plan)
    code = ('FILE *f = fopen("count", "a"); fputc(\'+\', f); fclose(f); '
            'f = fopen("count", "r"); int n = 0; while (fgetc(f) != EOF) n++; fclose(f); '
            'printf("count is %d\\n", n);')
    first = submit(child, code).splitlines()[-1]
    second = submit(child, code).splitlines()[-1]  # the same runner, not compiled again
    n = int(first.removeprefix("count is "))
    assert second == f"count is {n + 1}"
    child.sendline("%quit")
    assert finish(child) == 0


def test_bad_project_is_one_line_and_exit_2(plan: Path) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "repl", str(plan), "-p",
                                           "plain"], env={**os.environ, "TERM": "dumb"},
                          encoding="utf-8", timeout=TIMEOUT)
    child.expect_exact("project 'plain' has no REPL scope")
    assert finish(child) == 2


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_bytes_that_are_not_utf8_are_an_error_line_and_the_session_goes_on(
        plan: Path, locale: str) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "engine.cli.main", "repl", str(plan), "-p",
                                           "calc"], cwd=str(plan.parent),
                          env={**os.environ, "TERM": "dumb", "LC_ALL": locale},
                          timeout=TIMEOUT, dimensions=(40, 200))  # bytes, not str
    child.expect_exact(b"recipe> ")
    child.sendline(b'puts("a\xff");')
    child.expect_exact(b"recipe> ")
    shown = bytes(child.before)
    assert b"recipe: the submission is not valid UTF-8 at byte 8; write it in UTF-8" in shown
    assert b"Traceback" not in shown
    child.sendline(b'printf("%d\\n", calc_quad(3));')  # the session is alive and works
    child.expect_exact(b"12")
    child.expect_exact(b"recipe> ")
    child.sendline(b"%quit")
    assert finish(child) == 0


def test_a_nul_in_piped_input_is_an_error_line_and_the_session_goes_on(plan: Path) -> None:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "engine.cli.main", "repl", str(plan), "-p",
                           "calc"], input=b'puts("n\0l");\nputs("a\xff");\nputs("next");\n',
                          cwd=plan.parent, capture_output=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"next\nrecipe> \n")
    assert done.stderr.decode().splitlines() == [
        "recipe: the submission holds a NUL character; remove it",
        "recipe: the submission is not valid UTF-8 at byte 8; write it in UTF-8; a string can "
        "hold any byte as an escape such as \\xff"]
