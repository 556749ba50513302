"""The two generated files of the REPL: the scope header and the runner translation unit.

The scope header includes a small prelude of standard headers (so that ``printf`` or
``std::cout`` need no include of their own) and then the project's ``repl.scope`` headers, by
their path in the project's staged files. It is precompiled once per project x target.

The runner includes it first (the one place gcc uses a precompiled header) and puts the
submission in a block of its own inside ``main``: ``return 7;`` exits 7, a declaration does
not clash with anything of the wrapper's, and falling off the end exits 0.
"""

from __future__ import annotations

from engine.hashing import canonical_hash

FORMAT = "recipe-repl-1"
SCOPE_C, SCOPE_CXX = "scope.h", "scope.hpp"
RUNNER_C, RUNNER_CXX, RUNNER_RUST = "runner.c", "runner.cpp", "runner.rs"

PRELUDE = {
    "c": ("stdio.h", "stdlib.h", "string.h"),
    "c++": ("cstdio", "cstdlib", "cstring", "iostream", "string"),
}

# Rust: the scope's ``use`` paths, then the submission as the body of ``fn main`` (``return;``
# ends it; ``std::process::exit(n)`` exits n).
RUNNER_RUST_TEMPLATE = """\
// recipe REPL runner of {title}: the submission is the body of fn main
#![allow(unused_imports)]
{uses}fn main() {{
{code}
}}
"""

_RUNNER = """\
/* recipe REPL runner of {title}: the submission is the block in main() */
#include "{scope}"
int main({params}) {{
{{
{code}
}}
return 0;
}}
"""


def scope_name(language: str) -> str:
    return SCOPE_CXX if language == "c++" else SCOPE_C


def runner_name(language: str) -> str:
    return {"c++": RUNNER_CXX, "rust": RUNNER_RUST}.get(language, RUNNER_C)


def scope_header(language: str, scope: tuple[str, ...], staged: str = "w") -> str:
    """The scope header's text; ``scope`` paths are relative to the project, staged below
    ``staged`` beside the header."""
    lines = [f"/* recipe REPL scope ({language}): a prelude, then the project's repl.scope */"]
    lines += [f"#include <{name}>" for name in PRELUDE[language]]
    lines += [f'#include "{staged}/{path}"' for path in scope]
    return "\n".join(lines) + "\n"


def runner_source(language: str, code: str, title: str, uses: tuple[str, ...] = ()) -> str:
    """The runner translation unit of a submission (``uses``: a Rust scope)."""
    if language == "rust":
        return RUNNER_RUST_TEMPLATE.format(title=title.replace("\n", " "), code=code.rstrip("\n"),
                                   uses="".join(f"use {path};\n" for path in uses))
    params = "void" if language == "c" else ""
    return _RUNNER.format(title=title.replace("*/", "* /"), scope=scope_name(language),
                          params=params, code=code.rstrip("\n"))


#: A C or C++ runner started ahead (``engine.repl.ahead``) includes the rest of its text from
#: this FIFO, beside it.
REST = "runner.rest"


def runner_parts(language: str, code: str, title: str, src: str) -> tuple[str, str]:
    """A C or C++ runner in two parts, for a compiler started before its submission: the
    file ``src`` up to the scope header's include and an include of ``REST``, and what
    ``REST`` gives, from a ``#line`` that names the line and file the plain runner has there
    (``__LINE__``, ``__FILE__`` and debug lines are the plain runner's). None of ``src``'s
    characters may need escaping in a string literal."""
    marker = f'#include "{scope_name(language)}"\n'
    head, _, rest = runner_source(language, code, title).partition(marker)
    head += marker
    return f'{head}#include "{REST}"\n', f'#line {head.count(chr(10)) + 1} "{src}"\n{rest}'


def template_digest() -> str:
    """Changes whenever what the wrapper generates changes: part of every cache key."""
    return canonical_hash({"format": FORMAT, "runner": _RUNNER, "prelude": PRELUDE,
                           "scope": scope_header("c", ("X",)) + scope_header("c++", ("X",))})
