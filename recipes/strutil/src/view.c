#include "strutil.h"

#include <string.h>

su_view su_view_of(const char *s)
{
    su_view v = {s ? s : "", s ? strlen(s) : 0};
    return v;
}

bool su_view_eq(su_view a, su_view b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}
