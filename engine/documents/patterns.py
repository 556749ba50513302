"""The syntax of expectation patterns and redactions (trycmd's, so users know it), checked
when a cases document is read; matching is ``engine.verify.patterns``.

In ``stdout``, ``stderr`` and file expectations:

- ``[..]`` matches any text within one line (none included);
- a line holding only ``...`` matches any number of whole lines (zero included);
- ``[NAME]`` (capitals, digits, ``_``) is a placeholder: a redaction the cases file or the
  case declares (``redact: {"[ADDR]": "0x[0-9a-f]+"}``, a Python regular expression matched
  against bytes), or a built-in: ``[ROOT]`` the case's scratch folder, ``[STORE]`` the store.

An expectation holding none of these is exact bytes. One holding any of them is a pattern,
and then every ``[NAME]`` in it must be declared (an undeclared one is most likely a typo of
a declared one); a literal ``[NAME]`` text in a pattern is matched with ``[..]``.
"""

from __future__ import annotations

import re
import warnings

ANY = b"[..]"
ELIDE = b"..."
BUILTINS = ("[ROOT]", "[STORE]")
#: A placeholder or ``[..]``, in the bytes of an expectation.
TOKEN = re.compile(rb"\[\.\.\]|\[[A-Z][A-Z0-9_]*\]")
NAME = re.compile(r"\[[A-Z][A-Z0-9_]*\]")
_ELIDE_LINE = re.compile(rb"(?m)^\.\.\.$")  # a line holding only "..." ($: before a \n)
MAX_EXPRESSION = 1000  # characters of one redaction's expression


def redaction_problem(name: str, expression: str) -> tuple[str, str] | None:
    """``(what is wrong, how to fix it)`` of one declared redaction, or None."""
    if not NAME.fullmatch(name):
        return (f"redaction name {name!r} is not a placeholder",
                'name it in capitals between brackets, such as "[ADDR]"')
    if name in BUILTINS:
        return (f"redaction {name} is built in (the case's "
                f"{'scratch folder' if name == '[ROOT]' else 'store folder'})",
                "use it without declaring it, or pick another name")
    if len(expression) > MAX_EXPRESSION:
        return (f"the expression of {name} is longer than {MAX_EXPRESSION} characters",
                "write a shorter regular expression")
    source = expression.encode("utf-8")
    with warnings.catch_warnings():
        # Python warns (FutureWarning) of what a future version will read otherwise: '[[' (a
        # nested set) and '--', '&&', '~~', '||' in a set. An expectation must not change
        # meaning with the Python that runs recipe, so these are errors, asked to be escaped.
        warnings.simplefilter("error")
        try:
            compiled = re.compile(source)
        except re.error as error:
            return (f"the expression of {name} is not a regular expression: {error}",
                    "write a Python regular expression, such as 0x[0-9a-f]+")
        except Warning as warning:
            return (f"the expression of {name} is ambiguous: {str(warning)[0].lower()}"
                    f"{str(warning)[1:]}",
                    "escape the character there with a backslash (\\[ for a literal [, "
                    "\\- \\& \\~ \\| for a doubled operator)")
    import regex  # here: 10 ms, and most documents declare no redaction

    try:
        regex.compile(source)  # what verify matches with (engine.verify.patterns)
    except regex.error as error:
        return (f"the expression of {name} is not a regular expression: {error}",
                "write a Python regular expression, such as 0x[0-9a-f]+")
    if compiled.groupindex:
        return (f"the expression of {name} names a group",
                "use (?:...) for grouping; names cannot repeat in one expectation")
    if compiled.fullmatch(b""):
        return (f"the expression of {name} matches the empty text",
                "make it match at least one character (+ instead of *)")
    if compiled.search(b"\n"):
        return (f"the expression of {name} matches a line break",
                "a placeholder stands for text within one line: exclude \\n")
    return None


def is_pattern(text: bytes, names: frozenset[str] | set[str]) -> bool:
    """Whether ``text`` uses patterns (else it is exact bytes)."""
    if _ELIDE_LINE.search(text):
        return True
    return any(m.group() == ANY or m.group().decode() in names or m.group().decode() in BUILTINS
               for m in TOKEN.finditer(text))


def unknown_placeholder(text: bytes, names: frozenset[str] | set[str]) -> tuple[str, int] | None:
    """In a pattern, the first ``[NAME]`` neither declared nor built in, and its byte offset."""
    if not is_pattern(text, names):
        return None
    for m in TOKEN.finditer(text):
        token = m.group().decode()
        if token != "[..]" and token not in names and token not in BUILTINS:
            return token, m.start()
    return None
