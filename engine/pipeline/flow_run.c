/* A run's path: rill_emit_items, items[0..n) from one stage at once. The
 * same steps as one item's (flow.c), each paid once per run per port:
 *
 *   rill_emit_items(st, items, n)  the stop check, st's n_out; then per port,
 *                                  the whole run before the next port
 *     rill__share_push_items       a stage whose every port is a queue: the
 *                                  run once, into the batch they all receive
 *                                  (share.c); otherwise
 *     rill__run_deliver            on this thread: rill__run_inline; to
 *                                  another, one rill__queue_push_items (a
 *                                  group of replicas: dealt in pieces that
 *                                  go to one replica each)
 *       rill__run_inline           one depth check, prof transition and n_in
 *                                  add for the run (past the depth limit:
 *                                  held item by item, held.c)
 *         rill__run_send           send_items once, or send per item with a
 *                                  stop check and the stage's delay each
 *
 * A threaded stage's loop (flow.c) hands each batch it takes to
 * rill__run_send too. Items a stop or a failure keeps from a port are
 * counted as discarded on the emitting thread, as a queue counts what it
 * still holds. Why order within a run is enough: docs/stages.md, "Runs". */
#include "pipeline_int.h"
#include "share.h"
#include "stats/prof.h"

size_t rill__run_send(rill_stage *t, const rill_item *items, size_t n, int *rc) {
    *rc = 0;
    if (t->ops->send_items && !t->delay_ns) {
        if (RILL__UNLIKELY(n == 0 || rill__stopped(t->p))) {
            *rc = n ? rill__stop_code(t->p) : 0;
            return 0;
        }
        int r = t->ops->send_items(t, t->state, items, n);
        if (RILL__UNLIKELY(r < 0))
            *rc = rill__failed(t, r);
        return n;
    }
    size_t i = 0;
    while (i < n && !rill__stopped(t->p)) {
        int r = t->ops->send(t, t->state, &items[i++]);
        if (RILL__UNLIKELY(t->delay_ns))
            rill__busy_wait(t->delay_ns);
        if (RILL__UNLIKELY(r < 0)) {
            *rc = rill__failed(t, r);
            return i;
        }
    }
    if (i < n)
        *rc = rill__stop_code(t->p);
    return i;
}

/* The run to via->to on this thread, nested once however long it is. A
 * stage that holds (the depth limit, or a FIFO not yet drained) holds every
 * item: held.c keeps them in order with the rest. *lost counts items not
 * delivered. */
static int rill__run_inline(rill_stage *from, const rill__port *via, const rill_item *items,
                            size_t n, uint64_t *lost) {
    rill_stage *t = via->to;
    rill__worker *w = t->dom;
    if (RILL__UNLIKELY(w->depth >= RILL__INLINE_DEPTH)) {
        for (size_t i = 0; i < n; i++) {
            int rc = rill__hold(w, from, via, t, &items[i]);
            if (rc < 0) {
                *lost += n - i;
                return rc;
            }
        }
        return 0;
    }
    w->depth++;
    rill__prof_enter(w, t);
    int rc;
    size_t got = rill__run_send(t, items, n, &rc);
    rill__counter_add(&t->n_in, got);
    rill__prof_leave(w, from); /* back in the emitter's code */
    *lost += n - got;
    if (RILL__UNLIKELY(--w->depth == RILL__HELD)) {
        int d = rill__drain(w);
        rc = rc ? rc : d;
    }
    return rc;
}

/* A group of replicas: each piece of the run that goes to one replica (a
 * key's, or the rest of a round-robin batch) is appended at once. */
static int rill__run_deal(rill__deal *dl, const rill_item *items, size_t n, size_t *queued) {
    size_t i = 0;
    int rc = 0;
    unsigned k = rill__deal_pick(dl, &items[0]);
    while (i < n && rc == 0) {
        size_t j = i + 1, q = 0;
        unsigned next = k;
        if (dl->hash) {
            while (j < n && (next = rill__deal_pick(dl, &items[j])) == k)
                j++;
        } else {
            size_t room = k == dl->cur && dl->fill < dl->batch ? dl->batch - dl->fill : dl->batch;
            j = n - i < room ? n : i + room;
        }
        rill__deal_took(dl, k);
        if (!dl->hash)
            dl->fill += (unsigned)(j - i - 1);
        rc = rill__queue_push_items(dl->q[k], items + i, j - i, RILL_EABORTED, &q);
        i += q;
        if (j < n)
            k = dl->hash ? next : rill__deal_pick(dl, &items[j]);
    }
    *queued = i;
    return rc;
}

static int rill__run_deliver(rill_stage *st, const rill__port *o, const rill_item *items,
                             size_t n, uint64_t *lost) {
    if (!o->queue)
        return rill__run_inline(st, o, items, n, lost);
    size_t queued;
    int rc = RILL__UNLIKELY(o->dl) ? rill__run_deal(o->dl, items, n, &queued)
                                   : rill__queue_push_items(o->queue, items, n, RILL_EABORTED,
                                                            &queued);
    *lost += n - queued;
    return RILL__UNLIKELY(rc < 0) ? (rc == RILL_EABORTED ? rill__stop_code(st->p) : rc) : 0;
}

/* A run, or its rest, that goes nowhere because the pipeline stopped before
 * it was handed on: emitted and discarded on every port all the same, so
 * that every item given to rill_emit_items is counted out and then received
 * or discarded (a source that counts its runs whole, as the line source
 * does, agrees with items_out and rill_pipeline_discarded). */
static void rill__run_refused(rill_stage *st, size_t n) {
    rill__counter_add(&st->n_out, n);
    st->dom->discarded += (uint64_t)n * st->nemit;
}

static int rill__emit_run(rill_stage *st, const rill_item *items, size_t n) {
    if (RILL__UNLIKELY(rill__stopped(st->p))) {
        rill__run_refused(st, n);
        return rill__stop_code(st->p);
    }
    if (RILL__UNLIKELY(n == 0))
        return 0;
    /* A stage refused by rill_try_emit that emits by other means has
     * stopped waiting for room (as in flow.c's rill__emit_begin). */
    if (RILL__UNLIKELY(st->refused_at))
        rill__room_waited(st);
    rill__counter_add(&st->n_out, n);
    uint64_t lost = 0;
    int rc = 0;
    if (RILL__UNLIKELY(st->share)) { /* every port a queue: one append for all (share.c) */
        size_t queued;
        rc = rill__share_push_items(st->share, items, n, RILL_EABORTED, &queued);
        if (RILL__UNLIKELY(queued < n))
            st->dom->discarded += (uint64_t)(n - queued) * st->nemit;
        return RILL__UNLIKELY(rc < 0) ? (rc == RILL_EABORTED ? rill__stop_code(st->p) : rc) : 0;
    }
    const rill__port *o = st->out;
    for (unsigned k = 0, np = st->nemit; k < np; k++) {
        if (RILL__UNLIKELY(k && rill__stopped(st->p))) { /* none of it for the rest */
            rc = rill__stop_code(st->p);
            lost += (uint64_t)n * (np - k);
            break;
        }
        rc = rill__run_deliver(st, &o[k], items, n, &lost);
        if (RILL__UNLIKELY(rc < 0)) {
            lost += (uint64_t)n * (np - k - 1);
            break;
        }
    }
    if (RILL__UNLIKELY(lost))
        st->dom->discarded += lost;
    return rc;
}

RILL_API int rill_emit_items(rill_stage *st, const rill_item *items, size_t n) {
    if (RILL__UNLIKELY(!st || (!items && n)))
        return RILL_EINVAL;
    if (RILL__UNLIKELY(st->delay_ns) && st->ops->produce && n) {
        /* a delay before each item: runs of one, the rest refused after a
         * failure as a run refused whole is */
        for (size_t i = 0; i < n; i++) {
            if (!rill__stopped(st->p))
                rill__busy_wait(st->delay_ns);
            int rc = rill__emit_run(st, &items[i], 1);
            if (rc < 0) {
                if (i + 1 < n)
                    rill__run_refused(st, n - i - 1);
                return rc;
            }
        }
        return 0;
    }
    return rill__emit_run(st, items, n);
}
