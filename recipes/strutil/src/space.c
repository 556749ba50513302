#include "strutil.h"

#include <string.h>

#include "ascii.h"

/* The multi-byte spaces, as UTF-8: U+00A0 and U+3000. */
static const char nbsp[] = "\xC2\xA0";
static const char ideographic[] = "\xE3\x80\x80";

static bool has_prefix(su_view s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr, p, n) == 0;
}

static bool has_suffix(su_view s, const char *p, size_t n)
{
    return s.len >= n && memcmp(s.ptr + s.len - n, p, n) == 0;
}

size_t su_space_at(su_view s)
{
    if (s.len == 0)
        return 0;
    if (su_ascii_space((unsigned char)s.ptr[0]))
        return 1;
    if (has_prefix(s, nbsp, sizeof nbsp - 1))
        return sizeof nbsp - 1;
    if (has_prefix(s, ideographic, sizeof ideographic - 1))
        return sizeof ideographic - 1;
    return 0;
}

size_t su_space_before(su_view s)
{
    if (s.len == 0)
        return 0;
    if (su_ascii_space((unsigned char)s.ptr[s.len - 1]))
        return 1;
    if (has_suffix(s, nbsp, sizeof nbsp - 1))
        return sizeof nbsp - 1;
    if (has_suffix(s, ideographic, sizeof ideographic - 1))
        return sizeof ideographic - 1;
    return 0;
}
