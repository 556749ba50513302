/* wordcount — count lines, words, characters and bytes of text.
 *
 * Words are maximal runs of non-whitespace as strutil defines them (ASCII
 * whitespace, U+00A0 and U+3000); characters are UTF-8 code points.
 */
#ifndef WORDCOUNT_H
#define WORDCOUNT_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wc_counts {
    size_t lines; /* '\n' bytes */
    size_t words;
    size_t chars; /* UTF-8 code points */
    size_t bytes;
} wc_counts;

/* The counts of len bytes at buf. */
wc_counts wc_count_buffer(const char *buf, size_t len);
/* The number of words of a NUL-terminated string. */
size_t wc_count_words(const char *text);
/* acc += c, field by field. */
void wc_counts_add(wc_counts *acc, const wc_counts *c);

/* Read the whole of f and count it: 0 on success, -1 on a read error. */
int wc_count_stream(FILE *f, wc_counts *out);

#ifdef __cplusplus
}
#endif

#endif /* WORDCOUNT_H */
