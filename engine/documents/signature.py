"""C prototypes of function cases (``size_t wc_count_words(const char *text)``) -> Signature.

Only types whose values a YAML table can spell are accepted: bool, char, signed and unsigned
integers of 8 to 64 bits, float, double, ``const char *`` (parameters and result), and a ``void``
result. ``long`` is 64 bits: the targets are LP64 (Linux, macOS; not Windows).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from engine.documents.errors import DocumentError
from engine.documents.models import CType, Signature
from engine.errors import Pos

SUPPORTED = ("use bool, char, a signed or unsigned integer (int8_t..uint64_t, short, int, long, "
             "long long, size_t, ssize_t), float, double, const char * or json")

_TOKEN = re.compile(r"\s*(?:([A-Za-z_]\w*)|(\.\.\.|\S))")
_SIGN = {"signed", "unsigned"}
_KEYWORDS = {"const", "void", "bool", "_Bool", "char", "short", "int", "long", "float",
             "double", "struct", "union", "enum", "volatile", "restrict", "unsigned", "signed",
             "size_t", "ssize_t"} | {f"{u}int{b}_t" for u in ("", "u") for b in (8, 16, 32, 64)}
# (sorted words without signed/unsigned) -> (spelling stem, bits)
_INTEGERS = {
    (): ("int", 32), ("int",): ("int", 32),
    ("short",): ("short", 16), ("int", "short"): ("short", 16),
    ("long",): ("long", 64), ("int", "long"): ("long", 64),
    ("long", "long"): ("long long", 64), ("int", "long", "long"): ("long long", 64),
}
_NAMED = {f"{u}int{b}_t": CType(f"{u}int{b}_t", "int", b, not u)
          for u in ("", "u") for b in (8, 16, 32, 64)}
_NAMED |= {
    "size_t": CType("size_t", "int", 64, False), "ssize_t": CType("ssize_t", "int", 64, True),
    "bool": CType("bool", "bool", 0, False), "_Bool": CType("bool", "bool", 0, False),
    "float": CType("float", "float", 32), "double": CType("double", "float", 64),
    "void": CType("void", "void"), "char": CType("char", "char", 8),
}
STRING = CType("const char *", "string")
# A const char * that holds JSON: an argument is its cell's value as compact JSON, a result is
# parsed and compared structurally (engine.verify.table).
JSON = CType("json", "json")

_Fail = Callable[..., DocumentError]


def parse_signature(text: str, pos: Pos) -> Signature:
    """Parse a C prototype; a DocumentError at ``pos`` names what is not supported."""
    tokens = [m.group(1) or m.group(2) for m in _TOKEN.finditer(text.strip())]
    if tokens and tokens[-1] == ";":
        tokens.pop()

    def fail(what: str, fix: str = SUPPORTED) -> DocumentError:
        return DocumentError(f"{what} in function '{' '.join(text.split())}'", fix, pos=pos)

    if "(" not in tokens or tokens[-1] != ")":
        raise fail("not a C prototype", "write it as 'type name(type param, ...)'")
    open_at = tokens.index("(")
    head, params = tokens[:open_at], tokens[open_at + 1:-1]
    if "(" in params or ")" in params:
        raise fail("function pointers are not supported")
    rtype, name = _declaration(head, fail, "return type")
    if name is None:
        raise fail("missing the function's name", "write it as 'type name(type param, ...)'")
    if rtype.kind == "void" and rtype.spelling != "void":
        raise fail(f"unsupported return type '{rtype.spelling}'")
    groups: list[list[str]] = [[]]
    for token in params:
        if token == ",":
            groups.append([])
        else:
            groups[-1].append(token)
    ctypes: list[CType] = []
    names: list[str | None] = []
    if groups != [[]] and groups != [["void"]]:
        for group in groups:
            if not group:
                raise fail("an empty parameter", "remove the extra ','")
            ctype, param = _declaration(group, fail, "parameter type")
            if ctype.kind == "void":
                raise fail("a void parameter", "write f(void) or f() for no parameters")
            ctypes.append(ctype)
            names.append(param)
    return Signature(name=name, returns=rtype, params=tuple(ctypes), text=text,
                     names=tuple(names))


def _declaration(tokens: list[str], fail: _Fail, role: str) -> tuple[CType, str | None]:
    """``const char *name`` -> (CType, "name"); the name is optional."""
    name = None
    if role == "return type" and len(tokens) == 1 and tokens[0] not in _KEYWORDS | {"json"}:
        raise fail("missing the return type", "write it as 'type name(type param, ...)'")
    if tokens and re.match(r"[A-Za-z_]\w*$", tokens[-1]) and tokens[-1] not in _KEYWORDS \
            and tokens != ["json"]:
        if len(tokens) > 1 and tokens[-2] not in ("struct", "union", "enum"):
            name, tokens = tokens[-1], tokens[:-1]
    spelled = " ".join(tokens)
    if tokens in (["json"], ["const", "json"]):
        return JSON, name
    if not tokens:
        raise fail(f"missing {role}")
    for bad, why in (("...", "variadic functions are not supported"),
                     ("[", "arrays are not supported"), ("&", "references are not supported")):
        if bad in tokens:
            raise fail(why)
    for word in ("struct", "union", "enum"):
        if word in tokens:
            raise fail(f"{word} types are not supported")
    stars = tokens.count("*")
    if stars:
        first = tokens.index("*")
        base, after = tokens[:first], tokens[first + 1:]
        if stars == 1 and Counter(base) == Counter({"const": 1, "char": 1}) and \
                set(after) <= {"const"}:
            return STRING, name
        raise fail(f"unsupported {role} '{spelled}'", "only const char * pointers are supported")
    words = [w for w in tokens if w != "const"]
    unknown = [w for w in words if w not in _KEYWORDS]
    if unknown or "volatile" in words or "restrict" in words:
        raise fail(f"unsupported {role} '{spelled}'")
    return _scalar(words, spelled, role, fail), name


def _scalar(words: list[str], spelled: str, role: str, fail: _Fail) -> CType:
    signs = [w for w in words if w in _SIGN]
    rest = tuple(sorted(w for w in words if w not in _SIGN))
    if len(signs) > 1:
        raise fail(f"unsupported {role} '{spelled}'")
    if not signs and len(rest) == 1 and rest[0] in _NAMED:
        return _NAMED[rest[0]]
    unsigned = signs == ["unsigned"]
    if rest == ("char",):  # signed/unsigned char are small integers, plain char is a character
        return CType(f"{signs[0]} char", "int", 8, not unsigned)
    if rest in _INTEGERS:
        stem, bits = _INTEGERS[rest]
        return CType(f"unsigned {stem}" if unsigned else stem, "int", bits, not unsigned)
    raise fail(f"unsupported {role} '{spelled}'")
