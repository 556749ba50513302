"""C prototypes of function cases -> Signature / CType."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.documents import DocumentError, parse_signature
from engine.documents.models import CType
from engine.errors import Pos

POS = Pos(Path("/nowhere/cases.yaml"), 7, 15)


def parse(text: str):  # noqa: ANN201
    return parse_signature(text, POS)


def error(text: str) -> str:
    with pytest.raises(DocumentError) as caught:
        parse(text)
    assert caught.value.pos == POS
    return f"{caught.value.what}; {caught.value.fix}"


def test_the_example_of_the_design() -> None:
    signature = parse("size_t wc_count_words(const char *text)")
    assert signature.name == "wc_count_words"
    assert signature.returns == CType("size_t", "int", 64, False)
    assert signature.params == (CType("const char *", "string"),)
    assert signature.text == "size_t wc_count_words(const char *text)"


@pytest.mark.parametrize(("spelled", "ctype"), [
    ("bool", CType("bool", "bool", 0, False)),
    ("_Bool", CType("bool", "bool", 0, False)),
    ("char", CType("char", "char", 8, True)),
    ("signed char", CType("signed char", "int", 8, True)),
    ("unsigned char", CType("unsigned char", "int", 8, False)),
    ("short", CType("short", "int", 16, True)),
    ("short int", CType("short", "int", 16, True)),
    ("unsigned short int", CType("unsigned short", "int", 16, False)),
    ("int", CType("int", "int", 32, True)),
    ("signed", CType("int", "int", 32, True)),
    ("signed int", CType("int", "int", 32, True)),
    ("unsigned", CType("unsigned int", "int", 32, False)),
    ("int unsigned", CType("unsigned int", "int", 32, False)),
    ("long", CType("long", "int", 64, True)),
    ("unsigned long", CType("unsigned long", "int", 64, False)),
    ("long unsigned int", CType("unsigned long", "int", 64, False)),
    ("long long", CType("long long", "int", 64, True)),
    ("signed long long int", CType("long long", "int", 64, True)),
    ("unsigned long long", CType("unsigned long long", "int", 64, False)),
    ("int8_t", CType("int8_t", "int", 8, True)),
    ("uint16_t", CType("uint16_t", "int", 16, False)),
    ("int32_t", CType("int32_t", "int", 32, True)),
    ("uint64_t", CType("uint64_t", "int", 64, False)),
    ("size_t", CType("size_t", "int", 64, False)),
    ("ssize_t", CType("ssize_t", "int", 64, True)),
    ("float", CType("float", "float", 32, True)),
    ("double", CType("double", "float", 64, True)),
    ("const double", CType("double", "float", 64, True)),
    ("const char *", CType("const char *", "string")),
    ("char const *", CType("const char *", "string")),
    ("const char * const", CType("const char *", "string")),
])
def test_supported_types(spelled: str, ctype: CType) -> None:
    assert parse(f"{spelled} f({spelled} x, {spelled})").params == (ctype, ctype)
    assert parse(f"{spelled} f(void)").returns == ctype


def test_parameters_and_returns() -> None:
    assert parse("void reset(void);").returns == CType("void", "void")
    assert parse("int answer()").params == ()
    assert parse("const char*name(int  a ,\n  double b)").params == \
        (CType("int", "int", 32, True), CType("double", "float", 64, True))


@pytest.mark.parametrize(("text", "message"), [
    ("int *f(void)", "unsupported return type 'int *' in function 'int *f(void)'; only const "
                     "char * pointers are supported"),
    ("char *f(void)", "unsupported return type 'char *' in function 'char *f(void)'; only "
                      "const char * pointers are supported"),
    ("int f(const char **argv)", "unsupported parameter type 'const char * *' in function "
                                 "'int f(const char **argv)'; only const char * pointers are "
                                 "supported"),
    ("int f(struct point p)", "struct types are not supported in function 'int f(struct point "
                              "p)'; use bool, char, a signed or unsigned integer (int8_t..uint64_t"
                              ", short, int, long, long long, size_t, ssize_t), float, double, "
                              "const char * or json"),
    ("int f(int values[4])", "arrays are not supported in function 'int f(int values[4])'; use "
                             "bool, char, a signed or unsigned integer (int8_t..uint64_t, short, "
                             "int, long, long long, size_t, ssize_t), float, double, const "
                             "char * or json"),
    ("int f(const char *fmt, ...)", "variadic functions are not supported in function 'int f("
                                    "const char *fmt, ...)'; use bool, char, a signed or unsigned"
                                    " integer (int8_t..uint64_t, short, int, long, long long, "
                                    "size_t, ssize_t), float, double, const char * or json"),
    ("int (int a)", "missing the function's name in function 'int (int a)'; write it as 'type "
                    "name(type param, ...)'"),
    ("f(int a)", "missing the return type in function 'f(int a)'; write it as 'type name(type "
                 "param, ...)'"),
    ("int f", "not a C prototype in function 'int f'; write it as 'type name(type param, ...)'"),
    ("int f(void x)", "a void parameter in function 'int f(void x)'; write f(void) or f() for "
                      "no parameters"),
    ("int f(int a,)", "an empty parameter in function 'int f(int a,)'; remove the extra ','"),
    ("int f(int (*cb)(int))", "function pointers are not supported in function 'int f(int "
                              "(*cb)(int))'; use bool, char, a signed or unsigned integer ("
                              "int8_t..uint64_t, short, int, long, long long, size_t, ssize_t), "
                              "float, double, const char * or json"),
])
def test_unsupported_signatures(text: str, message: str) -> None:
    assert error(text) == message


@pytest.mark.parametrize("spelled", ["long double", "unsigned signed", "unsigned float",
                                     "myint", "volatile int", "unsigned size_t", "short long"])
def test_unsupported_scalars(spelled: str) -> None:
    assert error(f"int f({spelled} x)").startswith(f"unsupported parameter type '{spelled}'")


def test_a_message_stays_on_one_line() -> None:
    assert "\n" not in error("int f(\n  int *a)")
