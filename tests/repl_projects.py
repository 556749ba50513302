"""Small real projects for the REPL tests, and a compiler wrapper that logs every call."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import write_tree

PLAN = """
    kind: plan
    projects: ["*/project.yaml"]
    targets:
      release: {opt: release%(toolchain)s}
      debug: {opt: debug%(toolchain)s}
    default_targets: [release]
"""

# A C library with a dependency, an executables-only C++ project, a project without a scope.
PROJECTS = {
    "base/project.yaml": """
        kind: project
        name: base
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/base.h"]
        include_dirs: [include]
        outputs:
          - {name: base, kind: static-library}
    """,
    "base/include/base.h": """
        #ifndef BASE_H
        #define BASE_H
        int base_twice(int x);
        #endif
    """,
    "base/src/base.c": """
        #include "base.h"
        int base_twice(int x) { return 2 * x; }
    """,
    "calc/project.yaml": """
        kind: project
        name: calc
        version: 0.2.0
        language: c
        standard: c17
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/calc.h"]
        include_dirs: [include]
        defines: {CALC_BIAS: 1}
        flags: {compile: [-Wall]}
        depends: [base]
        outputs:
          - {name: calc, kind: static-library}
        repl:
          scope: [include/calc.h]
    """,
    "calc/include/calc.h": """
        #ifndef CALC_H
        #define CALC_H
        #include "base.h"
        #define CALC_VERSION "0.2"
        int calc_quad(int x);
        #endif
    """,
    "calc/src/calc.c": """
        #include "calc.h"
        int calc_quad(int x) { return base_twice(base_twice(x)) + CALC_BIAS - 1; }
    """,
    "shapes/project.yaml": """
        kind: project
        name: shapes
        version: 3.0.0
        language: c++
        standard: c++20
        sources: ["src/*.cpp"]
        headers: ["include/*.hpp"]
        include_dirs: [include]
        outputs:
          - {name: shapes, kind: executable}
        repl:
          scope: [include/shapes.hpp]
    """,
    "shapes/include/shapes.hpp": """
        #pragma once
        #include <iostream>
        #include <string>
        namespace shapes { double area(double w, double h); std::string name(); }
    """,
    "shapes/src/area.cpp": """
        #include "shapes.hpp"
        double shapes::area(double w, double h) { return w * h; }
        std::string shapes::name() { return "rect"; }
    """,
    "shapes/src/main.cpp": """
        #include "shapes.hpp"
        // not the main: int main() is below
        int
        main (int argc, char **)
        {
            std::cout << shapes::area(argc, 2) << "\\n";
            return 0;
        }
    """,
    "plain/project.yaml": """
        kind: project
        name: plain
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        outputs:
          - {name: plain, kind: static-library}
    """,
    "plain/src/plain.c": """
        int plain_one(void) { return 1; }
    """,
}

# A C project over a C++ library, and a Rust project the REPL has nothing to do with.
MIXED = {
    "cxxlib/project.yaml": """
        kind: project
        name: cxxlib
        version: 1.0.0
        language: c++
        sources: ["src/*.cpp"]
        headers: ["include/*.h"]
        public_headers: ["include/cxxlib.h"]
        include_dirs: [include]
        outputs:
          - {name: cxxlib, kind: static-library}
    """,
    "cxxlib/include/cxxlib.h": """
        #ifdef __cplusplus
        extern "C" {
        #endif
        int cxx_len(const char *s);
        #ifdef __cplusplus
        }
        #endif
    """,
    "cxxlib/src/len.cpp": """
        #include <string>
        #include "cxxlib.h"
        extern "C" int cxx_len(const char *s) { return static_cast<int>(std::string(s).size()); }
    """,
    "cuser/project.yaml": """
        kind: project
        name: cuser
        version: 1.0.0
        language: c
        sources: ["src/*.c"]
        headers: ["include/*.h"]
        public_headers: ["include/cuser.h"]
        include_dirs: [include]
        depends: [cxxlib]
        outputs:
          - {name: cuser, kind: static-library}
        repl:
          scope: [include/cuser.h]
    """,
    "cuser/include/cuser.h": """
        #include "cxxlib.h"
        int cuser_double_len(const char *s);
    """,
    "cuser/src/cuser.c": """
        #include "cuser.h"
        int cuser_double_len(const char *s) { return 2 * cxx_len(s); }
    """,
    "rusty/project.yaml": """
        kind: project
        name: rusty
        version: 1.0.0
        language: rust
        sources: ["src/*.rs"]
        outputs:
          - {name: rusty, kind: static-library}
    """,
    "rusty/src/lib.rs": """
        pub fn nothing() {}
    """,
}


_WRAPPER = """#!/bin/sh
# logs each call, then runs the real compiler
printf '%%s\\n' "$*" >> "%(log)s"
exec %(real)s "$@"
"""


def make_wrappers(folder: Path) -> tuple[Path, Path, Path]:
    """``cc`` and ``c++`` scripts that append their arguments to ``log``, one line a call."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "log"
    log.touch()
    scripts = []
    for name, real in (("cc", "/usr/bin/gcc"), ("c++", "/usr/bin/g++")):
        script = folder / name
        script.write_text(_WRAPPER % {"log": log, "real": real})
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        scripts.append(script)
    return scripts[0], scripts[1], log


def make_plan(root: Path, wrappers: tuple[Path, Path] | None = None,
              extra: dict[str, str] | None = None) -> Path:
    """The REPL test plan below ``root`` (with the logging compilers, when given)."""
    toolchain = "" if wrappers is None else \
        f", toolchain: {{cc: {wrappers[0]}, cxx: {wrappers[1]}}}"
    write_tree(root, {"plan.yaml": PLAN % {"toolchain": toolchain}, **PROJECTS, **(extra or {})})
    return root / "plan.yaml"


def calls(log: Path, word: str) -> int:
    """How many logged compiler calls hold ``word`` among their arguments."""
    return sum(any(a == word or a.endswith("/" + word) for a in line.split())
               for line in log.read_text().splitlines())
