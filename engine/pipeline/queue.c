/* Batched SPSC queue on concurrencykit rings, its hand-offs: push, publish,
 * flush, drop, take, done (see queue.h). Made and freed in queue_life.c. */
#include <stdlib.h>
#include <string.h>

#include "queue_ring.h"
#include "room.h"
#include "share.h"

#define RILL__LAZY_WAKE_NS 1000000u

static bool rill__stopped(const rill__queue *e) {
    return atomic_load_explicit(e->stop, memory_order_relaxed) != 0;
}

/* Wait on e->space until ready(e) holds or the pipeline stops. Whatever we
 * wait for (room, or a batch back) comes from the consumer: make sure it is
 * awake first, even if what we published was announced lazily. */
static int rill__queue_wait_loop(rill__queue *e, bool (*ready)(rill__queue *), int stop_code);

static int rill__queue_wait(rill__queue *e, bool (*ready)(rill__queue *), int stop_code) {
    /* This thread may block for long: what it queued for other threads must
     * not wait with it (partial batches, batches announced lazily). */
    if (e->before_wait)
        e->before_wait(e->before_wait_arg);
    uint64_t t0 = rill__now_ns();
    int rc = rill__queue_wait_loop(e, ready, stop_code);
    rill__wait_cpu_done();
    uint64_t waited = rill__now_ns() - t0;
    rill__counter_add(&e->q->wait_full_ns, waited);
    rill__counter_add(e->producer_waited, waited);
    return rc;
}

static int rill__queue_wait_loop(rill__queue *e, bool (*ready)(rill__queue *), int stop_code) {
    rill__park_wake(e->data);
    e->lazy_since = 0;
    /* A consumer that stops frees room as it hands back its batch: the stop
     * is read again after the room (ordered after it by the acquire in
     * ready), so an emit that waited across the stop fails instead of
     * queueing an item nobody will deliver. */
    for (unsigned spin = 0;; spin++) {
        if (ready(e))
            return rill__stopped(e) ? stop_code : 0;
        if (rill__stopped(e))
            return stop_code;
        if (rill__backoff(spin))
            continue;
        uint32_t seen = rill__park_epoch(&e->space);
        if (ready(e))
            return rill__stopped(e) ? stop_code : 0;
        if (rill__stopped(e))
            return stop_code;
        rill__park_wait(&e->space, seen, 0);
    }
}

/* The invariant the capacity bounds: items the producer counts as queued,
 * given the consumer's count `consumed` — published ones, less those
 * drop_oldest took back and those consumed, plus its partial batch. */
static inline uint64_t rill__queue_queued(const rill__queue *e, uint64_t consumed) {
    return e->produced_local - e->dropped_local - consumed + (e->cur ? e->cur->n : 0);
}

/* Producer: is e at its capacity? The consumer's count (a line the consumer
 * writes) is read again only when the last one read says full. */
static inline bool rill__queue_full(rill__queue *e) {
    if (RILL__LIKELY(rill__queue_queued(e, e->consumed_seen) < e->capacity))
        return false;
    e->consumed_seen = atomic_load_explicit(&e->consumed, memory_order_acquire);
    return rill__queue_queued(e, e->consumed_seen) >= e->capacity;
}

static bool rill__has_room(rill__queue *e) {
    e->consumed_seen = atomic_load_explicit(&e->consumed, memory_order_acquire);
    return rill__queue_queued(e, e->consumed_seen) < e->capacity;
}

/* A batch back from the consumer has its item slots in the consumer's cache:
 * ask for them in exclusive state now, so the producer's stores into them do
 * not stall one cache miss at a time (the hop's producer spent 40% of its
 * time on that). A no-op where the instruction is missing. */
static void rill__prefetch_for_write(const rill__batch *b, size_t bytes) {
#if defined(__x86_64__) || defined(__i386__)
    const char *p = (const char *)b->items;
    for (size_t off = 0; off < bytes; off += 64)
        __asm__ __volatile__("prefetchw %0" : : "m"(p[off]));
#else
    (void)b;
    (void)bytes;
#endif
}

static bool rill__got_batch(rill__queue *e) {
    void *v;
    if (ck_ring_dequeue_spsc(&e->empty, e->empty_buf, &v)) {
        RILL__RECEIVE(v);
        e->cur = v;
        rill__prefetch_for_write(e->cur, (size_t)e->batch_cap * sizeof(rill_item));
        return true;
    }
    return false;
}

/* A batch for e->cur without waiting: a spare, one the consumer gave back,
 * or a new one while under max_batches. RILL__ROOM if e->cur is one now,
 * RILL__NO_ROOM if none is to be had, or RILL_ENOMEM. */
static int rill__queue_try_batch(rill__queue *e) {
    if (e->spare) {
        e->cur = e->spare;
        e->spare = e->spare->spare_next;
        return RILL__ROOM;
    }
    if (rill__got_batch(e))
        return RILL__ROOM;
    if (e->nalloc < e->max_batches) {
        if (!(e->cur = rill__batch_new(e->batch_cap)))
            return RILL_ENOMEM;
        e->nalloc++;
        return RILL__ROOM;
    }
    return RILL__NO_ROOM;
}

int rill__queue_wait_room(rill__queue *e, int stop_code) {
    return rill__queue_wait(e, rill__has_room, stop_code);
}

int rill__queue_wait_for(rill__queue *e, bool (*ready)(rill__queue *), int stop_code) {
    return rill__queue_wait(e, ready, stop_code);
}

static int rill__queue_new_batch(rill__queue *e, int stop_code) {
    int rc = rill__queue_try_batch(e);
    return rc == RILL__NO_ROOM ? rill__queue_wait(e, rill__got_batch, stop_code) : rc;
}

/* Hand the partial batch to the consumer. Waking a sleeping consumer costs a
 * futex call and a context switch, so a full batch only wakes it once half
 * the capacity is queued (wake == false); every other flush — end of
 * stream, latency, the producer about to wait — wakes it (wake == true). */
static void rill__queue_publish(rill__queue *e, bool wake) {
    if (RILL__UNLIKELY(e->share)) { /* its partial batch is the shared one */
        rill__share_publish(e->share, wake);
        return;
    }
    rill__batch *b = e->cur;
    if (!b || (b->n == 0 && !b->eos && !b->has_barrier))
        return;
    e->cur = NULL;
    atomic_store_explicit(&e->pending, 0, memory_order_relaxed);
    rill__queue_hand_over(e, b, b->n, wake);
}

void rill__queue_hand_over(rill__queue *e, rill__batch *b, unsigned n, bool wake) {
    /* Once in the ring the batch is the consumer's: read nothing of it after. */
    e->produced_local += n;
    rill__queue_stats *q = e->q;
    rill__queue_stats_begin(q);
    atomic_store(&b->pub_n, n);
    RILL__PUBLISH(b);
    /* Cannot fail: at most max_batches exist and the ring holds more. */
    ck_ring_enqueue_spsc(&e->full, e->full_buf, b);
    atomic_store_explicit(&e->produced, e->produced_local, memory_order_release);
    if (RILL__UNLIKELY(e->handover_delay_ns)) /* tests: held open, as if preempted */
        for (uint64_t end = rill__now_ns() + e->handover_delay_ns; rill__now_ns() < end;)
            ;
    rill__counter_add(&q->in, n);
    rill__counter_add(&q->batches, 1);
    uint64_t depth = rill__queue_queued(e, atomic_load(&e->consumed));
    if (depth > atomic_load_explicit(&q->high_water, memory_order_relaxed))
        atomic_store(&q->high_water, depth);
    rill__queue_stats_end(q);
    if (wake || e->produced_local - e->consumed_seen >= e->wake_depth) {
        rill__park_wake(e->data);
        e->lazy_since = 0;
    } else if (!e->lazy_since) {
        e->lazy_since = rill__now_ns(); /* a sleeping consumer may not know yet */
    }
}

void rill__queue_announce(rill__queue *e) {
    if (e->lazy_since) {
        rill__park_wake(e->data);
        e->lazy_since = 0;
    }
}

/* With no partial batch, a full one may still have been published without a
 * wake-up: announce it, or a source that flushes and then blocks in its
 * produce (waiting for input) leaves it unseen by a sleeping consumer. */
void rill__queue_flush(rill__queue *e) {
    rill__queue_publish(e, true);
    rill__queue_announce(e);
}

void rill__queue_flush_lazy(rill__queue *e) { rill__queue_publish(e, false); }

uint64_t rill__queue_nudge(rill__queue *e, uint64_t now) {
    if (!e->lazy_since)
        return UINT64_MAX;
    /* Published before its producer parked: the consumer must learn of it
     * soon whatever the latency bound, so never later than 1 ms. */
    uint64_t delay = e->latency_ns < RILL__LAZY_WAKE_NS ? e->latency_ns : RILL__LAZY_WAKE_NS;
    uint64_t due = e->lazy_since + delay;
    if (now < due)
        return due - now;
    rill__park_wake(e->data);
    e->lazy_since = 0;
    return UINT64_MAX;
}

/* drop_oldest on a full queue: take the oldest waiting batch back out of the
 * ring and drop its items. False if none waits (the consumer is delivering
 * the only one): then the new item is dropped instead. */
static bool rill__queue_drop_oldest(rill__queue *e) {
    void *v;
    rill__queue_stats_begin(e->q);
    bool ok = ck_ring_dequeue_spmc(&e->full, e->full_buf, &v);
    if (ok) {
        RILL__RECEIVE(v);
        rill__batch *b = v;
        rill__counter_add(&e->q->dropped, b->n);
        e->dropped_local += b->n;
        atomic_store(&b->pub_n, 0);
    }
    rill__queue_stats_end(e->q);
    if (!ok)
        return false;
    if (RILL__UNLIKELY(((rill__batch *)v)->has_barrier)) {
        /* A barrier is never dropped, or its consumer would wait for it
         * forever: its items go, the marker is queued again, behind what
         * was queued after it (a leaky queue gives no exact checkpoint). */
        rill__batch *b = v;
        uint64_t id = b->barrier;
        bool freed = b->n > 0; /* else the caller drops the new item */
        rill__batch_drop(b);
        b->has_barrier = true;
        b->barrier = id;
        RILL__PUBLISH(b);
        ck_ring_enqueue_spsc(&e->full, e->full_buf, b);
        rill__park_wake(e->data);
        return freed;
    }
    rill__batch_drop(v);
    if (!e->cur) {
        e->cur = v;
    } else {
        /* Kept for our next batch, not freed: a snapshot may still read it
         * through a stale ring slot (rill__queue_ring_items). The empty ring
         * is not an option: its one producer is the consumer. */
        rill__batch *b = v;
        b->spare_next = e->spare;
        e->spare = b;
    }
    return true;
}

static int rill__queue_drop_newest(rill__queue *e) {
    rill__queue_stats_begin(e->q);
    rill__counter_add(&e->q->in, 1);
    rill__counter_add(&e->q->dropped, 1);
    rill__queue_stats_end(e->q);
    return 0;
}

/* The end of rill__queue_push for a borrowed item, the last one of b: copy
 * its bytes. Out of line (a tail call), so that pushing an owned or static
 * item does not pay for this path's registers (callgrind: 8 instructions
 * per item when it was inlined). */
__attribute__((noinline)) static int rill__push_borrowed(rill__queue *e, rill__batch *b) {
    if (rill__batch_copy(b, &b->items[b->n - 1]) < 0) {
        b->n--;
        atomic_store_explicit(&e->pending, b->n, memory_order_relaxed); /* not queued */
        return RILL_ENOMEM;
    }
    if (b->n == e->batch_cap)
        rill__queue_publish(e, false);
    return 0;
}

int rill__queue_push(rill__queue *e, const rill_item *item, int stop_code) {
    if (RILL__UNLIKELY(rill__queue_full(e))) {
        /* Full even after a fresh look: drop, or let the consumer see our
         * partial batch and wait for room. */
        if (e->policy != RILL_OVERFLOW_BLOCK) {
            if (e->policy == RILL_OVERFLOW_DROP_NEWEST || !rill__queue_drop_oldest(e))
                return rill__queue_drop_newest(e);
        } else {
            rill__queue_flush(e);
            int rc = rill__queue_wait(e, rill__has_room, stop_code);
            if (rc)
                return rc;
        }
    }
    rill__batch *b = e->cur;
    if (!b) {
        int rc = rill__queue_try_batch(e);
        if (rc == RILL__NO_ROOM && e->policy != RILL_OVERFLOW_BLOCK) {
            /* Every batch in flight (many partial ones): a leaky queue drops
             * rather than stall its producer. */
            if (e->policy == RILL_OVERFLOW_DROP_NEWEST || !rill__queue_drop_oldest(e))
                return rill__queue_drop_newest(e);
            rc = e->cur ? RILL__ROOM : rill__queue_try_batch(e);
        }
        if (rc == RILL__NO_ROOM)
            rc = rill__queue_wait(e, rill__got_batch, stop_code);
        if (rc)
            return rc;
        b = e->cur;
    }
    if (b->n == 0)
        b->started = 0; /* stamped lazily by the latency check */
    b->items[b->n++] = *item;
    atomic_store_explicit(&e->pending, b->n, memory_order_relaxed);
    rill_ref *o = item->owner;
    /* One compare for an item with the owner of the one before it (a run of
     * lines of one buffer, or static items: b->last starts static). */
    if (RILL__UNLIKELY(o != b->last)) {
        if (!o)
            return rill__push_borrowed(e, b);
        if (o != RILL_REF_STATIC) {
            rill_ref_retain(o);
            b->owners[b->nowners++] = o;
        }
        b->last = o;
    }
    RILL__SUM_STATIC(b, o);
    if (b->n == e->batch_cap)
        rill__queue_publish(e, false);
    return 0;
}

int rill__queue_push_items(rill__queue *e, const rill_item *items, size_t n, int stop_code,
                           size_t *queued) {
    size_t i = 0;
    int rc = 0;
    if (e->policy != RILL_OVERFLOW_BLOCK) { /* drops are decided item by item */
        while (i < n && (rc = rill__queue_push(e, &items[i], stop_code)) == 0)
            i++;
        *queued = i;
        return rc;
    }
    while (i < n) {
        if (RILL__UNLIKELY(rill__queue_full(e))) {
            rill__queue_flush(e);
            if ((rc = rill__queue_wait(e, rill__has_room, stop_code)))
                break;
        }
        if (!e->cur && (rc = rill__queue_new_batch(e, stop_code)))
            break;
        rill__batch *b = e->cur;
        size_t take = e->capacity - rill__queue_queued(e, e->consumed_seen);
        take = take < e->batch_cap - b->n ? take : e->batch_cap - b->n;
        take = take < n - i ? take : n - i;
        if (b->n == 0)
            b->started = 0; /* stamped lazily by the latency check */
        size_t got = rill__batch_append(b, items + i, take);
        b->n += (unsigned)got;
        i += got;
        atomic_store_explicit(&e->pending, b->n, memory_order_relaxed);
        if (got < take) {
            rc = RILL_ENOMEM;
            break;
        }
        if (b->n == e->batch_cap)
            rill__queue_publish(e, false);
    }
    *queued = i;
    return rc;
}

int rill__queue_ready(rill__queue *e) {
    if (RILL__UNLIKELY(e->share))
        return rill__share_ready(e);
    if (e->policy != RILL_OVERFLOW_BLOCK)
        return RILL__ROOM;
    if (rill__queue_full(e))
        return RILL__NO_ROOM;
    return e->cur ? RILL__ROOM : rill__queue_try_batch(e);
}

int rill__queue_close(rill__queue *e, int stop_code) {
    if (e->eos_sent)
        return 0;
    if (RILL__UNLIKELY(e->share))
        return rill__share_mark(e, true, 0, stop_code);
    if (!e->cur) {
        int rc = rill__queue_new_batch(e, stop_code);
        if (rc)
            return rc;
    }
    e->cur->eos = true;
    e->eos_sent = true;
    rill__queue_flush(e);
    return 0;
}

rill__batch *rill__queue_take(rill__queue *e) {
    void *v;
    if (ck_ring_size(&e->full) == 0) /* polled while idle: keep it cheap */
        return NULL;
    rill__queue_stats_begin(e->q);
    bool ok = rill__ring_take(e, &v);
    if (ok)
        atomic_store(&e->delivering, (rill__batch *)v);
    rill__queue_stats_end(e->q);
    if (!ok)
        return NULL;
    RILL__RECEIVE(v);
#ifdef RILL_DEBUG
    rill__check_static(e, v);
#endif
    return v;
}

void rill__queue_done(rill__queue *e, rill__batch *b, unsigned delivered) {
    uint64_t n = b->n;
    rill__queue_stats_begin(e->q);
    atomic_store(&e->delivering, NULL);
    if (!e->share) /* a shared batch may still wait in another queue */
        atomic_store(&b->pub_n, 0);
    rill__counter_add(&e->q->out, delivered);
    rill__counter_add(&e->q->discarded, n - delivered);
    e->consumed_local += n;
    atomic_store_explicit(&e->consumed, e->consumed_local, memory_order_release);
    rill__queue_stats_end(e->q);
    if (RILL__UNLIKELY(e->share)) {
        rill__share_release(e, b); /* the last of its consumers recycles it */
    } else {
        rill__batch_drop(b);
        RILL__PUBLISH(b);
        ck_ring_enqueue_spsc(&e->empty, e->empty_buf, b);
    }
    /* A producer waiting for room sleeps until the queue is half empty (or
     * the consumer runs dry): fewer, larger wake-ups. A rill_try_emit loop
     * waiting on the room fd is signalled by the same rule, after the wake
     * (its epoch increment is the consumer's half of the arming protocol,
     * room.h). */
    uint64_t depth = atomic_load_explicit(&e->produced, memory_order_acquire) - e->consumed_local;
    if (depth <= e->capacity - e->wake_depth || ck_ring_size(&e->full) == 0) {
        rill__park_wake(&e->space);
        if (RILL__UNLIKELY(atomic_load_explicit(&e->armed, memory_order_seq_cst)))
            rill__queue_room_freed(e);
    }
}

int rill__queue_barrier(rill__queue *e, uint64_t id, int stop_code) {
    if (e->eos_sent)
        return 0;
    if (RILL__UNLIKELY(e->share))
        return rill__share_mark(e, false, id, stop_code);
    if (!e->cur) { /* a barrier is always handed over at once: cur has none */
        int rc = rill__queue_new_batch(e, stop_code);
        if (rc)
            return rc;
    }
    e->cur->has_barrier = true;
    e->cur->barrier = id;
    rill__queue_flush(e);
    return 0;
}
