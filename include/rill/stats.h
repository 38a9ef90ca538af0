/* rill — measuring a pipeline: per-queue and per-stage statistics, the
 * depth sampler, and the stall watchdog.
 *
 * A queue is the bounded hand-off in front of a stage on another thread: one
 * per producer edge (see docs/threads.md). Counters are kept by the threads
 * that move items, per batch, with no lock; rill_pipeline_stats() reads a
 * consistent snapshot of each queue at any moment — from any thread while
 * the pipeline runs, and after close (final values) until rill_pipeline_free. For every
 * queue of every snapshot:
 *
 *     in == out + dropped + discarded + depth
 *
 * where depth is counted in the ring itself (the batches waiting in it and
 * the one being delivered), not derived from the other counters.
 * docs/stats.md describes every field and the JSON and SVG reports.
 */
#ifndef RILL_STATS_H
#define RILL_STATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "rill/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Occupancy histogram: band i counts samples with depth in
 * [i*capacity/10, (i+1)*capacity/10); the last band also holds full. */
#define RILL_STATS_BANDS 10

typedef struct rill_queue_stats {
    const char *from;       /* producing stage ("(push)" for rill_pipeline_push) */
    const char *to;         /* consuming stage */
    unsigned policy;        /* RILL_OVERFLOW_* */
    uint64_t capacity;      /* items */
    uint64_t depth;         /* items in the queue now (counted in the ring):
                               ready + the batch being delivered */
    uint64_t ready;         /* of depth, items the consumer can take now
                               (published, not yet taken) */
    uint64_t unpublished;   /* items in the producer's partial batch, not yet
                               handed over (not in depth, nor in `in`) */
    uint64_t high_water;    /* largest depth seen (at hand-over time) */
    uint64_t in;            /* items handed to the queue */
    uint64_t out;           /* items delivered to the consumer */
    uint64_t dropped;       /* items dropped by the overflow policy */
    uint64_t discarded;     /* items thrown away when the pipeline stopped */
    uint64_t batches;       /* batches handed over */
    uint64_t wait_full_ns;  /* time the producer waited because it was full
                               (after a rill_try_emit refusal: until its
                               next rill_try_emit) */
    uint64_t wait_empty_ns; /* time the consumer waited with all inputs empty */
    uint64_t samples;       /* depth samples taken (sampler) */
    uint64_t depth_sum;     /* sum of the sampled depths: the mean depth is
                               depth_sum / samples, exactly */
    uint64_t bands[RILL_STATS_BANDS]; /* samples per fill band */
    uint64_t ready_sum;     /* sum of the sampled `ready` */
    uint64_t unpublished_sum; /* sum of the sampled `unpublished` */
} rill_queue_stats;

typedef struct rill_stage_stats {
    const char *name;
    bool threaded;          /* runs a thread of its own */
    uint64_t items_in;      /* items received (send calls, send_items items) */
    uint64_t items_out;     /* items emitted (rill_emit / rill_emit_to calls,
                               rill_emit_items items) */
    uint64_t busy_ns;       /* time its own code ran: its share of its
                               thread's busy time (docs/stats.md); 0 when
                               its thread's is not measured */
    uint64_t input_depth;   /* items queued in front of it now (all inputs) */
    uint64_t input_capacity;/* sum of its input queues' capacities */
    int thread;             /* the stage heading the thread it runs on
                               (index into stages; itself when threaded), or
                               -1: the caller's thread */
    bool measured;          /* its thread's time is known: a worker thread,
                               or the caller's inside rill_pipeline_run.
                               With the sampler on (rill_pipeline_sampler),
                               busy times also leave out the CPU spent in
                               waits and time runnable without a CPU */
    uint64_t thread_busy_ns;  /* its thread: working, on a CPU (the lesser
                                 of its CPU time and its time not waiting) */
    uint64_t thread_cpu_ns;   /* its thread: CPU time */
    uint64_t thread_wait_ns;  /* its thread: waiting for input or for room */
    uint64_t thread_runq_ns;  /* its thread: runnable, waiting for a CPU (read
                                 only with the sampler on; 0: not known). It
                                 overlaps thread_wait_ns */
    uint64_t thread_life_ns;  /* its thread: from start to its end (or now) */
} rill_stage_stats;

typedef struct rill_depth_sample {
    uint64_t t_ns;          /* since the pipeline started */
    uint32_t queue;         /* index into rill_stats.queues */
    uint32_t depth;
} rill_depth_sample;

typedef struct rill_stats {
    const char *pipeline;   /* name */
    uint64_t elapsed_ns;    /* since start (until close once closed) */
    bool running;           /* started and not yet closed */
    size_t nstages;
    rill_stage_stats *stages;   /* in the order added */
    size_t nqueues;
    rill_queue_stats *queues;
    size_t nsamples;            /* depth over time, oldest first */
    rill_depth_sample *samples;
    uint64_t sample_interval_ns;/* between samples of one queue (it doubles
                                   when the bounded buffer fills) */
    int bottleneck;         /* index into stages, or -1: the stage that holds
                               the pipeline up (docs/stats.md); for a
                               replicated stage, replica 0 (the group) */
    char verdict[256];      /* the bottleneck and its evidence in one line, or
                               "none: " and why; "" when not analysed */
} rill_stats;

/* Take a snapshot. *out is the caller's, freed with rill_stats_free(); its
 * strings stay valid until the pipeline is freed. Thread-safe: callable
 * from any thread while the pipeline runs (it never blocks the pipeline),
 * and after close. A queue is read again while a thread is handing a batch
 * over to it, for at most about 5 ms per queue: if a thread held its
 * hand-over open all that time (it was preempted in it, with more threads
 * than cores), the call gives up with RILL_EAGAIN and *out NULL rather
 * than return figures that do not add up or wait without bound; call again.
 * After close it never does. Returns 0, RILL_EINVAL, RILL_ENOMEM or
 * RILL_EAGAIN. */
int rill_pipeline_stats(rill_pipeline *p, rill_stats **out);

/* Free a snapshot of rill_pipeline_stats. NULL is a no-op. */
void rill_stats_free(rill_stats *s);

/* Record every queue's depth every interval_us (0: 2000) into a buffer of at
 * most max_samples samples (0: 65536); when it fills, every other sample is
 * dropped and the interval doubles, so the whole run stays covered. Runs a
 * sampler thread from start to close. It also turns on the finer busy
 * times (each thread's CPU spent in waits, its run-queue time; a few
 * system calls per wait on the worker threads: docs/stats.md). Call before
 * the pipeline starts: RILL_ESTATE after. */
int rill_pipeline_sampler(rill_pipeline *p, unsigned interval_us, size_t max_samples);

/* What the watchdog saw. */
typedef enum rill_stall {
    RILL_STALL_STARVED = 1, /* every queue empty: the source is slow or idle */
    RILL_STALL_STUCK        /* items wait in a queue whose consumer does not run */
} rill_stall;

/* Called from the sampler thread when no item has moved anywhere for the
 * watchdog's timeout (once per stall). The watchdog looks every quarter of
 * its timeout (at least every 1 ms, at most every 250 ms), however long the
 * sample interval has grown. stage names the slow source (starved)
 * or the consumer that does not run (stuck); s is a snapshot, freed after the
 * call. NULL: a report on stderr. */
typedef void (*rill_stall_fn)(rill_pipeline *p, rill_stall kind, const char *stage,
                              const rill_stats *s, void *arg);

/* Opt in to the stall watchdog (it uses the sampler thread, started if
 * needed). Call before start. */
int rill_pipeline_watchdog(rill_pipeline *p, unsigned timeout_ms, rill_stall_fn fn, void *arg);

/* Reports. Each returns 0 or -errno of the write. */
int rill_stats_print(const rill_stats *s, FILE *to);      /* human table */
int rill_stats_write_json(const rill_stats *s, FILE *to);  /* docs/stats.md */
int rill_stats_write_svg(const rill_stats *s, FILE *to);   /* depth over time */

/* Write s in Prometheus' text exposition format, version 0.0.4 (serve it
 * with Content-Type "text/plain; version=0.0.4; charset=utf-8"): a HELP
 * and a TYPE line per metric family, every stage and every queue as a
 * sample labelled pipeline, stage or from/to (values escaped, invalid
 * UTF-8 replaced by U+FFFD). Names and units are listed in docs/stats.md;
 * counters (`_total`) never decrease from one snapshot of a pipeline to a
 * later one. Only reads s. Returns 0, RILL_EINVAL for NULL, or -errno of
 * the write (the stream is flushed, so a full disk shows here). */
int rill_stats_write_prometheus(const rill_stats *s, FILE *to);

/* Take a snapshot of p (rill_pipeline_stats) and write it as
 * rill_stats_write_prometheus does: what a /metrics endpoint answers.
 * Callable from any thread while p runs, and after close until destroy;
 * it never blocks the pipeline. To serve it from a buffer, write into
 * open_memstream(3). Returns 0, RILL_EINVAL, RILL_ENOMEM, RILL_EAGAIN
 * (a queue could not be read consistently in time: try again; see
 * rill_pipeline_stats), or -errno of the write. */
int rill_pipeline_metrics_write(rill_pipeline *p, FILE *to);

#ifdef __cplusplus
}
#endif
#endif
