#include "strutil.h"

void su_words_init(su_words *it, su_view v)
{
    it->rest = v;
}

bool su_words_next(su_words *it, su_view *word)
{
    su_view rest = su_trim_left(it->rest);
    if (rest.len == 0) {
        it->rest = rest;
        return false;
    }
    size_t end = 0;
    while (end < rest.len) {
        su_view tail = {rest.ptr + end, rest.len - end};
        if (su_space_at(tail) > 0)
            break;
        end++;
    }
    word->ptr = rest.ptr;
    word->len = end;
    it->rest.ptr = rest.ptr + end;
    it->rest.len = rest.len - end;
    return true;
}

size_t su_count_words(su_view v)
{
    return su_split(v, NULL, 0);
}

size_t su_split(su_view v, su_view *out, size_t max)
{
    su_words it;
    su_view word;
    size_t count = 0;
    su_words_init(&it, v);
    while (su_words_next(&it, &word)) {
        if (count < max)
            out[count] = word;
        count++;
    }
    return count;
}
