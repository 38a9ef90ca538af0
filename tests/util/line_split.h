/* The reference line splitter the line-source tests (tests/test_lines.c)
 * and the fuzz target (tests/fuzz/fuzz_lines.c) compare the library with:
 * written byte by byte without any library code, so a bug in the line
 * source cannot hide by being repeated here. */
#ifndef RILL_TESTS_LINE_SPLIT_H
#define RILL_TESTS_LINE_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill.h"

/* One expected line: its bytes are data[off, off + len). */
typedef struct span {
    size_t off, len;
} span;

/* The expected lines of data[0..n) under flags (RILL_LINES_*) and max_line,
 * into out (room for n + 1). Returns the number of lines and counts the
 * truncated ones in *ntrunc; *toolong is set (and splitting stops) at the
 * first over-long line unless TRUNCATE. */
static inline size_t ref_split(const void *data, size_t n, unsigned flags, size_t max_line,
                               span *out, uint64_t *ntrunc, bool *toolong) {
    const unsigned char *d = data;
    size_t k = 0, i = 0;
    *ntrunc = 0;
    *toolong = false;
    while (i < n) {
        size_t j = i;
        while (j < n && d[j] != '\n')
            j++;
        size_t len = j - i;
        if (j < n && (flags & RILL_LINES_STRIP_CR) && len && d[j - 1] == '\r')
            len--;
        if (len > max_line) {
            if (!(flags & RILL_LINES_TRUNCATE)) {
                *toolong = true;
                return k;
            }
            len = max_line;
            (*ntrunc)++;
        }
        out[k].off = i;
        out[k++].len = len;
        i = j + 1;
    }
    return k;
}

#endif
