#include "strutil.h"

#include "ascii.h"

size_t su_lower(char *dst, size_t cap, su_view v)
{
    if (cap == 0)
        return v.len;
    size_t n = v.len < cap - 1 ? v.len : cap - 1;
    for (size_t i = 0; i < n; i++)
        dst[i] = su_ascii_lower(v.ptr[i]);
    dst[n] = '\0';
    return v.len;
}
