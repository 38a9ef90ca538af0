/* A bounded, batched SPSC hand-off of items from one producer thread to one
 * consumer thread: the queue on a connection from a stage to a threaded one.
 *
 * Built on two concurrencykit SPSC rings of batch pointers: `full` carries
 * batches of items to the consumer, `empty` returns them for reuse, so the
 * steady state allocates nothing. A batch retains each distinct owner of its
 * items once (per buffer, not per item) and the consumer drops those
 * references after delivering the batch. Borrowed items (owner NULL) are
 * copied into the batch's arena, one block that grows when needed and is
 * reused with the batch; static items are kept by pointer.
 *
 * Capacity is counted in items and enforced exactly: items in the producer's
 * partial batch already count as queued, so the depth never exceeds the
 * capacity and reaches it when the consumer is slow. The counters
 * `produced` and `consumed` each have a single writer; their difference is
 * the number of visible queued items.
 *
 * Progress: enqueue and dequeue are wait-free; a producer on a full queue
 * (or with every batch in flight) and a consumer on an empty one spin
 * briefly and then park (park.h). A producer that must not wait (rill_try_emit)
 * asks rill__queue_ready instead and, when refused, arms the queue: the
 * consumer then writes the producing stage's room eventfd as it frees room
 * (room.h). */
#ifndef RILL_QUEUE_H
#define RILL_QUEUE_H

#include <ck_ring.h>
#include <stdbool.h>
#include <stdint.h>

#include "park.h"
#include "core/clock.h"
#include "stats/stats_int.h"
#include "rill/item.h"

typedef struct rill__batch {
    unsigned n;        /* items */
    unsigned nowners;  /* distinct owners retained for this batch */
    bool eos;          /* end of stream: the producer sends nothing after it */
    bool has_barrier;  /* a checkpoint barrier follows the items (barrier.c) */
    uint64_t barrier;  /* its id */
    uint64_t started;  /* monotonic ns of the first item (latency flushes) */
    _Atomic unsigned pub_n; /* n as published, for statistics readers */
    _Atomic unsigned refs;  /* shared (share.c): consumers yet to finish with it */
    rill_item *items;
    rill_ref **owners;
    rill_ref *last;    /* owner of the item appended last (static at first) */
    struct rill__batch *spare_next; /* producer's list of spare batches */
    char *arena;       /* copies of borrowed items' bytes (owner NULL here) */
    size_t arena_len, arena_cap;
    uint64_t *sums;    /* RILL_DEBUG: checksum of each static item's bytes */
} rill__batch;

/* Fields grouped by who writes them, each group on cache lines of its own:
 * a line the consumer writes once per batch must not be one the producer
 * reads for every item (and the other way round), or every hand-over costs
 * the other thread cache misses — about a tenth of a hop's throughput, and
 * different from build to build as malloc's alignment of the queue moved.
 * Allocate queues with rill__queue_alloc. */
#define RILL__LINE 64

struct rill__queue {
    /* set up once, read by both */
    rill__queue_stats *q;           /* counters of this queue (outlive it) */
    _Atomic uint64_t *producer_waited; /* producing thread's waiting time */
    unsigned policy;          /* RILL_OVERFLOW_* */
    unsigned capacity, batch_cap, max_batches;
    unsigned wake_depth;       /* queued items that justify waking the consumer */
    uint64_t latency_ns;       /* partial batches wait at most about this */
    void (*before_wait)(void *arg);  /* the producer is about to block */
    void *before_wait_arg;
    rill__park *data;          /* the consumer sleeps here when empty */
    const _Atomic int *stop;   /* nonzero: give up waiting (pipeline stopped) */
    ck_ring_buffer_t *full_buf, *empty_buf;
    _Atomic int *room_efd;     /* the producing stage's room eventfd + 1 (0: none
                                  yet); NULL for rill_pipeline_push's queue */
    uint32_t arm_delay_ns;     /* tests: rill__fault_room_arm_ns (fault.h) */
    uint32_t handover_delay_ns; /* tests: rill__fault_handover_ns (fault.h) */
    struct rill__share *share; /* a member of a shared fan-out (share.c), or NULL */
    unsigned share_ix;         /* its index there: the producer's port */
    /* written by a refused rill_try_emit, read once per hand-back */
    _Atomic int armed;         /* 0, or RILL__ROOM_* (room.h): a refused
                                  rill_try_emit waits for the room fd */
    struct rill_stage *from, *to; /* its two ends (from NULL: rill_pipeline_push),
                                  named when RILL_DEBUG finds a static item changed */
    /* the producer's */
    _Alignas(RILL__LINE) rill__batch *cur; /* partial batch being filled */
    _Atomic unsigned pending; /* cur->n, for statistics readers (unpublished) */
    /* What statistics read as unpublished: &pending, or, for a member of a
     * shared fan-out, the shared count while the shared partial batch is for
     * this queue (else &pending, which stays 0 there). Set by share.c. */
    _Atomic unsigned *_Atomic pending_at;
    uint64_t produced_local;  /* == produced, without the atomic load */
    uint64_t consumed_seen;   /* last value of consumed read by the producer */
    uint64_t dropped_local;   /* items drop_oldest took back out of the ring */
    rill__batch *spare;       /* batches drop_oldest took back, for reuse */
    unsigned nalloc;          /* batches allocated so far */
    bool eos_sent;
    uint64_t lazy_since;       /* ns since items were published without waking
                                  the consumer (0: none) */
    _Atomic uint64_t produced; /* items made visible to the consumer */
    /* the consumer's */
    _Alignas(RILL__LINE) rill__batch *_Atomic delivering; /* the batch it delivers */
    _Atomic uint64_t consumed; /* items taken by the consumer */
    uint64_t consumed_local;   /* == consumed, consumer side */
    /* the consumer increments its epoch; a blocked producer sleeps on it */
    _Alignas(RILL__LINE) rill__park space;
    /* ck pads each ring's consumer and producer indexes apart */
    _Alignas(RILL__LINE) ck_ring_t full;
    _Alignas(RILL__LINE) ck_ring_t empty;
};

/* A zeroed, suitably aligned queue for rill__queue_init, or NULL; free() it. */
rill__queue *rill__queue_alloc(void);

/* Prepare e. batch_cap is clamped to capacity. Returns 0 or RILL_ENOMEM. */
int rill__queue_init(rill__queue *e, unsigned capacity, unsigned batch_cap, uint64_t latency_ns,
                    unsigned policy, rill__queue_stats *q, rill__park *data, const _Atomic int *stop);

/* Free e. Only once neither thread uses it any more. Items still queued are
 * dropped (their owners released) and counted as discarded. */
void rill__queue_fini(rill__queue *e);

/* Producer: append item (retaining its owner once per batch, or copying its
 * bytes if it is borrowed). Blocks while the queue is full. Returns 0, the
 * stop code if the pipeline stopped while it waited (the item is then not
 * queued), or RILL_ENOMEM. */
int rill__queue_push(rill__queue *e, const rill_item *item, int stop_code);

/* Producer: rill__queue_push for items[0..n) in order, appended a chunk at a
 * time (one capacity check and one copy per chunk, owners retained and
 * borrowed bytes copied as for one item). Blocks while the queue is full.
 * *queued: how many were appended (or dropped by a drop policy); the rest
 * were not, on a stop (stop_code) or RILL_ENOMEM. */
int rill__queue_push_items(rill__queue *e, const rill_item *items, size_t n, int stop_code,
                           size_t *queued);

/* Producer: make the partial batch visible now and wake the consumer if it
 * sleeps (also for batches published lazily before). Never blocks. */
void rill__queue_flush(rill__queue *e);

/* Producer: make the partial batch visible now, but wake a sleeping consumer
 * only if half the capacity is queued; otherwise rill__queue_nudge() wakes it
 * once the oldest unannounced batch is min(latency_ns, 1 ms) old. For a producer about
 * to wait for its own input: a trickle of items then costs one wake-up per
 * latency period, not one per item. */
void rill__queue_flush_lazy(rill__queue *e);

/* Producer: wake the consumer now if items were published without waking it. */
void rill__queue_announce(rill__queue *e);

/* Producer: wake the consumer if items announced lazily are due. Returns the
 * nanoseconds until the next one is due, or UINT64_MAX if none waits. */
uint64_t rill__queue_nudge(rill__queue *e, uint64_t now);

/* The answer to a producer that must not wait (rill_try_emit): can the
 * queue take one more item now? Functions that answer it return one of
 * these, or RILL_ENOMEM. */
typedef enum rill__room { RILL__ROOM = 0, RILL__NO_ROOM = 1 } rill__room;

/* Producer: can e take one more item now, without waiting? RILL__ROOM if so
 * (taking a free batch for it if needed; always for drop policies),
 * RILL__NO_ROOM if not (full, or every batch in flight), or RILL_ENOMEM. */
int rill__queue_ready(rill__queue *e);

/* Producer: send end of stream (after a flush). Blocks only if every batch is
 * in flight; returns 0 or the stop code. */
int rill__queue_close(rill__queue *e, int stop_code);

/* Producer: checkpoint barrier id after the items queued so far: the partial
 * batch (or an empty one) carries it and is handed over now, waking the
 * consumer. Blocks only if every batch is in flight; returns 0, the stop
 * code or RILL_ENOMEM. */
int rill__queue_barrier(rill__queue *e, uint64_t id, int stop_code);

/* Consumer: the next batch, or NULL if none is visible. With RILL_DEBUG, a
 * static item of it whose bytes changed since it was queued fails the
 * pipeline (blaming the producing stage) before the batch is delivered. */
rill__batch *rill__queue_take(rill__queue *e);

/* Consumer: the first `delivered` items of b were delivered (the rest were
 * not: the pipeline stopped); release its owners, recycle it, wake the
 * producer. */
void rill__queue_done(rill__queue *e, rill__batch *b, unsigned delivered);

/* Items in the ring and in the batch being delivered, counted there (the
 * latter also in *delivering); for rill__queue_stats_read, which retries if
 * a hand-over ran meanwhile. */
uint64_t rill__queue_ring_items(rill__queue *e, uint64_t *delivering);

/* Items queued now (visible ones; read from the counters of the rings). */
static inline uint64_t rill__queue_depth(rill__queue *e) {
    uint64_t c = atomic_load_explicit(&e->consumed, memory_order_acquire);
    uint64_t p = atomic_load_explicit(&e->produced, memory_order_acquire);
    return p - c;
}

/* Producer: flush the partial batch if its first item waited longer than the
 * queue's latency bound (stamping it on first sight). */
static inline void rill__queue_flush_if_old(rill__queue *e, uint64_t now) {
    rill__batch *b = e->cur;
    if (!b || b->n == 0)
        return;
    if (!b->started)
        b->started = now;
    else if (now - b->started >= e->latency_ns)
        rill__queue_flush(e);
}

/* For share.c, which hands one batch to several queues of one producer. */
/* A new empty batch of batch_cap item slots, or NULL (queue_life.c). */
rill__batch *rill__batch_new(unsigned batch_cap);
/* Producer: put b (n items, no longer e->cur) in e's ring, with the counters
 * and the wake-up rule of a publish. */
void rill__queue_hand_over(rill__queue *e, rill__batch *b, unsigned n, bool wake);
/* Producer: wait, as a push does, until e has room for an item, or until
 * ready(e) holds; 0 or stop_code. */
int rill__queue_wait_room(rill__queue *e, int stop_code);
int rill__queue_wait_for(rill__queue *e, bool (*ready)(rill__queue *), int stop_code);

#endif
