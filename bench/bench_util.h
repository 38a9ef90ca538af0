/* Small helpers shared by the benchmarks in bench/ (one header, not a
 * library: each bench_*.c stays a single program). */
#ifndef RILL_BENCH_UTIL_H
#define RILL_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rill.h"

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

/* Monotonic time in nanoseconds. */
static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sum of the len field over items 0..n-1 of a pool of `size` items cycled
 * from its start: what a consumer must have counted after n items. */
static inline uint64_t pool_sum(const rill_item *pool, unsigned size, uint64_t n) {
    uint64_t whole = 0, part = 0;
    for (unsigned i = 0; i < size; i++) {
        whole += pool[i].len;
        if (i < n % size)
            part += pool[i].len;
    }
    return whole * (n / size) + part;
}

/* A consumer stage that counts the items it gets and sums their lengths. */
struct count_sink {
    uint64_t sum, count;
};

static inline int count_sink_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    struct count_sink *k = state;
    k->sum += it->len;
    k->count++;
    return 0;
}

static const rill_stage_ops count_sink_ops = {.send = count_sink_send};

#endif
