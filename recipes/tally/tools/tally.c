/* tally add NAME [N] | get NAME | show — over tally.txt in $RECIPE_WORKS
 * or the working folder. Exit 2 on a usage error, 1 when the file fails. */
#include "tally.h"

#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fputs("usage: tally add NAME [N] | get NAME | show\n", stderr);
    return 2;
}

int main(int argc, char **argv)
{
    tally t;
    if (argc < 2)
        return usage();
    if (tally_open(&t, NULL) != 0) {
        fprintf(stderr, "tally: cannot read %s\n", t.path);
        return 1;
    }
    if (strcmp(argv[1], "show") == 0 && argc == 2) {
        tally_print(&t, stdout);
        return 0;
    }
    if (strcmp(argv[1], "get") == 0 && argc == 3) {
        printf("%ld\n", tally_get(&t, argv[2]));
        return 0;
    }
    if (strcmp(argv[1], "add") == 0 && (argc == 3 || argc == 4)) {
        long n = argc == 4 ? strtol(argv[3], NULL, 10) : 1;
        long now = tally_add(&t, argv[2], n);
        if (now < 0) {
            fprintf(stderr, "tally: cannot count '%s'\n", argv[2]);
            return 2;
        }
        if (tally_save(&t) != 0) {
            fprintf(stderr, "tally: cannot write %s\n", t.path);
            return 1;
        }
        printf("%ld\n", now);
        return 0;
    }
    return usage();
}
