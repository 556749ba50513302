"""load_plan / load_project_file / load_cases_file / validate_file on real trees in tmp_path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from engine.documents import (
    DocumentError,
    load_cases_file,
    load_plan,
    load_project_file,
    validate_file,
)
from engine.documents.models import CType

PLAN = """\
    kind: plan
    projects: ["*/project.yaml"]
    targets:
      release: {opt: release}
      debug: {opt: debug, strip: false}
      small: {opt: min-size, strip: true, lto: true, cpu: x86-64-v3, features: [SMALL]}
      cross: {triple: aarch64-linux-musl, toolchain: {cc: zig-cc}}
    default_targets: [release, debug]
    """
STRUTIL = """\
    kind: project
    name: strutil
    version: "0.3"
    language: c
    sources: ["src/*.c"]
    public_headers: ["include/*.h"]
    include_dirs: [include]
    outputs:
      - {name: strutil, kind: static-library}
    """
APP = """\
    kind: project
    name: app
    version: 1.2.0
    language: c
    standard: c17
    sources: ["src/**/*.c", "!src/main.c"]
    headers: ["src/*.h"]
    public_headers: ["include/*.h"]
    include_dirs: [include, src/]
    defines: {NDEBUG: 1, FAST: true, SLOW: false, NAME: app, BARE: null}
    flags: {compile: [-Wall], link: [-lm]}
    depends: [strutil]
    outputs:
      - {name: app, kind: static-library}
      - {name: app-cli, kind: executable, sources: [src/main.c]}
    repl:
      scope: [include/app.h]
    cases: ["cases/*.yaml", "!cases/skip.yaml"]
    """
MAIN_CASES = """\
    kind: cases
    cases:
      - name: counts words from stdin
        run: app-cli
        args: [-w]
        stdin: "the quick brown fox\\n"
        env: {LC_ALL: C}
        files: ["data/*"]
        timeout: 5
        expect:
          stdout: "4\\n"
          stderr: ""
          exit: 0
      - name: counts a file
        run: app-cli
        stdin_file: data/fox.txt
        expect: {stdout_file: golden/fox.out, exit: 1}
      - name: count in scope
        eval: 'printf("%zu\\n", app_count("a b  c"));'
        expect: {stdout: "3\\n"}
    """
MORE_CASES = """\
    kind: cases
    cases:
      - name: word counter table
        function: size_t app_count(const char *text)
        table:
          - ["a b c", 3]
          - ["", 0]
      - name: ratio
        function: double app_ratio(int a, unsigned b)
        tolerance: 1e-9
        table:
          - [1, 2, 0.5]
      - name: version
        function: const char *app_version(void)
        table:
          - ["1.2.0"]
    """
TREE = {
    "plan.yaml": PLAN,
    "strutil/project.yaml": STRUTIL,
    "strutil/src/trim.c": "",
    "strutil/src/split.c": "",
    "strutil/include/strutil.h": "",
    "app/project.yaml": APP,
    "app/src/words.c": "",
    "app/src/main.c": "",
    "app/src/util/extra.c": "",
    "app/src/.cache/junk.c": "",
    "app/src/internal.h": "",
    "app/include/app.h": "",
    "app/cases/main.yaml": MAIN_CASES,
    "app/cases/more.yaml": MORE_CASES,
    "app/cases/skip.yaml": "kind: nonsense\n",
    "app/cases/data/fox.txt": "the quick brown fox\n",
    "app/cases/golden/fox.out": "4\n",
}


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path, TREE)
    monkeypatch.chdir(tmp_path)  # positions render relative to the working folder
    return tmp_path


def error_of(path: str, **kwargs: bool) -> str:
    with pytest.raises(DocumentError) as caught:
        load_plan(Path(path), **kwargs)
    return caught.value.render()


def test_a_full_plan_loads_into_the_models(tree: Path) -> None:
    plan = load_plan(Path("plan.yaml"))

    assert plan.file == tree / "plan.yaml"
    assert plan.dir == tree.resolve()
    assert plan.store is None
    assert list(plan.projects) == ["strutil", "app"]  # dependencies first, not by name
    assert list(plan.targets) == ["release", "debug", "small", "cross"]
    assert plan.default_targets == ("release", "debug")
    small = plan.targets["small"]
    assert (small.opt, small.strip, small.lto, small.cpu, small.features) == \
        ("min-size", True, True, "x86-64-v3", ("SMALL",))
    assert plan.targets["cross"].toolchain == {"cc": "zig-cc"}
    assert plan.targets["cross"].triple == "aarch64-linux-musl"
    assert plan.targets["release"].toolchain == "system"

    app = plan.projects["app"]
    assert (app.name, app.version, app.language, app.standard) == ("app", "1.2.0", "c", "c17")
    assert app.dir == (tree / "app").resolve()
    assert app.sources == ("src/util/extra.c", "src/words.c")  # sorted, !main.c, no .cache
    assert app.headers == ("include/app.h", "src/internal.h")
    assert app.public_headers == ("include/app.h",)
    assert app.include_dirs == ("include", "src")
    assert app.defines == {"NDEBUG": "1", "FAST": "1", "SLOW": "0", "NAME": "app", "BARE": ""}
    assert (app.compile_flags, app.link_flags) == (("-Wall",), ("-lm",))
    assert app.depends == ("strutil",)
    assert [(o.name, o.kind, o.sources) for o in app.outputs] == [
        ("app", "static-library", None), ("app-cli", "executable", ("src/main.c",))]
    assert app.output("app-cli") is app.outputs[1]
    assert app.repl_scope == ("include/app.h",)
    assert str(app.pos) == "app/project.yaml:2:7"
    assert plan.projects["strutil"].standard is None


def test_cases_of_all_three_kinds(tree: Path) -> None:
    cases = load_plan(Path("plan.yaml")).projects["app"].cases
    assert [c.name for c in cases] == ["counts words from stdin", "counts a file",
                                       "count in scope", "word counter table", "ratio",
                                       "version"]
    process, from_file, evaluated, table, ratio, version = cases

    assert process.kind == "process"
    assert process.file == tree / "app/cases/main.yaml"
    assert process.folder == tree / "app/cases"
    assert (process.index, str(process.pos)) == (0, "app/cases/main.yaml:3:5")
    assert (process.run, process.args, process.stdin) == \
        ("app-cli", ("-w",), b"the quick brown fox\n")
    assert (process.env, process.files, process.timeout) == \
        ({"LC_ALL": "C"}, ("data/fox.txt",), 5.0)
    assert (process.expect.stdout, process.expect.stderr, process.expect.exit) == \
        (b"4\n", b"", 0)
    assert process.raw["expect"] == {"stdout": "4\n", "stderr": "", "exit": 0}
    assert type(process.raw["timeout"]) is int and type(process.raw) is dict

    assert (from_file.stdin, from_file.stdin_file, from_file.timeout) == \
        (None, "data/fox.txt", 10.0)
    assert (from_file.expect.stdout, from_file.expect.stdout_file, from_file.expect.stderr,
            from_file.expect.exit) == (None, "golden/fox.out", None, 1)

    assert (evaluated.kind, evaluated.code) == ("eval", 'printf("%zu\\n", app_count("a b  c"));')
    assert evaluated.expect.stdout == b"3\n"

    assert table.kind == "function"
    assert table.signature is not None and table.signature.name == "app_count"
    assert table.signature.params == (CType("const char *", "string"),)
    assert table.signature.returns == CType("size_t", "int", 64, False)
    assert table.table == [["a b c", 3], ["", 0]]
    assert (table.tolerance, ratio.tolerance) == (0.0, 1e-9)
    assert type(ratio.raw["tolerance"]) is float
    assert version.signature is not None and version.signature.params == ()


def test_targets_default_to_one_release_target(tree: Path) -> None:
    write(tree, {"plan.yaml": "kind: plan\n"})
    plan = load_plan(Path("plan.yaml"))
    assert list(plan.targets) == ["release"] and plan.targets["release"].opt == "release"
    assert plan.default_targets == ("release",)
    assert list(plan.projects) == ["strutil", "app"]


def test_default_targets_default_to_the_first_written(tree: Path) -> None:
    edit(tree / "plan.yaml", "default_targets: [release, debug]\n", "")
    edit(tree / "plan.yaml", "  release: {opt: release}\n", "")
    assert load_plan(Path("plan.yaml")).default_targets == ("debug",)


def test_store_is_resolved_against_the_plan_folder(tree: Path) -> None:
    edit(tree / "plan.yaml", "kind: plan\n", "kind: plan\nstore: ../store\n")
    assert load_plan(tree / "plan.yaml").store == tree.resolve().parent / "store"


def test_the_store_folder_is_not_searched_for_projects(tree: Path) -> None:
    write(tree, {"store/abc-app-1.0-release/project.yaml": "not: a project\n"})
    edit(tree / "plan.yaml", '["*/project.yaml"]', '["**/project.yaml"]')
    assert list(load_plan(Path("plan.yaml")).projects) == ["strutil", "app"]


def test_unwritten_default_cases_pattern_may_match_nothing(tree: Path) -> None:
    assert load_plan(Path("plan.yaml")).projects["strutil"].cases == []


def test_default_projects_pattern_matching_nothing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, {"plan.yaml": "kind: plan\n"})
    monkeypatch.chdir(tmp_path)
    assert error_of("plan.yaml") == (
        "plan.yaml:1:1: no project found: the default pattern '*/project.yaml' matches no "
        "file; add projects: [...] naming project files")


def test_unknown_dependency_suggests_a_name(tree: Path) -> None:
    edit(tree / "app/project.yaml", "depends: [strutil]", "depends: [strutils]")
    assert error_of("plan.yaml") == \
        "app/project.yaml:12:11: unknown project 'strutils' in depends; did you mean 'strutil'?"


def test_dependency_cycle_is_named(tree: Path) -> None:
    edit(tree / "strutil/project.yaml", "outputs:", "depends: [app]\noutputs:")
    assert error_of("plan.yaml") == ("app/project.yaml:12:11: dependency cycle: app -> strutil "
                                     "-> app; remove one of these dependencies")


def test_self_dependency_is_a_cycle(tree: Path) -> None:
    edit(tree / "app/project.yaml", "depends: [strutil]", "depends: [strutil, app]")
    assert error_of("plan.yaml") == \
        "app/project.yaml:12:20: dependency cycle: app -> app; remove one of these dependencies"


def test_duplicate_project_names(tree: Path) -> None:
    edit(tree / "app/project.yaml", "name: app", "name: strutil")
    assert error_of("plan.yaml") == (
        "strutil/project.yaml:2:7: duplicate project name 'strutil' (first at "
        "app/project.yaml:2:7); give every project of the plan its own name")


def test_duplicate_case_names_across_files(tree: Path) -> None:
    edit(tree / "app/cases/more.yaml", "name: ratio", "name: count in scope")
    assert error_of("plan.yaml") == (
        "app/cases/more.yaml:8:11: duplicate case name 'count in scope' (first at "
        "app/cases/main.yaml:18:11); give every case of a project its own name")


def test_run_must_name_an_executable(tree: Path) -> None:
    edit(tree / "app/cases/main.yaml", "run: app-cli", "run: app")
    assert error_of("plan.yaml") == ("app/cases/main.yaml:4:10: run: 'app' is a static-library, "
                                     "not an executable; name an executable output of the project")
    edit(tree / "app/cases/main.yaml", "run: app\n", "run: app-cl\n")
    assert error_of("plan.yaml") == ("app/cases/main.yaml:4:10: run: 'app-cl' is not an "
                                     "executable output of the project; did you mean 'app-cli'?")


def test_row_arity_must_match_the_signature(tree: Path) -> None:
    edit(tree / "app/cases/more.yaml", '["", 0]', '["", 0, 1]')
    assert error_of("plan.yaml") == (
        "app/cases/more.yaml:7:9: row 2 of case 'word counter table' has 3 values, but "
        "app_count() needs 2; write [arg, expected] (1 argument and the expected result)")
    edit(tree / "app/cases/more.yaml", '["", 0, 1]', '["", 0]')
    edit(tree / "app/cases/more.yaml", '["1.2.0"]', '["1.2.0", 2]')
    assert error_of("plan.yaml") == (
        "app/cases/more.yaml:16:9: row 1 of case 'version' has 2 values, but app_version() "
        "needs 1; write [expected] (only the expected result)")


def test_row_values_must_fit_their_types(tree: Path) -> None:
    edit(tree / "app/cases/more.yaml", "[1, 2, 0.5]", "[1, -2, 0.5]")
    assert error_of("plan.yaml") == (
        "app/cases/more.yaml:12:13: argument 2 of row 1 is -2, which does not fit unsigned int "
        "(0..4294967295); write an integer that fits unsigned int")
    edit(tree / "app/cases/more.yaml", "[1, -2, 0.5]", "[1, 2, yes]")
    assert error_of("plan.yaml") == ("app/cases/more.yaml:12:16: the expected result of row 1 "
                                     "is 'yes', not a number; write a number")


def test_unsupported_signature(tree: Path) -> None:
    edit(tree / "app/cases/more.yaml", "const char *text)", "char *text)")
    assert error_of("plan.yaml") == (
        "app/cases/more.yaml:4:15: unsupported parameter type 'char *' in function "
        "'size_t app_count(char *text)'; only const char * pointers are supported")


def test_standard_must_fit_the_language(tree: Path) -> None:
    edit(tree / "app/project.yaml", "standard: c17", "standard: c++20")
    assert error_of("plan.yaml") == ("app/project.yaml:5:11: standard 'c++20' does not fit "
                                     "language c; use one of c89, c99, c11, c17, c23, gnu89, "
                                     "gnu99, gnu11, gnu17, gnu23")
    edit(tree / "app/project.yaml", "language: c\n", "language: rust\n")
    assert error_of("plan.yaml") == ("app/project.yaml:5:11: standard 'c++20' does not fit "
                                     "language rust; use one of 2018, 2021, 2024")


def test_rust_editions_may_be_numbers(tree: Path) -> None:
    edit(tree / "strutil/project.yaml", "language: c\n", "language: rust\nstandard: 2021\n")
    (tree / "strutil/src/lib.rs").write_text("pub fn f() {}\n")  # the library crate root
    edit(tree / "strutil/project.yaml", 'sources: ["src/*.c"', 'sources: ["src/*.c", "src/*.rs"')
    assert load_plan(Path("plan.yaml")).projects["strutil"].standard == "2021"


def test_missing_golden_file(tree: Path) -> None:
    edit(tree / "app/cases/main.yaml", "golden/fox.out", "golden/fox.txt")
    assert error_of("plan.yaml") == ("app/cases/main.yaml:17:27: file 'golden/fox.txt' does not "
                                     "exist; run recipe verify --update to record it")
    plan = load_plan(Path("plan.yaml"), allow_missing_goldens=True)
    assert plan.projects["app"].cases[1].expect.stdout_file == "golden/fox.txt"


def test_missing_stdin_file(tree: Path) -> None:
    edit(tree / "app/cases/main.yaml", "stdin_file: data/fox.txt", "stdin_file: data/cat.txt")
    assert error_of("plan.yaml", allow_missing_goldens=True) == (
        "app/cases/main.yaml:16:17: file 'data/cat.txt' does not exist; create it or fix the "
        "path (relative to app/cases/)")


def test_unknown_default_target(tree: Path) -> None:
    edit(tree / "plan.yaml", "[release, debug]", "[release, debgu]")
    assert error_of("plan.yaml") == \
        "plan.yaml:8:28: unknown target 'debgu' in default_targets; did you mean 'debug'?"


def test_include_dirs_must_be_folders_inside_the_project(tree: Path) -> None:
    edit(tree / "app/project.yaml", "[include, src/]", "[include, src/words.c]")
    assert error_of("plan.yaml") == \
        "app/project.yaml:9:25: 'src/words.c' is not a folder; name a folder here"
    edit(tree / "app/project.yaml", "src/words.c]", "lib]")
    assert error_of("plan.yaml") == ("app/project.yaml:9:25: folder 'lib' does not exist; "
                                     "create it or fix the path (relative to app/)")
    (tree / "app/shared").symlink_to(tree / "strutil/include")
    edit(tree / "app/project.yaml", "lib]", "shared]")
    assert error_of("plan.yaml") == ("app/project.yaml:9:25: folder 'shared' leaves the "
                                     "project's folder through a symlink; name a folder inside "
                                     "the project")


def test_repl_scope_must_name_a_header(tree: Path) -> None:
    edit(tree / "app/project.yaml", "scope: [include/app.h]", "scope: [include/ap.h]")
    assert error_of("plan.yaml") == (
        "app/project.yaml:17:11: REPL scope header 'include/ap.h' is not one of the project's "
        "headers; add it to headers or public_headers")


def test_an_output_needs_sources(tree: Path) -> None:
    edit(tree / "strutil/project.yaml", 'sources: ["src/*.c"]\n', "")
    assert error_of("plan.yaml") == ("strutil/project.yaml:8:5: output 'strutil' has no sources; "
                                     "add sources: to the project or to the output")


def test_a_projects_pattern_selecting_a_cases_file(tree: Path) -> None:
    edit(tree / "plan.yaml", '["*/project.yaml"]', '["*/project.yaml", "app/cases/main.yaml"]')
    assert error_of("plan.yaml") == (
        "app/cases/main.yaml:1:7: expected a document of kind 'project', found 'cases'; the "
        "plan's projects: patterns must select only project files")


def test_a_plan_of_another_kind(tree: Path) -> None:
    assert error_of("app/project.yaml") == ("app/project.yaml:1:7: expected a document of kind "
                                            "'plan', found 'project'; name a 'plan' document here")


def test_project_file_alone_checks_its_cases_but_not_depends(tree: Path) -> None:
    project = load_project_file(Path("app/project.yaml"))
    assert project.depends == ("strutil",) and len(project.cases) == 6
    edit(tree / "app/cases/main.yaml", "run: app-cli", "run: nothing")
    with pytest.raises(DocumentError, match="run: 'nothing' is not an executable"):
        load_project_file(Path("app/project.yaml"))


def test_project_file_alone_may_not_leave_its_folder(tree: Path) -> None:
    (tree / "app/src/trim.c").symlink_to(tree / "strutil/src/trim.c")
    assert "src/trim.c" in load_plan(Path("plan.yaml")).projects["app"].sources
    with pytest.raises(DocumentError) as caught:
        load_project_file(Path("app/project.yaml"))
    assert caught.value.render() == (
        "app/project.yaml:6:11: 'src/trim.c' is a symlink that leaves the plan's folder; "
        "replace the symlink by the file itself, inside the plan's folder")


def test_cases_file_alone(tree: Path) -> None:
    cases = load_cases_file(Path("app/cases/more.yaml"))
    assert [c.kind for c in cases] == ["function"] * 3
    edit(tree / "app/cases/more.yaml", "name: ratio", "name: version")
    with pytest.raises(DocumentError, match="duplicate case name 'version'"):
        load_cases_file(Path("app/cases/more.yaml"))


def test_validate_file_returns_the_kind(tree: Path) -> None:
    write(tree, {"targets.yaml": "kind: targets\nrelease: {opt: release}\narm: {lto: true}\n"})
    assert [validate_file(Path(p)) for p in ("plan.yaml", "app/project.yaml",
                                            "app/cases/main.yaml", "targets.yaml")] == \
        ["plan", "project", "cases", "targets"]


def test_validate_file_of_targets_checks_the_schema(tree: Path) -> None:
    write(tree, {"targets.yaml": "kind: targets\nrelease: {opt: fast}\n"})
    with pytest.raises(DocumentError) as caught:
        validate_file(Path("targets.yaml"))
    assert caught.value.render() == (
        "targets.yaml:2:16: 'opt' of target 'release' must be one of debug, release, "
        "release-debug, min-size, not 'fast'; use one of these")


def test_dependency_order_breaks_ties_by_name(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def project(name: str, depends: str = "") -> str:
        return (f"kind: project\nname: {name}\nversion: '1'\nlanguage: c\nsources: [a.c]\n"
                f"depends: [{depends}]\noutputs: [{{name: {name}, kind: static-library}}]\n")

    files = {"plan.yaml": "kind: plan\n", "d/project.yaml": project("d", "b"),
             "c/project.yaml": project("c"), "a/project.yaml": project("a", "d, c"),
             "b/project.yaml": project("b"), "e/project.yaml": project("e", "c")}
    files |= {f"{name}/a.c": "" for name in "abcde"}
    write(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    assert list(load_plan(Path("plan.yaml")).projects) == ["b", "c", "d", "a", "e"]
