"""The generated runner and scope header, and which sources a REPL library takes."""

from __future__ import annotations

from pathlib import Path

from engine.derive.repl_library import defines_main, library_sources, repl_plan
from engine.documents.load import load_plan
from engine.repl import source
from tests.repl_projects import make_plan


def test_the_runner_puts_the_submission_in_a_block_of_main() -> None:
    text = source.runner_source("c", "int x = 1;\nreturn x;\n", "p (release)")
    assert text.splitlines() == [
        "/* recipe REPL runner of p (release): the submission is the block in main() */",
        '#include "scope.h"', "int main(void) {", "{", "int x = 1;", "return x;", "}",
        "return 0;", "}"]
    assert 'include "scope.hpp"' in source.runner_source("c++", "f();", "q (debug)")
    assert "int main() {" in source.runner_source("c++", "f();", "q (debug)")
    assert "* /" in source.runner_source("c", "f();", "evil */ (x)")  # no early comment end


def test_the_scope_header_includes_the_prelude_then_the_scope() -> None:
    lines = source.scope_header("c++", ("include/a.hpp", "b.hpp")).splitlines()
    assert lines[1:] == ["#include <cstdio>", "#include <cstdlib>", "#include <cstring>",
                         "#include <iostream>", "#include <string>",
                         '#include "w/include/a.hpp"', '#include "w/b.hpp"']


def test_defines_main(tmp_path: Path) -> None:
    cases = {
        "int main(void) { return 0; }": True,
        "int\nmain (int argc, char **argv)\n{ return 0; }": True,
        "auto main() -> int { return 0; }": True,
        "/* int main(void) */ int f(void);": False,
        '// int main()\nconst char *s = "int main(";': False,
        "int domain(int x);": False,
        "static int main_loop(void);": False,
    }
    for text, expected in cases.items():
        file = tmp_path / "x.c"
        file.write_text(text)
        assert defines_main(file) is expected, text


def test_the_repl_library_of_an_executables_only_project(tmp_path: Path) -> None:
    plan = load_plan(make_plan(tmp_path / "src"))
    assert library_sources(plan.projects["shapes"]) == ("src/area.cpp",)
    rplan, name = repl_plan(plan, "shapes")
    assert name == "shapes-repl" and list(plan.projects) == list(rplan.projects)[:-1]
    library = rplan.projects["shapes-repl"]
    assert [(o.name, o.kind) for o in library.outputs] == [("shapes-repl", "static-library")]
    assert library.sources == ("src/area.cpp",) and library.cases == []
    assert repl_plan(plan, "calc") == (plan, "calc")  # it has a static library of its own
