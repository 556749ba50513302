"""Case inputs a real suite needs (issue 13, point 5): ``files: [{from, to}]`` from anywhere in
the project, case names with '/', repeated and negated ``-k``, an executable and a library of
one name, and the C dialects (c89, c99, the GNU ones) in builds and in the REPL."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.cli.main import main
from tests.conftest import write_tree

CAT_C = r"""
#include <stdio.h>
/* Prints each file named on the command line, after its name. */
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "r");
        int c;
        if (!f) { printf("%s: missing\n", argv[i]); continue; }
        printf("%s: ", argv[i]);
        while ((c = fgetc(f)) != EOF) putchar(c);
        fclose(f);
    }
    return 0;
}
"""

TREE = {
    "plan.yaml": "kind: plan\n",
    "suite/project.yaml": """
        kind: project
        name: suite
        version: "1.0"
        language: c
        standard: c99
        outputs:
          - {name: cat, kind: executable, sources: [src/cat.c]}
        cases: ["tests/**/*.yaml"]
    """,
    "suite/src/cat.c": CAT_C,
    "suite/data/words.txt": "alpha beta\n",
    "suite/data/more/one.txt": "one\n",
    "suite/tests/lexer/strings.yaml": """
        kind: cases
        cases:
          - name: lexer/strings
            run: cat
            args: [input/words.txt, one.txt, words.txt]
            files:
              - {from: ../../data/words.txt, to: input/words.txt}
              - {from: ../../data/more, to: .}
            expect:
              stdout: "input/words.txt: alpha beta\\none.txt: one\\nwords.txt: missing\\n"
          - {name: lexer/numbers, run: cat, expect: {stdout: ""}}
          - {name: parser/calls, run: cat, args: [x], expect: {stdout: "x: missing\\n"}}
    """,
}


@pytest.fixture
def plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    root = write_tree(tmp_path / "src", TREE)
    monkeypatch.chdir(root)
    return SimpleNamespace(dir=root, store=str(tmp_path / "store"), tmp=tmp_path)


def verify(plan: SimpleNamespace, *args: str) -> int:
    return main(["verify", "plan.yaml", "--store", plan.store, "-j", "2", *args])


def ran(out: str) -> list[str]:
    """The case names of a report's table."""
    return re.findall(r"^suite\s+release\s+(.+?)\s{2,}\S", out, re.M)


def test_files_from_anywhere_in_the_project_land_where_to_says(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(plan, "-k", "lexer/strings") == 0, capsys.readouterr().out
    assert ran(capsys.readouterr().out) == ["lexer/strings"]  # the name, shown as it is
    # The copied file is an input of the case: a change is seen, not answered from the cache.
    (plan.dir / "suite" / "data" / "words.txt").write_text("gamma\n")
    assert verify(plan, "-k", "lexer/strings") == 1
    out = capsys.readouterr().out
    assert "=== FAILED suite/release: lexer/strings: stdout differs" in out
    assert "+input/words.txt: gamma" in out


def test_a_cases_file_validated_alone_may_reach_into_its_project(
        plan: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "suite/tests/lexer/strings.yaml"]) == 0
    capsys.readouterr()


def test_a_case_name_with_a_slash_is_matched_and_reported_as_it_is(
        plan: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(plan, "-k", "suite/lexer/", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [o["case"] for o in data["outcomes"]] == ["lexer/strings", "lexer/numbers"]
    junit = tmp_path / "j.xml"
    assert verify(plan, "-k", "parser/calls", "--junit", str(junit)) == 0
    assert 'name="parser/calls"' in junit.read_text()
    capsys.readouterr()


def test_k_may_be_repeated_and_negated(plan: SimpleNamespace,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(plan, "-k", "numbers", "-k", "parser/") == 0
    assert ran(capsys.readouterr().out) == ["lexer/numbers", "parser/calls"]
    assert verify(plan, "-k", "lexer/", "-k", "!strings") == 0
    assert ran(capsys.readouterr().out) == ["lexer/numbers"]
    assert verify(plan, "-k", "!lexer/") == 0
    assert ran(capsys.readouterr().out) == ["parser/calls"]


@pytest.mark.parametrize(("args", "said"), [
    (["-k", "lexer", "-k", "lexr/"], "recipe: no case matches -k 'lexr/'; -k takes a part of "
                                     "'project/case name' ('!' in front leaves those out)"),
    (["-k", "!nothing"], "recipe: no case matches -k '!nothing'; -k takes a part of "
                         "'project/case name' ('!' in front leaves those out)"),
    (["-k", "!suite/"], "recipe: -k '!suite/' selects no case; a case runs when it matches one "
                        "-k and no -k '!...'"),
    (["-k", "lexer/", "-k", "!lexer/"], "recipe: -k 'lexer/' -k '!lexer/' selects no case; a "
                                        "case runs when it matches one -k and no -k '!...'"),
])
def test_a_k_that_selects_nothing_is_one_line_exit_2(
        plan: SimpleNamespace, args: list[str], said: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(plan, *args) == 2
    captured = capsys.readouterr()
    assert captured.err == said + "\n" and captured.out == ""
    assert not Path(plan.store).exists()  # refused before anything was built


@pytest.mark.parametrize(("entry", "said"), [
    ("{from: ../../data/words.txt, to: ../words.txt}",
     "9:42: files: to '../words.txt' leaves the case's scratch folder; write a path inside it, "
     "such as data/input.txt"),
    ("{from: ../../data/words.txt, to: /tmp/words.txt}",
     "9:42: files: to '/tmp/words.txt' leaves the case's scratch folder; write a path inside it, "
     "such as data/input.txt"),
    ("{from: ../../../plan.yaml, to: plan.yaml}",
     "9:16: files: from '../../../plan.yaml' leaves the project's folder; name a file or folder "
     "of the project, relative to the cases file's folder ('..' may climb up to the project's "
     "folder)"),
    ("{from: ../../data/none.txt, to: none.txt}",
     "9:16: files: from '../../data/none.txt' does not exist; create it or fix the path "
     "(relative to suite/tests/lexer/)"),
    ("{from: ../../data/words.txt, to: .}",
     "9:42: files: to '.' names the scratch folder itself, but '../../data/words.txt' is a "
     "file; give the file's name there, such as words.txt"),
    ("{from: ../../data/words.txt}",
     "9:9: missing key 'to' in item 1 of 'files' of case 'lexer/strings'; add 'to:'"),
    ("{from: ../../data/words.txt, to: a, as: b}",
     "9:45: unknown key 'as' in item 1 of 'files' of case 'lexer/strings'; allowed keys: from, "
     "to"),
    ("7",
     "9:9: item 1 of 'files' of case 'lexer/strings' must be a pattern or {from: PATH, to: "
     "PATH}; write a pattern such as \"data/*\", or {from: ../shared/words.txt, to: words.txt}"),
])
def test_bad_from_and_to_are_one_line_exit_2(plan: SimpleNamespace, entry: str, said: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    cases = plan.dir / "suite" / "tests" / "lexer" / "strings.yaml"
    text = cases.read_text()
    text = re.sub(r"    files:\n.*\n.*\n", f"    files:\n      - {entry}\n", text)
    text = text.replace("    run: cat\n    args: [input/words.txt, one.txt, words.txt]\n",
                        "    run: cat\n    args: [input/words.txt, one.txt, words.txt]\n\n\n")
    cases.write_text(text)
    assert verify(plan) == 2
    err = capsys.readouterr().err
    assert err == f"suite/tests/lexer/strings.yaml:{said}\n"


LIB_EXE = {
    "plan.yaml": "kind: plan\n",
    "foo/project.yaml": """
        kind: project
        name: foo
        version: "1.0"
        language: c
        sources: [src/foo.c]
        public_headers: [include/foo.h]
        include_dirs: [include]
        outputs:
          - {name: foo, kind: static-library}
          - {name: foo, kind: shared-library}
          - {name: foo, kind: executable, sources: [src/main.c]}
        cases: [cases.yaml]
    """,
    "foo/include/foo.h": "int foo_answer(void);\n",
    "foo/src/foo.c": '#include "foo.h"\nint foo_answer(void) { return 42; }\n',
    "foo/src/main.c": '#include <stdio.h>\n#include "foo.h"\n'
                      'int main(void) { printf("%d\\n", foo_answer()); return 0; }\n',
    "foo/cases.yaml": "kind: cases\ncases: [{name: answers, run: foo, expect: {stdout: "
                      "\"42\\n\"}}]\n",
}


def test_an_executable_and_a_library_may_share_a_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tree(tmp_path / "src", LIB_EXE)
    monkeypatch.chdir(root)
    project = root / "foo" / "project.yaml"
    # Two libraries of one name still clash (a static and a shared one too), as do two
    # executables.
    assert main(["validate", "plan.yaml"]) == 2
    assert capsys.readouterr().err == (
        "foo/project.yaml:10:12: duplicate library name 'foo' (first at foo/project.yaml:9:12); "
        "give every library its own name (an executable and a library may share one)\n")
    project.write_text(project.read_text().replace("  - {name: foo, kind: shared-library}\n",
                                                   ""))
    store = str(tmp_path / "store")
    assert main(["verify", "plan.yaml", "--store", store]) == 0
    capsys.readouterr()
    assert main(["realise", "plan.yaml", "--store", store]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert (path / "lib" / "libfoo.a").is_file() and (path / "bin" / "foo").is_file()


def test_a_skipped_function_case_may_name_a_function_not_written_yet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    files = {**LIB_EXE, "foo/cases.yaml": """
        kind: cases
        cases:
          - {name: answers, function: int foo_answer(void), table: [[42]]}
          - {name: later, function: int foo_later(void), table: [[1]], skip: not written yet}
    """}
    root = write_tree(tmp_path / "src", files)
    project = root / "foo" / "project.yaml"
    project.write_text(project.read_text().replace("  - {name: foo, kind: static-library}\n",
                                                   ""))
    monkeypatch.chdir(root)
    assert main(["verify", "plan.yaml", "--store", str(tmp_path / "store")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed, 1 skipped"


STD_C = r"""
#include <stdio.h>
int main(void) {
#ifdef __STDC_VERSION__
    printf("%ld", (long)__STDC_VERSION__);
#else
    printf("none");
#endif
#ifdef __STRICT_ANSI__
    printf(" strict\n");
#else
    printf(" gnu\n");
#endif
    return 0;
}
"""
STD_CXX = r"""
#include <cstdio>
int main() {
#ifdef __STRICT_ANSI__
    std::printf("%ld strict\n", (long)__cplusplus);
#else
    std::printf("%ld gnu\n", (long)__cplusplus);
#endif
    return 0;
}
"""


def _std_project(name: str, language: str, standard: str, stdout: str) -> dict[str, str]:
    ext = "c" if language == "c" else "cpp"
    header = "h" if language == "c" else "hpp"
    # An eval case whose submission only that dialect compiles: C89 has no declaration in a
    # for loop and no //, plain C17 has no typeof; c99 has both for and //.
    evals = {
        "c89": ("int i; long n = 0; for (i = 0; i < 3; i++) n += i; printf(\"%ld\\n\", n);",
                "3\n"),
        "c99": ("long n = 0; for (int i = 0; i < 3; i++) n += i; // C99\nprintf(\"%ld\\n\", n);",
                "3\n"),
        "gnu17": ("typeof(1) x = 3; printf(\"%d\\n\", x);", "3\n"),
        "gnu++20": ("typeof(1) x = 3; std::printf(\"%d\\n\", x);", "3\n"),
    }
    code, out = evals[standard]
    return {
        f"{name}/project.yaml": f"""
            kind: project
            name: {name}
            version: "1.0"
            language: {language}
            standard: {standard}
            sources: [src/lib.{ext}]
            public_headers: [include/lib.{header}]
            include_dirs: [include]
            repl: {{scope: [include/lib.{header}]}}
            outputs:
              - {{name: {name}, kind: static-library}}
              - {{name: {name}-std, kind: executable, sources: [src/std.{ext}]}}
            cases: [cases.yaml]
        """,
        f"{name}/include/lib.{header}": "int lib_one(void);\n",
        f"{name}/src/lib.{ext}": f'#include "lib.{header}"\nint lib_one(void) {{ return 1; }}\n',
        f"{name}/src/std.{ext}": STD_C if language == "c" else STD_CXX,
        f"{name}/cases.yaml": "kind: cases\ncases:\n"
                              f"  - {{name: std, run: {name}-std, "
                              f"expect: {{stdout: {json.dumps(stdout)}}}}}\n"
                              f"  - {{name: repl, eval: {json.dumps(code)}, "
                              f"expect: {{stdout: {json.dumps(out)}}}}}\n",
    }


def test_c89_c99_and_the_gnu_dialects_compile_with_their_std(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    files = {"plan.yaml": "kind: plan\n"}
    files.update(_std_project("old", "c", "c89", "none strict\n"))
    files.update(_std_project("nine", "c", "c99", "199901 strict\n"))
    files.update(_std_project("gnu", "c", "gnu17", "201710 gnu\n"))
    files.update(_std_project("gxx", "c++", "gnu++20", "202002 gnu\n"))
    root = write_tree(tmp_path / "src", files)
    monkeypatch.chdir(root)
    store = str(tmp_path / "store")
    assert main(["verify", "plan.yaml", "--store", store, "-j", "2"]) == 0, \
        capsys.readouterr().out
    assert capsys.readouterr().out.splitlines()[-1] == "8 passed"
    assert main(["show", "plan.yaml", "--store", store, "--json"]) == 0
    shown = capsys.readouterr().out
    for flag in ("-std=c89", "-std=c99", "-std=gnu17", "-std=gnu++20"):
        assert flag in shown
    # The dialect is what the REPL compiles with too: plain C17 has no typeof.
    project = root / "gnu" / "project.yaml"
    project.write_text(project.read_text().replace("standard: gnu17", "standard: c17"))
    assert main(["verify", "plan.yaml", "--store", store, "-k", "gnu/repl"]) == 1
    assert "the submission does not compile" in capsys.readouterr().out


def test_c23_compiles_with_a_gcc_that_knows_it_as_c2x(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = write_tree(tmp_path / "src", {
        "plan.yaml": "kind: plan\n",
        "new/project.yaml": """
            kind: project
            name: new
            version: "1.0"
            language: c
            standard: gnu23
            outputs: [{name: new, kind: executable, sources: [main.c]}]
            cases: [cases.yaml]
        """,
        "new/main.c": "#include <stdio.h>\nint main(void) { puts(__STDC_VERSION__ > 201710L "
                      "? \"after c17\" : \"c17 or before\"); return 0; }\n",
        "new/cases.yaml": "kind: cases\ncases: [{name: v, run: new, expect: {stdout: "
                          "\"after c17\\n\"}}]\n",
    })
    monkeypatch.chdir(root)
    assert main(["verify", "plan.yaml", "--store", str(tmp_path / "store")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "1 passed"
