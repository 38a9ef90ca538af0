/* The library's one clock: monotonic nanoseconds, for deadlines, latency
 * bounds, waiting times and statistics (rill_sched_now_ns publishes it).
 * Inline, because the item's path reads it once per batch. */
#ifndef RILL_CLOCK_H
#define RILL_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t rill__now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

#endif
