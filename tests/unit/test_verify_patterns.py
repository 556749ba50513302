"""Expectation patterns: what matches, and what --update records in place of a pattern."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from engine.documents.models import Case, Expect
from engine.documents.patterns import is_pattern, redaction_problem, unknown_placeholder
from engine.errors import Pos
from engine.verify.outcome import Observed
from engine.verify.patterns import leak, matches, normalize, redactions


def marks(tmp_path: Path, **redact: str):
    case = Case(name="c", kind="process", file=tmp_path / "cases.yaml", index=0,
                pos=Pos(tmp_path), expect=Expect(), redact=dict(redact))
    seen = Observed(b"", b"", 0, root=str(tmp_path / "scratch"), store=str(tmp_path / "store"))
    return redactions(case, seen)


@pytest.mark.parametrize(("expected", "observed", "ok"), [
    (b"a [..] c\n", b"a b b c\n", True),
    (b"a [..] c\n", b"a  c\n", True),
    (b"a [..] c\n", b"a b\nc\n", False),            # [..] stays within its line
    (b"a\n...\nz\n", b"a\nz\n", True),              # zero lines
    (b"a\n...\nz\n", b"a\nb\nc\nz\n", True),
    (b"a\n...\n", b"a\nb\nno newline", True),       # a final `...` takes the rest
    (b"a\n...\nz\n", b"a\nb\n", False),
    (b"[ADDR] x\n", b"0x1f x\n", True),
    (b"[ADDR] x\n", b"0xzz x\n", False),
    (b"x [FOO] y\n", b"x [FOO] y\n", True),           # no placeholder: exact bytes
    (b"x [FOO] y\n", b"x z y\n", False),
    (b"a.b*c\n", b"a.b*c\n", True),                   # regex characters are literal
    (b"a.b*c\n", b"aXbbc\n", False),
    (b"\xff[..]\n", b"\xff\xfe\n", True),             # bytes, not text
])
def test_matching(tmp_path: Path, expected: bytes, observed: bytes, ok: bool) -> None:
    assert matches(expected, observed, marks(tmp_path, **{"[ADDR]": "0x[0-9a-f]+"})) is ok


def test_builtins_match_the_folders_as_given_and_resolved(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "scratch").symlink_to(tmp_path / "real")
    m = marks(tmp_path)
    assert matches(b"[ROOT]/work\n", f"{tmp_path / 'real'}/work\n".encode(), m)
    assert matches(b"[ROOT]/work\n", f"{tmp_path / 'scratch'}/work\n".encode(), m)
    assert matches(b"[STORE]/x\n", f"{tmp_path / 'store'}/x\n".encode(), m)
    assert leak(f"at {tmp_path / 'store'}/x".encode(), m) == "[STORE]"
    assert leak(b"nothing here", m) is None


def test_normalize_keeps_matching_lines_and_records_changes(tmp_path: Path) -> None:
    m = marks(tmp_path, **{"[ADDR]": "0x[0-9a-f]+", "[N]": "[0-9]+"})
    expected = b"head [ADDR]\nsame [..]\nold line\n...\ntail [N]\n"
    observed = b"head 0xabc\nsame thing\nnew line 0x9\nmiddle\nmore\ntail 42\n"
    # The changed line is written as observed, with the declared redactions put in.
    assert normalize(observed, expected, m) == \
        b"head [ADDR]\nsame [..]\nnew line [ADDR]\n...\ntail [N]\n"
    assert normalize(observed, expected, m, substitute=False) == \
        b"head [ADDR]\nsame [..]\nnew line 0x9\n...\ntail [N]\n"
    # Lines added and removed around kept ones.
    assert normalize(b"a 1\nb\nc 2\n", b"a [N]\nc [N]\n", m) == b"a [N]\nb\nc [N]\n"
    assert normalize(b"a 1\n", b"a [N]\nb\n", m) == b"a [N]\n"
    # An exact expectation stays exact unless a redaction applies to the new text.
    assert normalize(b"plain\n", b"old\n", m) == b"plain\n"
    assert normalize(b"at 0x10\n", b"old\n", m) == b"at [ADDR]\n"


def test_what_normalize_returns_always_matches(tmp_path: Path) -> None:
    m = marks(tmp_path, **{"[N]": "[0-9]+"})
    for expected, observed in [(b"...\n[N]\n...\n", b"x\n1\n2\ny\n"),
                               (b"[..]\n...\n[..]\n", b""),
                               (b"a\n...\n...\nb\n", b"b\na\n"),
                               (b"[N]", b"12\n")]:
        assert matches(normalize(observed, expected, m), observed, m)


def test_syntax_checks() -> None:
    assert is_pattern(b"a\n...\n", set()) and is_pattern(b"[..]", set())
    assert not is_pattern(b"[INFO] ok\n", set()) and is_pattern(b"[INFO] ok\n", {"[INFO]"})
    assert unknown_placeholder(b"[INFO] [..]\n", set()) == ("[INFO]", 0)
    assert unknown_placeholder(b"[INFO] ok\n", set()) is None  # exact bytes: literal
    assert redaction_problem("[A]", "(?P<x>a)")[0] == "the expression of [A] names a group"
    assert redaction_problem("[A]", "a" * 1001)[0].endswith("longer than 1000 characters")
    assert redaction_problem("[A]", "0x[0-9a-f]+") is None


@pytest.mark.parametrize(("expression", "problem"), [
    ("id-[[a-z]+", "the expression of [A] is ambiguous: possible nested set at position 4"),
    ("[a--z]+", "the expression of [A] is ambiguous: possible set difference at position 2"),
    ("[a&&b]", "the expression of [A] is ambiguous: possible set intersection at position 2"),
])
def test_what_python_warns_of_in_an_expression_is_an_error(expression: str,
                                                            problem: str) -> None:
    # A future Python reads these otherwise (a nested set, set operations): refused with the
    # usual one line, and nothing is printed on the way (no FutureWarning reaches the user).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = redaction_problem("[A]", expression)
    assert found is not None and found[0] == problem
    assert redaction_problem("[A]", expression.replace("[[", "[\\[").replace("--", "\\--")
                             .replace("&&", "\\&&")) is None  # escaped as the fix says


# Run in a child process: on a matcher without a time bound the match never ends, and a thread
# could not be stopped (the regular expression engine holds the GIL).
_PATHOLOGICAL = """
import sys, time
from pathlib import Path
from engine.documents.models import Case, Expect
from engine.errors import Pos
from engine.verify import compare, patterns
from engine.verify.outcome import Observed

patterns.MATCH_SECONDS = 1.0
case = Case(name="c", kind="process", file=Path("cases.yaml"), index=0, pos=Pos(Path(".")),
            expect=Expect(stdout=b"id [ID]\\n"), redact={"[ID]": "(?:a|a)+"})
seen = Observed(b"id " + b"a" * 60 + b"!\\n", b"", 0)
start = time.monotonic()
status, message, _ = compare.compare(case, seen, 1 << 20)
print(status, round(time.monotonic() - start), message, sep="\\n")
"""


def test_a_redaction_that_backtracks_without_end_is_an_error_in_bounded_time() -> None:
    # (a|a)+ matches a run of n a's in 2**n ways; followed by a '!' every way is tried.
    done = subprocess.run([sys.executable, "-c", _PATHOLOGICAL], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr
    status, seconds, message = done.stdout.splitlines()
    assert status == "error" and int(seconds) <= 3
    assert message.startswith("matching the output against the case's patterns took over 1s "
                              "(declared redactions: [ID]): ")
    assert "; rewrite it so that each text matches in one way" in message
