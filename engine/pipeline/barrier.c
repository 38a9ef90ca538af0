/* Checkpoint barriers: how a barrier travels, and how a stage with several
 * inputs aligns them (rill/checkpoint.h). In order:
 *
 *   rill_emit_barrier(st, id)   checks the id, then rill__barrier_forward
 *     rill__barrier_forward     per port: into a queue, the partial batch
 *                               carries it and is handed over now (queue.c;
 *                               the consumer's loop in flow.c takes it after
 *                               the batch's items and calls rill__barrier_at);
 *                               on this thread, rill__barrier_at nested like a
 *                               send, or held in order with the items past
 *                               the inline depth limit (held.c)
 *       rill__barrier_at        one input's barrier: a stage with one input
 *                               fires at once; with several it marks the input
 *                               arrived and, once every input has arrived or
 *                               ended, completes the alignment
 *         rill__align_complete  the stage's barrier callback, the barrier
 *                               forwarded, then what its inputs held back
 *
 * Holding an input back. A threaded stage's inputs are queues: its loop
 * passes over a queue whose barrier has arrived (flow.c's rill__poll) and the
 * producer meets backpressure as usual; but a queue whose producing thread
 * feeds another of its queues too is taken and stashed instead (that thread
 * may have to go on to the other input's barrier: backpressure would stop it).
 * An inline stage's inputs are direct calls from the producers on its thread;
 * a producer whose barrier has arrived has its port into the stage pointed at
 * a stand-in stage (a proxy) whose send keeps the item in a FIFO (a stash)
 * instead: the emit path is unchanged and pays nothing per item. The port is pointed back, and the
 * stash delivered in order, once the stage is aligned. Items held at the
 * depth limit name their port (held.c), so they too go where the port points
 * when they are delivered. A stash is memory without backpressure: one
 * thread cannot wait for itself. Mechanism and cost: docs/checkpoints.md. */

#include "pipeline_int.h"

static int rill__stash_send(rill_stage *st, void *state, const rill_item *item);
const rill_stage_ops rill__stash_ops = {.send = rill__stash_send};

static bool rill__is_proxy(const rill_stage *st) { return st->ops == &rill__stash_ops; }

/* ---- stashes --------------------------------------------------------------- */

static int rill__stash_full(rill__stash *s) {
    return rill_stage_fail(s->al->st, RILL_ENOMEM, "cannot hold an input back for a barrier");
}

static int rill__stash_put(rill__stash *s, unsigned kind, uint64_t id) {
    rill__deferred *d = rill__fifo_reserve(&s->q, sizeof *d);
    if (!d)
        return rill__stash_full(s);
    *d = (rill__deferred){.kind = kind, .id = id, .slot = s->slot};
    rill__fifo_commit(&s->q);
    return 0;
}

/* The proxy's send: keep the item (its owner, or a copy of bytes that have
 * none) until the stage is aligned. */
static int rill__stash_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    rill__stash *s = state;
    rill__deferred *d = rill__fifo_reserve(&s->q, sizeof *d);
    if (!d || rill__item_keep(item, &d->item) < 0)
        return rill__stash_full(s);
    d->kind = RILL__HELD_ITEM;
    d->slot = s->slot;
    rill__fifo_commit(&s->q);
    return 0;
}

/* ---- passing a barrier on ------------------------------------------------------ */

/* Which input of out[k].to st is (0 if unplanned: nothing aligns then). */
static unsigned rill__slot_of(const rill_stage *st, unsigned k) {
    return st->out_slot ? st->out_slot[k] : 0;
}

static int rill__barrier_forward(rill_stage *st, uint64_t id) {
    st->barrier_last = id;
    for (unsigned k = 0; k < st->nout; k++) {
        rill__port *o = &st->out[k];
        int rc;
        if (o->queue) {
            rc = rill__queue_barrier(o->queue, id, RILL_EABORTED);
            if (rc == RILL_EABORTED)
                rc = rill__stop_code(st->p);
        } else {
            rill__worker *w = o->to->dom;
            if (w->depth >= RILL__INLINE_DEPTH)
                rc = rill__hold_barrier(w, st, o, rill__slot_of(st, k), id);
            else {
                w->depth++;
                rc = rill__barrier_at(o->to, rill__slot_of(st, k), id);
                if (--w->depth == RILL__HELD) {
                    int d = rill__drain(w);
                    rc = rc ? rc : d;
                }
            }
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

RILL_API int rill_emit_barrier(rill_stage *st, uint64_t id) {
    if (!st || id <= st->barrier_last)
        return RILL_EINVAL;
    if (rill__stopped(st->p))
        return rill__stop_code(st->p);
    return rill__barrier_forward(st, id);
}

/* Every input of t has delivered barrier id (or ended): its callback, then
 * the barrier to every port. */
static int rill__barrier_fire(rill_stage *t, uint64_t id) {
    if (rill__stopped(t->p))
        return rill__stop_code(t->p);
    if (t->ops->barrier) {
        int rc = t->ops->barrier(t, t->state, id);
        if (rc < 0)
            return rill__failed_in(t, rc, "barrier");
    }
    rill__counter_add(&t->n_barriers, 1);
    return rill__barrier_forward(t, id);
}

/* ---- alignment ------------------------------------------------------------------ */

static int rill__replay(rill__align *al);

static int rill__align_complete(rill__align *al) {
    rill_stage *t = al->st;
    rill__counter_add(&t->align_ns, rill__now_ns() - al->since);
    for (unsigned s = 0; s < al->n; s++)
        if (al->state[s] == RILL__IN_ARRIVED) {
            al->state[s] = RILL__IN_OPEN;
            if (al->port)
                al->port[s]->to = t;
        }
    al->narrived = 0;
    int rc = rill__barrier_fire(t, al->id);
    if (al->stash && !al->replaying) {
        int r = rill__replay(al);
        rc = rc ? rc : r;
    }
    return rc;
}

static bool rill__aligned(const rill__align *al) {
    return al->narrived && al->narrived + al->nclosed == al->n;
}

int rill__barrier_at(rill_stage *t, unsigned slot, uint64_t id) {
    if (rill__is_proxy(t))
        return rill__stash_put(t->state, RILL__HELD_BARRIER, id);
    rill__align *al = t->al;
    if (!al)
        return rill__barrier_fire(t, id);
    if (rill__stopped(t->p))
        return rill__stop_code(t->p);
    if (al->state[slot] != RILL__IN_OPEN)
        return 0; /* not reached: such an input is held back */
    if (al->narrived == 0) {
        al->since = rill__now_ns();
        al->id = id;
    } else if (id > al->id) {
        al->id = id;
    }
    al->state[slot] = RILL__IN_ARRIVED;
    al->narrived++;
    if (rill__aligned(al))
        return rill__align_complete(al);
    if (al->port)
        al->port[slot]->to = &al->proxy[slot];
    return 0;
}

static void rill__input_ended(rill__align *al, unsigned slot) {
    if (al->state[slot] == RILL__IN_ARRIVED)
        al->narrived--; /* not reached: an arrived input is held back */
    al->state[slot] = RILL__IN_CLOSED;
    al->nclosed++;
    if (rill__aligned(al))
        rill__align_complete(al); /* a failure is recorded */
}

bool rill__barrier_input_closed(rill__port *o, unsigned slot) {
    rill_stage *t = o->to;
    if (rill__is_proxy(t)) {
        rill__stash_put(t->state, RILL__HELD_EOS, 0);
        return false;
    }
    t->open_in--;
    if (t->al)
        rill__input_ended(t->al, slot);
    return t->open_in == 0;
}

void rill__barrier_queue_closed(rill_stage *head, unsigned slot) {
    rill__input_ended(head->al, slot);
}

/* One entry a stash held: to the stage, on its thread, nested like a send. */
static int rill__replay_one(rill__align *al, rill__deferred *d) {
    rill_stage *t = al->st;
    rill__worker *w = t->dom;
    if (d->kind == RILL__HELD_EOS) {
        if (al->port)
            t->open_in--; /* its last input is the one being delivered: not 0 */
        rill__input_ended(al, d->slot);
        return 0;
    }
    if (rill__stopped(t->p)) {
        w->discarded += d->kind == RILL__HELD_ITEM;
        return rill__stop_code(t->p);
    }
    /* Inline: nested in a send, as the entry would have been. A threaded
     * head replays from its loop, at depth 0 as its sends run. */
    unsigned nest = al->port != NULL;
    w->depth += nest;
    int rc;
    if (d->kind == RILL__HELD_BARRIER) {
        rc = rill__barrier_at(t, d->slot, d->id);
    } else {
        rill__counter_add(&t->n_in, 1);
        rc = t->ops->send(t, t->state, &d->item);
        if (t->delay_ns)
            rill__busy_wait(t->delay_ns);
        if (rc < 0)
            rc = rill__failed(t, rc);
    }
    w->depth -= nest;
    return rc;
}

/* Deliver what the stashes hold, in order per input, until each is empty or
 * its input is held back again (its next barrier). Entries that complete a
 * further alignment on the way are delivered by this same loop. */
static int rill__replay(rill__align *al) {
    int err = 0;
    al->replaying = true;
    for (bool more = true; more;) {
        more = false;
        for (unsigned s = 0; s < al->n; s++) {
            rill__fifo *q = &al->stash[s].q;
            rill__deferred d;
            while (al->state[s] != RILL__IN_ARRIVED && rill__fifo_pop(q, &d, sizeof d)) {
                more = true;
                int rc = rill__replay_one(al, &d);
                rill__deferred_release(&d);
                if (rc < 0 && !err)
                    err = rc;
            }
        }
    }
    al->replaying = false;
    return err;
}

void rill__barrier_stash_batch(rill_stage *head, unsigned slot, const rill__batch *b) {
    rill__stash *s = &head->al->stash[slot];
    for (unsigned i = 0; i < b->n; i++)
        if (rill__stash_send(head, s, &b->items[i]) < 0)
            return;
    if (b->has_barrier && rill__stash_put(s, RILL__HELD_BARRIER, b->barrier) < 0)
        return;
    if (b->eos)
        rill__stash_put(s, RILL__HELD_EOS, 0);
}

