/* A queue's life: allocated and sized when the plan is made, freed at
 * close with what it still holds counted as discarded; and the ring count
 * that statistics read. The hand-offs themselves are queue.c. */
#include <stdlib.h>
#include <string.h>

#include "queue_ring.h"
#include "share.h"

static unsigned rill__pow2_at_least(unsigned n) {
    unsigned p = 2;
    while (p < n)
        p <<= 1;
    return p;
}

rill__queue *rill__queue_alloc(void) {
    rill__queue *e = aligned_alloc(_Alignof(rill__queue), sizeof *e);
    if (e)
        memset(e, 0, sizeof *e);
    return e;
}

int rill__queue_init(rill__queue *e, unsigned capacity, unsigned batch_cap, uint64_t latency_ns,
                    unsigned policy, rill__queue_stats *q, rill__park *data, const _Atomic int *stop) {
    memset(e, 0, sizeof *e);
    if (capacity == 0 || batch_cap == 0)
        return RILL_EINVAL;
    e->capacity = capacity;
    e->batch_cap = batch_cap < capacity ? batch_cap : capacity;
    /* Enough batches for a full queue of full batches, plus the one being
     * filled and the one being delivered, plus slack for partial batches
     * (flushes, latency): up to 64 of them may wait before a producer blocks
     * on batches rather than on items. rill_stage_add keeps need <= 2^20. */
    unsigned need = (capacity + e->batch_cap - 1) / e->batch_cap;
    e->max_batches = need + 2 + (capacity < 64 ? capacity : 64);
    unsigned ring = rill__pow2_at_least(e->max_batches + 2);
    e->full_buf = calloc(ring, sizeof *e->full_buf);
    e->empty_buf = calloc(ring, sizeof *e->empty_buf);
    if (!e->full_buf || !e->empty_buf) {
        free(e->full_buf);
        free(e->empty_buf);
        return RILL_ENOMEM;
    }
    ck_ring_init(&e->full, ring);
    ck_ring_init(&e->empty, ring);
    atomic_init(&e->produced, 0);
    atomic_init(&e->consumed, 0);
    rill__park_init(&e->space);
    e->latency_ns = latency_ns;
    e->policy = policy;
    e->q = q;
    atomic_init(&e->delivering, NULL);
    atomic_init(&e->armed, 0);
    e->room_efd = NULL;
    atomic_init(&e->pending_at, &e->pending);
    e->wake_depth = capacity / 2 > e->batch_cap ? capacity / 2 : e->batch_cap;
    e->data = data;
    e->stop = stop;
    return 0;
}

void rill__queue_fini(rill__queue *e) {
    uint64_t dropped = 0, unsent = 0;
    void *v;
    if (!e->full_buf)
        return;
    rill__queue_stats_begin(e->q);
    while (rill__ring_take(e, &v)) {
        RILL__RECEIVE(v);
        dropped += ((rill__batch *)v)->n;
        if (e->share) { /* freed by the last queue that holds it */
            rill__share_fini_batch(v);
            continue;
        }
        rill__batch_drop(v);
        rill__batch_free(v);
    }
    if (e->cur && !e->share) { /* a member's is the shared one, the share's to free */
        unsent = e->cur->n; /* never handed over: counted in and discarded */
        rill__batch_drop(e->cur);
        rill__batch_free(e->cur);
    }
    while (e->spare) {
        rill__batch *b = e->spare;
        e->spare = b->spare_next;
        rill__batch_free(b);
    }
    rill__counter_add(&e->q->in, unsent);
    rill__counter_add(&e->q->discarded, dropped + unsent);
    atomic_store(&e->q->queue, NULL);
    rill__queue_stats_end(e->q);
    while (ck_ring_dequeue_spsc(&e->empty, e->empty_buf, &v)) {
        RILL__RECEIVE(v);
        rill__batch_free(v);
    }
    free(e->full_buf);
    free(e->empty_buf);
    e->full_buf = e->empty_buf = NULL;
    e->cur = NULL;
    if (e->share)
        rill__share_member_gone(e->share);
}

uint64_t rill__queue_ring_items(rill__queue *e, uint64_t *delivering) {
    unsigned c = ck_pr_load_uint(&e->full.c_head), t = ck_pr_load_uint(&e->full.p_tail);
    uint64_t n = 0;
    if (t - c <= e->full.size) /* else a torn read: the caller retries */
        for (unsigned i = c; i != t; i++) {
            rill__batch *b = ck_pr_load_ptr(&e->full_buf[i & e->full.mask].value);
            if (b)
                n += atomic_load(&b->pub_n);
        }
    rill__batch *d = atomic_load(&e->delivering);
    *delivering = d ? atomic_load(&d->pub_n) : 0;
    return n + *delivering;
}
