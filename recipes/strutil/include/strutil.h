/* strutil — small, allocation-free string helpers over byte views.
 *
 * Text is UTF-8. Whitespace is the ASCII set (space, \t, \n, \v, \f, \r) plus
 * U+00A0 NO-BREAK SPACE and U+3000 IDEOGRAPHIC SPACE; case folding touches
 * ASCII letters only and leaves every other byte as it is.  Nothing here
 * depends on the locale, allocates, or keeps state between calls.
 */
#ifndef STRUTIL_H
#define STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed run of bytes; it is not NUL-terminated in general. */
typedef struct su_view {
    const char *ptr;
    size_t len;
} su_view;

/* A view of a NUL-terminated string (NULL gives the empty view). */
su_view su_view_of(const char *s);
/* Whether two views hold the same bytes. */
bool su_view_eq(su_view a, su_view b);

/* The byte length of the whitespace character starting at s[0] (0: none). */
size_t su_space_at(su_view s);
/* The byte length of the whitespace character ending at s[len-1] (0: none). */
size_t su_space_before(su_view s);

/* v without leading / trailing / surrounding whitespace. */
su_view su_trim_left(su_view v);
su_view su_trim_right(su_view v);
su_view su_trim(su_view v);

/* Copy v into dst with ASCII letters lowered, NUL-terminate it (cap > 0), and
 * return v.len; the copy is cut at cap - 1 bytes when dst is too small. */
size_t su_lower(char *dst, size_t cap, su_view v);

/* Iterate over the words of a view: maximal runs of non-whitespace. */
typedef struct su_words {
    su_view rest;
} su_words;

void su_words_init(su_words *it, su_view v);
/* Store the next word in *word and return true, or return false at the end. */
bool su_words_next(su_words *it, su_view *word);

/* The number of words in v. */
size_t su_count_words(su_view v);
/* Store up to max words of v in out[] and return the number of words in v. */
size_t su_split(su_view v, su_view *out, size_t max);

/* Whether v is well-formed UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF). */
bool su_utf8_valid(su_view v);
/* The number of code points in v: bytes that are not continuation bytes. */
size_t su_utf8_count(su_view v);

#ifdef __cplusplus
}
#endif

#endif /* STRUTIL_H */
