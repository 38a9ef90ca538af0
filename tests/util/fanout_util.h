/* Helpers of the fan-out tests (tests/test_thread_fanout*.c): a source
 * broadcasting n 64-bit values as owned (counted owners, which detect a
 * release too many), borrowed or static items, by rill_emit, rill_emit_to
 * or rill_try_emit, with barriers; threaded consumers that check order,
 * count, sum and barriers; and the per-queue statistics check. Stage
 * callbacks record into their state; tests check in the test thread. */
#ifndef RILL_TESTS_FANOUT_UTIL_H
#define RILL_TESTS_FANOUT_UTIL_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { MAXC = 5 };

/* ---- owners that count their releases --------------------------------------- */

enum { CHUNK = 64 };
typedef struct chunk {
    rill_ref ref;
    uint64_t v[CHUNK];
} chunk;

static atomic_long live_chunks;   /* made and not yet released */
static atomic_long extra_release; /* released more often than referenced */

static inline void chunk_release(rill_ref *r) {
    chunk *c = (chunk *)r;
    if (c->v[0] == UINT64_MAX) /* released before: a double free */
        atomic_fetch_add(&extra_release, 1);
    c->v[0] = UINT64_MAX;
    atomic_fetch_sub(&live_chunks, 1);
    free(c);
}

/* ---- the source: n values, as owned, borrowed or static items ---------------- */

enum { OWNED, BORROWED, STATIC };
typedef struct src {
    uint64_t n, next;       /* n = 0: until the pipeline stops */
    unsigned kind;
    unsigned to_port;       /* nonzero: every 3rd item goes to port (v/3) % nports only */
    unsigned nports;
    uint64_t barrier_every; /* a barrier after every this many items (0: none) */
    bool try_emit;
    bool runs;              /* rill_emit_items, RUN items at a time (no barriers) */
    int room_fd;
    uint64_t *vals;         /* STATIC: vals[i] = i */
    chunk *c;
} src;

static inline int src_emit(rill_stage *st, src *s, const rill_item *it, uint64_t v) {
    if (s->to_port && v % 3 == 0)
        return rill_emit_to(st, (unsigned)(v / 3) % s->nports, it);
    if (!s->try_emit)
        return rill_emit(st, it);
    for (;;) {
        int rc = rill_try_emit(st, it);
        if (rc != RILL_EAGAIN)
            return rc;
        if (s->room_fd < 0 && rill_stage_room_fd(st, &s->room_fd))
            return RILL_ESTAGE;
        /* wait for the signal, as an event loop would (bounded: a lost
         * signal shows as a slow test, and the wait ends at a stop) */
        struct pollfd pf = {.fd = s->room_fd, .events = POLLIN};
        if (poll(&pf, 1, 100) > 0) {
            uint64_t d;
            if (read(s->room_fd, &d, sizeof d) < 0)
                (void)d;
        }
    }
}

/* Value v as an item of s's kind; a borrowed one's bytes are *slot, which
 * lives on the caller's stack only. OWNED: the chunk v falls in must be
 * made first (src_chunk). */
static inline rill_item src_item(src *s, uint64_t v, uint64_t *slot) {
    if (s->kind == OWNED) {
        s->c->v[v % CHUNK] = v;
        return (rill_item){&s->c->v[v % CHUNK], sizeof v, &s->c->ref};
    }
    if (s->kind == BORROWED) {
        *slot = v;
        return rill_item_borrow(slot, sizeof v);
    }
    return rill_item_static(&s->vals[v], sizeof v);
}

/* OWNED: a new chunk at each multiple of CHUNK, the source's reference to
 * the last one dropped (items emitted hold their own). */
static inline int src_chunk(src *s, uint64_t v) {
    if (s->kind != OWNED || (s->c && v % CHUNK != 0))
        return 0;
    if (s->c)
        rill_ref_release(&s->c->ref);
    if (!(s->c = malloc(sizeof *s->c)))
        return RILL_ENOMEM;
    rill_ref_init(&s->c->ref, chunk_release);
    atomic_fetch_add(&live_chunks, 1);
    return 0;
}

/* Runs of RUN items (odd, so runs straddle batches), cut where a chunk
 * ends: the source drops its reference to a chunk only once the items in
 * it are emitted. */
static inline int src_produce_runs(rill_stage *st, src *s) {
    enum { RUN = 37 };
    rill_item its[RUN];
    uint64_t slots[RUN];
    size_t k = 0;
    int rc = 0;
    for (unsigned j = 0; j < 100 && !rc && !(s->n && s->next == s->n); j++) {
        uint64_t v = s->next;
        if (k && s->kind == OWNED && v % CHUNK == 0) {
            rc = rill_emit_items(st, its, k);
            k = 0;
        }
        if (rc || (rc = src_chunk(s, v)))
            break;
        its[k] = src_item(s, v, &slots[k]);
        s->next++;
        if (++k == RUN) {
            rc = rill_emit_items(st, its, k);
            k = 0;
        }
    }
    if (!rc && k)
        rc = rill_emit_items(st, its, k);
    return rc ? rc : s->n && s->next == s->n ? RILL_EDONE : 0;
}

static inline int src_produce(rill_stage *st, void *state) {
    src *s = state;
    if (s->runs)
        return src_produce_runs(st, s);
    for (unsigned k = 0; k < 100; k++) {
        if (s->n && s->next == s->n)
            return RILL_EDONE;
        uint64_t v = s->next, slot;
        int rc = src_chunk(s, v);
        if (rc)
            return rc;
        rill_item it = src_item(s, v, &slot);
        rc = src_emit(st, s, &it, v);
        if (rc)
            return rc;
        s->next++;
        if (s->barrier_every && s->next % s->barrier_every == 0 &&
            (rc = rill_emit_barrier(st, s->next / s->barrier_every)))
            return rc;
    }
    return 0;
}

static inline int src_close(rill_stage *st, void *state) {
    (void)st;
    src *s = state;
    if (s->c)
        rill_ref_release(&s->c->ref);
    s->c = NULL;
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce, .close = src_close};

/* ---- consumers --------------------------------------------------------------- */

typedef struct sink {
    unsigned index, nports;
    bool to_port;
    uint64_t count, sum, next, bad_order, fail_at; /* fail_at: send fails there (0: never) */
    uint64_t barriers, bad_barrier, barrier_every, last_barrier_count;
    uintptr_t *slots;      /* if set: the address of each item handed over */
    size_t nslots;
    atomic_ullong seen;    /* for the test thread while running */
} sink;

/* Is value v for consumer idx (emit_to sends every third to one port)? */
static inline bool is_for(const sink *s, uint64_t v) {
    return !s->to_port || v % 3 != 0 || (v / 3) % s->nports == s->index;
}

static inline int sink_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    sink *s = state;
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    while (s->next < v && !is_for(s, s->next)) /* values meant for other ports */
        s->next++;
    if (v != s->next)
        s->bad_order++;
    s->next = v + 1;
    if (s->slots && s->count < s->nslots)
        s->slots[s->count] = (uintptr_t)item;
    s->count++;
    s->sum += v;
    atomic_store_explicit(&s->seen, s->count, memory_order_relaxed);
    if (s->fail_at && s->count == s->fail_at)
        return rill_stage_fail(st, RILL_ESTAGE, "failing on purpose at item %llu",
                               (unsigned long long)s->count);
    return rill_emit(st, item); /* on to the merge, if connected */
}

static inline int sink_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    sink *s = state;
    s->barriers++;
    if (s->count != id * s->barrier_every || id != s->barriers)
        s->bad_barrier++;
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send, .barrier = sink_barrier};

/* ---- one run ----------------------------------------------------------------- */

typedef struct fan {
    unsigned nc, capacity, slow; /* slow: index of the slow consumer + 1 (0: none) */
    src s;
    sink k[MAXC];
    rill_pipeline *p;
    rill_stage *src_st, *sink_st[MAXC];
} fan;

static inline int fan_build(fan *f) {
    int rc = rill_pipeline_new("fanout", &f->p);
    if (rc)
        return rc;
    if ((rc = rill_stage_add(f->p, "src", &src_ops, &f->s, NULL, &f->src_st)))
        return rc;
    rill_stage_opts t = {.flags = RILL_STAGE_THREADED, .capacity = f->capacity};
    for (unsigned i = 0; i < f->nc; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        f->k[i].index = i;
        f->k[i].nports = f->nc;
        f->k[i].to_port = f->s.to_port;
        f->k[i].barrier_every = f->s.barrier_every;
        if ((rc = rill_stage_add(f->p, name, &sink_ops, &f->k[i], &t, &f->sink_st[i])) ||
            (rc = rill_connect(f->src_st, f->sink_st[i])))
            return rc;
        if (f->slow == i + 1)
            rill_stage_set_delay(f->sink_st[i], RILL_TEST_TSAN ? 20 : 5);
    }
    f->s.nports = f->nc;
    f->s.room_fd = -1;
    return 0;
}

/* Per queue: what went in came out or was discarded, and matches what its
 * consumer counted; returns the number of mismatches. */
static inline int fan_check_queues(fan *f, uint64_t *discarded) {
    rill_stats *st = NULL;
    int bad = 0;
    if (rill_pipeline_stats(f->p, &st))
        return 1;
    *discarded = 0;
    for (size_t i = 0; i < st->nqueues; i++) {
        const rill_queue_stats *q = &st->queues[i];
        unsigned c = (unsigned)atoi(q->to + 5); /* "sink-N" */
        bad += q->in != q->out + q->discarded;
        bad += q->out != f->k[c].count;
        bad += q->depth != 0 || q->unpublished != 0;
        *discarded += q->discarded;
    }
    bad += st->nqueues != f->nc;
    rill_stats_free(st);
    return bad;
}

static inline uint64_t expected_count(const fan *f, unsigned c) {
    uint64_t n = 0;
    for (uint64_t v = 0; v < f->s.n; v++)
        n += is_for(&f->k[c], v);
    return n;
}

static inline uint64_t expected_sum(const fan *f, unsigned c) {
    uint64_t sum = 0;
    for (uint64_t v = 0; v < f->s.n; v++)
        if (is_for(&f->k[c], v))
            sum += v;
    return sum;
}

/* Build, run to the end, check every consumer's count, sum and order, and
 * every owner released once; the caller frees f->p. */
static inline void run_complete(fan *f, bool *ok) {
    *ok = false;
    atomic_store(&live_chunks, 0);
    atomic_store(&extra_release, 0);
    CHECK_OK(fan_build(f));
    CHECK_OK(rill_pipeline_run(f->p));
    for (unsigned c = 0; c < f->nc; c++) {
        CHECK_EQ(f->k[c].count, expected_count(f, c));
        CHECK_EQ(f->k[c].sum, expected_sum(f, c));
        CHECK_EQ(f->k[c].bad_order, 0);
    }
    uint64_t discarded;
    CHECK_EQ(fan_check_queues(f, &discarded), 0);
    CHECK_EQ(discarded, 0);
    CHECK_EQ(atomic_load(&live_chunks), 0);
    CHECK_EQ(atomic_load(&extra_release), 0);
    *ok = true;
}


#endif
