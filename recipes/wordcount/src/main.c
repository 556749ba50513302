/* wc — print line, word, character and byte counts of files.
 *
 *   wc [-lwmc] [--] [FILE]...
 *
 * With no FILE, or with FILE "-", wc reads standard input. Counts are shown in
 * the order lines, words, chars, bytes; with no option, lines, words and
 * bytes. A total row follows when there are two files or more. A file that
 * cannot be read is reported on standard error and counts as nothing.
 * WC_FORMAT=json prints one JSON object instead of the text table.
 * Exit status: 0 success, 1 a file could not be read, 2 a usage error.
 */
#include <stdlib.h>
#include <string.h>

#include "wc_report.h"
#include "wordcount.h"

/* Messages name the program as it was run (argv[0]), as most Unix tools do; under
 * `recipe verify` that is "wc", never the store path it runs from. */
static const char *prog = "wc";
static const char usage[] = "usage: %s [-lwmc] [--] [FILE]...\n";

static int count_one(wc_report *r, wc_counts *total, const char *path)
{
    bool use_stdin = path == NULL || strcmp(path, "-") == 0;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s: cannot open\n", prog, path);
        return 1;
    }
    wc_counts c;
    int status = wc_count_stream(f, &c);
    if (!use_stdin)
        fclose(f);
    if (status != 0) {
        fprintf(stderr, "%s: %s: cannot read\n", prog, use_stdin ? "-" : path);
        return 1;
    }
    wc_counts_add(total, &c);
    wc_report_row(r, &c, path);
    return 0;
}

int main(int argc, char **argv)
{
    wc_report r = {stdout, WC_TEXT, {false, false, false, false}, 0};
    if (argc > 0 && argv[0][0] != '\0')
        prog = argv[0];
    const char *format = getenv("WC_FORMAT");
    if (!wc_parse_format(format, &r.format)) {
        fprintf(stderr, "%s: unknown WC_FORMAT '%s'; use text or json\n", prog, format);
        return 2;
    }

    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (strcmp(argv[i], "--help") == 0) {
            printf(usage, prog);
            return 0;
        }
        if (argv[i][1] == '-') {
            fprintf(stderr, "%s: unrecognized option '%s'\n", prog, argv[i]);
            fprintf(stderr, usage, prog);
            return 2;
        }
        for (const char *o = argv[i] + 1; *o; o++) {
            switch (*o) {
            case 'l': r.fields.lines = true; break;
            case 'w': r.fields.words = true; break;
            case 'm': r.fields.chars = true; break;
            case 'c': r.fields.bytes = true; break;
            default:
                fprintf(stderr, "%s: invalid option -- '%c'\n", prog, *o);
                fprintf(stderr, usage, prog);
                return 2;
            }
        }
    }

    int status = 0;
    wc_counts total = {0, 0, 0, 0};
    wc_report_begin(&r);
    bool with_total = argc - i > 1;
    if (i == argc)
        status |= count_one(&r, &total, NULL);
    for (; i < argc; i++)
        status |= count_one(&r, &total, argv[i]);
    wc_report_end(&r, &total, with_total);
    return status;
}
