/* Checkpoint barriers, before and after the run: which stages align over
 * several inputs (and with which stand-ins and stashes), the input number of
 * every port, and freeing it all; the barrier counters. How barriers travel
 * and align: barrier.c. */
#include <stdlib.h>

#include "pipeline_int.h"


static rill__align *rill__align_new(rill_stage *st, unsigned n, bool inline_inputs,
                                   bool stashes) {
    rill__align *al = calloc(1, sizeof *al);
    if (!al)
        return NULL;
    al->st = st;
    al->n = n;
    al->state = calloc(n, 1);
    if (inline_inputs) {
        al->port = calloc(n, sizeof *al->port);
        al->proxy = calloc(n, sizeof *al->proxy);
    } else {
        al->shared = calloc(n, sizeof *al->shared);
    }
    if (stashes || inline_inputs)
        al->stash = calloc(n, sizeof *al->stash);
    st->al = al; /* freed by rill__barrier_free, complete or not */
    if (!al->state || (inline_inputs && (!al->port || !al->proxy)) ||
        (!inline_inputs && !al->shared) || ((stashes || inline_inputs) && !al->stash))
        return NULL;
    for (unsigned s = 0; al->stash && s < n; s++)
        al->stash[s] = (rill__stash){.al = al, .slot = s};
    for (unsigned s = 0; inline_inputs && s < n; s++) {
        rill_stage *x = &al->proxy[s];
        x->p = st->p;
        x->ops = &rill__stash_ops;
        x->state = &al->stash[s];
        x->dom = st->dom;
        x->name = st->name;
    }
    return al;
}

static unsigned rill__queue_index(const rill__worker *w, const rill__queue *e) {
    for (unsigned i = 0; i < w->nin; i++)
        if (w->in[i] == e)
            return i;
    return 0; /* not reached: every queue is some worker's input */
}

int rill__barrier_plan(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        rill__worker *w = st->dom;
        bool head = st->domain != 0 && w->head == st;
        unsigned n = head ? w->nin : st->nin;
        /* Two inputs of a threaded stage fed by one thread: that thread may
         * reach one's barrier long before the other's (inline sources run
         * one after the other); held back by backpressure, it would never
         * reach the second. Such inputs are stashed instead. */
        bool shared = false;
        for (unsigned a = 0; head && a < n; a++)
            for (unsigned b = a + 1; b < n; b++)
                shared = shared || w->in[a]->before_wait_arg == w->in[b]->before_wait_arg;
        if (n >= 2 && !rill__align_new(st, n, !head, shared))
            return RILL_ENOMEM;
        for (unsigned a = 0; head && n >= 2 && a < n; a++)
            for (unsigned b = 0; b < n; b++)
                if (a != b && w->in[a]->before_wait_arg == w->in[b]->before_wait_arg)
                    st->al->shared[a] = true;
    }
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (st->nout && !(st->out_slot = calloc(st->nout, sizeof *st->out_slot)))
            return RILL_ENOMEM;
        for (unsigned k = 0; k < st->nout; k++) {
            rill__port *o = &st->out[k];
            rill__align *al = o->to->al;
            if (o->queue) {
                st->out_slot[k] = rill__queue_index(o->to->dom, o->queue);
            } else if (al) {
                unsigned s = al->narrived++; /* numbering the inputs */
                st->out_slot[k] = s;
                al->port[s] = o;
            }
        }
    }
    for (unsigned i = 0; i < p->n; i++)
        if (p->stages[i]->al)
            p->stages[i]->al->narrived = 0;
    return 0;
}

/* After the run: what a stopped pipeline left in stashes was never
 * delivered; count it as discarded, like items left in queues. */
void rill__barrier_drop_stashes(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill__align *al = p->stages[i]->al;
        for (unsigned s = 0; al && al->stash && s < al->n; s++) {
            rill__deferred d;
            while (rill__fifo_pop(&al->stash[s].q, &d, sizeof d)) {
                p->discarded += d.kind == RILL__HELD_ITEM;
                rill__deferred_release(&d);
            }
        }
    }
}

void rill__barrier_free(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        rill__align *al = st->al;
        for (unsigned s = 0; al && al->stash && s < al->n; s++) {
            rill__deferred d;
            while (rill__fifo_pop(&al->stash[s].q, &d, sizeof d))
                rill__deferred_release(&d);
            rill__fifo_free(&al->stash[s].q);
        }
        if (al) {
            free(al->state);
            free(al->port);
            free(al->proxy);
            free(al->stash);
            free(al->shared);
            free(al);
        }
        free(st->out_slot);
        st->al = NULL;
        st->out_slot = NULL;
    }
}

RILL_API int rill_stage_barrier_stats(const rill_stage *st,
                                      struct rill_stage_barrier_stats *out) {
    if (!st || !out)
        return RILL_EINVAL;
    out->barriers = atomic_load_explicit(&st->n_barriers, memory_order_relaxed);
    out->align_ns = atomic_load_explicit(&st->align_ns, memory_order_relaxed);
    return 0;
}
