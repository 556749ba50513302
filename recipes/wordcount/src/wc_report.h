/* Private to wordcount: what the wc program prints, and how. */
#ifndef WC_REPORT_H
#define WC_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "wordcount.h"

typedef enum wc_format { WC_TEXT, WC_JSON } wc_format;

/* Which counts to show; all false means lines, words and bytes. */
typedef struct wc_fields {
    bool lines, words, chars, bytes;
} wc_fields;

typedef struct wc_report {
    FILE *out;
    wc_format format;
    wc_fields fields;
    size_t rows; /* rows written so far */
} wc_report;

/* Parse a WC_FORMAT value (NULL or "" means text): false if unknown. */
bool wc_parse_format(const char *text, wc_format *format);

void wc_report_begin(wc_report *r);
/* One row; name NULL means standard input. */
void wc_report_row(wc_report *r, const wc_counts *c, const char *name);
/* The end of the report: in text, the total row if with_total; in JSON, the
 * total always. */
void wc_report_end(wc_report *r, const wc_counts *total, bool with_total);

#endif /* WC_REPORT_H */
