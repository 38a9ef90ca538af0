/* What queue.c (the hand-offs), queue_life.c (making and freeing a queue)
 * and queue_copy.c (items that are not owned) share: ThreadSanitizer's view
 * of ck's rings, and small steps on batches. Private to those files. */
#ifndef RILL_QUEUE_RING_H
#define RILL_QUEUE_RING_H

#include <stdlib.h>

#include "queue.h"
#include "core/rill_int.h"

/* ck's atomics are inline assembly that ThreadSanitizer cannot see: tell it
 * that publishing a batch through a ring orders the batch's contents. */
#if defined(__SANITIZE_THREAD__)
#define RILL__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RILL__TSAN 1
#endif
#endif
#ifdef RILL__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define RILL__PUBLISH(p) __tsan_release(p)
#define RILL__RECEIVE(p) __tsan_acquire(p)
#else
#define RILL__PUBLISH(p) ((void)0)
#define RILL__RECEIVE(p) ((void)0)
#endif

static inline void rill__batch_drop(rill__batch *b) {
    for (unsigned i = 0; i < b->nowners; i++)
        rill_ref_release(b->owners[i]);
    b->nowners = 0;
    b->last = RILL_REF_STATIC;
    b->n = 0;
    b->eos = false;
    b->arena_len = 0;
    b->has_barrier = false;
    /* An arena grown for an outsized borrowed item is not kept for the
     * queue's life: past 1 MiB it goes, and grows again if needed. */
    if (RILL__UNLIKELY(b->arena_cap > (1u << 20))) {
        free(b->arena);
        b->arena = NULL;
        b->arena_cap = 0;
    }
}

static inline void rill__batch_free(rill__batch *b) {
    free(b->arena);
    free(b->sums);
    free(b);
}

/* queue_copy.c: copy the borrowed bytes of *it, an item of b, into b's
 * arena (moving the copies already there if it grows, their items fixed
 * up). 0 or RILL_ENOMEM. */
int rill__batch_copy(rill__batch *b, rill_item *it);

/* queue_copy.c: append a chunk of a run to b (see there); how many went. */
size_t rill__batch_append(rill__batch *b, const rill_item *items, size_t n);

#ifdef RILL_DEBUG
/* queue_copy.c: a static item's bytes summed when queued (RILL__SUM_STATIC
 * on b's last item) and checked when taken; a change fails the pipeline. */
uint64_t rill__sum(const rill_item *it);
void rill__check_static(rill__queue *e, const rill__batch *b);
#define RILL__SUM_STATIC(b, o) \
    ((o) == RILL_REF_STATIC ? (void)((b)->sums[(b)->n - 1] = rill__sum(&(b)->items[(b)->n - 1])) \
                            : (void)0)
#else
#define RILL__SUM_STATIC(b, o) ((void)0)
#endif

/* drop_oldest makes the producer a second consumer of the ring. */
static inline bool rill__ring_take(rill__queue *e, void **v) {
    return e->policy == RILL_OVERFLOW_DROP_OLDEST ? ck_ring_dequeue_spmc(&e->full, e->full_buf, v)
                                                  : ck_ring_dequeue_spsc(&e->full, e->full_buf, v);
}

#endif
