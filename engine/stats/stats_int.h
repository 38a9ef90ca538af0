/* Per-queue counters and their consistent snapshot (see rill/stats.h), and
 * what snapshot.c (rill_pipeline_stats), bottleneck.c, sampler.c (depth
 * over time) and watchdog.c (stalls) share. The reports (report*.c) read
 * only a finished rill_stats and have report_int.h.
 *
 * The threads that move items update a queue's counters once per batch. A
 * hand-over (publish, take, done, drop) is bracketed by rill__queue_stats_begin and
 * rill__queue_stats_end: `busy` counts hand-overs in progress, `version` completed
 * ones. A reader that sees busy == 0 and the same version before and after
 * reading saw no hand-over in between: its counters and the ring agree.
 * The counters are added with relaxed stores (core/counter.h); busy and
 * version are read-modify-writes, and the reader checks them again with
 * read-modify-writes (adding 0) after its reads, which orders those reads
 * before its checks and its checks after any hand-over whose counts it
 * read: no fences. It costs three atomic read-modify-writes per batch and
 * nothing per item. */
#ifndef RILL_STATS_INT_H
#define RILL_STATS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/counter.h"
#include "rill/stats.h"

typedef struct rill__queue rill__queue;

typedef struct rill__queue_stats {
    const char *from, *to;
    unsigned capacity, policy;
    unsigned consumer;          /* index of the consuming stage */
    unsigned producer;          /* index of the producing stage, or UINT32_MAX (push) */
    _Atomic uint32_t busy;      /* hand-overs in progress */
    _Atomic uint64_t version;   /* hand-overs completed */
    _Atomic uint64_t in, out, dropped, discarded, batches, high_water;
    _Atomic uint64_t wait_full_ns, wait_empty_ns;
    _Atomic uint64_t samples, depth_sum, bands[RILL_STATS_BANDS]; /* under sampler.lock */
    rill__queue *_Atomic queue;   /* the live queue; NULL once closed */
} rill__queue_stats;

static inline void rill__queue_stats_begin(rill__queue_stats *q) { atomic_fetch_add(&q->busy, 1); }

static inline void rill__queue_stats_end(rill__queue_stats *q) {
    atomic_fetch_add(&q->version, 1);
    atomic_fetch_sub(&q->busy, 1);
}

/* Read q consistently into out (all fields but samples/bands). Never blocks
 * the writers: retries until no hand-over ran during the read, yielding now
 * and then so that a preempted writer can finish its hand-over, for at most
 * RILL__Q_READ_NS. Returns 0, or RILL_EAGAIN when that bound is hit (a
 * writer held a hand-over open throughout): out then holds the last, torn
 * read. */
#define RILL__Q_READ_NS UINT64_C(5000000)
int rill__queue_stats_read(rill__queue_stats *q, rill_queue_stats *out);

/* bottleneck.c: the stage that holds p up in snapshot s (rill_stats.bottleneck),
 * or -1 when no queue runs full enough to name one. */
int rill__bottleneck(const rill_pipeline *p, const rill_stats *s);

/* watchdog.c: called by the sampler thread once nothing has moved for the
 * watchdog's timeout (`moved`: the items moved then). Reports the stall and
 * returns true, or returns false without a report if items moved since. */
bool rill__watchdog_fire(rill_pipeline *p, uint64_t moved);

#endif
