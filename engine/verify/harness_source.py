"""The C source of a table harness: a small program, generated per function signature, that
calls one function of the library under test for every row it reads (``engine.verify.harness``
builds and runs it; docs/cases.md describes the protocol).

``harness N CAREFUL TIMEOUT RESULTS`` reads N rows from stdin, column by column (all of the
first argument, then all of the second...): an integer, bool, char or floating-point column is
N little-endian values of its width (bool and char: 1 byte); a ``const char *`` or ``json``
column is N lengths (u32; ``0xffffffff`` is NULL) followed by the N texts, back to back. It
writes the results to the file RESULTS (not to stdout: the function may print there) in
batches: a u32 count K, then K results (the same encodings; a ``void`` function writes none). A
batch is written whole or not at all, every ``BATCH`` rows (every row for the first CAREFUL
rows: after a crash, the row that ends the harness is then the one after the last result). A
row that runs longer than TIMEOUT seconds ends the harness with SIGALRM (POSIX) or exit code 124
(Windows; WASI, where the runner watches the row being called, ``recipe_harness_watch``, which
the link exports, and stops the program: ``engine.verify.runners.wasi_main``).

The function is declared under a name of the harness's own (``recipe_fn``) bound to the real
symbol with an assembler label, so that a function named like a libc one (``abs``) clashes
with nothing; no header of the project is needed.
"""

from __future__ import annotations

from engine.documents.models import CType, Signature

FORMAT = "recipe-harness-2"
BATCH = 4096
HUNG = 124  # the harness's exit code for a row past its timeout, where there are no signals

_HEAD = r"""/* recipe table harness (%(format)s): %(title)s */
#if !defined(_WIN32) && !defined(__wasi__)
#define _POSIX_C_SOURCE 200809L  /* sigaction, setitimer */
#endif
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(_WIN32)
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#elif !defined(__wasi__)
#include <signal.h>
#include <sys/time.h>
#endif
#define RH_STR2(x) #x
#define RH_STR(x) RH_STR2(x)
#define RH_SYMBOL(name) RH_STR(__USER_LABEL_PREFIX__) name
#define RH_BATCH %(batch)d
#pragma GCC diagnostic ignored "-Wunused-function"

extern %(returns)s recipe_fn(%(params)s) __asm__(RH_SYMBOL("%(name)s"));
%(free)s
#if defined(__wasi__)
/* The row being called, and whether one is: read from the linear memory by the runner's
 * watchdog (WASI has no signals or threads), at the address the link exports. */
volatile struct { uint64_t at; uint32_t running; } recipe_harness_watch;
#define rh_at recipe_harness_watch.at
#define rh_running recipe_harness_watch.running
#else
static volatile uint64_t rh_at;  /* the row being called */
static volatile int rh_running;
#endif

static void rh_fail(const char *what) {
    fprintf(stderr, "recipe harness: %%s\n", what);
    exit(3);
}

#if defined(_WIN32)
static DWORD rh_timeout_ms;
static DWORD WINAPI rh_watch(LPVOID unused) {
    uint64_t last = (uint64_t)-1;
    int stuck = 0;
    (void)unused;
    for (;;) {
        Sleep(rh_timeout_ms / 4 + 1);
        uint64_t now = rh_at;
        stuck = (rh_running && now == last) ? stuck + 1 : 0;
        last = now;
        if (stuck >= 4) {
            TerminateProcess(GetCurrentProcess(), %(hung)d);
        }
    }
    return 0;
}
static void rh_watchdog(double seconds) {
    rh_timeout_ms = (DWORD)(seconds * 1000.0);
    CreateThread(NULL, 0, rh_watch, NULL, 0, NULL);
}
#elif !defined(__wasi__)
static uint64_t rh_last = (uint64_t)-1;
static int rh_stuck;
static void rh_tick(int sig) {
    uint64_t now = rh_at;
    (void)sig;
    rh_stuck = (rh_running && now == rh_last) ? rh_stuck + 1 : 0;
    rh_last = now;
    if (rh_stuck >= 4) {  /* the row has run for at least its timeout */
        signal(SIGALRM, SIG_DFL);
        raise(SIGALRM);
    }
}
static void rh_watchdog(double seconds) {
    struct sigaction action;
    struct itimerval every;
    double quarter = seconds / 4;
    memset(&action, 0, sizeof action);
    action.sa_handler = rh_tick;
    action.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &action, NULL);
    every.it_interval.tv_sec = (long)quarter;
    every.it_interval.tv_usec = (long)((quarter - (long)quarter) * 1e6);
    if (!every.it_interval.tv_sec && !every.it_interval.tv_usec) every.it_interval.tv_usec = 1000;
    every.it_value = every.it_interval;
    setitimer(ITIMER_REAL, &every, NULL);
}
#else
static void rh_watchdog(double seconds) { (void)seconds; }
#endif

static unsigned char *rh_in;
static size_t rh_in_len, rh_in_at;

static const unsigned char *rh_take(size_t size) {
    if (rh_in_len - rh_in_at < size) rh_fail("the rows end early");
    rh_in_at += size;
    return rh_in + rh_in_at - size;
}

static uint32_t rh_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void rh_load(void *to, const unsigned char *from, size_t size) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < size; i++) ((unsigned char *)to)[i] = from[size - 1 - i];
#else
    memcpy(to, from, size);
#endif
}

/* A text column: N lengths, then the texts; each becomes a NUL-terminated copy (or NULL). */
static const char **rh_texts(uint64_t n) {
    const unsigned char *lengths = rh_take(n * 4);
    const char **texts = malloc((n ? n : 1) * sizeof *texts);
    if (!texts) rh_fail("out of memory");
    for (uint64_t i = 0; i < n; i++) {
        uint32_t len = rh_u32(lengths + i * 4);
        if (len == 0xffffffffu) { texts[i] = NULL; continue; }
        const unsigned char *bytes = rh_take(len);
        char *copy = malloc((size_t)len + 1);
        if (!copy) rh_fail("out of memory");
        memcpy(copy, bytes, len);
        copy[len] = 0;
        texts[i] = copy;
    }
    return texts;
}

static FILE *rh_file;
static unsigned char *rh_out;
static size_t rh_out_len, rh_out_cap;
static uint32_t rh_count;

static unsigned char *rh_room(size_t size) {
    if (rh_out_len + size > rh_out_cap) {
        while (rh_out_len + size > rh_out_cap) rh_out_cap = rh_out_cap * 2 + 4096;
        rh_out = realloc(rh_out, rh_out_cap);
        if (!rh_out) rh_fail("out of memory");
    }
    rh_out_len += size;
    return rh_out + rh_out_len - size;
}

/* A value, little-endian. */
static void rh_put(const void *data, size_t size) {
    unsigned char *to = rh_room(size);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    for (size_t i = 0; i < size; i++) to[i] = ((const unsigned char *)data)[size - 1 - i];
#else
    memcpy(to, data, size);
#endif
}

/* A text: its length (u32; 0xffffffff for NULL), then its bytes. */
static void rh_put_text(const char *text) {
    size_t n = text ? strlen(text) : 0;
    uint32_t len = text ? (uint32_t)n : 0xffffffffu;
    unsigned char *to = rh_room(4 + n);
    to[0] = len & 255; to[1] = len >> 8 & 255; to[2] = len >> 16 & 255; to[3] = len >> 24 & 255;
    memcpy(to + 4, text ? text : "", n);
}

/* One batch: its count in the 4 bytes kept free at the start, then written whole. */
static void rh_flush(void) {
    if (!rh_count) return;
    rh_out[0] = rh_count & 255; rh_out[1] = rh_count >> 8 & 255;
    rh_out[2] = rh_count >> 16 & 255; rh_out[3] = rh_count >> 24 & 255;
    if (fwrite(rh_out, 1, rh_out_len, rh_file) != rh_out_len || fflush(rh_file) != 0)
        rh_fail("cannot write the results");
    rh_out_len = 4;
    rh_count = 0;
}

int main(int argc, char **argv) {
    if (argc < 5) rh_fail("usage: harness ROWS CAREFUL TIMEOUT RESULTS");
#if defined(_WIN32)
    _setmode(_fileno(stdin), _O_BINARY);
#endif
    rh_file = fopen(argv[4], "wb");
    if (!rh_file) rh_fail("cannot open the results file");
    uint64_t n = strtoull(argv[1], NULL, 10), careful = strtoull(argv[2], NULL, 10);
    double timeout = atof(argv[3]);
    size_t cap = 1 << 16;
    rh_in = malloc(cap);
    for (size_t got; rh_in && (got = fread(rh_in + rh_in_len, 1, cap - rh_in_len, stdin)) > 0;) {
        rh_in_len += got;
        if (rh_in_len == cap) rh_in = realloc(rh_in, cap *= 2);
    }
    if (!rh_in) rh_fail("out of memory");
    rh_out_cap = 1 << 16;
    rh_out = malloc(rh_out_cap);
    if (!rh_out) rh_fail("out of memory");
    rh_out_len = 4;
%(columns)s
    if (rh_in_at != rh_in_len) rh_fail("more input than rows");
    if (timeout > 0) rh_watchdog(timeout);
    rh_running = 1;
    for (uint64_t i = 0; i < n; i++) {
        rh_at = i;
%(call)s
        rh_count++;
        if (rh_count >= RH_BATCH || i < careful || rh_out_len >= (1u << 20)) rh_flush();
    }
    rh_running = 0;
    rh_flush();
    return 0;
}
"""


def c_type(ctype: CType) -> str:
    """How the harness spells a parameter or result type."""
    if ctype.kind == "int":
        return f"{'' if ctype.signed else 'u'}int{ctype.bits}_t"
    if ctype.kind in ("string", "json"):
        return "const char *"
    if ctype.kind == "float":
        return "float" if ctype.bits == 32 else "double"
    return {"bool": "bool", "char": "char", "void": "void"}[ctype.kind]


def declared(ctype: CType) -> str:
    """How the function's prototype spells a type: as the signature does, so that ``long``
    and ``size_t`` have the target's width (32 bits on Windows and WASI); the harness reads
    and writes values at the signature's width and C converts."""
    if ctype.kind == "int":
        return "ptrdiff_t" if ctype.spelling == "ssize_t" else ctype.spelling
    return c_type(ctype)


def width(ctype: CType) -> int:
    """Bytes of one value of a fixed-width column (0: a text)."""
    if ctype.kind in ("string", "json"):
        return 0
    if ctype.kind in ("int", "float"):
        return ctype.bits // 8
    return 1  # bool, char


def generate(signature: Signature, free: str | None, title: str) -> str:
    """The harness's translation unit for ``signature`` (``free``: the function that takes back
    a returned text)."""
    params = signature.params
    columns, arguments = [], []
    for k, ctype in enumerate(params):
        if width(ctype):
            columns.append(f"    const unsigned char *c{k} = rh_take(n * {width(ctype)});")
            if ctype.kind == "bool":
                arguments.append(f"c{k}[i] != 0")
            elif ctype.kind == "char":
                arguments.append(f"(char)c{k}[i]")
            else:
                arguments.append(f"rh_arg{k}(c{k}, i)")
        else:
            columns.append(f"    const char **c{k} = rh_texts(n);")
            arguments.append(f"c{k}[i]")
    loaders = "".join(
        f"static inline {c_type(p)} rh_arg{k}(const unsigned char *c, uint64_t i) {{ "
        f"{c_type(p)} v; rh_load(&v, c + i * {width(p)}, {width(p)}); return v; }}\n"
        for k, p in enumerate(params) if width(p) and p.kind in ("int", "float"))
    call = _call(signature, free, ", ".join(arguments))
    free_decl = (f'extern void recipe_free(void *) __asm__(RH_SYMBOL("{free}"));\n'
                 if free else "")
    text = _HEAD % {
        "format": FORMAT, "title": title.replace("*/", "* /"), "batch": BATCH, "hung": HUNG,
        "returns": declared(signature.returns), "name": signature.name,
        "params": ", ".join(declared(p) for p in params) or "void", "free": free_decl,
        "columns": "\n".join(columns), "call": call}
    return text.replace("/* A text column:", loaders + "\n/* A text column:")


def _call(signature: Signature, free: str | None, arguments: str) -> str:
    returns = signature.returns
    if returns.kind == "void":
        return f"        recipe_fn({arguments});"
    if returns.kind in ("string", "json"):
        release = "        if (r) recipe_free((void *)r);\n" if free else ""
        return (f"        const char *r = recipe_fn({arguments});\n"
                f"        rh_put_text(r);\n{release}").rstrip("\n")
    if returns.kind == "bool":
        return (f"        unsigned char r = recipe_fn({arguments}) ? 1 : 0;\n"
                "        rh_put(&r, 1);")
    return (f"        {c_type(returns)} r = recipe_fn({arguments});\n"
            "        rh_put(&r, sizeof r);")
