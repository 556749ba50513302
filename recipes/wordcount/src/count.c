#include <stdlib.h>
#include <string.h>

#include "strutil.h"
#include "wordcount.h"

#ifndef WC_READ_CHUNK
#error "WC_READ_CHUNK must be defined (project.yaml: defines)"
#endif

wc_counts wc_count_buffer(const char *buf, size_t len)
{
    su_view v = {buf, len};
    wc_counts c = {0, su_count_words(v), su_utf8_count(v), len};
    for (const char *p = buf; (p = memchr(p, '\n', len - (size_t)(p - buf))) != NULL; p++)
        c.lines++;
    return c;
}

size_t wc_count_words(const char *text)
{
    return su_count_words(su_view_of(text));
}

void wc_counts_add(wc_counts *acc, const wc_counts *c)
{
    acc->lines += c->lines;
    acc->words += c->words;
    acc->chars += c->chars;
    acc->bytes += c->bytes;
}

int wc_count_stream(FILE *f, wc_counts *out)
{
    size_t cap = WC_READ_CHUNK, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -1;
    for (;;) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap)
            break;
        char *bigger = realloc(buf, cap + WC_READ_CHUNK);
        if (!bigger) {
            free(buf);
            return -1;
        }
        buf = bigger;
        cap += WC_READ_CHUNK;
    }
    int status = ferror(f) ? -1 : 0;
    if (status == 0)
        *out = wc_count_buffer(buf, len);
    free(buf);
    return status;
}
