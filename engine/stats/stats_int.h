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
#include <time.h>

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
    _Atomic uint64_t ready_sum, unpublished_sum;                   /* likewise */
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

/* A thread's clocks, for busy time that leaves out time spent ready but
 * not running (a loaded machine): its CPU clock, and the time it waited
 * for a CPU on a run queue (/proc/.../schedstat; `rq_ok` false where the
 * kernel has none). Reading them for another thread costs system calls
 * (about 1.8 us and 19 us here): snapshots do it, never the item's path.
 * begin and end run on the thread itself; read on any thread. Each
 * replica heading a thread has its own (bottleneck.c folds them). */
typedef struct rill__tclock {
    clockid_t clk;
    int tid;
    bool rq_ok;                 /* run-queue time is known */
    bool waits;                 /* wait_cpu_ns is counted */
    uint64_t cpu0, rq0, t0;     /* at begin (t0: monotonic) */
    _Atomic uint64_t wait_cpu_ns; /* CPU spent yielding and parking in waits */
    _Atomic int state;          /* 0: never begun, 1: running, 2: ended */
    _Atomic uint64_t cpu_ns;    /* once ended: CPU time from begin to end */
    _Atomic uint64_t rq_ns;     /* once ended: run-queue time from begin to end */
    _Atomic uint64_t end_ns;    /* once ended: monotonic time of the end */
} rill__tclock;
typedef struct rill__tclock_now {
    uint64_t cpu_ns, rq_ns, wait_cpu_ns; /* since begin */
    uint64_t begin_ns, end_ns;           /* monotonic; end_ns 0 while it runs */
    bool rq_ok, waits;
} rill__tclock_now;
/* waits: statistics were asked for (rill_pipeline_sampler): count the CPU
 * its waits spend (rill__wait_cpu_*, two CPU-clock reads per wait past
 * spinning, which tiny queues do on every item) and read its run-queue time
 * (two schedstat reads, ~40 us a thread). Without, its busy time is its CPU
 * time, capped by its time not waiting. */
void rill__tclock_begin(rill__tclock *c, bool waits);
void rill__tclock_end(rill__tclock *c);
/* False if the thread never began. */
bool rill__tclock_read(rill__tclock *c, rill__tclock_now *out);
/* A wait on this thread goes past spinning (park.c's backoff), and the wait
 * ends (queue.c, flow.c): the CPU time between, spent in sched_yield and
 * futex calls, is its clock's wait_cpu_ns, not busy time. Two CPU-clock
 * reads per such wait, only on threads with a clock; nothing otherwise. */
void rill__wait_cpu_mark(void);
void rill__wait_cpu_done(void);

/* busy.c: every stage's thread figures and busy time in s, whose elapsed
 * time, stages and queues are read; end: the snapshot's clock. 0 or
 * RILL_ENOMEM. */
int rill__busy_fill(rill_pipeline *p, rill_stats *s, uint64_t end);

/* bottleneck.c: the stage that holds p up in snapshot s, or none, with the
 * evidence: sets s->bottleneck and s->verdict (docs/stats.md). */
void rill__bottleneck(const rill_pipeline *p, rill_stats *s);

/* watchdog.c: called by the sampler thread once nothing has moved for the
 * watchdog's timeout (`moved`: the items moved then). Reports the stall and
 * returns true, or returns false without a report if items moved since. */
bool rill__watchdog_fire(rill_pipeline *p, uint64_t moved);

#endif
