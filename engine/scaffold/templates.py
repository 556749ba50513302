"""The files ``recipe init`` writes, per language, as ``string.Template`` texts.

Placeholders: ``$name`` (the project), ``$ident`` (the project as a C identifier or Rust crate
name: ``-`` and ``.`` become ``_``), ``$guard`` (the header guard), ``$program`` (the
executable's output name). ``$`` appears in none of the sources for another reason, which is why
Template and not ``str.format`` (C and Rust are full of braces).
"""

from __future__ import annotations

PLAN = """\
kind: plan
# Realise with `recipe realise plan.yaml`; run the cases with `recipe verify plan.yaml`.
projects: ["*/project.yaml"]      # every folder with a project.yaml (`recipe init` adds more)
targets:
  release: {opt: release}
  debug: {opt: debug}
default_targets: [release]
"""

GITIGNORE = """\
# recipe's store (built outputs) and its per-checkout caches and REPL workspaces
store/
.recipe/
"""

# -- C and C++ ---------------------------------------------------------------------------------

C_PROJECT = """\
kind: project
name: $name
version: 0.1.0
language: $language
standard: $standard
sources: $sources
headers: ["include/*.h"]
public_headers: [include/$name.h]
include_dirs: [include]
flags: {compile: [-Wall, -Wextra]}
outputs:
$outputs
repl:
  scope: [include/$name.h]          # what `recipe repl plan.yaml -p $name` sees
cases: ["cases/*.yaml"]
"""

C_HEADER = """\
#ifndef $guard
#define $guard

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The number of words (runs of characters other than space, tab and newline) in text;
   NULL has none. */
size_t ${ident}_count_words(const char *text);

#ifdef __cplusplus
}
#endif

#endif
"""

C_LIBRARY = """\
#include "$name.h"

size_t ${ident}_count_words(const char *text) {
    size_t words = 0;
    int inside = 0;
    for (; text != NULL && *text != '\\0'; text++) {
        int space = *text == ' ' || *text == '\\t' || *text == '\\n';
        if (!space && !inside)
            words++;
        inside = !space;
    }
    return words;
}
"""

C_MAIN = """\
#include <stdio.h>
#include <stdlib.h>

#include "$name.h"

/* Prints the number of words of its standard input. */
int main(void) {
    size_t size = 0, capacity = 4096;
    char *text = malloc(capacity + 1);
    size_t got;
    while (text != NULL && (got = fread(text + size, 1, capacity - size, stdin)) > 0) {
        size += got;
        if (size == capacity) {
            char *larger = realloc(text, 2 * capacity + 1);
            if (larger == NULL)
                free(text);
            text = larger;
            capacity *= 2;
        }
    }
    if (text == NULL) {
        fputs("$program: out of memory\\n", stderr);
        return 1;
    }
    text[size] = '\\0';
    printf("%zu\\n", ${ident}_count_words(text));
    free(text);
    return 0;
}
"""

CXX_LIBRARY = """\
#include "$name.h"

#include <string_view>

extern "C" size_t ${ident}_count_words(const char *text) {
    if (text == nullptr)
        return 0;
    size_t words = 0;
    bool inside = false;
    for (char c : std::string_view{text}) {
        bool space = c == ' ' || c == '\\t' || c == '\\n';
        if (!space && !inside)
            ++words;
        inside = !space;
    }
    return words;
}
"""

CXX_MAIN = """\
#include <iostream>
#include <iterator>
#include <string>

#include "$name.h"

// Prints the number of words of its standard input.
int main() {
    std::string text{std::istreambuf_iterator<char>{std::cin}, {}};
    std::cout << ${ident}_count_words(text.c_str()) << '\\n';
}
"""

# -- Rust --------------------------------------------------------------------------------------

RUST_PROJECT = """\
kind: project
name: $name
version: 0.1.0
language: rust
standard: "2021"
sources: ["src/*.rs", "!src/main.rs"]   # src/lib.rs: the library crate `$ident`
outputs:
$outputs
repl:
  scope: [$ident::count_words]        # eval cases: the body of fn main, with these in scope
cases: ["cases/*.yaml"]
"""

RUST_LIBRARY = """\
//! $name: counts words.

use std::ffi::CStr;
use std::os::raw::c_char; // not std::ffi::c_char: Debian 12's rustc (1.63) predates it

/// The number of whitespace-separated words in `text`.
pub fn count_words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// `count_words` for C callers (and recipe's function cases); NULL has no words.
///
/// # Safety
/// `text` is NULL or points to a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn ${ident}_count_words(text: *const c_char) -> usize {
    if text.is_null() {
        return 0;
    }
    count_words(&CStr::from_ptr(text).to_string_lossy())
}
"""

RUST_MAIN = """\
use std::io::Read;

/// Prints the number of words of its standard input.
fn main() {
    let mut text = Vec::new();
    if let Err(error) = std::io::stdin().read_to_end(&mut text) {
        eprintln!("$program: {error}");
        std::process::exit(1);
    }
    println!("{}", $ident::count_words(&String::from_utf8_lossy(&text)));
}
"""

# -- the cases, the same for every language ----------------------------------------------------

CASES = """\
kind: cases
cases:
  - name: counts the words of stdin     # a process case: runs the program
    run: $program
    stdin: "the quick brown fox\\njumps\\n"
    expect:
      stdout: "5\\n"

  - name: counts words                  # a function case: calls the library, row by row
    function: size_t ${ident}_count_words(const char *text)
    table:
      - ["a b  c", 3]                   # [arguments..., expected]
      - ["", 0]
      - [null, 0]                       # null is NULL
"""
