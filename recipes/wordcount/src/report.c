#include <string.h>

#include "wc_report.h"

bool wc_parse_format(const char *text, wc_format *format)
{
    if (!text || !*text || strcmp(text, "text") == 0)
        *format = WC_TEXT;
    else if (strcmp(text, "json") == 0)
        *format = WC_JSON;
    else
        return false;
    return true;
}

static wc_fields shown(wc_fields f)
{
    if (!f.lines && !f.words && !f.chars && !f.bytes)
        f.lines = f.words = f.bytes = true;
    return f;
}

/* A JSON string: quotes, backslashes and control bytes escaped; other bytes
 * (UTF-8 included) as they are. */
static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void text_row(wc_report *r, const wc_counts *c, const char *name)
{
    wc_fields f = shown(r->fields);
    const char *sep = "";
    const size_t values[] = {c->lines, c->words, c->chars, c->bytes};
    const bool on[] = {f.lines, f.words, f.chars, f.bytes};
    for (size_t i = 0; i < 4; i++) {
        if (on[i]) {
            fprintf(r->out, "%s%7zu", sep, values[i]);
            sep = " ";
        }
    }
    if (name)
        fprintf(r->out, " %s", name);
    fputc('\n', r->out);
}

static void json_counts(wc_report *r, const wc_counts *c)
{
    wc_fields f = shown(r->fields);
    const char *sep = "";
    const char *keys[] = {"lines", "words", "chars", "bytes"};
    const size_t values[] = {c->lines, c->words, c->chars, c->bytes};
    const bool on[] = {f.lines, f.words, f.chars, f.bytes};
    for (size_t i = 0; i < 4; i++) {
        if (on[i]) {
            fprintf(r->out, "%s\"%s\": %zu", sep, keys[i], values[i]);
            sep = ", ";
        }
    }
}

void wc_report_begin(wc_report *r)
{
    r->rows = 0;
    if (r->format == WC_JSON)
        fputs("{\"files\": [", r->out);
}

void wc_report_row(wc_report *r, const wc_counts *c, const char *name)
{
    if (r->format == WC_TEXT) {
        text_row(r, c, name);
    } else {
        fputs(r->rows ? ", {\"name\": " : "{\"name\": ", r->out);
        if (name)
            json_string(r->out, name);
        else
            fputs("null", r->out);
        fputs(", ", r->out);
        json_counts(r, c);
        fputc('}', r->out);
    }
    r->rows++;
}

void wc_report_end(wc_report *r, const wc_counts *total, bool with_total)
{
    if (r->format == WC_TEXT) {
        if (with_total)
            text_row(r, total, "total");
    } else {
        fputs("], \"total\": {", r->out);
        json_counts(r, total);
        fputs("}}\n", r->out);
    }
}
