/* strtool — the strutil functions as a filter over standard input.
 *
 *   strtool trim    each line trimmed, in brackets
 *   strtool lower   the input with ASCII letters lowered
 *   strtool words   one word per line
 *   strtool count   the number of words of each line
 *   strtool stats   lines, words, code points and bytes of the whole input
 *   strtool check   exit 1 unless the input is well-formed UTF-8
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"

static const char usage[] = "usage: strtool trim|lower|words|count|stats|check < input\n";

/* All of standard input in one heap buffer; exits on a read error. */
static su_view read_all(void)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fputs("strtool: out of memory\n", stderr);
        exit(1);
    }
    for (;;) {
        len += fread(buf + len, 1, cap - len, stdin);
        if (len < cap)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            fputs("strtool: out of memory\n", stderr);
            exit(1);
        }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(stdin)) {
        fputs("strtool: cannot read standard input\n", stderr);
        exit(1);
    }
    su_view v = {buf, len};
    return v;
}

/* Split off the next line (without its '\n'); false when nothing is left. */
static bool next_line(su_view *rest, su_view *line)
{
    if (rest->len == 0)
        return false;
    const char *nl = memchr(rest->ptr, '\n', rest->len);
    size_t n = nl ? (size_t)(nl - rest->ptr) : rest->len;
    line->ptr = rest->ptr;
    line->len = n;
    rest->ptr += nl ? n + 1 : n;
    rest->len -= nl ? n + 1 : n;
    return true;
}

static void put(su_view v)
{
    fwrite(v.ptr, 1, v.len, stdout);
}

static int cmd_trim(su_view in)
{
    su_view line;
    while (next_line(&in, &line)) {
        putchar('[');
        put(su_trim(line));
        fputs("]\n", stdout);
    }
    return 0;
}

static int cmd_lower(su_view in)
{
    char chunk[256];
    while (in.len > 0) {
        su_view part = {in.ptr, in.len < sizeof chunk - 1 ? in.len : sizeof chunk - 1};
        su_lower(chunk, sizeof chunk, part);
        fwrite(chunk, 1, part.len, stdout);
        in.ptr += part.len;
        in.len -= part.len;
    }
    return 0;
}

static int cmd_words(su_view in)
{
    su_words it;
    su_view word;
    su_words_init(&it, in);
    while (su_words_next(&it, &word)) {
        put(word);
        putchar('\n');
    }
    return 0;
}

static int cmd_count(su_view in)
{
    su_view line;
    while (next_line(&in, &line))
        printf("%zu\n", su_count_words(line));
    return 0;
}

static int cmd_stats(su_view in)
{
    size_t lines = 0;
    for (size_t i = 0; i < in.len; i++)
        lines += in.ptr[i] == '\n';
    printf("lines %zu\nwords %zu\nchars %zu\nbytes %zu\nutf8 %s\n", lines, su_count_words(in),
           su_utf8_count(in), in.len, su_utf8_valid(in) ? "valid" : "invalid");
    return 0;
}

static int cmd_check(su_view in)
{
    if (su_utf8_valid(in))
        return 0;
    fputs("strtool: input is not well-formed UTF-8\n", stderr);
    return 1;
}

static const struct {
    const char *name;
    int (*run)(su_view);
} commands[] = {
    {"trim", cmd_trim},   {"lower", cmd_lower}, {"words", cmd_words},
    {"count", cmd_count}, {"stats", cmd_stats}, {"check", cmd_check},
};

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs(usage, stderr);
        return 2;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            su_view in = read_all();
            int status = commands[i].run(in);
            free((void *)in.ptr);
            return status;
        }
    }
    fprintf(stderr, "strtool: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
