/* Snapshots of a running pipeline (rill_pipeline_stats): every queue read
 * consistently, every stage's counters, the sampled depths, and the
 * bottleneck's name. Readers never block the threads that move items: they
 * retry instead. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "stats_int.h"
#include "pipeline/pipeline_int.h"

/* A hand-over in progress takes a few instructions once its thread runs, but
 * that thread may have been preempted inside one (more threads than cores):
 * yield now and then rather than give up at once, since a torn read breaks
 * in == out + dropped + discarded + depth. But not for ever (160 ms were
 * seen on a loaded machine): a snapshot, a scrape, waits at most
 * RILL__Q_READ_NS per queue, then says so. */
int rill__queue_stats_read(rill__queue_stats *q, rill_queue_stats *out) {
    uint64_t give_up = 0;
    for (unsigned tries = 1;; tries++) {
        if (tries % 64 == 0) {
            uint64_t now = rill__now_ns();
            if (!give_up)
                give_up = now + RILL__Q_READ_NS;
            else if (now >= give_up)
                return RILL_EAGAIN;
            sched_yield();
        }
        bool idle = atomic_load(&q->busy) == 0;
        uint64_t v = atomic_load(&q->version);
        out->in = atomic_load(&q->in);
        out->out = atomic_load(&q->out);
        out->dropped = atomic_load(&q->dropped);
        out->discarded = atomic_load(&q->discarded);
        out->batches = atomic_load(&q->batches);
        out->high_water = atomic_load(&q->high_water);
        rill__queue *e = atomic_load(&q->queue);
        uint64_t delivering = 0;
        out->depth = e ? rill__queue_ring_items(e, &delivering) : 0;
        out->ready = out->depth - delivering;
        /* The producer's partial batch changes with every item, outside the
         * hand-over bracket: no invariant ties it to the counters. */
        out->unpublished =
            e ? atomic_load_explicit(atomic_load_explicit(&e->pending_at, memory_order_relaxed),
                                     memory_order_relaxed)
              : 0;
        /* Read-modify-writes, not loads: see stats_int.h. */
        if (idle && atomic_fetch_add(&q->busy, 0) == 0 && atomic_fetch_add(&q->version, 0) == v)
            return 0;
        rill__cpu_relax();
    }
}

RILL_API int rill_pipeline_stats(rill_pipeline *p, rill_stats **out) {
    if (!p || !out)
        return RILL_EINVAL;
    *out = NULL;
    rill_stats *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    pthread_mutex_lock(&p->statlock);
    int phase = atomic_load_explicit(&p->phase, memory_order_acquire);
    uint64_t now = rill__now_ns();
    s->pipeline = p->name;
    s->running = phase == RILL__STARTED;
    s->elapsed_ns = phase == RILL__NEW ? 0 : (s->running ? now : p->t_end) - p->t_start;
    s->nstages = p->n;
    s->nqueues = p->nq;
    s->stages = calloc(p->n ? p->n : 1, sizeof *s->stages);
    s->queues = calloc(p->nq ? p->nq : 1, sizeof *s->queues);
    rill__sampler *sm = &p->sampler;
    pthread_mutex_lock(&sm->lock);
    s->nsamples = sm->n;
    s->sample_interval_ns = sm->interval_ns;
    s->samples = malloc((sm->n ? sm->n : 1) * sizeof *s->samples);
    if (s->samples && sm->n)
        memcpy(s->samples, sm->buf, sm->n * sizeof *s->samples);
    pthread_mutex_unlock(&sm->lock);
    if (!s->stages || !s->queues || !s->samples) {
        pthread_mutex_unlock(&p->statlock);
        rill_stats_free(s);
        return RILL_ENOMEM;
    }
    for (size_t k = 0; k < p->nq; k++) {
        rill__queue_stats *q = &p->queue_stats[k];
        rill_queue_stats *o = &s->queues[k];
        if (rill__queue_stats_read(q, o)) {
            pthread_mutex_unlock(&p->statlock);
            rill_stats_free(s);
            return RILL_EAGAIN;
        }
        o->from = q->from;
        o->to = q->to;
        o->policy = q->policy;
        o->capacity = q->capacity;
        o->wait_full_ns = atomic_load(&q->wait_full_ns);
        o->wait_empty_ns = atomic_load(&q->wait_empty_ns);
        /* The sampled fields change together, under the sampler's lock. */
        pthread_mutex_lock(&p->sampler.lock);
        o->samples = atomic_load(&q->samples);
        o->depth_sum = atomic_load(&q->depth_sum);
        for (int b = 0; b < RILL_STATS_BANDS; b++)
            o->bands[b] = atomic_load(&q->bands[b]);
        o->ready_sum = atomic_load(&q->ready_sum);
        o->unpublished_sum = atomic_load(&q->unpublished_sum);
        pthread_mutex_unlock(&p->sampler.lock);
    }
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        rill_stage_stats *o = &s->stages[i];
        o->name = st->name;
        o->threaded = rill_stage_threaded(st);
        o->items_in = atomic_load_explicit(&st->n_in, memory_order_relaxed);
        o->items_out = atomic_load_explicit(&st->n_out, memory_order_relaxed);
        for (size_t k = 0; k < p->nq; k++)
            if (p->queue_stats[k].consumer == i) {
                o->input_depth += s->queues[k].depth;
                o->input_capacity += s->queues[k].capacity;
            }
    }
    int rc = rill__busy_fill(p, s, s->running ? now : p->t_end);
    pthread_mutex_unlock(&p->statlock);
    if (rc) {
        rill_stats_free(s);
        return rc;
    }
    rill__bottleneck(p, s);
    *out = s;
    return 0;
}

RILL_API void rill_stats_free(rill_stats *s) {
    if (!s)
        return;
    free(s->stages);
    free(s->queues);
    free(s->samples);
    free(s);
}
