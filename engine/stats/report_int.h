/* Internal to the statistics reports: see report_out.c. */
#ifndef RILL_REPORT_INT_H
#define RILL_REPORT_INT_H

#include <stdint.h>
#include <stdio.h>

#include "core/rill_int.h"

/* A report's output: the first write error is kept (as errno) and returned
 * by rill__rep_end, so one check at the end covers every write. */
typedef struct rill__rep {
    FILE *f;
    int err;
} rill__rep;

__attribute__((format(printf, 2, 3))) void rill__rep_printf(rill__rep *w, const char *fmt, ...);
void rill__rep_put(rill__rep *w, const void *s, size_t n);
void rill__rep_puts(rill__rep *w, const char *s);
/* Flush and return 0 or the first write error as a negative errno. */
int rill__rep_end(rill__rep *w);

/* Length of the valid UTF-8 sequence at s (n > 0) and its code point in
 * *cp, or 0 if s[0] starts none. */
size_t rill__utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

enum { RILL__ESC_JSON, RILL__ESC_XML, RILL__ESC_PROM };
/* Write str (NULL: "") escaped for a JSON string, XML text/attribute or a
 * Prometheus label value; invalid UTF-8 becomes U+FFFD. */
void rill__rep_escaped(rill__rep *w, const char *str, int how);

const char *rill__policy_name(unsigned policy);
/* Mean sampled depth over the capacity in [0, 1], or -1 without samples. */
double rill__mean_fill(const rill_queue_stats *q);

#endif
