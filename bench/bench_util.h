/* Small helpers shared by the benchmarks in bench/ (one header, not a
 * library: each bench_*.c stays a single program). */
#ifndef RILL_BENCH_UTIL_H
#define RILL_BENCH_UTIL_H

#include <stdio.h>

/* The 1-minute load average, printed next to figures so a reader can tell
 * a busy machine's numbers from a quiet one's; -1 if unknown. */
static inline double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* The smallest power of two >= n (at least 2): ck_ring sizes. */
static inline unsigned pow2_at_least(unsigned n) {
    unsigned p = 2;
    while (p < n)
        p <<= 1;
    return p;
}

#endif
