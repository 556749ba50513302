"""Golden cases that fit real programs: a program sees its own name and its project's programs
on PATH, never the store; patterns and redactions ([..], ..., [NAME], [ROOT], [STORE]); and
--update keeping placeholders and refusing to record the store or the scratch folder.

The programs are real C programs compiled by recipe from the tree below."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli.main import main
from tests.conftest import run_recipe, write_tree

PROG_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!strcmp(mode, "again")) {          /* run itself by name: found on PATH */
        execlp("prog", "prog", (char *)0);
        perror("execlp prog");
        return 127;
    }
    if (!strcmp(mode, "where")) {          /* its working folder: in the scratch folder */
        char buf[4096];
        if (getcwd(buf, sizeof buf)) printf("%s\n", buf);
        return 0;
    }
    if (!strcmp(mode, "self")) {           /* its own file: in the store */
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n > 0) { buf[n] = 0; printf("running %s\n", buf); }
        return 0;
    }
    if (!strcmp(mode, "addr")) {           /* an address and a time: new every run */
        int lines = argc > 2 ? atoi(argv[2]) : 0;
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        char *p = malloc(16);
        printf("buffer at %p\n", (void *)p);
        for (int i = 1; i <= lines; i++) printf("line %d\n", i);
        if (argc > 3) printf("extra at %p\n", (void *)&lines);
        printf("took %ld.%09lds\n", (long)(t.tv_sec % 7), (long)t.tv_nsec);
        free(p);
        return 0;
    }
    if (!strcmp(mode, "write")) {          /* write PATH TEXT...: files in its working folder */
        mkdir("out", 0755);
        for (int i = 2; i + 1 < argc; i += 2) {
            FILE *f = fopen(argv[i], "wb");
            if (!f) { perror(argv[i]); return 1; }
            fputs(argv[i + 1], f);
            fclose(f);
        }
        return 0;
    }
    fprintf(stderr, "usage: %s FILE\n", argv[0]);
    return 2;
}
"""

TREE = {
    "plan.yaml": "kind: plan\n",
    "tool/project.yaml": """
        kind: project
        name: tool
        version: "1.0"
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        include_dirs: [include]
        outputs:
          - {name: tool, kind: static-library}
          - {name: prog, kind: executable, sources: [prog.c]}
        repl: {scope: [include/tool.h]}
        cases: ["cases.yaml"]
    """,
    "tool/include/tool.h": "int tool_one(void);\n",
    "tool/src/tool.c": '#include "tool.h"\nint tool_one(void) { return 1; }\n',
    "tool/prog.c": PROG_C,
}

# An eval submission printing the argv[0] it was given (main() takes no arguments in C).
CMDLINE = ('char b[256] = {0}; FILE *f = fopen("/proc/self/cmdline", "r"); '
           'fread(b, 1, sizeof b - 1, f); printf("%s\\n", b);')


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store=tmp_path / "store", cases=root / "tool" / "cases.yaml")


def cases(plan: SimpleNamespace, text: str) -> None:
    plan.cases.write_text(textwrap.dedent(text).lstrip("\n"))


def verify(plan: SimpleNamespace, *args: str,
           capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["verify", "plan.yaml", "--store", str(plan.store), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_program_sees_its_name_and_finds_its_project_on_path(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, f"""
        kind: cases
        cases:
          - {{name: usage, run: prog, expect: {{stderr: "usage: prog FILE\\n", exit: 2}}}}
          - {{name: by name, run: prog, args: [again],
             expect: {{stderr: "usage: prog FILE\\n", exit: 2}}}}
          - name: eval argv0
            eval: '{CMDLINE}'
            expect: {{stdout: "tool\\n"}}
    """)
    code, out, _ = verify(plan, capsys=capsys)
    assert code == 0, out
    assert out.splitlines()[-1] == "3 passed"


def test_recipe_eval_runs_the_submission_under_the_projects_name(plan: SimpleNamespace) -> None:
    cases(plan, "kind: cases\ncases: []\n")
    done = run_recipe("eval", "plan.yaml", "--store", plan.store, "-p", "tool", "-e", CMDLINE,
                      cwd=plan.dir)
    assert (done.returncode, done.stdout) == (0, "tool\n"), done.stderr


def test_update_never_records_the_store_or_the_scratch_folder(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    text = """
        kind: cases
        cases:
          - {name: self, run: prog, args: [self], expect: {stdout: ""}}
          - {name: where, run: prog, args: [where], expect: {stdout: ""}}
          - name: eval where
            eval: 'fflush(stdout); system("pwd");'
            expect: {stdout: ""}
    """
    cases(plan, text)
    before = plan.cases.read_text()
    code, out, _ = verify(plan, "--update", capsys=capsys)
    assert code == 1
    assert plan.cases.read_text() == before  # nothing recorded
    lines = [line for line in out.splitlines() if line.startswith("not updated")]
    assert len(lines) == 3, out
    store = str(plan.store)
    assert lines[0].startswith(
        f"not updated tool/cases.yaml: self: its stdout holds the store folder ({store}), "
        "which differs per machine: not recorded; write [STORE] where it shows, e.g. "
        "'running [STORE]/")
    assert lines[0].endswith("-tool-1.0-release/bin/prog'")
    assert "where: its stdout holds the case's scratch folder (" in lines[1]
    assert "which differs per run: not recorded; write [ROOT] where it shows, e.g. " \
        "'[ROOT]/work'" in lines[1]
    assert "eval where: its stdout holds the case's scratch folder" in lines[2]
    assert "'[ROOT]/works'" in lines[2]

    # Written with the built-in placeholders, they pass, cached or not.
    cases(plan, text.replace('args: [self], expect: {stdout: ""}',
                             'args: [self], expect: {stdout: "running [STORE]/[..]/bin/prog\\n"}')
          .replace('args: [where], expect: {stdout: ""}',
                   'args: [where], expect: {stdout: "[ROOT]/work\\n"}')
          .replace('expect: {stdout: ""}', 'expect: {stdout: "[ROOT]/works\\n"}'))
    for _ in range(2):
        code, out, _ = verify(plan, capsys=capsys)
        assert code == 0, out
    code, out, _ = verify(plan, "--no-cache", capsys=capsys)
    assert code == 0, out


def test_redactions_match_addresses_and_times(plan: SimpleNamespace,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        redact: {"[ADDR]": "0x[0-9a-f]+"}
        cases:
          - name: addresses
            run: prog
            args: [addr, "5"]
            redact: {"[TIME]": "[0-9]+\\\\.[0-9]+s"}
            expect:
              stdout: |
                buffer at [ADDR]
                line 1
                ...
                line 5
                took [TIME]
          - name: any text
            run: prog
            args: [addr]
            expect: {stdout: "buffer at [..]\\ntook [..]s\\n"}
          - name: exact bytes
            run: prog
            args: [addr]
            expect: {stdout: "buffer at [ADDR]\\ntook 0.5s\\n"}
    """)
    code, out, _ = verify(plan, "--no-cache", capsys=capsys)
    assert code == 1
    assert out.splitlines()[-1] == "2 passed, 1 failed", out
    assert "=== FAILED tool/release: exact bytes: stdout differs" in out
    # The diff shows the address line as the pattern (it matched), the time as it came.
    assert " buffer at [ADDR]\n-took 0.5s\n+took " in out
    code, out, _ = verify(plan, "--no-cache", "-k", "addresses", capsys=capsys)
    assert code == 0, out


def test_update_keeps_placeholders_and_records_only_what_changed(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        redact: {"[ADDR]": "0x[0-9a-f]+", "[TIME]": "[0-9]+\\\\.[0-9]+s"}
        cases:
          - name: addresses
            run: prog
            args: [addr, "3", extra]
            expect:
              stdout: |  # kept
                buffer at [ADDR]
                line 1
                line two
                line 3
                took [TIME]
          - name: plain
            run: prog
            args: [addr]
            expect:
              stdout: ""
    """)
    code, out, _ = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    assert "updated tool/cases.yaml: addresses: stdout" in out
    text = plan.cases.read_text()
    assert """
      stdout: |  # kept
        buffer at [ADDR]
        line 1
        line 2
        line 3
        extra at [ADDR]
        took [TIME]
""" in text
    # New text is redacted with the file's redactions too.
    assert 'stdout: "buffer at [ADDR]\\ntook [TIME]\\n"' in text
    code, out, _ = verify(plan, "--no-cache", capsys=capsys)
    assert code == 0, out


@pytest.mark.parametrize(("redact", "expect", "message"), [
    ('{"[ADDR]": "0x[0-9"}', '"at [ADDR]\\n"',
     "tool/cases.yaml:2:20: the expression of [ADDR] is not a regular expression: unterminated "
     "character set at position 2; write a Python regular expression, such as 0x[0-9a-f]+"),
    ('{"[ADDR]": "0x[0-9a-f]+"}', '"at [ADRR] in [..]\\n"',
     "tool/cases.yaml:6:22: unknown placeholder [ADRR] in stdout (known here: [ADDR], [ROOT], "
     '[STORE]); declare it, e.g. redact: {"[ADRR]": "[0-9]+"}, or match the text with [..]'),
    ('{"[ROOT]": "x+"}', '""',
     "tool/cases.yaml:2:20: redaction [ROOT] is built in (the case's scratch folder); use it "
     "without declaring it, or pick another name"),
    ('{"[T]": "[0-9]*"}', '""',
     "tool/cases.yaml:2:17: the expression of [T] matches the empty text; make it match at "
     "least one character (+ instead of *)"),
    ('{"[T]": "\\\\s+"}', '""',
     "tool/cases.yaml:2:17: the expression of [T] matches a line break; a placeholder stands "
     "for text within one line: exclude \\n"),
    ('{"addr": "x"}', '""', "tool/cases.yaml:2:10: invalid key 'addr' in 'redact'; name a "
     'placeholder in capitals between brackets, such as "[ADDR]"'),
])
def test_a_bad_redaction_or_placeholder_is_one_line(
        plan: SimpleNamespace, redact: str, expect: str, message: str) -> None:
    cases(plan, f"""
        kind: cases
        redact: {redact}
        cases:
          - name: one
            run: prog
            expect: {{stdout: {expect}}}
    """)
    done = run_recipe("verify", "plan.yaml", "--store", plan.store, cwd=plan.dir)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert not plan.store.exists()  # refused before anything is built


def test_json_names_the_not_updated_cases(plan: SimpleNamespace,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    cases(plan, """
        kind: cases
        cases:
          - {name: self, run: prog, args: [self], expect: {stdout: ""}}
    """)
    code, out, _ = verify(plan, "--update", "--json", capsys=capsys)
    assert code == 1
    data = json.loads(out)
    assert [n["case"] for n in data["not_updated"]] == ["self"]
    assert "[STORE]" in data["not_updated"][0]["why"]


def test_golden_files_hold_patterns_too(plan: SimpleNamespace,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    golden = plan.dir / "tool" / "golden"
    golden.mkdir()
    (golden / "addr.stdout").write_text("buffer at [ADDR]\nline 1\n...\ntook [..]s\n")
    cases(plan, """
        kind: cases
        redact: {"[ADDR]": "0x[0-9a-f]+"}
        cases:
          - {name: addr, run: prog, args: [addr, "4"], expect: {stdout_file: golden/addr.stdout}}
    """)
    code, out, _ = verify(plan, "--no-cache", capsys=capsys)
    assert code == 0, out
    # --update rewrites the golden file keeping its placeholders.
    cases(plan, """
        kind: cases
        redact: {"[ADDR]": "0x[0-9a-f]+"}
        cases:
          - {name: addr, run: prog, args: [addr, "0", x], expect: {stdout_file: golden/addr.stdout}}
    """)
    code, out, _ = verify(plan, "--update", capsys=capsys)
    assert code == 0, out
    # (the changed line before the `...` is replaced by what came, with its redaction)
    assert (golden / "addr.stdout").read_text() == \
        "buffer at [ADDR]\nextra at [ADDR]\n...\ntook [..]s\n"
