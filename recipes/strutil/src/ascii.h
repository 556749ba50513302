/* Private, locale-free character classes shared by the strutil sources. */
#ifndef STRUTIL_ASCII_H
#define STRUTIL_ASCII_H

#include <stdbool.h>

static inline bool su_ascii_space(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline char su_ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static inline bool su_utf8_continuation(unsigned char c)
{
    return (c & 0xC0u) == 0x80u;
}

#endif /* STRUTIL_ASCII_H */
