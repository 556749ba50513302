#include "strutil.h"

su_view su_trim_left(su_view v)
{
    size_t n;
    while ((n = su_space_at(v)) > 0) {
        v.ptr += n;
        v.len -= n;
    }
    return v;
}

su_view su_trim_right(su_view v)
{
    size_t n;
    while ((n = su_space_before(v)) > 0)
        v.len -= n;
    return v;
}

su_view su_trim(su_view v)
{
    return su_trim_right(su_trim_left(v));
}
