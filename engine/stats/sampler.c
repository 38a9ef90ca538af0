/* The depth sampler: a thread that reads every queue's depth at an
 * interval, into per-queue bands and a bounded series of samples. The same
 * thread runs the stall watchdog (watchdog.c) at a pace of its own, tied to
 * the watchdog's timeout and not to the sample interval, which doubles as
 * the buffer fills: it calls the watchdog when nothing moved for the
 * timeout. */
#include <stdlib.h>
#include <string.h>

#include "stats_int.h"
#include "pipeline/pipeline_int.h"

RILL_API int rill_pipeline_sampler(rill_pipeline *p, unsigned interval_us, size_t max_samples) {
    if (!p || (max_samples && max_samples < 16))
        return RILL_EINVAL;
    if (p->phase != RILL__NEW)
        return RILL_ESTATE;
    rill__sampler *sm = &p->sampler;
    sm->enabled = true;
    sm->interval_ns = (uint64_t)(interval_us ? interval_us : 2000) * 1000u;
    sm->max = max_samples ? max_samples : 65536;
    return 0;
}

/* Keep the whole run in a bounded buffer: when full, keep every other round
 * of samples and sample half as often. */
static void rill__sampler_halve(rill__sampler *sm, size_t nq) {
    size_t rounds = sm->n / nq, kept = 0;
    for (size_t r = 0; r < rounds; r += 2, kept++)
        memmove(&sm->buf[kept * nq], &sm->buf[r * nq], nq * sizeof *sm->buf);
    sm->n = kept * nq;
    sm->interval_ns *= 2;
}

/* One round of samples: every queue's depth into its bands and, while there
 * is room, into the series. */
static void rill__sampler_round(rill_pipeline *p, uint64_t now) {
    rill__sampler *sm = &p->sampler;
    size_t nq = p->nq;
    pthread_mutex_lock(&sm->lock);
    /* Halve only with two rounds or more held: below that it frees no
     * room, and would double the interval every round. Only whole rounds
     * are recorded. */
    if (nq && sm->n + nq > sm->max && sm->n >= 2 * nq)
        rill__sampler_halve(sm, nq);
    bool record = sm->n + nq <= sm->max;
    for (size_t k = 0; k < nq; k++) {
        rill__queue_stats *q = &p->queue_stats[k];
        rill_queue_stats r;
        /* A read given up on still has the ring's depth: good enough for a
         * sample, which no invariant ties to the counters. */
        (void)rill__queue_stats_read(q, &r);
        unsigned band = q->capacity ? (unsigned)(r.depth * RILL_STATS_BANDS / q->capacity) : 0;
        band = band >= RILL_STATS_BANDS ? RILL_STATS_BANDS - 1 : band;
        rill__counter_add(&q->bands[band], 1);
        rill__counter_add(&q->samples, 1);
        rill__counter_add(&q->depth_sum, r.depth);
        rill__counter_add(&q->ready_sum, r.ready);
        rill__counter_add(&q->unpublished_sum, r.unpublished);
        if (record)
            sm->buf[sm->n++] = (rill_depth_sample){now - p->t_start, (uint32_t)k,
                                                   r.depth > UINT32_MAX ? UINT32_MAX
                                                                        : (uint32_t)r.depth};
    }
    pthread_mutex_unlock(&sm->lock);
}

/* Items moved so far, anywhere; UINT64_MAX if a hand-over is under way
 * (something moves: never a stall). */
static uint64_t rill__sampler_moved(rill_pipeline *p) {
    uint64_t moved = 0;
    for (size_t k = 0; k < p->nq; k++) {
        rill_queue_stats r;
        if (rill__queue_stats_read(&p->queue_stats[k], &r))
            return UINT64_MAX;
        moved += r.in + r.out + r.dropped;
    }
    for (unsigned i = 0; i < p->n; i++)
        moved += atomic_load_explicit(&p->stages[i]->n_in, memory_order_relaxed);
    return moved;
}

/* The watchdog looks this often: a quarter of its timeout (within 1 ms and
 * 250 ms), whatever the sample interval, which grows as the buffer fills. */
static uint64_t rill__watch_pace(uint64_t stall_ns) {
    uint64_t pace = stall_ns / 4;
    return pace < 1000000u ? 1000000u : pace > 250000000u ? 250000000u : pace;
}

static void *rill__sampler_main(void *arg) {
    rill_pipeline *p = arg;
    rill__sampler *sm = &p->sampler;
    uint64_t moved_last = UINT64_MAX, still_since = rill__now_ns();
    uint64_t next_sample = still_since, next_watch = sm->stall_ns ? still_since : UINT64_MAX;
    uint64_t pace = rill__watch_pace(sm->stall_ns);
    bool fired = false;
    while (!atomic_load(&sm->quit)) {
        uint64_t now = rill__now_ns();
        uint64_t next = next_sample < next_watch ? next_sample : next_watch;
        if (now < next) {
            uint32_t seen = rill__park_epoch(&sm->park);
            if (atomic_load(&sm->quit))
                break;
            rill__park_wait(&sm->park, seen, next - now);
            continue;
        }
        if (now >= next_sample) {
            rill__sampler_round(p, now);
            next_sample = now + sm->interval_ns; /* this thread's write: no lock */
        }
        if (now < next_watch)
            continue;
        next_watch = now + pace;
        uint64_t moved = rill__sampler_moved(p);
        if (moved != moved_last || moved == UINT64_MAX) {
            moved_last = moved;
            still_since = now;
            fired = false;
        } else if (!fired && now - still_since >= sm->stall_ns) {
            fired = rill__watchdog_fire(p, moved);
        }
    }
    return NULL;
}

int rill__sampler_start(rill_pipeline *p) {
    rill__sampler *sm = &p->sampler;
    if (!sm->enabled)
        return 0;
    sm->buf = malloc(sm->max * sizeof *sm->buf);
    if (!sm->buf)
        return RILL_ENOMEM;
    rill__park_init(&sm->park);
    atomic_init(&sm->quit, 0);
    int err = pthread_create(&sm->tid, NULL, rill__sampler_main, p);
    if (err)
        return -err;
    sm->started = true;
    return 0;
}

void rill__sampler_stop(rill_pipeline *p) {
    rill__sampler *sm = &p->sampler;
    if (!sm->started)
        return;
    atomic_store(&sm->quit, 1);
    rill__park_wake(&sm->park);
    pthread_join(sm->tid, NULL);
    sm->started = false;
}
