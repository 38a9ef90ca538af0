/* Fan-out into several threaded stages, whose queues share one batch per
 * hand-off (engine/pipeline/share.c): every consumer still gets every item
 * in order, at any capacity and whichever consumer finishes first; an abort
 * or a failing consumer neither hangs nor loses count, and every batch's
 * owners are released exactly once (a counting owner, and ASan's leak check);
 * barriers still align; emit_to, try_emit and borrowed items still work.
 * And the batch really is shared: every consumer is handed the same item
 * slots, which per-queue copies could never be.
 *
 * Items carry a 64-bit value in their bytes. Expectations are computed here
 * from the values emitted. Stage callbacks record into their state; the test
 * thread checks after close. */
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

static void chunk_release(rill_ref *r) {
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
    int room_fd;
    uint64_t *vals;         /* STATIC: vals[i] = i */
    chunk *c;
} src;

static int src_emit(rill_stage *st, src *s, const rill_item *it, uint64_t v) {
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

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    for (unsigned k = 0; k < 100; k++) {
        if (s->n && s->next == s->n)
            return RILL_EDONE;
        uint64_t v = s->next;
        rill_item it;
        if (s->kind == OWNED) {
            if (!s->c || v % CHUNK == 0) {
                if (s->c)
                    rill_ref_release(&s->c->ref);
                if (!(s->c = malloc(sizeof *s->c)))
                    return RILL_ENOMEM;
                rill_ref_init(&s->c->ref, chunk_release);
                atomic_fetch_add(&live_chunks, 1);
            }
            s->c->v[v % CHUNK] = v;
            it = (rill_item){&s->c->v[v % CHUNK], sizeof v, &s->c->ref};
        } else if (s->kind == BORROWED) {
            it = rill_item_borrow(&v, sizeof v); /* v lives on this stack only */
        } else {
            it = rill_item_static(&s->vals[v], sizeof v);
        }
        int rc = src_emit(st, s, &it, v);
        if (rc)
            return rc;
        s->next++;
        if (s->barrier_every && s->next % s->barrier_every == 0 &&
            (rc = rill_emit_barrier(st, s->next / s->barrier_every)))
            return rc;
    }
    return 0;
}

static int src_close(rill_stage *st, void *state) {
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
static bool is_for(const sink *s, uint64_t v) {
    return !s->to_port || v % 3 != 0 || (v / 3) % s->nports == s->index;
}

static int sink_send(rill_stage *st, void *state, const rill_item *item) {
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

static int sink_barrier(rill_stage *st, void *state, uint64_t id) {
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

static int fan_build(fan *f) {
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
static int fan_check_queues(fan *f, uint64_t *discarded) {
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

static uint64_t expected_count(const fan *f, unsigned c) {
    uint64_t n = 0;
    for (uint64_t v = 0; v < f->s.n; v++)
        n += is_for(&f->k[c], v);
    return n;
}

static uint64_t expected_sum(const fan *f, unsigned c) {
    uint64_t sum = 0;
    for (uint64_t v = 0; v < f->s.n; v++)
        if (is_for(&f->k[c], v))
            sum += v;
    return sum;
}

/* Build, run to the end, check every consumer's count, sum and order, and
 * every owner released once; the caller frees f->p. */
static void run_complete(fan *f, bool *ok) {
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

RILL_TEST(fanout, every_consumer_gets_every_item_at_every_capacity) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned nc = 2; nc <= MAXC; nc++)
        for (unsigned ci = 0; ci < 4; ci++)
            for (unsigned kind = OWNED; kind <= BORROWED; kind++) {
                fan f = {.nc = nc, .capacity = caps[ci]};
                f.s.n = caps[ci] <= 2 ? (RILL_TEST_TSAN ? 300 : 1000) : (RILL_TEST_TSAN ? 4000 : 30000);
                f.s.kind = kind;
                bool ok;
        run_complete(&f, &ok);
                rill_pipeline_free(f.p);
                CHECK(ok);
            }
}

RILL_TEST(fanout, consumers_finish_in_any_order) {
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned slow = 1; slow <= nc; slow++) {
            fan f = {.nc = nc, .capacity = 64, .slow = slow};
            f.s.n = RILL_TEST_TSAN ? 1500 : 6000;
            f.s.kind = OWNED;
            bool ok;
        run_complete(&f, &ok);
            rill_pipeline_free(f.p);
            CHECK(ok);
        }
}

RILL_TEST(fanout, static_items_and_emit_to_one_port) {
    for (unsigned nc = 2; nc <= 4; nc += 2) {
        fan f = {.nc = nc, .capacity = 256};
        f.s.n = RILL_TEST_TSAN ? 3000 : 6000;
        f.s.kind = STATIC;
        f.s.to_port = 1;
        f.s.vals = malloc(f.s.n * sizeof *f.s.vals);
        CHECK(f.s.vals);
        for (uint64_t i = 0; i < f.s.n; i++)
            f.s.vals[i] = i;
        bool ok;
        run_complete(&f, &ok);
        rill_pipeline_free(f.p);
        free(f.s.vals);
        CHECK(ok);
    }
}

RILL_TEST(fanout, try_emit_waits_for_room_of_every_consumer) {
    for (unsigned cap = 2; cap <= 64; cap *= 32) {
        fan f = {.nc = 3, .capacity = cap, .slow = 2};
        f.s.n = RILL_TEST_TSAN ? 400 : 3000;
        f.s.kind = BORROWED;
        f.s.try_emit = true;
        bool ok;
        run_complete(&f, &ok);
        rill_pipeline_free(f.p);
        CHECK(ok);
    }
}

/* The proof that the batch is shared: item i reaches every consumer in the
 * same slot of the same batch. Queues with batches of their own hand each
 * consumer a different copy (their batches live side by side). */
RILL_TEST(fanout, every_consumer_is_handed_the_same_batch) {
    enum { N = 5000 };
    fan f = {.nc = 3, .capacity = 1024};
    f.s.n = N;
    f.s.kind = BORROWED;
    uintptr_t *slots[3];
    for (unsigned c = 0; c < 3; c++) {
        CHECK((slots[c] = calloc(N, sizeof *slots[c])));
        f.k[c].slots = slots[c];
        f.k[c].nslots = N;
    }
    bool ok;
        run_complete(&f, &ok);
    unsigned same = 0;
    for (unsigned i = 0; i < N; i++)
        same += slots[0][i] == slots[1][i] && slots[0][i] == slots[2][i];
    for (unsigned c = 0; c < 3; c++)
        free(slots[c]);
    rill_pipeline_free(f.p);
    CHECK_EQ(same, N);
}

/* Stopped mid-run, by an abort or by a consumer failing: no hang, every
 * queue's in == out + discarded, the pipeline's discarded is their sum, and
 * every owner is released exactly once. */
typedef struct runner {
    rill_pipeline *p;
    int rc;
} runner;

static void *run_thread(void *arg) {
    runner *r = arg;
    r->rc = rill_pipeline_run(r->p);
    return NULL;
}

static void run_stopped(unsigned nc, unsigned cap, unsigned fail, unsigned slow, bool *ok) {
    fan f = {.nc = nc, .capacity = cap, .slow = slow};
    *ok = false;
    atomic_store(&live_chunks, 0);
    atomic_store(&extra_release, 0);
    f.s.n = 0; /* until stopped */
    f.s.kind = OWNED;
    if (fail)
        f.k[fail - 1].fail_at = 1000;
    CHECK_OK(fan_build(&f));
    if (fail) {
        CHECK_EQ(rill_pipeline_run(f.p), RILL_ESTAGE);
    } else {
        /* run on a helper thread; abort from here once some items went through */
        runner r = {f.p, 0};
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, run_thread, &r));
        double end = now_s() + 30;
        while (now_s() < end && atomic_load(&f.k[nc - 1].seen) < 2000)
            sleep_ms(1);
        rill_pipeline_abort(f.p);
        pthread_join(t, NULL);
        CHECK_EQ(r.rc, RILL_EABORTED);
    }
    uint64_t discarded;
    CHECK_EQ(fan_check_queues(&f, &discarded), 0);
    CHECK_EQ(rill_pipeline_discarded(f.p), discarded);
    rill_pipeline_free(f.p);
    CHECK_EQ(atomic_load(&live_chunks), 0);
    CHECK_EQ(atomic_load(&extra_release), 0);
    *ok = true;
}

RILL_TEST(fanout, abort_mid_run_discards_and_releases_every_batch_once) {
    static const unsigned caps[] = {1, 64, 4096};
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned ci = 0; ci < 3; ci++)
            for (unsigned slow = 0; slow <= nc; slow += nc) {
                bool ok;
                run_stopped(nc, caps[ci], 0, slow, &ok);
                CHECK(ok);
            }
}

RILL_TEST(fanout, failing_consumer_stops_the_others_and_releases_every_batch_once) {
    static const unsigned caps[] = {1, 64, 4096};
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned ci = 0; ci < 3; ci++)
            for (unsigned fail = 1; fail <= nc; fail++) {
                bool ok;
                run_stopped(nc, caps[ci], fail, fail == 1 ? nc : 1, &ok);
                CHECK(ok);
            }
}

/* Barriers through a shared fan-out: each consumer sees exactly the items
 * before each barrier, and a stage fed by all of them aligns them. */
typedef struct merge {
    unsigned nin;
    uint64_t every, count, barriers, bad;
} merge;

static int merge_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    (void)item;
    ((merge *)state)->count++;
    return 0;
}

static int merge_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    merge *m = state;
    m->barriers++;
    if (m->count != id * m->every * m->nin || id != m->barriers)
        m->bad++;
    return 0;
}

static const rill_stage_ops merge_ops = {.send = merge_send, .barrier = merge_barrier};

RILL_TEST(fanout, barriers_through_a_shared_fan_out_align) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned ci = 0; ci < 4; ci++) {
            fan f = {.nc = nc, .capacity = caps[ci], .slow = 1};
            f.s.n = RILL_TEST_TSAN ? 600 : 4000;
            f.s.kind = OWNED;
            f.s.barrier_every = 100;
            merge m = {.nin = nc, .every = f.s.barrier_every};
            atomic_store(&live_chunks, 0);
            CHECK_OK(fan_build(&f));
            rill_stage *ms;
            rill_stage_opts t = {.flags = RILL_STAGE_THREADED, .capacity = caps[ci]};
            CHECK_OK(rill_stage_add(f.p, "merge", &merge_ops, &m, &t, &ms));
            for (unsigned c = 0; c < nc; c++)
                CHECK_OK(rill_connect(f.sink_st[c], ms));
            CHECK_OK(rill_pipeline_run(f.p));
            for (unsigned c = 0; c < nc; c++) {
                CHECK_EQ(f.k[c].count, f.s.n);
                CHECK_EQ(f.k[c].barriers, f.s.n / f.s.barrier_every);
                CHECK_EQ(f.k[c].bad_barrier, 0);
            }
            CHECK_EQ(m.count, (uint64_t)nc * f.s.n);
            CHECK_EQ(m.barriers, f.s.n / f.s.barrier_every);
            CHECK_EQ(m.bad, 0);
            rill_pipeline_free(f.p);
            CHECK_EQ(atomic_load(&live_chunks), 0);
        }
}
