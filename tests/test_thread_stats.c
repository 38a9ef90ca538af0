/* Queue and stage statistics, the depth sampler and the stall watchdog,
 * through the public API (rill/stats.h):
 * - counters are exact under concurrency: a snapshot thread reads a random
 *   threaded graph (fan-out, fan-in, a promoted stage, inline stages in a
 *   worker's domain) in a tight loop, and every snapshot satisfies
 *   in == out + dropped + discarded + depth with depth <= capacity, counters
 *   never go back, and at close each queue's `out` is what its consumer saw
 *   from that producer;
 * - a slow consumer makes its producer wait, fills its queue to exactly the
 *   capacity asked for, and is named the bottleneck (not the stage stuck
 *   behind it);
 * - stage counters, busy time (threaded only), snapshot lifetimes;
 * - the sampler stays within its buffer, halves its rate, keeps time order
 *   and fills the bands; its argument and state checks;
 * - the watchdog tells a stuck consumer from a starved pipeline and names
 *   the right stage.
 *
 * Stage callbacks, the snapshot thread and the watchdog callback run on
 * other threads: they record into their state or atomics, and the test
 * thread checks after close or a join. Waits poll with generous limits; no
 * assertion depends on timing. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- a generic stage ------------------------------------------------------------ */

enum { MAXN = 16 };

/* An item says which stage emitted it: the consumer counts per producer, so
 * each queue's `out` can be checked against what really arrived. */
typedef struct tag {
    uint32_t from, v;
} tag;

/* Source (produce) or pass-through (send). Its own counters are written on
 * its thread only and read by the test after close. */
typedef struct node {
    unsigned id;
    tag *pay;           /* pay[v] = {id, v}: lives until destroy */
    uint32_t total;     /* source: values 0..total-1; all: size of pay */
    uint32_t next;
    unsigned per_call;  /* source: emits per produce call */
    atomic_int *run_until; /* source: produce until it is nonzero (then total is ignored) */
    unsigned keep_mod;  /* drop v when v % keep_mod == id % keep_mod (0: keep all) */
    unsigned yield_permille;
    uint64_t spin;      /* ns busy per item */
    unsigned nap_us;    /* and asleep per item */
    uint64_t rng;
    gate *g;            /* wait here at the first send (or produce, after flush_after) */
    uint32_t flush_after; /* source with g: emit this many, flush, then wait */
    uint64_t sent, emitted, from_n[MAXN];
    uint64_t bad;       /* malformed items or failed emits */
} node;

static int node_emit(rill_stage *st, node *n, uint32_t v) {
    rill_item it = rill_item_static(&n->pay[v], sizeof n->pay[v]);
    n->emitted++;
    int rc = rill_emit(st, &it);
    if (rc)
        n->bad++;
    return rc;
}

static void node_noise(node *n) {
    if (n->yield_permille && rng_next(&n->rng) % 1000 < n->yield_permille)
        sched_yield();
    if (n->spin)
        spin_ns(n->spin);
    if (n->nap_us) {
        struct timespec ts = {0, (long)n->nap_us * 1000L};
        nanosleep(&ts, NULL);
    }
}

static int node_produce(rill_stage *st, void *state) {
    node *n = state;
    for (unsigned k = 0; k < n->per_call; k++) {
        if (n->run_until ? atomic_load(n->run_until) != 0 : n->next >= n->total)
            return RILL_EDONE;
        if (n->g && n->next == n->flush_after) {
            rill_stage_flush(st);
            gate_pass(n->g);
        }
        int rc = node_emit(st, n, n->next % n->total);
        if (rc)
            return rc;
        n->next++;
        node_noise(n);
    }
    return 0;
}

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    node *n = state;
    tag t;
    if (n->g && n->sent == 0)
        gate_pass(n->g);
    n->sent++;
    if (it->len != sizeof t) {
        n->bad++;
        return 0;
    }
    memcpy(&t, it->data, sizeof t);
    if (t.from >= MAXN || t.v >= n->total) {
        n->bad++;
        return 0;
    }
    n->from_n[t.from]++;
    node_noise(n);
    if (n->keep_mod && t.v % n->keep_mod == n->id % n->keep_mod)
        return 0;
    return rill_stage_outputs(st) ? node_emit(st, n, t.v) : 0;
}

static const rill_stage_ops src_ops = {.produce = node_produce};
static const rill_stage_ops pass_ops = {.send = node_send};

static void node_init(node *n, unsigned id, uint32_t total) {
    memset(n, 0, sizeof *n);
    n->id = id;
    n->total = total;
    n->per_call = 1;
    n->pay = malloc(total * sizeof *n->pay);
    for (uint32_t v = 0; n->pay && v < total; v++)
        n->pay[v] = (tag){id, v};
}

static rill_stage_opts topts(unsigned cap, unsigned batch) {
    return (rill_stage_opts){.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch};
}

static int find_stage(const rill_stats *s, const char *name) {
    for (size_t i = 0; i < s->nstages; i++)
        if (strcmp(s->stages[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int find_queue(const rill_stats *s, const char *from, const char *to) {
    for (size_t k = 0; k < s->nqueues; k++)
        if (strcmp(s->queues[k].from, from) == 0 && strcmp(s->queues[k].to, to) == 0)
            return (int)k;
    return -1;
}

/* ---- the snapshot thread ------------------------------------------------------- */

typedef struct snapper {
    rill_pipeline *p;
    atomic_int stop;
    uint64_t n, running;  /* snapshots taken, of them while running */
    uint64_t bad;
    char why[320];
} snapper;

static void snap_fail(snapper *z, const char *fmt, size_t k, unsigned long long a,
                      unsigned long long b) {
    if (z->bad++ == 0)
        snprintf(z->why, sizeof z->why, fmt, k, a, b);
}

#define MONO(field)                                                                  \
    if (q->field < o->field)                                                       \
    snap_fail(z, "queue %zu: " #field " went back from %llu to %llu", k,          \
              (unsigned long long)o->field, (unsigned long long)q->field)

/* One snapshot against the invariants, and against the previous one. */
static void snap_check(snapper *z, const rill_stats *s, const rill_stats *prev) {
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        if (q->in != q->out + q->dropped + q->discarded + q->depth)
            snap_fail(z, "queue %zu: in %llu != out + dropped + discarded + depth = %llu", k,
                      (unsigned long long)q->in,
                      (unsigned long long)(q->out + q->dropped + q->discarded + q->depth));
        if (q->depth > q->capacity)
            snap_fail(z, "queue %zu: depth %llu > capacity %llu", k,
                      (unsigned long long)q->depth, (unsigned long long)q->capacity);
        if (q->high_water > q->capacity)
            snap_fail(z, "queue %zu: high water %llu > capacity %llu", k,
                      (unsigned long long)q->high_water, (unsigned long long)q->capacity);
        if (!prev || prev->nqueues == 0)
            continue;
        if (prev->nqueues != s->nqueues) {
            snap_fail(z, "queue %zu: %llu queues, then %llu", k,
                      (unsigned long long)prev->nqueues, (unsigned long long)s->nqueues);
            return;
        }
        const rill_queue_stats *o = &prev->queues[k];
        MONO(in);
        MONO(out);
        MONO(dropped);
        MONO(discarded);
        MONO(batches);
        MONO(high_water);
        MONO(wait_full_ns);
        MONO(wait_empty_ns);
        MONO(samples);
    }
    if (prev)
        for (size_t i = 0; i < s->nstages && i < prev->nstages; i++) {
            const rill_stage_stats *a = &prev->stages[i], *b = &s->stages[i];
            if (b->items_in < a->items_in || b->items_out < a->items_out)
                snap_fail(z, "stage %zu: items went back (in %llu, out %llu)", i,
                          (unsigned long long)b->items_in, (unsigned long long)b->items_out);
            if (s->elapsed_ns < prev->elapsed_ns && prev->running)
                snap_fail(z, "stage %zu: elapsed went back from %llu to %llu", i,
                          (unsigned long long)prev->elapsed_ns,
                          (unsigned long long)s->elapsed_ns);
        }
}

static void *snapper_main(void *arg) {
    snapper *z = arg;
    rill_stats *prev = NULL;
    while (!atomic_load(&z->stop)) {
        rill_stats *s = NULL;
        int rc = rill_pipeline_stats(z->p, &s);
        if (rc == RILL_EAGAIN && !s) { /* a hand-over held open past the bound: no snapshot */
            sched_yield();
            continue;
        }
        if (rc || !s) {
            snap_fail(z, "snapshot %zu failed: %llu %llu", (size_t)z->n, (unsigned long long)-rc,
                      0);
            break;
        }
        z->n++;
        z->running += s->running;
        snap_check(z, s, prev);
        rill_stats_free(prev);
        prev = s;
        if (z->n % 8 == 0)
            sched_yield(); /* two cores: let the pipeline's threads run too */
    }
    rill_stats_free(prev);
    return NULL;
}

/* ---- counters exact under concurrency ------------------------------------------ */

/* The graph (index = add order = tag id):
 *   src -> A, src -> B               fan-out, both threaded
 *   A -> F (inline, on A's thread)   F -> C, B -> C (fan-in, threaded)
 *   A -> M, B -> M                   M inline, fed by two threads: promoted
 *   C -> S1, M -> S1 (threaded)      M -> S2 (threaded) -> T (inline) */
enum { SRC, A, B, F, C, M, S1, S2, T, NST };
static const char *const names[NST] = {"src", "A", "B", "F", "C", "M", "S1", "S2", "T"};
static const int edges[][2] = {{SRC, A}, {SRC, B}, {A, F}, {A, M}, {F, C}, {B, C},
                               {B, M},   {C, S1},  {M, S1}, {M, S2}, {S2, T}};
/* The queues: every edge into a stage that runs on another thread. */
static const int queues[][2] = {{SRC, A}, {SRC, B}, {A, M}, {F, C}, {B, C},
                                {B, M},   {C, S1},  {M, S1}, {M, S2}};
enum { NQ = sizeof queues / sizeof queues[0] };

static const unsigned caps[] = {1, 2, 3, 4, 7, 16, 33, 64};

static int failf(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write the failure into why; returns -1. */
static int failf(char *why, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return -1;
}

typedef unsigned long long ull;

/* The final snapshot against what the stages themselves counted. */
static int stress_verify(rill_pipeline *p, rill_stage *const *st, const rill_stats *fin,
                         const node *n, uint32_t total, char *why, size_t whylen) {
    if (fin->running || fin->nqueues != NQ || fin->nstages != NST)
        return failf(why, whylen, "final: running %d, %zu queues, %zu stages", fin->running,
                     fin->nqueues, fin->nstages);
    if (!rill_stage_threaded(st[M]))
        return failf(why, whylen, "M not promoted");
    if (n[SRC].emitted != total)
        return failf(why, whylen, "source emitted %llu", (ull)n[SRC].emitted);
    for (int i = 0; i < NST; i++) {
        const rill_stage_stats *g = &fin->stages[i];
        bool threaded = !(i == F || i == T);
        if (strcmp(g->name, names[i]) != 0 || g->threaded != threaded || n[i].bad ||
            g->items_in != n[i].sent || g->items_out != n[i].emitted || g->input_depth != 0 ||
            !g->measured || g->busy_ns > g->thread_busy_ns ||
            g->thread_busy_ns > g->thread_life_ns)
            return failf(why, whylen, "stage %s: threaded %d, in %llu (saw %llu), out %llu "
                         "(emitted %llu), bad %llu, depth %llu, busy %llu", names[i],
                         g->threaded, (ull)g->items_in, (ull)n[i].sent, (ull)g->items_out,
                         (ull)n[i].emitted, (ull)n[i].bad, (ull)g->input_depth, (ull)g->busy_ns);
    }
    for (int k = 0; k < NQ; k++) {
        int from = queues[k][0], to = queues[k][1];
        int qi = find_queue(fin, names[from], names[to]);
        if (qi < 0)
            return failf(why, whylen, "queue %s -> %s missing", names[from], names[to]);
        const rill_queue_stats *q = &fin->queues[qi];
        /* Everything emitted into the queue came out of it, into the
         * consumer, tagged with this producer. */
        if (q->depth || q->discarded || q->dropped || q->in != q->out ||
            q->out != n[to].from_n[from] || q->in != n[from].emitted ||
            q->high_water > q->capacity || (q->in && (q->batches == 0 || q->high_water == 0)) ||
            q->policy != RILL_OVERFLOW_BLOCK)
            return failf(why, whylen, "queue %s -> %s: in %llu (emitted %llu), out %llu (got "
                         "%llu), dropped %llu, discarded %llu, depth %llu, high %llu of %llu",
                         names[from], names[to], (ull)q->in, (ull)n[from].emitted, (ull)q->out,
                         (ull)n[to].from_n[from], (ull)q->dropped, (ull)q->discarded,
                         (ull)q->depth, (ull)q->high_water, (ull)q->capacity);
        uint64_t sum = 0;
        for (int b = 0; b < RILL_STATS_BANDS; b++)
            sum += q->bands[b];
        if (sum != q->samples)
            return failf(why, whylen, "queue %s -> %s: bands sum %llu, samples %llu",
                         names[from], names[to], (ull)sum, (ull)q->samples);
    }
    if (rill_pipeline_discarded(p) != 0)
        return failf(why, whylen, "discarded %llu", (ull)rill_pipeline_discarded(p));
    return 0;
}

/* One random run; returns 0 or fails with a message. */
static int stress_run(uint64_t seed, uint32_t total, snapper *z, char *why, size_t whylen) {
    uint64_t rng = seed;
    node n[NST];
    rill_stage *st[NST] = {0};
    rill_pipeline *p = NULL;
    rill_stats *fin = NULL;
    pthread_t th;
    bool th_started = false;
    int rc = rill_pipeline_new("stress", &p);
    for (int i = 0; i < NST; i++) {
        node_init(&n[i], (unsigned)i, total);
        n[i].rng = rng_next(&rng);
        n[i].yield_permille = (unsigned)(rng_next(&rng) % 4) * 50;
        if (!n[i].pay)
            rc = rc ? rc : RILL_ENOMEM;
    }
    n[SRC].per_call = 1 + (unsigned)(rng_next(&rng) % 16);
    n[A].keep_mod = 5;
    n[B].keep_mod = 3;
    n[M].keep_mod = 4;
    for (int i = 0; i < NST && !rc; i++) {
        unsigned cap = caps[rng_next(&rng) % 8];
        unsigned batch = (unsigned)(rng_next(&rng) % (cap + 1)); /* 0: default, clamped */
        rill_stage_opts o = topts(cap, batch);
        o.max_latency_us = 50 + (unsigned)(rng_next(&rng) % 1000);
        if (i == F || i == M || i == T)
            o.flags = 0;
        rc = rill_stage_add(p, names[i], i == SRC ? &src_ops : &pass_ops, &n[i], &o, &st[i]);
    }
    for (size_t e = 0; e < sizeof edges / sizeof edges[0] && !rc; e++)
        rc = rill_connect(st[edges[e][0]], st[edges[e][1]]);
    if (!rc && (seed & 1))
        rc = rill_pipeline_sampler(p, 100, 0);
    /* Snapshots from before the start to after the close. */
    if (!rc) {
        z->p = p;
        atomic_store(&z->stop, 0);
        th_started = pthread_create(&th, NULL, snapper_main, z) == 0;
        rc = th_started ? 0 : -1;
    }
    if (!rc)
        rc = rill_pipeline_run(p);
    if (!rc)
        sleep_ms(1); /* a few snapshots of the closed pipeline too */
    if (th_started) {
        atomic_store(&z->stop, 1);
        pthread_join(th, NULL);
    }
    if (!rc)
        rc = rill_pipeline_stats(p, &fin);
    if (!rc && z->bad)
        rc = failf(why, whylen, "snapshot: %s", z->why);
    if (!rc)
        rc = stress_verify(p, st, fin, n, total, why, whylen);
    if (rc && !why[0])
        snprintf(why, whylen, "rc %d (%s)", rc, rill_pipeline_errmsg(p));
    rill_stats_free(fin);
    rill_pipeline_free(p);
    for (int i = 0; i < NST; i++)
        free(n[i].pay);
    return rc;
}

RILL_TEST(thread_stats, counters_exact_at_every_snapshot_under_concurrency) {
    snapper z;
    uint64_t snaps = 0, running = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        char why[400] = "";
        memset(&z, 0, sizeof z);
        int rc = stress_run(seed, 1500, &z, why, sizeof why);
        if (rc)
            rill_test__failf(__FILE__, __LINE__, "seed %llu: %s", (unsigned long long)seed, why);
        CHECK_EQ(rc, 0);
        snaps += z.n;
        running += z.running;
    }
    /* Thousands of snapshots, most of them of a running pipeline. */
    fprintf(stderr, "thread_stats: %llu snapshots, %llu while running\n",
            (unsigned long long)snaps, (unsigned long long)running);
    CHECK(running >= 1000);
}

/* ---- a slow consumer ------------------------------------------------------------ */

/* src -> mid -> sink, all threaded; sink is slow per item behind capacity
 * 64. The producers wait, sink's queue reaches exactly 64, and sink — not
 * mid, whose input is just as full but whose output is full too — is the
 * bottleneck. */
RILL_TEST(thread_stats, slow_consumer_fills_its_queue_and_is_the_bottleneck) {
    enum { N = 150, CAP = 64 };
    node n[3];
    rill_stage *st[3];
    static const char *const nm[3] = {"src", "mid", "sink"};
    rill_pipeline *p = NULL;
    rill_stats *s = NULL;
    CHECK_OK(rill_pipeline_new("slow", &p));
    for (int i = 0; i < 3; i++) {
        node_init(&n[i], (unsigned)i, N);
        CHECK(n[i].pay != NULL);
        n[i].per_call = 16;
        rill_stage_opts o = topts(CAP, 8);
        CHECK_OK(rill_stage_add(p, nm[i], i ? &pass_ops : &src_ops, &n[i], &o, &st[i]));
        if (i)
            CHECK_OK(rill_connect(st[i - 1], st[i]));
    }
    /* Busy 30 us, then asleep 1 ms per item: far slower than the others,
     * even under TSan, and leaving them the CPU — on two loaded cores a sink
     * that only busy-waits can starve mid, which then really is the
     * bottleneck (its input full, sink's queue low). */
    n[2].spin = 30000;
    n[2].nap_us = 1000;
    CHECK_OK(rill_pipeline_sampler(p, 500, 0));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_OK(rill_pipeline_stats(p, &s));
    CHECK_EQ(s->nqueues, 2);
    int qm = find_queue(s, "src", "mid"), qs = find_queue(s, "mid", "sink");
    CHECK(qm >= 0 && qs >= 0);
    const rill_queue_stats *q = &s->queues[qs];
    CHECK_EQ(n[2].sent, N);
    CHECK_EQ(q->capacity, CAP);
    CHECK_EQ(q->high_water, CAP);
    CHECK_EQ(q->in, N);
    CHECK_EQ(q->out, N);
    CHECK(q->wait_full_ns > 0);
    CHECK(s->queues[qm].wait_full_ns > 0); /* backpressure reached the source */
    CHECK(q->samples > 0);
    /* The verdict rests on busy times, which ThreadSanitizer's own work
     * (shadow memory faulted in by whichever thread comes first) skews by
     * far more than this run lasts: there only its form is checked (see
     * test_thread_bottleneck.c). */
    bool named = s->bottleneck >= 0 && strcmp(s->stages[s->bottleneck].name, "sink") == 0;
    if (!named) {
        fprintf(stderr, "verdict: %s\n", s->verdict);
        rill_stats_print(s, stderr);
    }
    if (RILL_TEST_TSAN) {
        CHECK(s->bottleneck >= 0 || strncmp(s->verdict, "none: ", 6) == 0);
    } else {
        CHECK(s->bottleneck >= 0);
        CHECK_STREQ(s->stages[s->bottleneck].name, "sink");
        CHECK_EQ(s->bottleneck, find_stage(s, "sink"));
    }
    /* Busy the whole time it was not waiting for input. */
    CHECK(s->stages[2].busy_ns > 0);
    rill_stats_free(s);
    rill_pipeline_free(p);
    for (int i = 0; i < 3; i++)
        free(n[i].pay);
}

/* ---- stage statistics and snapshot lifetimes --------------------------------------- */

/* src (inline, driven by run) -> pre (inline) -> work (threaded, busy) ->
 * post (inline, on work's thread). */
RILL_TEST(thread_stats, stage_counters_busy_time_and_snapshot_lifetime) {
    enum { N = 600 };
    node n[4];
    rill_stage *st[4];
    static const char *const nm[4] = {"src", "pre", "work", "post"};
    rill_pipeline *p = NULL;
    rill_stats *before = NULL, *during = NULL, *after = NULL;
    CHECK_EQ(rill_pipeline_stats(NULL, &before), RILL_EINVAL);
    CHECK_OK(rill_pipeline_new("stages", &p));
    CHECK_EQ(rill_pipeline_stats(p, NULL), RILL_EINVAL);
    for (int i = 0; i < 4; i++) {
        node_init(&n[i], (unsigned)i, N);
        CHECK(n[i].pay != NULL);
        rill_stage_opts o = {.flags = i == 2 ? RILL_STAGE_THREADED : 0u, .capacity = 32};
        CHECK_OK(rill_stage_add(p, nm[i], i ? &pass_ops : &src_ops, &n[i], &o, &st[i]));
        if (i)
            CHECK_OK(rill_connect(st[i - 1], st[i]));
    }
    n[0].per_call = 7;
    n[1].keep_mod = 3; /* pre drops a third */
    n[2].spin = 5000;
    CHECK_OK(rill_pipeline_stats(p, &before));
    CHECK(!before->running);
    CHECK_EQ(before->elapsed_ns, 0);
    CHECK_EQ(before->nqueues, 0);
    CHECK_EQ(before->nstages, 4);
    CHECK_EQ(before->bottleneck, -1);
    CHECK_EQ(before->nsamples, 0);
    CHECK_OK(rill_pipeline_start(p));
    CHECK_OK(rill_pipeline_stats(p, &during));
    CHECK(during->running);
    CHECK_EQ(during->nqueues, 1);
    CHECK_OK(rill_pipeline_run(p));
    CHECK_OK(rill_pipeline_stats(p, &after));
    CHECK(!after->running);
    CHECK(after->elapsed_ns > 0);
    CHECK(after->elapsed_ns >= during->elapsed_ns);
    CHECK_STREQ(after->pipeline, "stages");
    CHECK_EQ(after->nqueues, 1);
    const rill_queue_stats *q = &after->queues[0];
    CHECK_STREQ(q->from, "pre");
    CHECK_STREQ(q->to, "work");
    CHECK_EQ(q->capacity, 32);
    CHECK_EQ(q->in, n[1].emitted);
    CHECK_EQ(q->out, n[2].sent);
    CHECK_EQ(q->depth, 0);
    CHECK(n[1].emitted > 0 && n[1].emitted < N);
    for (int i = 0; i < 4; i++) {
        const rill_stage_stats *g = &after->stages[i];
        CHECK_STREQ(g->name, nm[i]);
        CHECK_EQ(g->threaded, i == 2);
        CHECK_EQ(g->items_in, n[i].sent);
        CHECK_EQ(g->items_out, n[i].emitted);
        CHECK_EQ(g->input_depth, 0);
        CHECK_EQ(g->input_capacity, i == 2 ? 32 : 0);
        if (i == 2)
            CHECK(g->busy_ns > 0);
        /* Every stage's share of its thread (the caller's for pre and its
         * source, run by rill_pipeline_run; work's for the last). */
        CHECK(g->measured);
        CHECK_EQ(g->thread, i < 2 ? -1 : 2);
        CHECK(g->busy_ns <= g->thread_busy_ns);
        CHECK(g->thread_busy_ns <= g->thread_life_ns);
    }
    CHECK(after->stages[2].busy_ns + after->stages[3].busy_ns <=
          after->stages[2].thread_busy_ns + 1); /* shares, rounded down */
    CHECK_EQ(after->stages[0].items_out, N);
    CHECK_EQ(after->stages[3].items_in, n[2].emitted);
    /* Strings of every snapshot stay readable after close, until destroy. */
    CHECK_STREQ(before->stages[2].name, "work");
    CHECK_STREQ(during->queues[0].to, "work");
    CHECK_STREQ(during->pipeline, "stages");
    rill_pipeline_free(p);
    /* The structs are the caller's: freed after destroy is fine. */
    rill_stats_free(before);
    rill_stats_free(during);
    rill_stats_free(after);
    rill_stats_free(NULL);
    for (int i = 0; i < 4; i++)
        free(n[i].pay);
}

/* ---- the sampler ------------------------------------------------------------------ */

RILL_TEST(thread_stats, sampler_arguments_and_state) {
    rill_pipeline *p = NULL;
    node n;
    rill_stage *s = NULL, *k = NULL;
    rill_stats *snap = NULL;
    node_init(&n, 0, 4);
    CHECK(n.pay != NULL);
    CHECK_EQ(rill_pipeline_sampler(NULL, 100, 100), RILL_EINVAL);
    CHECK_OK(rill_pipeline_new("args", &p));
    CHECK_EQ(rill_pipeline_sampler(p, 100, 1), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_sampler(p, 100, 15), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_watchdog(NULL, 10, NULL, NULL), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_watchdog(p, 0, NULL, NULL), RILL_EINVAL);
    CHECK_OK(rill_pipeline_sampler(p, 0, 0)); /* the defaults */
    CHECK_OK(rill_pipeline_stats(p, &snap));
    CHECK_EQ(snap->sample_interval_ns, 2000000);
    rill_stats_free(snap);
    rill_stage_opts o = topts(4, 1);
    CHECK_OK(rill_stage_add(p, "src", &src_ops, &n, &o, &s));
    CHECK_OK(rill_stage_add(p, "sink", &pass_ops, &n, &o, &k));
    CHECK_OK(rill_connect(s, k));
    CHECK_OK(rill_pipeline_start(p));
    CHECK_EQ(rill_pipeline_sampler(p, 100, 100), RILL_ESTATE);
    CHECK_EQ(rill_pipeline_watchdog(p, 10, NULL, NULL), RILL_ESTATE);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(rill_pipeline_sampler(p, 100, 100), RILL_ESTATE);
    rill_pipeline_free(p);
    free(n.pay);
}

/* src -> mid -> sink (threaded), the source running until told to stop;
 * sampler every 500 us into 64 samples. Run until every queue has more than
 * 64 samples: the buffer must have halved at least once. */
RILL_TEST(thread_stats, sampler_keeps_a_bounded_time_ordered_record) {
    enum { MAXS = 64 };
    node n[3];
    rill_stage *st[3];
    static const char *const nm[3] = {"src", "mid", "sink"};
    atomic_int stop;
    atomic_init(&stop, 0);
    rill_pipeline *p = NULL;
    rill_stats *s = NULL;
    CHECK_OK(rill_pipeline_new("sampled", &p));
    for (int i = 0; i < 3; i++) {
        node_init(&n[i], (unsigned)i, 1000);
        CHECK(n[i].pay != NULL);
        rill_stage_opts o = topts(32, 4);
        CHECK_OK(rill_stage_add(p, nm[i], i ? &pass_ops : &src_ops, &n[i], &o, &st[i]));
        if (i)
            CHECK_OK(rill_connect(st[i - 1], st[i]));
    }
    n[0].run_until = &stop;
    n[0].spin = 2000;
    n[2].spin = 3000;
    CHECK_OK(rill_pipeline_sampler(p, 500, MAXS));
    CHECK_OK(rill_pipeline_start(p));
    bool enough = false;
    for (uint64_t end = now_ns() + 20000000000ull; !enough && now_ns() < end; sleep_ms(5)) {
        CHECK_OK(rill_pipeline_stats(p, &s));
        enough = s->nqueues == 2 && s->queues[0].samples > MAXS && s->queues[1].samples > MAXS;
        if (s->nsamples > MAXS) /* checked while running too */
            enough = false, atomic_store(&stop, 1);
        CHECK(s->nsamples <= MAXS);
        rill_stats_free(s);
        s = NULL;
    }
    atomic_store(&stop, 1);
    CHECK(enough);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_OK(rill_pipeline_stats(p, &s));
    CHECK(s->nsamples > 0);
    CHECK(s->nsamples <= MAXS);
    CHECK_EQ(s->nsamples % s->nqueues, 0); /* whole rounds */
    /* Doubled at least once, and only ever doubled. */
    CHECK(s->sample_interval_ns >= 2 * 500000ull);
    uint64_t iv = s->sample_interval_ns;
    while (iv > 500000)
        iv /= 2;
    CHECK_EQ(iv, 500000);
    for (size_t i = 0; i < s->nsamples; i++) {
        const rill_depth_sample *d = &s->samples[i];
        CHECK_EQ(d->queue, i % s->nqueues);
        CHECK(d->depth <= s->queues[d->queue].capacity);
        CHECK(d->t_ns <= s->elapsed_ns);
        if (i)
            CHECK(d->t_ns >= s->samples[i - 1].t_ns);
        if (i % s->nqueues)
            CHECK_EQ(d->t_ns, s->samples[i - 1].t_ns); /* one round, one time */
    }
    /* The record covers the run: it ends where the run ended, not after the
     * first 64 samples. */
    CHECK(s->samples[s->nsamples - 1].t_ns >= s->elapsed_ns / 4);
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill_queue_stats *q = &s->queues[k];
        uint64_t sum = 0;
        for (int b = 0; b < RILL_STATS_BANDS; b++)
            sum += q->bands[b];
        CHECK(q->samples > MAXS);
        CHECK_EQ(sum, q->samples);
    }
    rill_stats_free(s);
    rill_pipeline_free(p);
    for (int i = 0; i < 3; i++)
        free(n[i].pay);
}

/* ---- the watchdog ------------------------------------------------------------------ */

/* What the watchdog callback saw last (it runs on the sampler thread). On
 * a loaded machine a thread may not run for longer than the timeout before
 * the stall the test sets up, so the test waits for the call that shows
 * that stall, not for the first call. */
typedef struct stall_log {
    pthread_mutex_t m;
    int calls;
    rill_pipeline *p;
    rill_stall kind;
    char stage[32];
    char pipeline[32];
    size_t nqueues;
    uint64_t depth_total, in_total, out_total;
    bool all_full;      /* every queue at capacity */
    uint64_t delivered; /* items the last stage received */
    char history[8][200]; /* every call, for a failure message */
} stall_log;

static void on_stall(rill_pipeline *p, rill_stall kind, const char *stage, const rill_stats *s,
                     void *arg) {
    stall_log *l = arg;
    pthread_mutex_lock(&l->m);
    l->calls++;
    l->p = p;
    l->kind = kind;
    snprintf(l->stage, sizeof l->stage, "%s", stage ? stage : "(null)");
    snprintf(l->pipeline, sizeof l->pipeline, "%s", s ? s->pipeline : "(null)");
    l->nqueues = s ? s->nqueues : 0;
    l->depth_total = l->in_total = l->out_total = 0;
    l->all_full = s && s->nqueues;
    for (size_t k = 0; s && k < s->nqueues; k++) {
        l->depth_total += s->queues[k].depth;
        l->in_total += s->queues[k].in;
        l->out_total += s->queues[k].out;
        l->all_full = l->all_full && s->queues[k].depth == s->queues[k].capacity;
    }
    l->delivered = s && s->nstages ? s->stages[s->nstages - 1].items_in : 0;
    uint64_t stage_in = 0;
    for (size_t i = 0; s && i < s->nstages; i++)
        stage_in += s->stages[i].items_in;
    if (l->calls <= 8)
        snprintf(l->history[l->calls - 1], sizeof l->history[0],
                 "call %d at %.1f ms: %s %s, in %llu out %llu depth %llu stage-in %llu", l->calls,
                 s ? (double)s->elapsed_ns / 1e6 : 0.0,
                 kind == RILL_STALL_STUCK ? "stuck" : "starved", l->stage, (ull)l->in_total,
                 (ull)l->out_total, (ull)l->depth_total, (ull)stage_in);
    pthread_mutex_unlock(&l->m);
}

/* The log once its last call satisfies want (polls for at most 5 s). */
static stall_log wait_stall(stall_log *l, bool (*want)(const stall_log *)) {
    stall_log got;
    uint64_t end = now_ns() + 5000000000ull;
    for (;;) {
        pthread_mutex_lock(&l->m);
        got = *l;
        pthread_mutex_unlock(&l->m);
        if ((got.calls && want(&got)) || now_ns() > end)
            return got;
        sleep_ms(2);
    }
}

static int stall_calls(stall_log *l) {
    pthread_mutex_lock(&l->m);
    int c = l->calls;
    pthread_mutex_unlock(&l->m);
    return c;
}

/* The stall set up below, and not an earlier one seen while a thread
 * waited for a CPU: b waits at its gate on items 1-2 with 3-4 queued; a has
 * passed 1-4 on and waits for room to emit 5, with 5-6 and 7-8 queued; src
 * waits for room to emit 9. Nothing can move. */
static bool is_full_stall(const stall_log *l) {
    return l->all_full && l->in_total == 8 + 4 && l->out_total == 4;
}

/* A chain src -> a -> b, threaded, capacity 4; b waits at a gate on its
 * first item. Items pile up in both queues — a is stopped too, by
 * backpressure — and the watchdog must name b, the consumer that does not
 * run, once per stall. */
RILL_TEST(thread_stats, watchdog_names_the_stuck_consumer) {
    enum { N = 40 };
    node n[3];
    rill_stage *st[3];
    static const char *const nm[3] = {"src", "a", "b"};
    gate g;
    stall_log log = {.m = PTHREAD_MUTEX_INITIALIZER};
    rill_pipeline *p = NULL;
    gate_init(&g);
    CHECK_OK(rill_pipeline_new("stuck", &p));
    for (int i = 0; i < 3; i++) {
        node_init(&n[i], (unsigned)i, N);
        CHECK(n[i].pay != NULL);
        rill_stage_opts o = topts(4, 2);
        CHECK_OK(rill_stage_add(p, nm[i], i ? &pass_ops : &src_ops, &n[i], &o, &st[i]));
        if (i)
            CHECK_OK(rill_connect(st[i - 1], st[i]));
    }
    n[2].g = &g;
    CHECK_OK(rill_pipeline_watchdog(p, 50, on_stall, &log));
    CHECK_OK(rill_pipeline_start(p));
    stall_log got = wait_stall(&log, is_full_stall);
    sleep_ms(200); /* still the same stall: no second call */
    int calls_later = stall_calls(&log);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    CHECK_OK(rc);
    CHECK(got.calls > 0);
    CHECK(got.all_full);
    CHECK_EQ(got.in_total, 8 + 4);
    CHECK_EQ(got.out_total, 4);
    if (calls_later != got.calls)
        for (int i = 0; i < calls_later && i < 8; i++)
            rill_test__failf(__FILE__, __LINE__, "%s", log.history[i]);
    CHECK_EQ(calls_later, got.calls);
    CHECK(got.p == p);
    CHECK_EQ(got.kind, RILL_STALL_STUCK);
    CHECK_STREQ(got.stage, "b");
    CHECK_STREQ(got.pipeline, "stuck");
    CHECK_EQ(got.nqueues, 2);
    CHECK_EQ(got.depth_total, 8);
    CHECK_EQ(n[2].sent, N); /* released: everything arrived */
    rill_pipeline_free(p);
    gate_fini(&g);
    pthread_mutex_destroy(&log.m);
    for (int i = 0; i < 3; i++)
        free(n[i].pay);
}

/* quick's 3 items and idle's first 5 have reached the sink. */
static bool is_drained(const stall_log *l) { return l->delivered == 3 + 5; }

/* Two threaded sources into a threaded sink: `quick` emits 3 items and is
 * done; `idle` emits 5, flushes, and waits at a gate without producing.
 * Every queue drains: the pipeline is starved, and `idle` — not the first
 * source added — is the one to name. */
RILL_TEST(thread_stats, watchdog_names_the_idle_source_when_starved) {
    enum { N = 50 };
    node n[3];
    rill_stage *st[3];
    static const char *const nm[3] = {"quick", "idle", "sink"};
    gate g;
    stall_log log = {.m = PTHREAD_MUTEX_INITIALIZER};
    rill_pipeline *p = NULL;
    gate_init(&g);
    CHECK_OK(rill_pipeline_new("starved", &p));
    for (int i = 0; i < 3; i++) {
        node_init(&n[i], (unsigned)i, N);
        CHECK(n[i].pay != NULL);
        rill_stage_opts o = topts(16, 4);
        CHECK_OK(rill_stage_add(p, nm[i], i < 2 ? &src_ops : &pass_ops, &n[i], &o, &st[i]));
    }
    CHECK_OK(rill_connect(st[0], st[2]));
    CHECK_OK(rill_connect(st[1], st[2]));
    n[0].total = 3;
    n[1].g = &g;
    n[1].flush_after = 5;
    CHECK_OK(rill_pipeline_watchdog(p, 50, on_stall, &log));
    CHECK_OK(rill_pipeline_start(p));
    stall_log got = wait_stall(&log, is_drained);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    CHECK_OK(rc);
    CHECK(got.calls > 0);
    CHECK_EQ(got.delivered, 3 + 5);
    CHECK_EQ(got.kind, RILL_STALL_STARVED);
    CHECK_STREQ(got.stage, "idle");
    CHECK_EQ(got.depth_total, 0);
    CHECK_EQ(n[2].sent, 3 + N);
    rill_pipeline_free(p);
    gate_fini(&g);
    pthread_mutex_destroy(&log.m);
    for (int i = 0; i < 3; i++)
        free(n[i].pay);
}

/* The stall set up below: sink-0 waits at its gate with items 1-4 queued,
 * src waits for room to emit 5 to it, the other sinks got 1-4. */
static bool is_stuck(const stall_log *l) { return l->depth_total == 4 && l->delivered == 4; }

/* A sample buffer too small to hold two rounds (9 queues, 16 samples):
 * halving it frees nothing, so it must not be done — or the interval, which
 * also paces the watchdog, doubles every round and the watchdog goes blind.
 * The source feeds 9 threaded sinks; the first waits at a gate. */
RILL_TEST(thread_stats, sampler_with_room_for_one_round_keeps_its_pace) {
    enum { NS = 9, N = 40, MAXS = 16 };
    node src, k[NS];
    rill_stage *s = NULL, *st[NS];
    gate g;
    stall_log log = {.m = PTHREAD_MUTEX_INITIALIZER};
    rill_pipeline *p = NULL;
    rill_stats *snap = NULL;
    gate_init(&g);
    CHECK_OK(rill_pipeline_new("wide", &p));
    node_init(&src, 0, N);
    CHECK(src.pay != NULL);
    rill_stage_opts o = topts(4, 2);
    CHECK_OK(rill_stage_add(p, "src", &src_ops, &src, &o, &s));
    for (int i = 0; i < NS; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%d", i);
        node_init(&k[i], (unsigned)i + 1, N);
        CHECK(k[i].pay != NULL);
        CHECK_OK(rill_stage_add(p, name, &pass_ops, &k[i], &o, &st[i]));
        CHECK_OK(rill_connect(s, st[i]));
    }
    k[0].g = &g;
    CHECK_OK(rill_pipeline_sampler(p, 200, MAXS));
    CHECK_OK(rill_pipeline_watchdog(p, 50, on_stall, &log));
    CHECK_OK(rill_pipeline_start(p));
    stall_log got = wait_stall(&log, is_stuck);
    sleep_ms(300);
    int rc = rill_pipeline_stats(p, &snap);
    gate_open(&g);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_OK(rc);
    CHECK_EQ(got.depth_total, 4);
    CHECK_EQ(got.kind, RILL_STALL_STUCK);
    CHECK_STREQ(got.stage, "sink-0");
    CHECK_EQ(snap->nqueues, NS);
    /* Still sampling (and watching) at least once per watchdog timeout. */
    CHECK(snap->sample_interval_ns <= 50000000ull);
    rill_stats_free(snap);
    CHECK_OK(rill_pipeline_stats(p, &snap));
    CHECK(snap->nsamples <= MAXS);
    CHECK_EQ(snap->nsamples % NS, 0);
    rill_stats_free(snap);
    rill_pipeline_free(p);
    gate_fini(&g);
    pthread_mutex_destroy(&log.m);
    free(src.pay);
    for (int i = 0; i < NS; i++)
        free(k[i].pay);
}
