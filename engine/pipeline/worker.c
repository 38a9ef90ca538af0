/* Worker threads: starting them (after plan.c), what each runs (flow.c's
 * loops, then its stage's close), waking them all on a stop, joining and
 * freeing them with the queues. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "fault.h"
#include "pipeline_int.h"

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

static void *rill__worker_main(void *arg) {
    rill__worker *w = arg;
    rill__tclock_begin(&w->head->tclock, w->p->sampler.enabled);
    if (w->head->ops->produce)
        rill__run_source(w->head, w);
    else
        rill__run_consumer(w);
    /* Also after a stop: every stage's close runs once (emits are dropped). */
    rill__close_stage(w->head);
    rill__flush_outputs(w);
    rill__tclock_end(&w->head->tclock);
    return NULL;
}

int rill__threads_start(rill_pipeline *p) {
    p->t_start = rill__now_ns();
    int rc = rill__plan(p);
    /* Started only once planned, failed or not: a thread that reads the
     * phase (rill_stage_threaded) then reads a finished plan. */
    atomic_store_explicit(&p->phase, RILL__STARTED, memory_order_seq_cst);
    if (rc) {
        if (p->n)
            rill_stage_fail(p->stages[0], rc, "cannot plan the pipeline's threads");
        return rc;
    }
    if ((rc = rill__sampler_start(p))) {
        rill_stage_fail(p->stages[0], rc, "cannot start the statistics sampler");
        return rc;
    }
    for (unsigned i = 0; i < p->nworkers; i++) {
        rill__worker *w = &p->workers[i];
        int err = rill__fault_thread_start(w->head->name)
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
    rill__barrier_drop_stashes(p);
    for (size_t k = 0; k < p->nq; k++)
        p->discarded += atomic_load(&p->queue_stats[k].discarded);
    for (unsigned i = 0; i < nw; i++) {
        rill__held_free(&p->workers[i]);
        p->discarded += p->workers[i].discarded;
    }
    rill__held_free(&p->main);
    p->discarded += p->main.discarded;
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
