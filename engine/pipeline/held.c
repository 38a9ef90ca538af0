/* Items held back at the inline depth limit (flow.c's rill__send_inline).
 *
 * Delivery to an inline stage is a call nested in the emitter's, so an
 * inline chain would nest one C frame per stage. Past RILL__INLINE_DEPTH
 * nested sends a domain appends (stage, item) to its FIFO instead, and the
 * outermost send on that thread, back at depth 0, delivers the FIFO in order
 * before it returns. While the FIFO holds anything, every inline delivery of
 * the domain joins it: an item emitted later by the same producer must not
 * overtake one held earlier. The close cascade runs at depth 0, after the
 * drain, so end of stream still follows every held item. The domain runs on
 * one thread: nothing here is shared. Mechanism: docs/threads.md. */

#include "pipeline_int.h"
#include "stats/prof.h"

/* The next free entry of the FIFO, or NULL (no memory; `from` is failed). */
static rill__deferred *rill__held_slot(rill__worker *w, rill_stage *from) {
    rill__deferred *d = rill__fifo_reserve(&w->held, sizeof *d);
    if (!d)
        rill_stage_fail(from, RILL_ENOMEM, "cannot hold an item past the inline depth limit");
    return d;
}

static void rill__held_push(rill__worker *w) {
    rill__fifo_commit(&w->held);
    if (w->held.n == 1)
        w->depth += RILL__HELD;
}

int rill__item_keep(const rill_item *item, rill_item *out) {
    if (item->owner) {
        *out = *item;
        rill_item_retain(item);
        return 0;
    }
    return rill_item_copy(item->len ? item->data : "", item->len, out);
}

int rill__hold(rill__worker *w, rill_stage *from, const rill__port *via, rill_stage *to,
               const rill_item *item) {
    rill__deferred *d = rill__held_slot(w, from);
    if (!d)
        return RILL_ENOMEM;
    if (rill__item_keep(item, &d->item) < 0)
        return rill_stage_fail(from, RILL_ENOMEM, "cannot hold an item past the inline depth limit");
    d->to = to;
    d->via = via;
    d->kind = RILL__HELD_ITEM;
    rill__held_push(w);
    return 0;
}

int rill__hold_barrier(rill__worker *w, rill_stage *from, const rill__port *via, unsigned slot,
                       uint64_t id) {
    rill__deferred *d = rill__held_slot(w, from);
    if (!d)
        return RILL_ENOMEM;
    *d = (rill__deferred){.to = via->to, .via = via, .id = id, .slot = slot,
                          .kind = RILL__HELD_BARRIER};
    rill__held_push(w);
    return 0;
}

void rill__deferred_release(rill__deferred *d) {
    if (d->kind == RILL__HELD_ITEM)
        rill_item_release(&d->item);
}

/* At depth 0: deliver every held item in order (each send counts depth
 * again, so its own chain may hold more behind). After a stop the rest is
 * released and counted as discarded, like items still queued. Returns the
 * first error of a stage sent to, or the stop's code. */
int rill__drain(rill__worker *w) {
    int err = 0;
    rill__deferred d;
    while (rill__fifo_pop(&w->held, &d, sizeof d)) {
        if (w->held.n == 0)
            w->depth -= RILL__HELD; /* back to 0: this send may nest again */
        /* Through the port as it is now: an input that began aligning since
         * the item was held goes to its stash (barrier.c). */
        rill_stage *to = d.via ? d.via->to : d.to;
        rill_pipeline *p = to->p;
        if (!rill__stopped(p)) {
            w->depth++;
            int rc;
            if (d.kind == RILL__HELD_BARRIER) {
                rc = rill__barrier_at(to, d.slot, d.id);
            } else {
                rill__counter_add(&to->n_in, 1);
                rill_stage *was = w->cur; /* only a window keeps it: rough, and rare */
                rill__prof_enter(w, to);
                rc = to->ops->send(to, to->state, &d.item);
                if (RILL__UNLIKELY(to->delay_ns))
                    rill__busy_wait(to->delay_ns);
                rill__prof_leave(w, was);
                if (rc < 0)
                    rc = rill__failed(to, rc);
            }
            w->depth--;
            if (rc < 0 && !err)
                err = rc;
        } else {
            w->discarded += d.kind == RILL__HELD_ITEM;
            if (!err)
                err = rill__stop_code(p);
        }
        rill__deferred_release(&d);
    }
    return err;
}

void rill__held_free(rill__worker *w) {
    rill__deferred d;
    while (rill__fifo_pop(&w->held, &d, sizeof d)) { /* not reached: a domain drains first */
        w->discarded += d.kind == RILL__HELD_ITEM;
        rill__deferred_release(&d);
    }
    rill__fifo_free(&w->held);
    w->depth = 0;
}
