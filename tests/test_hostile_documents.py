"""Hostile documents: whatever a plan's YAML holds, ``recipe`` answers with exit 0, 1 or 2, never a
traceback; a wrong input (exit 2) is one line on stderr and leaves the store untouched; and every
run ends quickly, in bounded memory.

Documents are generated from the schemas (hypothesis-jsonschema) and by mutating a valid plan with
a real C project (tests/projects.py GREET_LIB): wrong types, missing and unknown keys, odd unicode,
long strings, deep nesting, alias bombs, duplicate keys, tabs, NUL bytes, control characters and
broken UTF-8. Most runs call the command line in-process (fast); the nastiest inputs run in a
child process with an address-space limit and a timeout.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from engine.cli.main import main
from engine.documents.schema import schema_json
from tests.conftest import write_tree
from tests.projects import GREET_LIB

SECONDS = 5.0  # the longest one in-process run may take
MEMORY = 1 << 30  # the address space of a child process

# The base plan: GREET_LIB, plus process cases with files: (patterns and {from, to}), xfail:,
# skip: and a signal, so that mutations reach every kind of key of a cases document.
BASE = {
    **GREET_LIB,
    "hello/cases/basic.yaml": """
        kind: cases
        redact: {"[N]": "[0-9]+"}
        cases:
          - name: greets
            run: hello
            args: [one]
            env: {LANG: C}
            files: ["data/*"]
            timeout: 5
            redact: {"[WORD]": "[a-z]+"}
            expect: {stdout: "[WORD] [N] 1\\n", exit: 0, files: {out/none.txt: {absent: true}}}
          - name: hello/ends
            run: hello
            files: [{from: ../src/main.c, to: in/main.c}]
            xfail: "a known bug"
            expect: {signal: SIGSEGV}
          - name: later
            eval: "return 1;"
            skip: "not yet"
            expect: {signal: 11}
    """,
    "hello/cases/data/input.txt": "some input\n",
}
# Which file of the base plan a document of each kind replaces.
WHERE = {"plan": "plan.yaml", "project": "greet/project.yaml", "cases": "hello/cases/basic.yaml"}
# The same settings everywhere: deterministic in CI, no example database in the repository, our
# own per-run time bound instead of hypothesis' deadline (the first run imports modules), and no
# shrinking: with a command line run per step it takes many minutes, and a failing document is
# readable as generated.
COMMON = {"derandomize": True, "database": None, "deadline": None,
          "phases": [Phase.explicit, Phase.generate]}


# --- running the command line ---------------------------------------------------------------


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    """``recipe ARGV`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = exit_.code if isinstance(exit_.code, int) else 2
        except BaseException:  # a traceback is what this test looks for: show it
            traceback.print_exc()
            code = -1
    # A store the run left open closes (and checkpoints its SQLite journal) when collected: let
    # that happen now, not in the middle of the next run's before-and-after comparison.
    gc.collect()
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry below ``folder``: its type and content digest (or link target)."""
    state: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                state[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                state[rel] = "dir"
            else:
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def check_run(argv: list[str], store: Path) -> int:
    """Run ``recipe ARGV`` in-process and assert the properties every run must have."""
    before = snapshot(store)
    start = time.monotonic()
    code, _, err = run_in_process(argv)
    elapsed = time.monotonic() - start
    event(f"{argv[0]}: exit {code}")  # pytest --hypothesis-show-statistics: what was reached
    assert "Traceback" not in err, err
    assert code in (0, 1, 2), (code, err)
    err.encode("utf-8")  # a lone surrogate would crash a real stderr
    if code == 2:
        assert err.endswith("\n") and err.count("\n") == 1, err
        assert len(err.splitlines()) == 1, err  # no NEL or U+2028 inside the line either
        assert snapshot(store) == before, err
    assert elapsed < SECONDS, (argv, elapsed, err[:300])
    return code


@contextlib.contextmanager
def plan_with(files: dict[str, bytes]) -> Iterator[Path]:
    """A fresh copy of the base plan, with ``files`` (relative path: bytes) written over it."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        root = write_tree(Path(tmp) / "plan", BASE)
        for rel, data in files.items():
            (root / rel).write_bytes(data)
        yield root


def check_document(kind: str, data: bytes, store: Path, commands: tuple[str, ...] = ()) -> None:
    """Write ``data`` as the document of ``kind`` and run validate and show (and ``commands``)."""
    with plan_with({WHERE[kind]: data}) as root:
        plan = str(root / "plan.yaml")
        check_run(["validate", str(root / WHERE[kind]), "--store", str(store)], store)
        check_run(["show", plan, "--store", str(store)], store)
        for command in commands:
            check_run([command, plan, "--store", str(store), "-j", "2"], store)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the whole module, with the base plan realised in it: a store worth
    protecting, and builds that later runs find cached."""
    folder = tmp_path_factory.mktemp("store")
    with plan_with({}) as root:
        assert run_in_process(["realise", str(root / "plan.yaml"), "--store", str(folder)])[0] \
            == 0
    return folder


# --- documents from the schemas --------------------------------------------------------------


def _schema(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` in one piece (hypothesis-jsonschema resolves no file references)."""
    schema = schema_json(kind)
    if kind == "plan":
        text = json.dumps(schema).replace('"targets.schema.json#/$defs/', '"#/$defs/')
        schema = json.loads(text)
        schema["$defs"].update(schema_json("targets")["$defs"])
    return schema


def _cases_strategy() -> st.SearchStrategy[dict[str, Any]]:
    # The whole cases schema (oneOf plus if/then per shape) takes hypothesis-jsonschema minutes
    # per few examples; each shape on its own is fast and covers the same documents.
    defs = schema_json("cases")["$defs"]
    shapes = [from_schema({**defs[name], "$defs": defs}) for name in ("process", "eval",
                                                                       "function")]
    return st.fixed_dictionaries({"cases": st.lists(st.one_of(shapes), max_size=4)},
                                 optional={"redact": from_schema({**defs["redact"],
                                                                  "$defs": defs})})


def _with_kind(kind: str, doc: Any) -> Any:
    """``doc`` with ``kind:`` first, as every document must start (a non-mapping unchanged)."""
    if not isinstance(doc, dict):
        return doc
    return {"kind": kind, **{k: v for k, v in doc.items() if k != "kind"}}


@st.composite
def schema_documents(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["plan", "project", "cases"]))
    strategy = _cases_strategy() if kind == "cases" else from_schema(_schema(kind))
    doc = _with_kind(kind, draw(strategy))
    return kind, draw(serialised(doc))


@st.composite
def serialised(draw: st.DrawFn, doc: Any) -> bytes:
    """``doc`` as YAML text, keys in their order: JSON (a subset of YAML 1.2) or block style."""
    style = draw(st.sampled_from(["json", "json-ascii", "block"]))
    if style == "block":
        from ruamel.yaml import YAML

        out = io.StringIO()
        yaml = YAML(typ="rt")
        yaml.default_flow_style = False
        try:
            yaml.dump(doc, out)
        except Exception:  # ruamel refuses some text (lone surrogates): use JSON
            return json.dumps(doc).encode("utf-8")
        text = out.getvalue()
    else:
        text = json.dumps(doc, ensure_ascii=style == "json-ascii", indent=1)
    return text.encode("utf-8", "surrogatepass")  # a lone surrogate becomes invalid UTF-8


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow], **COMMON)
@given(document=schema_documents())
def test_documents_from_the_schemas(document: tuple[str, bytes], store: Path) -> None:
    # too_slow: hypothesis-jsonschema builds large values slowly; that is the generator's cost.
    check_document(*document, store)


# --- mutations of the valid documents ---------------------------------------------------------


def _base_document(kind: str) -> Any:
    from ruamel.yaml import YAML

    return json.loads(json.dumps(YAML(typ="safe").load(textwrap.dedent(BASE[WHERE[kind]]))))


LONG = st.sampled_from([100_000, 5_000, 300]).map(lambda n: "x" * n)
ODD_TEXT = st.sampled_from([
    "", " ", "a/b", "/", "..", "../..", "../outside.txt", "/etc/passwd", "~/x", ".", "./.",
    "a\x00b", "\x00", "a\nb", "greet\n", "\t", "a\tb", "\x1b[31mred", "\x7f", "a\x85b",
    "a\u2028b", "\ufeff", "\u202eevil", "\U0001f600", "é", "ǅ", "C:\\x", "\\", "a\\",
    "[z-a]", "[", "***", "*a*a*a*a*b", "**/**/**/x", "!", "!!", "!x", "#x", "{}", "*",
    "0x" + "f" * 60, "1e999", ".nan", "-.inf", "null", "~", "yes", "2024-01-01", "<<",
    "src/*.c", "include/greet.h", "greet", "hello", "release", "\ud800", "a\udcffb",
])
VALUES = st.one_of(
    ODD_TEXT, ODD_TEXT, ODD_TEXT, LONG, st.text(max_size=30), st.integers(),
    st.integers(-(1 << 200), 1 << 200),
    st.floats(), st.booleans(), st.none(), st.just([]), st.just({}),
    st.lists(st.one_of(ODD_TEXT, st.integers()), max_size=3),
    st.dictionaries(ODD_TEXT, ODD_TEXT, max_size=2),
)
PLACEHOLDER = "@@hostile@@"


def _bomb(levels: int, width: int) -> str:
    """A billion-laughs value: each level ``width`` aliases of the one before, in flow style."""
    parts = ['&b0 ["lol", "lol"]']
    parts += [f"&b{i} [{', '.join([f'*b{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


YAML_VALUES = st.sampled_from([
    _bomb(10, 9), _bomb(30, 2), _bomb(4, 9), _bomb(12, 5),
    "[&a [x, *a]]", "&r {k: *r}", "*undefined", "[" * 200 + "]" * 200,
    "[" * 5000, "{a: " * 100 + "b" + "}" * 100, "&x " + "[" * 40 + "]" * 40 + " ",
    "!!binary aGVsbG8=", "!!set {a, b}", "!custom x", "!!str 1", "!!int x", "!!float x",
    "!!timestamp 2024-13-99", "!!python/object:os.system x", "? [a]\n: b", "|\n\tx",
    "'unterminated", '"\\ud800"', '"\\x00"', '"\\U0010ffff"', "0x" + "f" * 5000,
    "1" * 5000, "&a x", "[*a]",
])


@st.composite
def mutated_documents(draw: st.DrawFn, kinds: tuple[str, ...] = ("plan", "project", "cases"),
                      text_mutations: int = 2) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(kinds))
    doc = _base_document(kind)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        doc = draw(mutated(doc))
    data = draw(serialised(doc))
    if PLACEHOLDER.encode() in data:  # a YAML value spliced in: anchors, aliases, tags
        yaml_value = draw(YAML_VALUES).encode()
        data = data.replace(f'"{PLACEHOLDER}"'.encode(), yaml_value, 1)
        data = data.replace(PLACEHOLDER.encode(), b"x")
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2][:text_mutations + 3]))):
        data = draw(text_mutated(data))
    return kind, data


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*path, i))


@st.composite
def mutated(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one node changed, removed or given a sibling (rarely: ``doc`` replaced)."""
    # Hypothesis favours the first choice of a list: the common choices go first, and the
    # document itself or its kind (which mask everything else) last.
    inner = [p for p in list(_paths(doc))[1:] if p != ("kind",)]
    if not inner or draw(st.sampled_from([False] * 30 + [True])):
        return draw(st.one_of(VALUES, st.just(PLACEHOLDER)))
    texts = [p for p in inner if isinstance(_at(doc, p), str)]
    if texts and draw(st.booleans()):  # a string made nearly right: "src/*.c\n", "a/b"
        path = draw(st.sampled_from(texts))
        text, fragment = _at(doc, path), draw(ODD_TEXT)
        _at(doc, path[:-1])[path[-1]] = draw(st.sampled_from(
            [text + fragment, fragment + text, text + "/" + fragment, fragment]))
        return doc
    path = draw(st.sampled_from([*inner, ("kind",)] if "kind" in doc else inner))
    parent, last = _at(doc, path[:-1]), path[-1]
    action = draw(st.sampled_from(["set", "yaml", "delete", "add", "repeat"]))
    if action == "set":
        parent[last] = draw(VALUES)
    elif action == "yaml":
        parent[last] = PLACEHOLDER
    elif action == "delete":
        del parent[last]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(ODD_TEXT)] = draw(VALUES)
    elif isinstance(parent, list):
        parent.append(parent[last])  # a duplicate item (a duplicate case name, a same output)
    return doc


def _at(doc: Any, path: tuple[Any, ...]) -> Any:
    for elem in path:
        doc = doc[elem]
    return doc


@st.composite
def text_mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with bytes inserted, a line repeated or tab-indented, or cut short."""
    at = draw(st.integers(0, len(data)))
    lines = data.split(b"\n")
    line = draw(st.integers(0, len(lines) - 1))
    action = draw(st.sampled_from(["insert", "repeat-line", "tab", "cut", "bom"]))
    if action == "insert":
        junk = draw(st.sampled_from([b"\x00", b"\t", b"\x01", b"\x1b", b"\x7f", b"\xc2\x85",
                                     b"\xe2\x80\xa8", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf",
                                     b"\r", b"\r\n", b"&", b"*", b"!", b"%", b"@", b"`", b"'",
                                     b'"', b"{", b"[", b"- ", b": ", b"? ", b"---\n", b"...\n"]))
        return data[:at] + junk + data[at:]
    if action == "repeat-line":  # in block style: a duplicate key
        return b"\n".join([*lines[:line + 1], lines[line], *lines[line + 1:]])
    if action == "tab":
        lines[line] = b"\t" + lines[line].lstrip(b" ")
        return b"\n".join(lines)
    if action == "cut":
        return data[:at]
    return b"\xef\xbb\xbf" + data


@settings(max_examples=80, **COMMON)
@given(document=mutated_documents())
def test_mutated_documents(document: tuple[str, bytes], store: Path) -> None:
    check_document(*document, store)


@pytest.mark.slow
@settings(max_examples=15, **COMMON)
@given(document=mutated_documents(kinds=("cases", "project"), text_mutations=0))
def test_mutated_documents_realised_and_verified(document: tuple[str, bytes],
                                                 store: Path) -> None:
    # Values, not syntax: documents that load more often, so that builds and cases run.
    check_document(*document, store, commands=("realise", "verify"))


# --- function cases with rows: from a data file (issue 19) --------------------------------------

ROWS_CASES = """
    kind: cases
    cases:
      - name: doubles
        function: int greet_twice(int x)
        table: [[0, 0]]
        rows: data/twice.csv
"""
DATA_FILES = st.sampled_from([
    b"x,expected\n1,2\n2,4\n", b"1,2\n", b"", b"\n\n", b"x,expected\n", b"y,expected\n1,2\n",
    b"x,x,expected\n", b'1,"2\n', b"1,2,3\n", b"1\n", b"2147483648,0\n", b"a,b\n", b"\x00,1\n",
    b"\xff\xfe", b"\xef\xbb\xbf1,2\r\n", b"1,2\r3,6\n", b"[1, 2]\n", b"1,2\n" * 5000,
    "\u2028,1\n".encode(), b"9" * 5000 + b",1\n", b"x,1\n" * 30,
])


@st.composite
def rows_documents(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A cases document whose function case reads a data file, mutated, and the data file."""
    from ruamel.yaml import YAML

    doc = json.loads(json.dumps(YAML(typ="safe").load(textwrap.dedent(ROWS_CASES))))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
        doc = draw(mutated(doc))
    data = draw(serialised(doc)).replace(f'"{PLACEHOLDER}"'.encode(), b"x")
    for _ in range(draw(st.sampled_from([0, 0, 1]))):
        data = draw(text_mutated(data))
    return data, draw(DATA_FILES)


@settings(max_examples=60, **COMMON)
@given(document=rows_documents())
def test_mutated_function_cases_with_data_files(document: tuple[bytes, bytes],
                                                store: Path) -> None:
    cases, rows = document
    with plan_with({}) as root:
        (root / "greet/cases/data").mkdir(parents=True)
        (root / "greet/cases/twice.yaml").write_bytes(cases)
        (root / "greet/cases/data/twice.csv").write_bytes(rows)
        for argv in (["validate", str(root / "greet/cases/twice.yaml")], ["show", str(root /
                                                                          "plan.yaml")]):
            code, _, err = run_in_process([*argv, "--store", str(store)])
            assert code in (0, 1, 2) and "Traceback" not in err, err
            if code == 2:  # one line; bad rows: a line each (ten at most), then a count
                lines = err.splitlines()
                assert err.endswith("\n") and len(lines) == err.count("\n") <= 11, err
                assert len(lines) == 1 or all(
                    re.match(r".*twice\.csv:\d+:1: ", line) for line in lines[:-1]), err


# --- named hostile files and the nastiest inputs, in a child process -------------------------


PROJECT = "kind: project\nname: greet\nversion: 1.0.0\nlanguage: c\nsources: ['src/*.c']\n" \
    "outputs: [{name: greet, kind: static-library}]\n"
NASTY = {
    "alias bomb": ("project", PROJECT + f"flags: {{compile: {_bomb(10, 9)}}}\n"),
    "alias bomb of long strings": ("project", PROJECT.replace(
        "outputs:", f"defines: {{X: &s '{'x' * 100_000}'}}\nflags: {{compile: "
        f"[{', '.join(['*s'] * 2000)}]}}\noutputs:")),
    "merge-key bomb": ("plan", "kind: plan\ntargets:\n  release: &t0 {opt: release}\n" + "".join(
        f"  t{i}: &t{i} {{<<: [{', '.join([f'*t{i - 1}'] * 9)}]}}\n" for i in range(1, 12))),
    "deep flow nesting": ("plan", "kind: plan\nprojects: " + "[" * 100_000 + "]" * 100_000),
    "deep block nesting": ("cases", "kind: cases\ncases:\n" + "".join(
        " " * i + "- \n" for i in range(1, 600))),
    "deep mapping nesting": ("plan", "kind: plan\ntargets: " + "{a: " * 20_000 + "b"),
    "10 MB string": ("project", PROJECT.replace("1.0.0", "x" * 10_000_000)),
    "1 MB string": ("cases", "kind: cases\ncases:\n- name: " + "n" * 1_000_000 + "\n"),
    "long list": ("project", PROJECT + "include_dirs: [" + ", ".join(
        [f"i{i}" for i in range(5_000)] + ["1", "true", "{}"]) + "]\n"),
}


def _child_limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


@pytest.mark.parametrize("name", sorted(NASTY))
def test_nastiest_inputs_in_bounded_time_and_memory(name: str, store: Path) -> None:
    kind, text = NASTY[name]
    with plan_with({WHERE[kind]: text.encode()}) as root:
        for command, file in (("validate", WHERE[kind]), ("show", "plan.yaml")):
            argv = [command, file, "--store", str(store)]
            before = snapshot(store)
            start = time.monotonic()
            result = subprocess.run([sys.executable, "-m", "engine.cli.main", *argv], cwd=root,
                                    capture_output=True, text=True, timeout=60,
                                    preexec_fn=_child_limits)
            elapsed = time.monotonic() - start
            assert "Traceback" not in result.stderr, result.stderr
            assert result.returncode == 2, result.stderr
            assert result.stderr.count("\n") == 1, result.stderr
            assert snapshot(store) == before
            assert elapsed < SECONDS, (name, argv, elapsed)


# --- a plan's remote_cache: -------------------------------------------------------------------

# Every URL here names this machine with an explicit port, and text is added only after the port
# or a '/': whatever a mutation makes, the run either refuses it (exit 2) or talks to 127.0.0.1,
# ::1 or localhost, where nothing listens on port 1 (a refused connection: one warning).
LOCAL_URLS = st.sampled_from(["http://127.0.0.1:1", "https://127.0.0.1:1", "http://[::1]:1",
                              "http://localhost:1", "http://127.0.0.1:99999",
                              "http://127.0.0.1:1/cache", "ftp://127.0.0.1:1",
                              "grpc://127.0.0.1:1", "http://u:p@127.0.0.1:1", "127.0.0.1:1",
                              "http://127.0.0.1:1?x=1", "http://127.0.0.1:1#f"])
REMOTE_VALUES = st.one_of(
    LOCAL_URLS,
    st.tuples(LOCAL_URLS, ODD_TEXT).map(lambda p: p[0] + p[1]),
    st.tuples(LOCAL_URLS, ODD_TEXT).map(lambda p: p[0] + "/" + p[1]),
    st.tuples(ODD_TEXT, LOCAL_URLS).map(lambda p: p[0] + p[1]),
    st.fixed_dictionaries({"url": LOCAL_URLS},
                          optional={"token_env": st.one_of(ODD_TEXT, st.just("HOME"),
                                                           st.just("NO_SUCH_VARIABLE_HERE")),
                                    "token": ODD_TEXT}),
    ODD_TEXT, st.integers(), st.none(), st.just([]), st.just({}),
)


@settings(max_examples=40, **COMMON)
@given(value=REMOTE_VALUES)
def test_hostile_remote_cache_values(value: Any, store: Path) -> None:
    plan = {"kind": "plan", "projects": ["*/project.yaml"], "remote_cache": value}
    with plan_with({"plan.yaml": json.dumps(plan).encode("utf-8", "surrogatepass")}) as root:
        for command in ("validate", "show", "realise"):
            argv = [command, str(root / "plan.yaml"), "--store", str(store)]
            code = check_run(argv, store)
            if command == "validate" and code == 2:
                break  # refused as a document: nothing further to try
