/* Threads: which stage runs where, the queues between threads, the worker
 * loop, and joining.
 *
 * Every stage belongs to a domain: the caller's thread (0) or a worker
 * thread. A threaded stage heads a domain of its own; an inline stage runs
 * in the domain of its producers. An inline stage fed from two domains would
 * be called from two threads at once (the seed's threaded reducer), so it is
 * given a thread of its own instead ("promoted"). Edges between domains get
 * a bounded queue; end of stream travels through it as the last batch. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"
#include "room.h"

enum { RILL__UNSET = -1, RILL__MIXED = -2 };

static void rill__flush_outputs_of(void *w);

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
static rill__queue *rill__queue_new(rill_pipeline *p, rill_stage *from, rill_stage *to,
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
    e->producer_waited = producer->head ? &producer->head->waited_ns : &p->main_waited;
    e->before_wait = rill__flush_outputs_of;
    e->before_wait_arg = producer;
    e->room_efd = from ? &from->room_efd : NULL;
    e->arm_delay_ns = rill__room_fault_delay_ns();
    if (rill__append(&p->queues, &p->nqueues, e)) {
        rill__queue_fini(e);
        free(e);
        return NULL;
    }
    if (rill__append(&w->in, &w->nin, e) || rill__append(&producer->out, &producer->nout, e))
        return NULL; /* e is freed with p->queues */
    return e;
}

/* Assign domains and build the workers and edges (no thread started yet). */
static int rill__plan(rill_pipeline *p) {
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
        if (st->opts.flags & RILL_STAGE_THREADED) {
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
     * counters must not move (edges point at them), so size them now. */
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
        /* A threaded entry fed by rill_pipeline_push: an edge from the caller. */
        if (st->nin == 0 && !st->ops->produce && !rill__queue_new(p, NULL, st, &p->main))
            rc = RILL_ENOMEM;
    }
    for (unsigned i = 0; i < p->n && !rc; i++) {
        rill_stage *st = p->stages[i];
        for (unsigned k = 0; k < st->nout && !rc; k++) {
            rill__port *o = &st->out[k];
            if (o->to->domain != st->domain &&
                !(o->queue = rill__queue_new(p, st, o->to, rill__worker_of(p, st->domain))))
                rc = RILL_ENOMEM;
        }
    }
    free(order);
    p->nworkers_alloc = p->workers ? nw : 0;
    if (rc) {
        /* No thread will run: every stage goes back to the caller's thread,
         * with no queue, so that close still closes each of them once. The
         * edges made so far are freed with p->queues at close. */
        for (unsigned i = 0; i < p->n; i++) {
            p->stages[i]->domain = 0;
            for (unsigned k = 0; k < p->stages[i]->nout; k++)
                p->stages[i]->out[k].queue = NULL;
        }
        nw = 0;
    }
    /* Published last: rill__wake_all (maybe in a signal handler) reads it. */
    atomic_store_explicit(&p->nworkers, nw, memory_order_release);
    return rc;
}

static void rill__flush_outputs_of(void *w) { rill__flush_outputs(w); }

void rill__flush_outputs(rill__worker *w) {
    for (unsigned i = 0; i < w->nout; i++)
        rill__queue_flush(w->out[i]);
}

void rill__flush_old_outputs(rill__worker *w) {
    uint64_t now = w->nout ? rill__now_ns() : 0;
    for (unsigned i = 0; i < w->nout; i++) {
        rill__queue_flush_if_old(w->out[i], now);
        rill__queue_nudge(w->out[i], now);
    }
}

/* Before waiting for input: publish every partial output batch, and return
 * how long this thread may sleep before a lazily announced batch is due
 * (0 = no limit). */
static uint64_t rill__publish_before_wait(rill__worker *w) {
    uint64_t now = w->nout ? rill__now_ns() : 0, sleep = UINT64_MAX;
    for (unsigned i = 0; i < w->nout; i++) {
        rill__queue_flush_lazy(w->out[i]);
        uint64_t due = rill__queue_nudge(w->out[i], now);
        sleep = due < sleep ? due : sleep;
    }
    return sleep == UINT64_MAX ? 0 : sleep;
}

void rill__wake_all(rill_pipeline *p) {
    /* Announce the reads first: rill__threads_free, on another thread (an
     * abort racing close), waits for them before freeing (seq_cst pair). */
    atomic_fetch_add_explicit(&p->waking, 1, memory_order_seq_cst);
    unsigned nw = atomic_load_explicit(&p->nworkers, memory_order_seq_cst);
    for (unsigned i = 0; i < nw; i++)
        rill__park_wake(&p->workers[i].data);
    if (nw)
        for (unsigned i = 0; i < p->nqueues; i++)
            rill__park_wake(&p->queues[i]->space);
    atomic_fetch_sub_explicit(&p->waking, 1, memory_order_seq_cst);
    rill__room_signal_all(p); /* loops waiting for room on an eventfd */
}

/* The next batch from any input, round robin; NULL if none is visible. */
static rill__batch *rill__poll(rill__worker *w, unsigned *rr, rill__queue **from) {
    for (unsigned k = 0; k < w->nin; k++) {
        rill__queue *e = w->in[(*rr + k) % w->nin];
        rill__batch *b = rill__queue_take(e);
        if (b) {
            *rr = (*rr + k + 1) % w->nin;
            *from = e;
            return b;
        }
    }
    return NULL;
}

/* Wait for input: publish what this thread produced (nobody else will),
 * spin briefly, then park — with a timeout while a consumer downstream has
 * items it has not been woken for. NULL once the pipeline stops. */
static rill__batch *rill__wait_input_loop(rill__worker *w, unsigned *rr, rill__queue **from);

/* The time spent here is the consumer's wait on empty queues, for every one
 * of its inputs (all were empty), and not busy time of its thread. */
static rill__batch *rill__wait_input(rill__worker *w, unsigned *rr, rill__queue **from) {
    uint64_t t0 = rill__now_ns();
    rill__batch *b = rill__wait_input_loop(w, rr, from);
    uint64_t waited = rill__now_ns() - t0;
    for (unsigned i = 0; i < w->nin; i++)
        rill__counter_add(&w->in[i]->q->wait_empty_ns, waited);
    rill__counter_add(&w->head->waited_ns, waited);
    return b;
}

static rill__batch *rill__wait_input_loop(rill__worker *w, unsigned *rr, rill__queue **from) {
    rill__batch *b;
    uint64_t sleep = rill__publish_before_wait(w);
    for (unsigned round = 0; rill__backoff(round); round++)
        if ((b = rill__poll(w, rr, from)) || rill__stopped(w->p))
            return b;
    for (;;) {
        uint32_t seen = rill__park_epoch(&w->data);
        if ((b = rill__poll(w, rr, from)) || rill__stopped(w->p))
            return b;
        rill__park_wait(&w->data, seen, sleep);
        if (sleep)
            sleep = rill__publish_before_wait(w);
    }
}

static void rill__run_source(rill__worker *w) {
    rill_stage *st = w->head;
    while (!rill__stopped(w->p)) {
        int rc = st->ops->produce(st, st->state);
        rill__flush_old_outputs(w);
        if (rc == RILL_EDONE)
            break;
        if (rc < 0) {
            rill__failed(st, rc);
            break;
        }
    }
}

static void rill__run_consumer(rill__worker *w) {
    rill_stage *st = w->head;
    unsigned open = w->nin, rr = 0;
    while (open && !rill__stopped(w->p)) {
        rill__queue *e;
        rill__batch *b = rill__poll(w, &rr, &e);
        if (!b && !(b = rill__wait_input(w, &rr, &e)))
            break;
        /* After a stop the rest of the batch is not delivered either; it
         * counts as discarded, like the items still queued. */
        unsigned i = 0;
        while (i < b->n && !rill__stopped(w->p)) {
            int rc = st->ops->send(st, st->state, &b->items[i++]);
            if (RILL__UNLIKELY(st->delay_ns))
                rill__busy_wait(st->delay_ns);
            if (RILL__UNLIKELY(rc < 0)) {
                rill__failed(st, rc);
                break;
            }
        }
        rill__counter_add(&st->n_in, i);
        if (b->eos)
            open--;
        rill__queue_done(e, b, i);
        rill__flush_old_outputs(w);
    }
}

static void *rill__worker_main(void *arg) {
    rill__worker *w = arg;
    if (w->head->ops->produce)
        rill__run_source(w);
    else
        rill__run_consumer(w);
    /* Also after a stop: every stage's close runs once (emits are dropped). */
    rill__close_stage(w->head);
    rill__flush_outputs(w);
    return NULL;
}

int rill__threads_start(rill_pipeline *p) {
    p->t_start = rill__now_ns();
    int rc = rill__plan(p);
    if (rc) {
        if (p->n)
            rill_stage_fail(p->stages[0], rc, "cannot plan the pipeline's threads");
        return rc;
    }
    if ((rc = rill__sampler_start(p))) {
        rill_stage_fail(p->stages[0], rc, "cannot start the statistics sampler");
        return rc;
    }
    const char *fault = getenv("RILL_FAULT_THREAD_START"); /* tests: fail this stage's thread */
    for (unsigned i = 0; i < p->nworkers; i++) {
        rill__worker *w = &p->workers[i];
        int err = fault && strcmp(fault, w->head->name) == 0
                      ? EAGAIN
                      : pthread_create(&w->tid, NULL, rill__worker_main, w);
        if (err) {
            rill_stage_fail(w->head, -err, "cannot start its thread");
            return -err;
        }
        w->started = true;
    }
    return 0;
}

void rill__threads_join(rill_pipeline *p) {
    for (unsigned i = 0; i < p->nworkers; i++)
        if (p->workers[i].started) {
            pthread_join(p->workers[i].tid, NULL);
            p->workers[i].started = false;
        } else if (p->workers[i].head) {
            /* Never ran: its stages still get their one close. */
            rill__close_stage(p->workers[i].head);
        }
    rill__sampler_stop(p);
}

void rill__threads_free(rill_pipeline *p) {
    /* Hide the workers and queues from rill_pipeline_abort (any thread, or a
     * signal handler) before freeing them, and let an abort that already
     * reads them finish: it never blocks, so this wait is short. */
    unsigned nw = p->nworkers_alloc;
    atomic_store_explicit(&p->nworkers, 0, memory_order_seq_cst);
    while (atomic_load_explicit(&p->waking, memory_order_seq_cst))
        sched_yield();
    /* Snapshots read the queues: not while they go away. */
    pthread_mutex_lock(&p->statlock);
    for (unsigned i = 0; i < p->nqueues; i++) {
        rill__queue_fini(p->queues[i]);
        free(p->queues[i]);
    }
    pthread_mutex_unlock(&p->statlock);
    for (size_t k = 0; k < p->nq; k++)
        p->discarded += atomic_load(&p->queue_stats[k].discarded);
    for (unsigned i = 0; i < nw; i++) {
        free(p->workers[i].in);
        free(p->workers[i].out);
    }
    free(p->main.in);
    free(p->main.out);
    free(p->queues);
    free(p->workers);
    p->queues = NULL;
    p->nqueues = 0;
    p->workers = NULL;
    p->main = (rill__worker){0};
}
