/* Overflow policies of a queue (rill_stage_opts.overflow), through the
 * public API. A threaded sink waits at a gate inside send on item 1, so the
 * queue in front of it holds item 1 until the test opens the gate; the
 * producer — a threaded source, or rill_pipeline_push from a thread of its
 * own — then offers N more items:
 * - block: the producer blocks on item 2 until the gate opens; nothing is
 *   dropped and all N + 1 items arrive in order;
 * - drop_newest: the producer never waits; the N items that do not fit are
 *   dropped and counted; only item 1 and items offered after the release
 *   arrive;
 * - drop_oldest: with capacity 1 nothing waits in the ring (item 1 is being
 *   delivered), so it drops the new item like drop_newest; with capacity 4
 *   it drops the oldest waiting item each time, so the consumer gets item 1
 *   and then the last three offered;
 * and under load with a snapshot thread the counters stay exact for every
 * policy. Exact numbers are computed from N, not typed in from a run.
 *
 * Stage callbacks and the producer thread record into their state or
 * atomics; the test thread checks. Waits poll with generous limits; no
 * assertion depends on timing. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- helpers ----------------------------------------------------------------- */

enum { WAIT_S = 10 }; /* limit of every wait for another thread */

/* The only queue's counters now (every pipeline here has one queue). */
static rill_queue_stats queue_now(rill_pipeline *p) {
    rill_queue_stats q;
    rill_stats *s = NULL;
    memset(&q, 0, sizeof q);
    if (rill_pipeline_stats(p, &s) == 0 && s->nqueues == 1)
        q = s->queues[0];
    else
        q.capacity = UINT64_MAX; /* "no such queue": fails every check below */
    rill_stats_free(s);
    return q;
}

/* Poll until the queue is empty with at least out items delivered. */
static bool wait_drained(rill_pipeline *p, uint64_t out) {
    uint64_t end = now_ns() + WAIT_S * 1000000000ull;
    for (;;) {
        rill_queue_stats q = queue_now(p);
        if (q.out >= out && q.depth == 0)
            return true;
        if (now_ns() > end)
            return false;
        sched_yield();
    }
}

/* ---- the sink ------------------------------------------------------------------ */

enum { MAXGOT = 256 };

/* Records the values it receives (4-byte items); waits at g on the first. */
typedef struct sink {
    gate *g;
    uint64_t spin;     /* ns busy per item */
    uint32_t got[MAXGOT];
    uint64_t n;        /* items received */
    uint32_t last;     /* stress: values must increase */
    bool bad;
    atomic_int count;  /* == n, for the test thread while running */
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    sink *k = state;
    uint32_t v;
    (void)st;
    if (k->g && k->n == 0)
        gate_pass(k->g);
    if (it->len != sizeof v) {
        k->bad = true;
        return 0;
    }
    memcpy(&v, it->data, sizeof v);
    if (k->n < MAXGOT)
        k->got[k->n] = v;
    if (k->n && v <= k->last)
        k->bad = true; /* order kept, whatever is dropped */
    k->last = v;
    k->n++;
    atomic_store(&k->count, (int)(k->n < 0x7fffffff ? k->n : 0x7fffffff));
    if (k->spin)
        spin_ns(k->spin);
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send};

/* ---- the producer's script ---------------------------------------------------------- */

/* Offer item 1; once the sink waits at its gate, offer the burst (items 2 ..
 * N + 1); once the test says go, offer `post` more items one at a time, each
 * after the queue has drained. Runs in a threaded source's produce or in a
 * pushing thread; `offer` is rill_emit or rill_pipeline_push. */
typedef struct script {
    rill_pipeline *p;
    rill_stage *entry;      /* push mode: the sink */
    gate *g;
    uint32_t vals[MAXGOT];  /* vals[i] = i: items point here */
    unsigned burst, post;
    atomic_int offered;     /* offers that returned */
    atomic_int phase;       /* 1: item 1 offered, 2: burst offered, 3: all */
    atomic_int go_post;     /* set by the test */
    atomic_int tid;
    int rc;                 /* first failed offer */
    int lost;               /* which wait gave up (0: none) */
    bool push;              /* push mode */
    int close_rc;           /* push mode: the pusher also closes */
} script;

static int offer(script *sc, rill_stage *st, uint32_t v) {
    rill_item it = rill_item_static(&sc->vals[v], sizeof sc->vals[v]);
    int rc = sc->push ? rill_pipeline_push(sc->p, sc->entry, &it) : rill_emit(st, &it);
    if (rc && !sc->rc)
        sc->rc = rc;
    atomic_fetch_add(&sc->offered, 1);
    return rc;
}

/* About to wait for another thread: hand over what was offered, as a
 * source must before it waits for input (rill/pipeline.h). */
static void handover(script *sc, rill_stage *st) {
    if (sc->push)
        rill_pipeline_flush(sc->p);
    else
        rill_stage_flush(st);
}

static void script_run(script *sc, rill_stage *st) {
    atomic_store(&sc->tid, my_tid());
    offer(sc, st, 1);
    atomic_store(&sc->phase, 1);
    handover(sc, st);
    if (!wait_for(&sc->g->entered, 1, WAIT_S))
        sc->lost = 1;
    for (uint32_t v = 2; v <= sc->burst + 1 && !sc->rc; v++)
        offer(sc, st, v);
    atomic_store(&sc->phase, 2);
    handover(sc, st);
    if (sc->post && !wait_for(&sc->go_post, 1, WAIT_S))
        sc->lost = 2;
    uint64_t out = queue_now(sc->p).out;
    for (uint32_t v = sc->burst + 2; v < sc->burst + 2 + sc->post && !sc->rc; v++) {
        offer(sc, st, v);
        handover(sc, st);
        if (!wait_drained(sc->p, ++out))
            sc->lost = 100 + (int)v; /* the item offered that never arrived */
    }
    atomic_store(&sc->phase, 3);
}

static int script_produce(rill_stage *st, void *state) {
    script_run(state, st);
    return RILL_EDONE;
}

static const rill_stage_ops script_ops = {.produce = script_produce};

static void *pusher_main(void *arg) {
    script *sc = arg;
    script_run(sc, NULL);
    sc->close_rc = rill_pipeline_close(sc->p);
    return NULL;
}

/* Wait until the producer thread sleeps and its offers stay put; returns the
 * number of offers that returned. Only a wait: the caller asserts. */
static int wait_blocked(script *sc) {
    int last = -1, calm = 0;
    for (uint64_t end = now_ns() + WAIT_S * 1000000000ull; now_ns() < end && calm < 5;
         sleep_ms(2)) {
        int c = atomic_load(&sc->offered), t = atomic_load(&sc->tid);
        calm = c == last && t && thread_state(t) == 'S' ? calm + 1 : 0;
        last = c;
    }
    return atomic_load(&sc->offered);
}

/* ---- one case ------------------------------------------------------------------- */

typedef struct result {
    int rc;
    int lost; /* which wait gave up (0: none) */
    bool blocked_ok;
    int offered_while_stalled; /* offers that returned while the sink was stalled */
    rill_queue_stats stalled;  /* the queue after the burst, sink still stalled */
    rill_queue_stats fin;      /* at close */
    uint64_t discarded;
    sink k;
} result;

/* A producer (threaded source, or pushing thread) -> sink (threaded, policy,
 * capacity cap, batch 1) stalled on item 1 while the burst is offered. */
static void run_case(unsigned policy, unsigned cap, unsigned burst, unsigned post, bool push,
                     result *r) {
    script sc;
    gate g;
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *snk = NULL;
    pthread_t th;
    bool th_started = false;
    memset(r, 0, sizeof *r);
    memset(&sc, 0, sizeof sc);
    gate_init(&g);
    r->k.g = &g;
    for (uint32_t i = 0; i < MAXGOT; i++)
        sc.vals[i] = i;
    sc.g = &g;
    sc.burst = burst;
    sc.post = post;
    sc.push = push;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = 1,
                         .overflow = policy};
    rill_stage_opts os = {.flags = RILL_STAGE_THREADED};
    int rc = rill_pipeline_new("overflow", &p);
    if (!rc)
        rc = rill_stage_add(p, "sink", &sink_ops, &r->k, &o, &snk);
    if (!rc && !push && !(rc = rill_stage_add(p, "src", &script_ops, &sc, &os, &src)))
        rc = rill_connect(src, snk);
    sc.p = p;
    sc.entry = snk;
    if (!rc && push) {
        th_started = pthread_create(&th, NULL, pusher_main, &sc) == 0;
        rc = th_started ? 0 : -1;
    } else if (!rc) {
        rc = rill_pipeline_start(p);
    }
    if (!rc) {
        /* The sink is stalled on item 1; the burst is offered. */
        bool entered = wait_for(&g.entered, 1, WAIT_S);
        if (policy == RILL_OVERFLOW_BLOCK) {
            r->offered_while_stalled = wait_blocked(&sc);
            r->blocked_ok = atomic_load(&sc.phase) == 1;
        } else {
            r->blocked_ok = wait_for(&sc.phase, 2, WAIT_S);
            r->offered_while_stalled = atomic_load(&sc.offered);
        }
        r->stalled = queue_now(p);
        r->lost = entered ? 0 : 10;
        gate_open(&g);
        /* Item 1 and whatever waited are delivered before anything new. */
        if (post && !wait_drained(p, r->stalled.out + r->stalled.depth))
            r->lost = 11;
        atomic_store(&sc.go_post, 1);
        if (push) {
            pthread_join(th, NULL);
            rc = sc.close_rc;
        } else {
            rc = rill_pipeline_close(p);
        }
        rill_stats *s = NULL;
        if (rill_pipeline_stats(p, &s) == 0 && s->nqueues == 1)
            r->fin = s->queues[0];
        rill_stats_free(s);
        r->discarded = rill_pipeline_discarded(p);
    }
    gate_open(&g); /* in case of an early failure */
    r->rc = rc ? rc : sc.rc;
    r->lost = r->lost ? r->lost : sc.lost;
    rill_pipeline_free(p);
    gate_fini(&g);
}

/* Checks shared by every case at close. */
#define CHECK_CLOSED(r, pol, capa, n_out, n_dropped)                                \
    do {                                                                             \
        CHECK_OK((r).rc);                                                            \
        CHECK_EQ((r).lost, 0);                                                       \
        CHECK(!(r).k.bad);                                                           \
        CHECK_EQ((r).fin.policy, pol);                                               \
        CHECK_EQ((r).fin.capacity, capa);                                            \
        CHECK_EQ((r).fin.out, n_out);                                                \
        CHECK_EQ((r).fin.dropped, n_dropped);                                        \
        CHECK_EQ((r).fin.in, (r).fin.out + (r).fin.dropped);                         \
        CHECK_EQ((r).fin.discarded, 0);                                              \
        CHECK_EQ((r).fin.depth, 0);                                                  \
        CHECK_EQ((r).discarded, 0);                                                  \
        CHECK_EQ((r).k.n, n_out);                                                    \
    } while (0)

/* ---- block ------------------------------------------------------------------------ */

static void check_block(bool push) {
    enum { N = 20 };
    result r;
    run_case(RILL_OVERFLOW_BLOCK, 1, N, 0, push, &r);
    /* Item 1 was taken; the producer waits inside the offer of item 2. */
    CHECK(r.blocked_ok);
    CHECK_EQ(r.offered_while_stalled, 1);
    CHECK_EQ(r.stalled.in, 1);
    CHECK_EQ(r.stalled.depth, 1);
    CHECK_EQ(r.stalled.out, 0);
    CHECK_EQ(r.stalled.dropped, 0);
    CHECK_CLOSED(r, RILL_OVERFLOW_BLOCK, 1, N + 1, 0);
    for (uint32_t i = 0; i < N + 1; i++)
        CHECK_EQ(r.k.got[i], i + 1);
    CHECK_EQ(r.fin.high_water, 1);
    CHECK(r.fin.wait_full_ns > 0);
}

RILL_TEST(thread_overflow, block_waits_for_the_stalled_consumer_source) { check_block(false); }
RILL_TEST(thread_overflow, block_waits_for_the_stalled_consumer_push) { check_block(true); }

/* ---- drop_newest, and drop_oldest with nothing waiting ------------------------------ */

/* Capacity 1: item 1 fills the queue while it is being delivered, so each of
 * the N items of the burst is dropped on arrival. */
static void check_drop_new_item(unsigned policy, bool push) {
    enum { N = 20, POST = 5 };
    result r;
    run_case(policy, 1, N, POST, push, &r);
    CHECK(r.blocked_ok); /* the producer never waited */
    CHECK_EQ(r.offered_while_stalled, N + 1);
    CHECK_EQ(r.stalled.in, N + 1);
    CHECK_EQ(r.stalled.dropped, N);
    CHECK_EQ(r.stalled.depth, 1);
    CHECK_EQ(r.stalled.out, 0);
    CHECK_CLOSED(r, policy, 1, 1 + POST, N);
    CHECK_EQ(r.k.got[0], 1);
    for (uint32_t i = 0; i < POST; i++)
        CHECK_EQ(r.k.got[1 + i], N + 2 + i); /* offered after the release */
    CHECK_EQ(r.fin.high_water, 1);
    CHECK_EQ(r.fin.wait_full_ns, 0);
}

RILL_TEST(thread_overflow, drop_newest_capacity_1_source) {
    check_drop_new_item(RILL_OVERFLOW_DROP_NEWEST, false);
}
RILL_TEST(thread_overflow, drop_newest_capacity_1_push) {
    check_drop_new_item(RILL_OVERFLOW_DROP_NEWEST, true);
}
RILL_TEST(thread_overflow, drop_oldest_capacity_1_drops_the_new_item_source) {
    check_drop_new_item(RILL_OVERFLOW_DROP_OLDEST, false);
}
RILL_TEST(thread_overflow, drop_oldest_capacity_1_drops_the_new_item_push) {
    check_drop_new_item(RILL_OVERFLOW_DROP_OLDEST, true);
}

/* ---- capacity 4: which items survive ------------------------------------------------ */

/* Items 2..4 wait behind item 1. drop_newest keeps them and drops 5..N+1;
 * drop_oldest drops the oldest waiting for each new one, keeping the last
 * three offered: N-1, N, N+1. Either way N - 3 are dropped. */
static void check_capacity_4(unsigned policy, bool push) {
    enum { N = 20, POST = 3, CAP = 4 };
    result r;
    run_case(policy, CAP, N, POST, push, &r);
    CHECK(r.blocked_ok);
    CHECK_EQ(r.offered_while_stalled, N + 1);
    CHECK_EQ(r.stalled.in, N + 1);
    CHECK_EQ(r.stalled.dropped, N + 1 - CAP);
    CHECK_EQ(r.stalled.depth, CAP);
    CHECK_EQ(r.stalled.out, 0);
    CHECK_CLOSED(r, policy, CAP, CAP + POST, N + 1 - CAP);
    uint32_t first = policy == RILL_OVERFLOW_DROP_OLDEST ? N + 1 - (CAP - 1) + 1 : 2;
    CHECK_EQ(r.k.got[0], 1);
    for (uint32_t i = 0; i < CAP - 1; i++)
        CHECK_EQ(r.k.got[1 + i], first + i);
    for (uint32_t i = 0; i < POST; i++)
        CHECK_EQ(r.k.got[CAP + i], N + 2 + i);
    CHECK_EQ(r.fin.high_water, CAP);
    CHECK_EQ(r.fin.wait_full_ns, 0);
}

RILL_TEST(thread_overflow, drop_oldest_capacity_4_keeps_the_last_items_source) {
    check_capacity_4(RILL_OVERFLOW_DROP_OLDEST, false);
}
RILL_TEST(thread_overflow, drop_oldest_capacity_4_keeps_the_last_items_push) {
    check_capacity_4(RILL_OVERFLOW_DROP_OLDEST, true);
}
RILL_TEST(thread_overflow, drop_newest_capacity_4_keeps_the_first_items_source) {
    check_capacity_4(RILL_OVERFLOW_DROP_NEWEST, false);
}

/* ---- options ------------------------------------------------------------------------ */

RILL_TEST(thread_overflow, unknown_policy_is_rejected) {
    rill_pipeline *p = NULL;
    sink k;
    memset(&k, 0, sizeof k);
    CHECK_OK(rill_pipeline_new("policy", &p));
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .overflow = RILL_OVERFLOW_DROP_OLDEST + 1};
    CHECK_EQ(rill_stage_add(p, "a", &sink_ops, &k, &o, NULL), RILL_EINVAL);
    o.overflow = 0xffffffffu;
    CHECK_EQ(rill_stage_add(p, "b", &sink_ops, &k, &o, NULL), RILL_EINVAL);
    CHECK(rill_pipeline_find(p, "a") == NULL && rill_pipeline_find(p, "b") == NULL);
    o.overflow = RILL_OVERFLOW_DROP_OLDEST;
    CHECK_OK(rill_stage_add(p, "c", &sink_ops, &k, &o, NULL));
    rill_pipeline_free(p);
}

/* ---- counters under load ------------------------------------------------------------ */

/* A fast threaded source -> a slower threaded sink with each policy, small
 * capacities, batches (partial ones too, by a short latency bound), while a
 * snapshot thread reads the queue in a tight loop: every snapshot keeps
 * in == out + dropped + discarded + depth within capacity, counters never go
 * back; at close the sink got exactly `out` items, in increasing order. */
typedef struct stream {
    uint32_t *vals;
    uint32_t total, next;
    uint64_t emitted;
} stream;

static int stream_produce(rill_stage *st, void *state) {
    stream *s = state;
    for (int k = 0; k < 64 && s->next < s->total; k++) {
        rill_item it = rill_item_static(&s->vals[s->next], sizeof s->vals[0]);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
        s->next++;
        s->emitted++;
    }
    return s->next == s->total ? RILL_EDONE : 0;
}

static const rill_stage_ops stream_ops = {.produce = stream_produce};

typedef struct watcher {
    rill_pipeline *p;
    atomic_int stop;
    uint64_t n, bad;
    char why[200];
} watcher;

static void *watcher_main(void *arg) {
    watcher *w = arg;
    rill_queue_stats prev;
    memset(&prev, 0, sizeof prev);
    while (!atomic_load(&w->stop)) {
        rill_queue_stats q = queue_now(w->p);
        w->n++;
        if (q.capacity == UINT64_MAX)
            continue; /* not started yet */
        const char *what = q.in != q.out + q.dropped + q.discarded + q.depth ? "in"
                           : q.depth > q.capacity                           ? "depth"
                           : q.high_water > q.capacity                      ? "high water"
                           : q.in < prev.in || q.out < prev.out || q.dropped < prev.dropped
                               ? "monotonic"
                               : NULL;
        if (what && w->bad++ == 0)
            snprintf(w->why, sizeof w->why, "%s: in %llu out %llu dropped %llu discarded %llu "
                     "depth %llu of %llu", what, (unsigned long long)q.in,
                     (unsigned long long)q.out, (unsigned long long)q.dropped,
                     (unsigned long long)q.discarded, (unsigned long long)q.depth,
                     (unsigned long long)q.capacity);
        prev = q;
    }
    return NULL;
}

RILL_TEST(thread_overflow, counters_exact_under_load_for_every_policy) {
    enum { N = 20000 };
    static const unsigned cfg[][2] = {{2, 1}, {8, 3}, {16, 4}}; /* capacity, batch */
    uint32_t *vals = malloc(N * sizeof *vals);
    CHECK(vals != NULL);
    for (uint32_t i = 0; i < N; i++)
        vals[i] = i + 1;
    uint64_t snaps = 0, dropped = 0;
    for (unsigned policy = 0; policy <= RILL_OVERFLOW_DROP_OLDEST; policy++)
        for (unsigned c = 0; c < 3; c++) {
            stream s = {.vals = vals, .total = N};
            sink k;
            memset(&k, 0, sizeof k);
            k.spin = 1500;
            watcher w;
            memset(&w, 0, sizeof w);
            rill_pipeline *p = NULL;
            rill_stage *a = NULL, *b = NULL;
            rill_stage_opts os = {.flags = RILL_STAGE_THREADED};
            rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cfg[c][0],
                                 .batch = cfg[c][1], .max_latency_us = 20, .overflow = policy};
            pthread_t th;
            CHECK_OK(rill_pipeline_new("load", &p));
            CHECK_OK(rill_stage_add(p, "src", &stream_ops, &s, &os, &a));
            CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &k, &o, &b));
            CHECK_OK(rill_connect(a, b));
            w.p = p;
            CHECK(pthread_create(&th, NULL, watcher_main, &w) == 0);
            int rc = rill_pipeline_run(p);
            atomic_store(&w.stop, 1);
            pthread_join(th, NULL);
            rill_queue_stats q = queue_now(p);
            uint64_t discarded = rill_pipeline_discarded(p);
            rill_pipeline_free(p);
            if (w.bad)
                rill_test__failf(__FILE__, __LINE__, "policy %u capacity %u batch %u: %s",
                                 policy, cfg[c][0], cfg[c][1], w.why);
            CHECK_EQ(w.bad, 0);
            CHECK_OK(rc);
            CHECK(!k.bad);
            CHECK_EQ(s.emitted, N);
            CHECK_EQ(q.in, N);
            CHECK_EQ(q.out, k.n);
            CHECK_EQ(q.in, q.out + q.dropped);
            CHECK_EQ(q.discarded, 0);
            CHECK_EQ(q.depth, 0);
            CHECK_EQ(discarded, 0);
            CHECK(q.high_water <= cfg[c][0]);
            if (policy == RILL_OVERFLOW_BLOCK)
                CHECK_EQ(q.dropped, 0);
            else
                CHECK_EQ(q.wait_full_ns, 0); /* a dropping producer never waits */
            snaps += w.n;
            dropped += q.dropped;
        }
    fprintf(stderr, "thread_overflow: %llu snapshots, %llu items dropped in all\n",
            (unsigned long long)snaps, (unsigned long long)dropped);
    free(vals);
}
