/* tally — named counters kept in a text file, one "name count" line each.
 *
 * The file is <dir>/tally.txt; tally_open(t, NULL) uses $RECIPE_WORKS (the
 * REPL's workspace) and falls back to the working folder. Fixed capacity,
 * no allocation: TALLY_MAX counters, names of at most TALLY_NAME-1 bytes.
 */
#ifndef TALLY_H
#define TALLY_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TALLY_MAX 64
#define TALLY_NAME 32
#define TALLY_PATH 4096

typedef struct tally_entry {
    char name[TALLY_NAME];
    long count;
} tally_entry;

typedef struct tally {
    char path[TALLY_PATH];
    size_t len;
    tally_entry entries[TALLY_MAX];
} tally;

/* Load <dir>/tally.txt (a missing file is an empty tally): 0, or -1 when the
 * file cannot be read or is malformed. */
int tally_open(tally *t, const char *dir);
/* Add n to the counter name (created at 0): its new value, or -1 when the
 * name is empty, too long, holds white space, or the tally is full. */
long tally_add(tally *t, const char *name, long n);
/* The value of a counter, 0 when there is none. */
long tally_get(const tally *t, const char *name);
/* Write the file back (by rename, never half a file): 0, or -1. */
int tally_save(const tally *t);
/* "name count" lines, sorted by name. */
void tally_print(const tally *t, FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* TALLY_H */
