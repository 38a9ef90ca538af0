/* Planning a pipeline's threads, once, at start: which stage runs where
 * (domains), in what order, and the queues between threads.
 *
 * Every stage belongs to a domain: the caller's thread (0) or a worker
 * thread. A threaded stage heads a domain of its own; an inline stage runs
 * in the domain of its producers. An inline stage fed from two domains would
 * be called from two threads at once (the seed's threaded reducer), so it is
 * given a thread of its own instead ("promoted"). A connection between two
 * domains gets a bounded queue; end of stream travels through it as the last
 * batch. Nothing here starts a thread (worker.c does). */
#include <stdlib.h>

#include "fault.h"
#include "pipeline_int.h"
#include "share.h"

enum { RILL__UNSET = -1, RILL__MIXED = -2 };

static void rill__flush_outputs_of(void *w) { rill__flush_outputs(w); }

static rill__worker *rill__worker_of(rill_pipeline *p, unsigned domain) {
    return domain ? &p->workers[domain - 1] : &p->main;
}

static int rill__append(rill__queue ***arr, unsigned *n, rill__queue *e) {
    rill__queue **a = realloc(*arr, (*n + 1) * sizeof *a);
    if (!a)
        return RILL_ENOMEM;
    a[(*n)++] = e;
    *arr = a;
    return 0;
}

/* Stages in an order where every stage comes after all its producers. */
static int rill__topo_order(rill_pipeline *p, rill_stage **order) {
    unsigned *indeg = calloc(p->n ? p->n : 1, sizeof *indeg), head = 0, tail = 0;
    if (!indeg)
        return RILL_ENOMEM;
    for (unsigned i = 0; i < p->n; i++)
        p->stages[i]->mark = i; /* index, for indeg[] */
    for (unsigned i = 0; i < p->n; i++)
        if ((indeg[i] = p->stages[i]->nin) == 0)
            order[tail++] = p->stages[i];
    while (head < tail) {
        rill_stage *st = order[head++];
        for (unsigned k = 0; k < st->nout; k++)
            if (--indeg[st->out[k].to->mark] == 0)
                order[tail++] = st->out[k].to;
    }
    free(indeg);
    p->search = 0; /* marks were reused: restart cycle-check numbering */
    return 0;
}

static unsigned rill__index_of(const rill_pipeline *p, const rill_stage *st) {
    for (unsigned i = 0; i < p->n; i++)
        if (p->stages[i] == st)
            return i;
    return UINT32_MAX;
}

/* The queue from `from` (NULL: the caller's pushes) to `to`, produced by the
 * thread of `producer`. Its counters live in p->queue_stats until destroy. */
static rill__queue *rill__plan_queue(rill_pipeline *p, rill_stage *from, rill_stage *to,
                                     rill__worker *producer) {
    rill__worker *w = rill__worker_of(p, to->domain);
    rill__queue *e = rill__queue_alloc();
    unsigned cap = to->opts.capacity ? to->opts.capacity : RILL__DEFAULT_CAPACITY;
    unsigned batch = to->opts.batch ? to->opts.batch : RILL__DEFAULT_BATCH;
    unsigned lat = to->opts.max_latency_us ? to->opts.max_latency_us : RILL__DEFAULT_LATENCY_US;
    if (!e)
        return NULL;
    rill__queue_stats *q = &p->queue_stats[p->nq];
    if (rill__queue_init(e, cap, batch, (uint64_t)lat * 1000u, to->opts.overflow, q, &w->data,
                        &p->stop)) {
        free(e);
        return NULL;
    }
    p->nq++;
    q->from = from ? from->name : "(push)";
    q->to = to->name;
    q->capacity = cap;
    q->policy = to->opts.overflow;
    q->consumer = rill__index_of(p, to);
    q->producer = from ? rill__index_of(p, from) : UINT32_MAX;
    atomic_store(&q->queue, e);
    e->from = from;
    e->to = to;
    e->producer_waited = producer->head ? &producer->head->waited_ns : &p->main_waited;
    e->before_wait = rill__flush_outputs_of;
    e->before_wait_arg = producer;
    e->room_efd = from ? &from->room_efd : NULL;
    e->arm_delay_ns = rill__fault_room_arm_ns();
    e->handover_delay_ns = rill__fault_handover_ns();
    if (rill__append(&p->queues, &p->nqueues, e)) {
        rill__queue_fini(e);
        free(e);
        return NULL;
    }
    if (rill__append(&w->in, &w->nin, e) || rill__append(&producer->out, &producer->nout, e))
        return NULL; /* e is freed with p->queues */
    return e;
}

int rill__plan(rill_pipeline *p) {
    rill_stage **order = calloc(p->n ? p->n : 1, sizeof *order);
    if (!order)
        return RILL_ENOMEM;
    int rc = rill__topo_order(p, order);
    unsigned nw = 0;
    for (unsigned i = 0; i < p->n; i++)
        p->stages[i]->domain = (unsigned)RILL__UNSET;
    for (unsigned i = 0; i < p->n && !rc; i++) {
        rill_stage *st = order[i];
        int d = (int)st->domain;
        if (rill__own_thread(st)) {
            st->domain = ++nw;
        } else if (st->nin == 0) {
            st->domain = 0;
        } else if (d == RILL__MIXED) {
            st->promoted = true;
            st->domain = ++nw;
        }
        for (unsigned k = 0; k < st->nout; k++) {
            rill_stage *to = st->out[k].to;
            if ((int)to->domain == RILL__UNSET)
                to->domain = st->domain;
            else if (to->domain != st->domain)
                to->domain = (unsigned)RILL__MIXED;
        }
    }
    if (!rc && nw) {
        p->workers = calloc(nw, sizeof *p->workers);
        if (!p->workers)
            rc = RILL_ENOMEM;
    }
    /* At most one queue per connection plus one per pushed entry; the
     * counters must not move (queues point at them), so size them now. */
    size_t maxq = p->n;
    for (unsigned i = 0; i < p->n; i++)
        maxq += p->stages[i]->nout;
    if (!rc && !(p->queue_stats = calloc(maxq ? maxq : 1, sizeof *p->queue_stats)))
        rc = RILL_ENOMEM;
    for (unsigned i = 0; i < p->n && !rc; i++) {
        rill_stage *st = order[i];
        if (st->domain == 0)
            continue;
        rill__worker *w = &p->workers[st->domain - 1];
        if (w->head)
            continue;
        w->p = p;
        w->head = st;
        rill__park_init(&w->data);
        /* A threaded entry fed by rill_pipeline_push: a queue from the caller. */
        if (st->nin == 0 && !st->ops->produce && !rill__plan_queue(p, NULL, st, &p->main))
            rc = RILL_ENOMEM;
    }
    for (unsigned i = 0; i < p->n && !rc; i++) {
        rill_stage *st = p->stages[i];
        for (unsigned k = 0; k < st->nout && !rc; k++) {
            rill__port *o = &st->out[k];
            if (o->to->domain != st->domain &&
                !(o->queue = rill__plan_queue(p, st, o->to, rill__worker_of(p, st->domain))))
                rc = RILL_ENOMEM;
        }
    }
    free(order);
    if (!rc)
        rc = rill__replicas_plan(p);
    if (!rc)
        rc = rill__share_plan(p); /* fan-outs whose queues can share batches */
    p->nworkers_alloc = p->workers ? nw : 0;
    for (unsigned i = 0; i < p->n && !rc; i++)
        p->stages[i]->dom = rill__worker_of(p, p->stages[i]->domain);
    if (!rc)
        rc = rill__barrier_plan(p); /* inputs to align, by domain and queue */
    if (rc) {
        rill__barrier_free(p); /* no thread: a barrier is passed on unaligned */
        /* No thread will run: every stage goes back to the caller's thread,
         * with no queue, so that close still closes each of them once. The
         * queues made so far are freed with p->queues at close. */
        for (unsigned i = 0; i < p->n; i++) {
            p->stages[i]->domain = 0;
            p->stages[i]->share = NULL; /* the queues free it with themselves */
            for (unsigned k = 0; k < p->stages[i]->nout; k++)
                p->stages[i]->out[k].queue = NULL;
        }
        nw = 0;
    }
    for (unsigned i = 0; i < p->n; i++)
        p->stages[i]->dom = rill__worker_of(p, p->stages[i]->domain);
    p->main.waited = &p->main_waited; /* the threads' waiting time, for prof.h */
    p->main.prof_tick = 1;
    for (unsigned i = 0; i < nw; i++) {
        p->workers[i].waited = &p->workers[i].head->waited_ns;
        p->workers[i].prof_tick = 1;
    }
    /* Published last: rill__wake_all (maybe in a signal handler) reads it. */
    atomic_store_explicit(&p->nworkers, nw, memory_order_release);
    return rc;
}
