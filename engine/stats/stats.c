/* Snapshots of a running pipeline, the depth sampler and the stall watchdog.
 * Readers never block the threads that move items: they retry instead. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/pipeline_int.h"

/* A hand-over in progress takes a few instructions once its thread runs, but
 * that thread may have been preempted inside one (more threads than cores):
 * yield now and then rather than give up, since a read given up on is torn
 * and breaks in == out + dropped + discarded + depth. */
void rill__queue_stats_read(rill__queue_stats *q, rill_queue_stats *out) {
    for (unsigned tries = 1;; tries++) {
        if (tries % 64 == 0)
            sched_yield();
        if (atomic_load(&q->busy)) {
            rill__cpu_relax();
            continue;
        }
        uint64_t v = atomic_load(&q->version);
        out->in = atomic_load(&q->in);
        out->out = atomic_load(&q->out);
        out->dropped = atomic_load(&q->dropped);
        out->discarded = atomic_load(&q->discarded);
        out->batches = atomic_load(&q->batches);
        out->high_water = atomic_load(&q->high_water);
        rill__queue *e = atomic_load(&q->queue);
        out->depth = e ? rill__queue_ring_items(e) : 0;
        /* Read-modify-writes, not loads: see stats_int.h. */
        if (atomic_fetch_add(&q->busy, 0) == 0 && atomic_fetch_add(&q->version, 0) == v)
            return;
    }
}

static double rill__mean_fill(const rill_queue_stats *q) {
    if (q->capacity == 0)
        return 0;
    if (q->samples == 0)
        return (double)q->high_water / (double)q->capacity;
    return (double)q->depth_sum / (double)q->samples / (double)q->capacity;
}

/* The stage whose input queues run fullest while its output queues run
 * emptiest: everything upstream waits for it, nothing downstream does. */
static int rill__bottleneck(const rill_pipeline *p, const rill_stats *s) {
    int best = -1;
    double best_score = 0.25; /* below this no queue is worth naming */
    for (unsigned i = 0; i < p->n; i++) {
        double in = 0, out = 0;
        unsigned nin = 0, nout = 0;
        for (size_t k = 0; k < s->nqueues; k++) {
            const rill__queue_stats *q = &p->queue_stats[k];
            double f = rill__mean_fill(&s->queues[k]);
            if (q->consumer == i)
                in = f > in ? f : in, nin++;
            if (q->producer == i)
                out = f > out ? f : out, nout++;
        }
        double score = in - out;
        if (nin && score > best_score) {
            best_score = score;
            best = (int)i;
        }
    }
    return best;
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
        rill__queue_stats_read(q, o);
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
        pthread_mutex_unlock(&p->sampler.lock);
    }
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        rill_stage_stats *o = &s->stages[i];
        o->name = st->name;
        o->threaded = rill_stage_threaded(st);
        o->items_in = atomic_load_explicit(&st->n_in, memory_order_relaxed);
        o->items_out = atomic_load_explicit(&st->n_out, memory_order_relaxed);
        if (o->threaded && phase != RILL__NEW) {
            uint64_t end = s->running ? now : p->t_end;
            uint64_t waited = atomic_load(&st->waited_ns);
            uint64_t span = end - p->t_start;
            o->busy_ns = span > waited ? span - waited : 0;
        }
        for (size_t k = 0; k < p->nq; k++)
            if (p->queue_stats[k].consumer == i) {
                o->input_depth += s->queues[k].depth;
                o->input_capacity += s->queues[k].capacity;
            }
    }
    s->bottleneck = rill__bottleneck(p, s);
    pthread_mutex_unlock(&p->statlock);
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

/* ---- sampler and watchdog ------------------------------------------------ */

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

RILL_API int rill_pipeline_watchdog(rill_pipeline *p, unsigned timeout_ms, rill_stall_fn fn,
                                    void *arg) {
    if (!p || timeout_ms == 0)
        return RILL_EINVAL;
    if (p->phase != RILL__NEW)
        return RILL_ESTATE;
    if (!p->sampler.enabled) {
        int rc = rill_pipeline_sampler(p, 0, 0);
        if (rc)
            return rc;
    }
    p->sampler.stall_ns = (uint64_t)timeout_ms * 1000000u;
    p->sampler.stall_fn = fn;
    p->sampler.stall_arg = arg;
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

static void rill__stall_report(rill_pipeline *p, rill_stall kind, const char *stage,
                               const rill_stats *s, void *arg) {
    (void)p;
    (void)arg;
    fprintf(stderr, "rill: pipeline '%s' stalled: %s '%s'\n", s->pipeline,
            kind == RILL_STALL_STARVED ? "every queue is empty; waiting for the source"
                                       : "items wait for the stage",
            stage ? stage : "?");
    for (size_t k = 0; k < s->nqueues; k++)
        fprintf(stderr, "rill:   queue %s -> %s: %llu of %llu items\n", s->queues[k].from,
                s->queues[k].to, (unsigned long long)s->queues[k].depth,
                (unsigned long long)s->queues[k].capacity);
}

static unsigned rill__domain_of(const rill_pipeline *p, unsigned stage) {
    return stage < p->n ? p->stages[stage]->domain : 0; /* UINT32_MAX: the pushing caller */
}

static bool rill__fuller(const rill_queue_stats *a, const rill_queue_stats *b) {
    return a->depth * b->capacity > b->depth * a->capacity;
}

/* The queue in front of the stage that does not run: the fullest one whose
 * consumer's thread is not itself waiting for room in a full queue (behind a
 * stuck stage every queue upstream fills too, and the first of them is not
 * the culprit). SIZE_MAX if every queue is empty. */
static size_t rill__stuck_queue(const rill_pipeline *p, const rill_stats *s) {
    size_t best = SIZE_MAX, fullest = SIZE_MAX;
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        if (!q->depth)
            continue;
        if (fullest == SIZE_MAX || rill__fuller(q, &s->queues[fullest]))
            fullest = k;
        unsigned d = rill__domain_of(p, p->queue_stats[k].consumer);
        bool waits = false;
        for (size_t j = 0; j < s->nqueues && !waits; j++)
            waits = s->queues[j].policy == RILL_OVERFLOW_BLOCK &&
                    s->queues[j].depth >= s->queues[j].capacity &&
                    rill__domain_of(p, p->queue_stats[j].producer) == d;
        if (!waits && (best == SIZE_MAX || rill__fuller(q, &s->queues[best])))
            best = k;
    }
    return best != SIZE_MAX ? best : fullest;
}

/* Report a stall seen with `moved` items moved in all. False, with no call,
 * if items moved since: a thread that had waited for a CPU longer than the
 * timeout ran again, the stall is over, and the snapshot would not show it
 * (the same stall would then be reported again once it really sets in). */
static bool rill__watchdog_fire(rill_pipeline *p, uint64_t moved) {
    rill_stats *s = NULL;
    if (rill_pipeline_stats(p, &s))
        return true;
    uint64_t now_moved = 0;
    for (size_t k = 0; k < s->nqueues; k++)
        now_moved += s->queues[k].in + s->queues[k].out + s->queues[k].dropped;
    for (size_t i = 0; i < s->nstages; i++)
        now_moved += s->stages[i].items_in;
    if (now_moved != moved) {
        rill_stats_free(s);
        return false;
    }
    size_t stuck = rill__stuck_queue(p, s);
    rill_stall kind = stuck == SIZE_MAX ? RILL_STALL_STARVED : RILL_STALL_STUCK;
    const char *stage = NULL;
    if (kind == RILL_STALL_STUCK) {
        stage = s->queues[stuck].to;
    } else {
        /* A source still open, not one that is done (threaded sources close
         * when exhausted; those run by rill_pipeline_run only at its end). */
        for (unsigned i = 0; i < p->n && !stage; i++)
            if (p->stages[i]->nin == 0 && !atomic_load_explicit(&p->stages[i]->closed, memory_order_relaxed))
                stage = p->stages[i]->name;
        for (unsigned i = 0; i < p->n && !stage; i++)
            if (p->stages[i]->nin == 0)
                stage = p->stages[i]->name;
    }
    rill_stall_fn fn = p->sampler.stall_fn ? p->sampler.stall_fn : rill__stall_report;
    fn(p, kind, stage, s, p->sampler.stall_arg);
    rill_stats_free(s);
    return true;
}

static void *rill__sampler_main(void *arg) {
    rill_pipeline *p = arg;
    rill__sampler *sm = &p->sampler;
    size_t nq = p->nq;
    uint64_t moved_last = UINT64_MAX, still_since = rill__now_ns(), next = still_since;
    bool fired = false;
    while (!atomic_load(&sm->quit)) {
        uint64_t now = rill__now_ns();
        if (now < next) {
            uint32_t seen = rill__park_epoch(&sm->park);
            if (atomic_load(&sm->quit))
                break;
            rill__park_wait(&sm->park, seen, next - now);
            continue;
        }
        next = now + sm->interval_ns;
        uint64_t moved = 0;
        pthread_mutex_lock(&sm->lock);
        /* Halve only with two rounds or more held: below that it frees no
         * room, and would double the interval (which also paces the
         * watchdog) every round. Only whole rounds are recorded. */
        if (nq && sm->n + nq > sm->max && sm->n >= 2 * nq)
            rill__sampler_halve(sm, nq);
        bool record = sm->n + nq <= sm->max;
        for (size_t k = 0; k < nq; k++) {
            rill__queue_stats *q = &p->queue_stats[k];
            rill_queue_stats r;
            rill__queue_stats_read(q, &r);
            moved += r.in + r.out + r.dropped;
            unsigned band = q->capacity ? (unsigned)(r.depth * RILL_STATS_BANDS / q->capacity) : 0;
            band = band >= RILL_STATS_BANDS ? RILL_STATS_BANDS - 1 : band;
            rill__counter_add(&q->bands[band], 1);
            rill__counter_add(&q->samples, 1);
            rill__counter_add(&q->depth_sum, r.depth);
            if (record)
                sm->buf[sm->n++] = (rill_depth_sample){now - p->t_start, (uint32_t)k,
                                                       r.depth > UINT32_MAX ? UINT32_MAX
                                                                            : (uint32_t)r.depth};
        }
        pthread_mutex_unlock(&sm->lock);
        for (unsigned i = 0; i < p->n; i++)
            moved += atomic_load_explicit(&p->stages[i]->n_in, memory_order_relaxed);
        if (moved != moved_last) {
            moved_last = moved;
            still_since = now;
            fired = false;
        } else if (sm->stall_ns && !fired && now - still_since >= sm->stall_ns) {
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
