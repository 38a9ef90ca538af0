/* The stall watchdog (rill_pipeline_watchdog): when the sampler has seen
 * nothing move for the timeout, name the stage that holds everything up
 * and report it, once per stall. */
#include <stdio.h>

#include "stats_int.h"
#include "pipeline/pipeline_int.h"

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
bool rill__watchdog_fire(rill_pipeline *p, uint64_t moved) {
    rill_stats *s = NULL;
    int rc = rill_pipeline_stats(p, &s);
    if (rc) /* a hand-over under way (not stalled), or no memory: look again next time */
        return false;
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
