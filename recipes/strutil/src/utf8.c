#include "strutil.h"

#include "ascii.h"

/* The length of the sequence a lead byte starts, or 0 for a byte that cannot
 * start one (continuation bytes, C0, C1, F5..FF). */
static size_t sequence_length(unsigned char lead)
{
    if (lead < 0x80u)
        return 1;
    if (lead >= 0xC2u && lead <= 0xDFu)
        return 2;
    if (lead >= 0xE0u && lead <= 0xEFu)
        return 3;
    if (lead >= 0xF0u && lead <= 0xF4u)
        return 4;
    return 0;
}

bool su_utf8_valid(su_view v)
{
    const unsigned char *p = (const unsigned char *)v.ptr;
    size_t i = 0;
    while (i < v.len) {
        size_t n = sequence_length(p[i]);
        if (n == 0 || n > v.len - i)
            return false;
        for (size_t k = 1; k < n; k++)
            if (!su_utf8_continuation(p[i + k]))
                return false;
        /* The second byte's range rules out overlongs, surrogates and values
         * past U+10FFFF. */
        if ((p[i] == 0xE0u && p[i + 1] < 0xA0u) || (p[i] == 0xEDu && p[i + 1] > 0x9Fu) ||
            (p[i] == 0xF0u && p[i + 1] < 0x90u) || (p[i] == 0xF4u && p[i + 1] > 0x8Fu))
            return false;
        i += n;
    }
    return true;
}

size_t su_utf8_count(su_view v)
{
    size_t count = 0;
    for (size_t i = 0; i < v.len; i++)
        if (!su_utf8_continuation((unsigned char)v.ptr[i]))
            count++;
    return count;
}
