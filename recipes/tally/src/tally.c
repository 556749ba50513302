#include "tally.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= TALLY_NAME)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == ' ' || name[i] == '\t' || name[i] == '\n' || name[i] == '\r')
            return 0;
    return 1;
}

static tally_entry *find(const tally *t, const char *name)
{
    for (size_t i = 0; i < t->len; i++)
        if (strcmp(t->entries[i].name, name) == 0)
            return (tally_entry *)&t->entries[i];
    return NULL;
}

int tally_open(tally *t, const char *dir)
{
    if (dir == NULL)
        dir = getenv("RECIPE_WORKS");
    if (dir == NULL || *dir == '\0')
        dir = ".";
    t->len = 0;
    int n = snprintf(t->path, sizeof t->path, "%s/tally.txt", dir);
    if (n < 0 || (size_t)n >= sizeof t->path)
        return -1;
    FILE *f = fopen(t->path, "rb"); /* binary: the file is the same bytes on every OS */
    if (f == NULL)
        return 0; /* nothing counted yet */
    char name[TALLY_NAME];
    long count;
    int rc = 0;
    while ((n = fscanf(f, "%31s %ld", name, &count)) == 2) {
        if (tally_add(t, name, count) < 0) {
            rc = -1;
            break;
        }
    }
    if (n != EOF && n != 2)
        rc = -1;
    fclose(f);
    return rc;
}

long tally_add(tally *t, const char *name, long n)
{
    if (!valid_name(name))
        return -1;
    tally_entry *e = find(t, name);
    if (e == NULL) {
        if (t->len == TALLY_MAX)
            return -1;
        e = &t->entries[t->len++];
        memcpy(e->name, name, strlen(name) + 1);
        e->count = 0;
    }
    e->count += n;
    return e->count;
}

long tally_get(const tally *t, const char *name)
{
    const tally_entry *e = find(t, name);
    return e ? e->count : 0;
}

int tally_save(const tally *t)
{
    char temp[TALLY_PATH + 8];
    int n = snprintf(temp, sizeof temp, "%s.new", t->path);
    if (n < 0 || (size_t)n >= sizeof temp)
        return -1;
    FILE *f = fopen(temp, "wb");
    if (f == NULL)
        return -1;
    tally_print(t, f);
#ifdef _WIN32
    /* Windows' rename() does not replace an existing file (no longer atomic there). */
    if (fclose(f) != 0 || (remove(t->path) != 0 && errno != ENOENT) ||
        rename(temp, t->path) != 0) {
#else
    if (fclose(f) != 0 || rename(temp, t->path) != 0) {
#endif
        remove(temp);
        return -1;
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const tally_entry *)a)->name, ((const tally_entry *)b)->name);
}

void tally_print(const tally *t, FILE *out)
{
    tally_entry sorted[TALLY_MAX];
    memcpy(sorted, t->entries, t->len * sizeof sorted[0]);
    qsort(sorted, t->len, sizeof sorted[0], by_name);
    for (size_t i = 0; i < t->len; i++)
        fprintf(out, "%s %ld\n", sorted[i].name, sorted[i].count);
}
