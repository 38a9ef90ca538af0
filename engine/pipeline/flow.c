/* The item's path: from a stage's emit to the next stage's send, on one
 * thread or across a queue to another. In order:
 *
 *   rill_emit(st, item)           to every port of st, in connect order
 *   rill_emit_to(st, port, item)  to one port
 *   rill_try_emit(st, item)       to every port or none: look at each queue
 *                                 first; refused, arm it (room.c)
 *   rill_emit_items(st, items, n) a run: the same path, paid once per run per
 *                                 port (flow_run.c, which maps it)
 *   rill_pipeline_push(p, e, item) from the caller, into an entry stage
 *     rill__share_push            a stage whose every port is a queue: the item
 *                                 appended once, to a batch all those queues
 *                                 receive (share.c); otherwise
 *     rill__deliver               per port: on the same thread, rill__send_inline
 *                                 (past the depth limit: held, held.c);
 *                                 to another, rill__queue_push (queue.c)
 *       rill__send                the stage's send, its delay, its failure
 *   rill__run_source(st, w)       a source's thread: produce until done,
 *                                 handing over partial batches as they age
 *   rill__run_consumer(w)         a threaded stage's thread: take a batch from
 *                                 any input, hand it to rill__run_send
 *                                 (flow_run.c) as a run, hand the batch back;
 *                                 wait when every input is empty
 *     a checkpoint barrier        after a batch's items (b->has_barrier):
 *                                 rill__barrier_at; while its stage aligns,
 *                                 rill__poll passes over inputs whose barrier
 *                                 came (barrier.c, which maps the barrier's path)
 *
 * A partial batch is handed over when full (queue.c), when old, and when its
 * thread is about to wait (rill__flush_outputs and its lazy twin here).
 * Delivery on one thread is a direct call: no queue, no allocation, no
 * atomic read-modify-write per item (nested deeper than RILL__INLINE_DEPTH,
 * through the thread's FIFO instead: held.c). Mechanism: docs/threads.md. */
#include "pipeline_int.h"
#include "room.h"
#include "share.h"
#include "stats/prof.h"

/* ---- one item, one stage ------------------------------------------------------ */

/* Call t's send with item on this thread. The caller counts it received. */
static inline int rill__send(rill_stage *t, const rill_item *item) {
    int rc = t->ops->send(t, t->state, item);
    if (RILL__UNLIKELY(t->delay_ns))
        rill__busy_wait(t->delay_ns);
    return RILL__UNLIKELY(rc < 0) ? rill__failed(t, rc) : 0;
}

/* What a push that gave up answers: a stop is the pipeline's error. */
static inline int rill__push_result(rill_pipeline *p, int rc) {
    return RILL__UNLIKELY(rc < 0) ? (rc == RILL_EABORTED ? rill__stop_code(p) : rc) : 0;
}

/* Call t's send on this thread, nested in at most RILL__INLINE_DEPTH others;
 * deeper, or while items are held already, the item is held (held.c) and
 * the outermost send drains the FIFO before it returns. `from` is blamed if
 * the item cannot be held (no memory). */
static inline int rill__send_inline(rill_stage *from, const rill__port *via, rill_stage *t,
                                   const rill_item *item) {
    rill__worker *w = t->dom;
    if (RILL__UNLIKELY(w->depth >= RILL__INLINE_DEPTH))
        return rill__hold(w, from, via, t, item);
    w->depth++;
    rill__counter_add(&t->n_in, 1);
    rill__prof_enter(w, t);
    int rc = rill__send(t, item);
    rill__prof_leave(w, from); /* back in the emitter's code */
    if (RILL__UNLIKELY(--w->depth == RILL__HELD)) {
        int d = rill__drain(w);
        rc = rc ? rc : d;
    }
    return rc;
}

/* Hand item from st to the stage behind port o: a direct call into its send
 * on this thread, or an append to the queue to its thread. */
static inline int rill__deliver(rill_stage *st, const rill__port *o, const rill_item *item) {
    if (!o->queue)
        return rill__send_inline(st, o, o->to, item);
    if (RILL__UNLIKELY(o->dl)) { /* a group of replicas: one of them */
        unsigned k = rill__deal_pick(o->dl, item);
        rill__deal_took(o->dl, k);
        return rill__push_result(st->p, rill__queue_push(o->dl->q[k], item, RILL_EABORTED));
    }
    return rill__push_result(st->p, rill__queue_push(o->queue, item, RILL_EABORTED));
}

/* Every emit, once past the stop check: count the item, and give a source
 * its delay per item emitted (rill_stage_set_delay). */
static inline void rill__emit_begin(rill_stage *st) {
    /* A stage refused by rill_try_emit that emits by other means has
     * stopped waiting for room: end the wait here, or it runs on. */
    if (RILL__UNLIKELY(st->refused_at))
        rill__room_waited(st);
    rill__counter_add(&st->n_out, 1);
    if (RILL__UNLIKELY(st->delay_ns) && st->ops->produce)
        rill__busy_wait(st->delay_ns);
}

/* ---- emitting ---------------------------------------------------------------- */

RILL_API int rill_emit(rill_stage *st, const rill_item *item) {
    if (RILL__UNLIKELY(rill__stopped(st->p)))
        return rill__stop_code(st->p);
    rill__emit_begin(st);
    if (RILL__UNLIKELY(st->share)) /* every port a queue: one append for all */
        return rill__push_result(st->p, rill__share_push(st->share, -1, item, RILL_EABORTED));
    const rill__port *o = st->out;
    for (unsigned i = 0, n = st->nemit; i < n; i++) {
        int rc = rill__deliver(st, &o[i], item);
        if (RILL__UNLIKELY(rc < 0))
            return rc;
    }
    return 0;
}

RILL_API int rill_emit_to(rill_stage *st, unsigned port, const rill_item *item) {
    if (RILL__UNLIKELY(rill__stopped(st->p)))
        return rill__stop_code(st->p);
    if (port >= st->nemit)
        return RILL_EINVAL;
    rill__emit_begin(st);
    if (RILL__UNLIKELY(st->share))
        return rill__push_result(st->p, rill__share_push(st->share, (int)port, item, RILL_EABORTED));
    return rill__deliver(st, &st->out[port], item);
}

/* The first blocking queue directly after st that cannot take an item now,
 * NULL if every one can; *err gets RILL_ENOMEM if a batch cannot be made. */
static rill__queue *rill__refusing_queue(rill_stage *st, const rill_item *item, int *err) {
    for (unsigned i = 0; i < st->nemit; i++) {
        const rill__port *o = &st->out[i];
        rill__queue *e = o->dl && o->queue ? o->dl->q[rill__deal_pick(o->dl, item)] : o->queue;
        int r = e ? rill__queue_ready(e) : RILL__ROOM;
        if (r != RILL__ROOM) {
            *err = r < 0 ? r : 0;
            return e;
        }
    }
    return NULL;
}

/* rill_emit for an item every queue after st has room for: the queues get it
 * before the stages on st's thread run. One of those may hand over this
 * thread's partial batches (rill_stage_flush, or a blocking emit of its own
 * about to wait); a queue whose partial batch went that way needs another
 * one for the item, and with every batch in flight its append would wait,
 * which the look said it would not. Appends never flush another queue. */
static int rill__emit_queues_first(rill_stage *st, const rill_item *item) {
    rill__emit_begin(st);
    if (st->share)
        return rill__push_result(st->p, rill__share_push(st->share, -1, item, RILL_EABORTED));
    const rill__port *o = st->out;
    unsigned n = st->nemit;
    for (unsigned pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < n; i++)
            if ((o[i].queue != NULL) == (pass == 0)) {
                int rc = rill__deliver(st, &o[i], item);
                if (RILL__UNLIKELY(rc < 0))
                    return rc;
            }
    return 0;
}

RILL_API int rill_try_emit(rill_stage *st, const rill_item *item) {
    if (!st || !item)
        return RILL_EINVAL;
    if (RILL__UNLIKELY(st->refused_at))
        rill__room_waited(st); /* the wait for the room fd ends here */
    /* A retry needs the consumer to free room between our look and our
     * re-check after arming: rare, so few rounds; after them the refusal
     * stands, with the fd signalled by us (room is there). */
    for (unsigned round = 0;; round++) {
        if (RILL__UNLIKELY(rill__stopped(st->p)))
            return rill__stop_code(st->p);
        int err = 0;
        rill__queue *e = rill__refusing_queue(st, item, &err);
        if (RILL__LIKELY(!e))
            return rill__emit_queues_first(st, item);
        if (err < 0)
            return err;
        /* Nothing is emitted. The queue may be full only with our own
         * partial batch, and a consumer that sleeps frees nothing: hand over
         * every partial batch of this thread and wake the consumers, as a
         * blocking emit does before it waits. */
        if (round == 0) {
            e->before_wait(e->before_wait_arg);
            rill__park_wake(e->data);
        }
        int still = rill__queue_arm(e);
        if (still < 0)
            return still;
        if (still == RILL__NO_ROOM || round == 2) {
            if (still != RILL__NO_ROOM)
                rill__queue_signal_now(e);
            /* counted as waiting for room when the wait ends (room.c) */
            st->refused_at = rill__now_ns();
            st->refused = e;
            return RILL_EAGAIN;
        }
    }
}

/* Why entry cannot take rill_pipeline_push(p, entry, item): RILL_EINVAL,
 * with what and where in the pipeline's errmsg. */
static int rill__push_refused(rill_pipeline *p, rill_stage *entry, const rill_item *item) {
    if (!entry || !item)
        return rill__setup_error(p, RILL_EINVAL, "rill_pipeline_push: %s is NULL",
                                 entry ? "the item" : "the entry stage");
    if (entry->p != p)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_pipeline_push: stage '%s' is not in pipeline '%s'",
                                 entry->name, p->name);
    if (entry->ops->produce)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_pipeline_push: stage '%s' is a source (it has produce, no "
                                 "send)", entry->name);
    if (entry->grp && !entry->nin)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_pipeline_push: stage '%s' has replicas: push into a stage "
                                 "that feeds it", entry->name);
    return rill__setup_error(p, RILL_EINVAL,
                             "rill_pipeline_push: stage '%s' is not an entry: %u stage%s feed%s "
                             "it; push into the first stage instead", entry->name, entry->nin,
                             entry->nin == 1 ? "" : "s", entry->nin == 1 ? "s" : "");
}

RILL_API int rill_pipeline_push(rill_pipeline *p, rill_stage *entry, const rill_item *item) {
    if (!p)
        return RILL_EINVAL;
    if (!entry || !item || entry->p != p || entry->nin || !entry->ops->send || entry->grp)
        return rill__push_refused(p, entry, item);
    if (p->phase == RILL__CLOSED)
        return RILL_ECLOSED;
    int rc = rill_pipeline_start(p);
    if (rc)
        return rc;
    if (rill__stopped(p))
        return rill__stop_code(p);
    if (entry->domain == 0)
        return rill__send_inline(entry, NULL, entry, item);
    rill__queue *e = p->workers[entry->domain - 1].in[0];
    rc = rill__push_result(p, rill__queue_push(e, item, RILL_EABORTED));
    if (rc)
        return rc;
    rill__queue_flush_if_old(e, rill__now_ns());
    /* The caller is not a worker that comes back to wake the consumer later
     * (it may idle for good after this push): a batch published without a
     * wake-up must be announced now. */
    rill__queue_announce(e);
    return 0;
}

/* ---- handing over partial batches ---------------------------------------------- */

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

/* ---- the loops that drive stages ------------------------------------------------ */

void rill__run_source(rill_stage *st, rill__worker *w) {
    while (!rill__stopped(st->p)) {
        int rc = st->ops->produce(st, st->state);
        rill__flush_old_outputs(w);
        if (rc == RILL_EDONE)
            break;
        if (rc < 0) {
            rill__failed_in(st, rc, "produce");
            break;
        }
    }
}

/* The next batch from any input, round robin, and the input's index in
 * *from; NULL if none is visible. While a barrier is being aligned, an input
 * whose barrier has arrived is passed over (barrier.c). */
static rill__batch *rill__poll(rill__worker *w, unsigned *rr, unsigned *from) {
    const rill__align *al = w->head->al;
    bool aligning = al && al->narrived;
    for (unsigned k = 0; k < w->nin; k++) {
        unsigned i = (*rr + k) % w->nin;
        if (RILL__UNLIKELY(aligning) && al->state[i] == RILL__IN_ARRIVED && !al->shared[i])
            continue;
        rill__batch *b = rill__queue_take(w->in[i]);
        if (b) {
            *rr = (*rr + k + 1) % w->nin;
            *from = i;
            return b;
        }
    }
    return NULL;
}

/* Wait for input: publish what this thread produced (nobody else will),
 * spin briefly, then park — with a timeout while a consumer downstream has
 * items it has not been woken for. NULL once the pipeline stops. */
static rill__batch *rill__wait_input_loop(rill__worker *w, unsigned *rr, unsigned *from) {
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

/* The time spent here is the consumer's wait on empty queues, for every one
 * of its inputs (all were empty), and not busy time of its thread. */
static rill__batch *rill__wait_input(rill__worker *w, unsigned *rr, unsigned *from) {
    uint64_t t0 = rill__now_ns();
    rill__batch *b = rill__wait_input_loop(w, rr, from);
    rill__wait_cpu_done();
    uint64_t waited = rill__now_ns() - t0;
    for (unsigned i = 0; i < w->nin; i++)
        rill__counter_add(&w->in[i]->q->wait_empty_ns, waited);
    rill__counter_add(&w->head->waited_ns, waited);
    return b;
}

void rill__run_consumer(rill__worker *w) {
    rill_stage *st = w->head;
    unsigned open = w->nin, rr = 0;
    while (open && !rill__stopped(w->p)) {
        unsigned in;
        rill__batch *b = rill__poll(w, &rr, &in);
        if (!b && !(b = rill__wait_input(w, &rr, &in)))
            break;
        if (RILL__UNLIKELY(st->al && st->al->narrived) && st->al->state[in] == RILL__IN_ARRIVED) {
            /* held back, but its producer feeds another input too (barrier.c) */
            bool eos = b->eos;
            rill__barrier_stash_batch(st, in, b);
            rill__queue_done(w->in[in], b, b->n);
            open -= eos;
            continue;
        }
        /* The batch as a run (flow_run.c). After a stop or a failing send
         * the rest of it is not delivered; it counts as discarded, like
         * the items still queued. */
        int rc;
        unsigned i = (unsigned)rill__run_send(st, b->items, b->n, &rc);
        rill__counter_add(&st->n_in, i);
        /* A barrier follows the batch's items, end of stream follows both. */
        bool eos = b->eos, barrier = b->has_barrier && i == b->n;
        uint64_t id = b->barrier;
        rill__queue_done(w->in[in], b, i);
        if (RILL__UNLIKELY(barrier))
            rill__barrier_at(st, in, id);
        if (eos) {
            open--;
            if (st->al)
                rill__barrier_queue_closed(st, in);
        }
        rill__flush_old_outputs(w);
    }
}
