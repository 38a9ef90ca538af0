/* Shared fan-out: one batch for several queues of one producer.
 *
 * A stage whose every port crosses to another thread (a broadcast into N
 * threaded stages) would append each item to N batches: N stores of the
 * item, N owner checks, and N copies of a borrowed item. Planned here as a
 * group (a "share"), its queues (the members) get one batch instead: each
 * item is appended once, and the batch, when full, old or flushed, is put in
 * every member's ring with a reference count of the members it is for. Each
 * consumer delivers it as its own; the last one to finish drops the batch's
 * owners and returns it through its queue's ring of empty batches, where the
 * producer picks it up again (it polls every member's). Each member keeps
 * its own counters, capacity and wake-ups (queue.c): the producer waits
 * while any member it appends for is full.
 *
 * A batch is for every member not yet closed, or for one member only: an
 * item for one port (rill_emit_to), end of stream and a checkpoint barrier
 * go to their member alone, after the shared batch before them is handed
 * over, so each queue still sees its items, barriers and end in order.
 *
 * Who shares (rill__share_plan): a stage with two or more ports, every one
 * a queue with the blocking policy and the same capacity, batch and
 * latency, none to a group of replicas. A leaky queue takes batches back
 * out of its ring (drop_oldest), a deal sends each item to one queue, and a
 * port on the producer's own thread is a call: those stay per queue. */
#include <limits.h>
#include <stdlib.h>

#include "pipeline_int.h"
#include "queue_ring.h"
#include "room.h"
#include "share.h"

struct rill__share {
    unsigned n;              /* members */
    int target;              /* the partial batch is for: -1 every open member, or one */
    unsigned room;           /* items each member targeted can still take (a lower bound) */
    unsigned batch_cap, max_batches, nalloc, nfini;
    rill__batch *cur;        /* the partial batch, or NULL */
    _Atomic unsigned pending; /* cur->n, for statistics readers */
    rill_stage *st;
    rill__queue **m;         /* the members, by port */
    rill__queue_stats **q;   /* their counters, which outlive them */
    bool *closed;            /* end of stream sent to member k */
};

static inline bool rill__for(const rill__share *sh, unsigned k) {
    return sh->target < 0 ? !sh->closed[k] : (unsigned)sh->target == k;
}

/* The least room among the members the partial batch is for, reading each
 * consumer's count again. */
static unsigned rill__share_room(rill__share *sh) {
    unsigned room = UINT_MAX, part = sh->cur ? sh->cur->n : 0;
    for (unsigned k = 0; k < sh->n; k++) {
        if (!rill__for(sh, k))
            continue;
        rill__queue *e = sh->m[k];
        e->consumed_seen = atomic_load_explicit(&e->consumed, memory_order_acquire);
        uint64_t queued = e->produced_local - e->consumed_seen + part;
        unsigned r = queued >= e->capacity ? 0 : (unsigned)(e->capacity - queued);
        room = r < room ? r : room;
    }
    return room;
}

/* A batch for cur without waiting: one a last consumer gave back (in any
 * member's ring of empty batches), or a new one while under max_batches. */
static int rill__share_try_batch(rill__share *sh) {
    rill__batch *b = NULL;
    for (unsigned k = 0; k < sh->n && !b; k++) {
        void *v;
        if (ck_ring_dequeue_spsc(&sh->m[k]->empty, sh->m[k]->empty_buf, &v)) {
            RILL__RECEIVE(v);
            b = v;
        }
    }
    if (!b) {
        if (sh->nalloc == sh->max_batches)
            return RILL__NO_ROOM;
        if (!(b = rill__batch_new(sh->batch_cap)))
            return RILL_ENOMEM;
        sh->nalloc++;
    }
    sh->cur = b;
    for (unsigned k = 0; k < sh->n; k++) /* what their latency checks look at */
        if (rill__for(sh, k))
            sh->m[k]->cur = b;
    return RILL__ROOM;
}

/* A batch comes back when the last consumer of one is done: it wakes the
 * first member's producer side, where a producer without batches waits. */
static bool rill__share_got_batch(rill__queue *e) {
    return rill__share_try_batch(e->share) == RILL__ROOM;
}

static int rill__share_batch(rill__share *sh, int stop_code) {
    int rc = rill__share_try_batch(sh);
    if (rc == RILL__NO_ROOM)
        rc = rill__queue_wait_for(sh->m[0], rill__share_got_batch, stop_code);
    return rc;
}

void rill__share_publish(rill__share *sh, bool wake) {
    rill__batch *b = sh->cur;
    if (!b || (b->n == 0 && !b->eos && !b->has_barrier))
        return;
    unsigned n = b->n, refs = 0;
    for (unsigned k = 0; k < sh->n; k++)
        refs += rill__for(sh, k);
    if (RILL__UNLIKELY(!refs)) { /* every member closed: nobody to hand it to */
        rill__batch_drop(b);
        return;
    }
    sh->cur = NULL;
    atomic_store_explicit(&sh->pending, 0, memory_order_relaxed);
    /* Counted before the first member can see it, so that no consumer
     * finishes it while others are still to get it. */
    atomic_store_explicit(&b->refs, refs, memory_order_relaxed);
    for (unsigned k = 0; k < sh->n; k++)
        if (rill__for(sh, k)) {
            sh->m[k]->cur = NULL;
            rill__queue_hand_over(sh->m[k], b, n, wake);
        }
}

/* What the partial batch is for from now on: after a publish it is NULL, or
 * an empty batch the members' latency checks must see only if it is theirs. */
static void rill__share_retarget(rill__share *sh, int target, bool wake) {
    if (sh->target == target)
        return;
    rill__share_publish(sh, wake);
    sh->target = target;
    sh->room = 0;
    for (unsigned k = 0; k < sh->n; k++) {
        rill__queue *e = sh->m[k];
        e->cur = sh->cur && rill__for(sh, k) ? sh->cur : NULL;
        /* A queue's unpublished items are only those of a partial batch for
         * it (one for port j alone is not the other queues'). */
        atomic_store_explicit(&e->pending_at, rill__for(sh, k) ? &sh->pending : &e->pending,
                              memory_order_relaxed);
    }
}

/* The slow part of a push: the partial batch is for other members, a member
 * may be full, or there is no partial batch. */
static int rill__share_prepare(rill__share *sh, int target, int stop_code) {
    rill__share_retarget(sh, target, false);
    for (;;) {
        if (sh->room == 0 && (sh->room = rill__share_room(sh)) == 0) {
            /* Some member is full: let every consumer see what we hold, and
             * wait for each full one in turn (the wait flushes first). */
            for (unsigned k = 0; k < sh->n; k++) {
                if (!rill__for(sh, k))
                    continue;
                rill__queue *e = sh->m[k];
                uint64_t queued = e->produced_local - e->consumed_seen + (sh->cur ? sh->cur->n : 0);
                if (queued < e->capacity)
                    continue;
                int rc = rill__queue_wait_room(e, stop_code);
                if (rc)
                    return rc;
            }
            continue;
        }
        if (sh->cur)
            return 0;
        int rc = rill__share_batch(sh, stop_code);
        if (rc)
            return rc;
    }
}

/* Out of line, as in queue.c: a borrowed item's bytes, copied once. */
__attribute__((noinline)) static int rill__share_borrowed(rill__share *sh, rill__batch *b) {
    if (rill__batch_copy(b, &b->items[b->n - 1]) < 0) {
        b->n--;
        sh->room++;
        atomic_store_explicit(&sh->pending, b->n, memory_order_relaxed);
        return RILL_ENOMEM;
    }
    if (b->n == sh->batch_cap)
        rill__share_publish(sh, false);
    return 0;
}

int rill__share_push(rill__share *sh, int port, const rill_item *item, int stop_code) {
    if (RILL__UNLIKELY(sh->room == 0 || !sh->cur || sh->target != port)) {
        int rc = rill__share_prepare(sh, port, stop_code);
        if (rc)
            return rc;
    }
    rill__batch *b = sh->cur;
    if (b->n == 0)
        b->started = 0; /* stamped lazily by the latency check */
    b->items[b->n++] = *item;
    sh->room--;
    atomic_store_explicit(&sh->pending, b->n, memory_order_relaxed);
    rill_ref *o = item->owner;
    if (RILL__UNLIKELY(o != b->last)) {
        if (!o)
            return rill__share_borrowed(sh, b);
        if (o != RILL_REF_STATIC) {
            rill_ref_retain(o);
            b->owners[b->nowners++] = o;
        }
        b->last = o;
    }
    RILL__SUM_STATIC(b, o);
    if (b->n == sh->batch_cap)
        rill__share_publish(sh, false);
    return 0;
}

int rill__share_push_items(rill__share *sh, const rill_item *items, size_t n, int stop_code,
                           size_t *queued) {
    size_t i = 0;
    int rc = 0;
    while (i < n) {
        if (RILL__UNLIKELY(sh->room == 0 || !sh->cur || sh->target != -1) &&
            (rc = rill__share_prepare(sh, -1, stop_code)))
            break;
        rill__batch *b = sh->cur;
        size_t take = sh->room < sh->batch_cap - b->n ? sh->room : sh->batch_cap - b->n;
        take = take < n - i ? take : n - i;
        if (b->n == 0)
            b->started = 0; /* stamped lazily by the latency check */
        size_t got = rill__batch_append(b, items + i, take);
        b->n += (unsigned)got;
        sh->room -= (unsigned)got;
        i += got;
        atomic_store_explicit(&sh->pending, b->n, memory_order_relaxed);
        if (got < take) {
            rc = RILL_ENOMEM;
            break;
        }
        if (b->n == sh->batch_cap)
            rill__share_publish(sh, false);
    }
    *queued = i;
    return rc;
}

/* rill_try_emit's look (every member is asked, in port order): a member is
 * refused when full; a missing batch is refused on the first member, whose
 * producer side a batch given back wakes (rill__share_release). */
int rill__share_ready(rill__queue *e) {
    rill__share *sh = e->share;
    rill__share_retarget(sh, -1, true);
    e->consumed_seen = atomic_load_explicit(&e->consumed, memory_order_acquire);
    uint64_t queued = e->produced_local - e->consumed_seen + (sh->cur ? sh->cur->n : 0);
    if (queued >= e->capacity)
        return RILL__NO_ROOM;
    return sh->cur || e->share_ix != 0 ? RILL__ROOM : rill__share_try_batch(sh);
}

int rill__share_mark(rill__queue *e, bool eos, uint64_t id, int stop_code) {
    rill__share *sh = e->share;
    unsigned k = e->share_ix;
    rill__share_publish(sh, true); /* the items before it, to their members */
    rill__share_retarget(sh, (int)k, true);
    int rc = sh->cur ? 0 : rill__share_batch(sh, stop_code);
    if (rc)
        return rc;
    if (eos) {
        sh->cur->eos = true;
        e->eos_sent = true;
    } else {
        sh->cur->has_barrier = true;
        sh->cur->barrier = id;
    }
    rill__share_publish(sh, true);
    rill__queue_announce(e);
    sh->closed[k] |= eos;
    return 0;
}

void rill__share_release(rill__queue *e, rill__batch *b) {
    /* acq_rel: the others' reads of b come before the last one's drop. */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    atomic_store(&b->pub_n, 0);
    rill__batch_drop(b);
    RILL__PUBLISH(b);
    ck_ring_enqueue_spsc(&e->empty, e->empty_buf, b);
    /* A producer without a batch waits on the first member's space, and a
     * refused rill_try_emit armed it (same protocol as queue.c's hand-back:
     * make the batch available, bump the epoch, read the mark). */
    rill__queue *m0 = e->share->m[0];
    rill__park_wake(&m0->space);
    if (RILL__UNLIKELY(atomic_load_explicit(&m0->armed, memory_order_seq_cst)))
        rill__queue_room_freed(m0);
}

/* ---- planning and freeing ------------------------------------------------------- */

static bool rill__can_share(const rill_stage *st) {
    if (st->nemit < 2 || st->nout != st->nemit)
        return false;
    const rill__queue *e0 = st->out[0].queue;
    for (unsigned k = 0; k < st->nout; k++) {
        const rill__queue *e = st->out[k].queue;
        if (!e || st->out[k].dl || e->policy != RILL_OVERFLOW_BLOCK || e->capacity != e0->capacity ||
            e->batch_cap != e0->batch_cap || e->latency_ns != e0->latency_ns)
            return false;
    }
    return true;
}

int rill__share_plan(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (!rill__can_share(st))
            continue;
        unsigned n = st->nout;
        rill__share *sh = calloc(1, sizeof *sh);
        if (sh && (!(sh->m = calloc(n, sizeof *sh->m)) || !(sh->q = calloc(n, sizeof *sh->q)) ||
                   !(sh->closed = calloc(n, sizeof *sh->closed)))) {
            free(sh->m);
            free(sh->q);
            free(sh);
            sh = NULL;
        }
        if (!sh)
            return RILL_ENOMEM;
        sh->n = n;
        sh->target = -1;
        sh->st = st;
        sh->batch_cap = st->out[0].queue->batch_cap;
        /* A queue's batches, plus one per member for a mark or an item for
         * it alone, while every ring can still hold every batch. */
        rill__queue *e0 = st->out[0].queue;
        unsigned fit = ck_ring_capacity(&e0->empty) - 1;
        sh->max_batches = e0->max_batches + n < fit ? e0->max_batches + n : fit;
        atomic_init(&sh->pending, 0);
        for (unsigned k = 0; k < n; k++) {
            rill__queue *e = st->out[k].queue;
            sh->m[k] = e;
            sh->q[k] = e->q;
            e->share = sh;
            e->share_ix = k;
            atomic_store_explicit(&e->pending_at, &sh->pending, memory_order_relaxed);
        }
        st->share = sh;
    }
    return 0;
}

void rill__share_fini_batch(rill__batch *b) {
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
        return;
    rill__batch_drop(b);
    rill__batch_free(b);
}

/* The members are gone (their queues freed): what the producer never handed
 * over counts as taken in and discarded by each member it was for. */
void rill__share_member_gone(rill__share *sh) {
    if (++sh->nfini < sh->n)
        return;
    if (sh->cur) {
        for (unsigned k = 0; k < sh->n; k++)
            if (rill__for(sh, k)) {
                rill__queue_stats_begin(sh->q[k]);
                rill__counter_add(&sh->q[k]->in, sh->cur->n);
                rill__counter_add(&sh->q[k]->discarded, sh->cur->n);
                rill__queue_stats_end(sh->q[k]);
            }
        rill__batch_drop(sh->cur);
        rill__batch_free(sh->cur);
    }
    sh->st->share = NULL;
    free(sh->m);
    free(sh->q);
    free(sh->closed);
    free(sh);
}
