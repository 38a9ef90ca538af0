/* Checkpoint barriers (rill/checkpoint.h) on every kind of edge: inline
 * chains (also past the inline depth limit), queues of capacity 1, 2, 64 and
 * 4096, fan-out, fan-in of threaded, inline and mixed producers, inline
 * diamonds and inline sources run one after the other.
 *
 * Every item carries (producer << 32 | sequence number). The checking stage
 * verifies that each producer's items arrive in order, and in its barrier
 * callback that it has seen exactly each producer's prefix up to the
 * barrier — K items per barrier, or all of a producer that ended first —
 * with the sum of the values computed independently. Its callback emits a
 * marker item; the stage after it checks that barrier b comes right after
 * marker b (the callback's items go first, and nothing overtakes). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { MAXSRC = 4, MARK = 15 };

static uint64_t val(unsigned src, uint64_t seq) { return ((uint64_t)src << 32) | seq; }

/* ---- source: N items, a barrier after every K, optional busy time per item -- */

typedef struct src {
    unsigned tag;
    uint64_t n, k, next, delay_ns, emitted; /* emitted: emits that returned 0 */
    uint64_t *vals;      /* vals[i] = val(tag, i): items point here */
    bool stall;          /* emit nothing until the pipeline stops */
    bool flood;          /* no barrier after the first K */
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    if (s->next >= s->n || s->stall) {
        if (s->stall && !rill_pipeline_stopped(rill_stage_pipeline(st))) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            return 0;
        }
        return RILL_EDONE;
    }
    uint64_t i = ++s->next;
    if (s->delay_ns)
        for (uint64_t end = now_ns() + s->delay_ns; now_ns() < end;)
            ;
    rill_item it = rill_item_static(&s->vals[i], sizeof s->vals[i]);
    int rc = rill_emit(st, &it);
    if (rc)
        return rc;
    s->emitted++;
    if (i % s->k == 0 && !(s->flood && i > s->k))
        return rill_emit_barrier(st, i / s->k);
    return 0;
}

static void src_free(void *state) {
    src *s = state;
    free(s->vals);
    free(s);
}

static const rill_stage_ops src_ops = {.produce = src_produce, .free = src_free};

static rill_stage *add_src(rill_pipeline *p, const char *name, unsigned tag, uint64_t n,
                           uint64_t k, bool threaded, src **out) {
    src *s = calloc(1, sizeof *s);
    s->tag = tag;
    s->n = n;
    s->k = k;
    s->vals = malloc((n + 2) * sizeof *s->vals);
    for (uint64_t i = 0; i <= n + 1; i++)
        s->vals[i] = val(tag, i);
    rill_stage_opts o = {.flags = threaded ? RILL_STAGE_THREADED : 0};
    rill_stage *st = NULL;
    if (rill_stage_add(p, name, &src_ops, s, &o, &st))
        return NULL;
    if (out)
        *out = s;
    return st;
}

/* ---- pass: re-emits each item (tag != 0: as its own producer `tag`) ------ */

typedef struct pass {
    unsigned tag;
    uint64_t *vals, n;
} pass;

static int pass_send(rill_stage *st, void *state, const rill_item *item) {
    pass *ps = state;
    if (!ps->tag)
        return rill_emit(st, item);
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    uint64_t seq = v & 0xffffffffu;
    if (seq > ps->n)
        return rill_stage_fail(st, RILL_ESTAGE, "sequence out of range");
    rill_item it = rill_item_static(&ps->vals[seq], sizeof ps->vals[seq]);
    return rill_emit(st, &it);
}

static void pass_free(void *state) {
    pass *ps = state;
    free(ps->vals);
    free(ps);
}

static const rill_stage_ops pass_ops = {.send = pass_send, .free = pass_free};

static rill_stage *add_pass(rill_pipeline *p, const char *name, unsigned tag, uint64_t n,
                            const rill_stage_opts *o) {
    pass *ps = calloc(1, sizeof *ps);
    ps->tag = tag;
    ps->n = n;
    ps->vals = malloc((n + 2) * sizeof *ps->vals);
    for (uint64_t i = 0; i <= n + 1; i++)
        ps->vals[i] = val(tag, i);
    rill_stage *st = NULL;
    return rill_stage_add(p, name, &pass_ops, ps, o, &st) ? NULL : st;
}

/* ---- check: order per producer, exact prefix at each barrier ---------------- */

typedef struct check {
    uint64_t k, n[MAXSRC];   /* expectations: K, and each producer's length */
    uint64_t cnt[MAXSRC], sum, last_id, barriers, closes;
    uint64_t marks[4096];    /* values the callback emits, by id */
    uint64_t fail_at;        /* barrier id whose callback fails (0: none) */
    char why[200];
} check;

static void check_bad(check *c, const char *fmt, unsigned long long a, unsigned long long b) {
    if (!c->why[0])
        snprintf(c->why, sizeof c->why, fmt, a, b);
}

static int check_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    check *c = state;
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    unsigned s = (unsigned)(v >> 32);
    uint64_t seq = v & 0xffffffffu;
    if (s >= MAXSRC || seq != c->cnt[s] + 1)
        check_bad(c, "producer %llu: item %llu out of order", s, seq);
    else
        c->cnt[s]++;
    c->sum += v;
    return 0;
}

static int check_barrier(rill_stage *st, void *state, uint64_t id) {
    check *c = state;
    if (id != c->last_id + 1)
        check_bad(c, "barrier %llu after %llu", id, c->last_id);
    c->last_id = id;
    c->barriers++;
    uint64_t want_sum = 0;
    for (unsigned s = 0; s < MAXSRC; s++) {
        if (!c->n[s])
            continue;
        uint64_t want = id * c->k <= c->n[s] ? id * c->k : c->n[s];
        if (c->cnt[s] != want)
            check_bad(c, "at barrier %llu: %llu items", id, c->cnt[s] * 1000 + s);
        for (uint64_t q = 1; q <= want; q++)
            want_sum += val(s, q);
    }
    if (c->sum != want_sum)
        check_bad(c, "at barrier %llu: sum off by %llu", id, c->sum - want_sum);
    if (id == c->fail_at)
        return rill_stage_fail(st, RILL_ESTAGE, "checkpoint %llu refused", (unsigned long long)id);
    c->marks[id % 4096] = val(MARK, id);
    rill_item it = rill_item_static(&c->marks[id % 4096], sizeof(uint64_t));
    return rill_emit(st, &it);
}

static int check_close(rill_stage *st, void *state) {
    (void)st;
    ((check *)state)->closes++;
    return 0;
}

static const rill_stage_ops check_ops = {
    .send = check_send, .barrier = check_barrier, .close = check_close};

/* ---- tail: barrier b comes right after marker b ------------------------------ */

typedef struct tail {
    uint64_t last_mark, items, barriers;
    bool mark_pending;
    char why[200];
} tail;

static int tail_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    tail *t = state;
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    if ((v >> 32) == MARK) {
        if (t->mark_pending && !t->why[0])
            snprintf(t->why, sizeof t->why, "marker %llu without its barrier",
                     (unsigned long long)(v & 0xffffffffu));
        t->last_mark = v & 0xffffffffu;
        t->mark_pending = true;
    } else {
        t->items++;
    }
    return 0;
}

static int tail_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    tail *t = state;
    if ((!t->mark_pending || t->last_mark != id) && !t->why[0])
        snprintf(t->why, sizeof t->why, "barrier %llu after marker %llu (pending %d)",
                 (unsigned long long)id, (unsigned long long)t->last_mark, t->mark_pending);
    t->mark_pending = false;
    t->barriers++;
    return 0;
}

static const rill_stage_ops tail_ops = {.send = tail_send, .barrier = tail_barrier};

static rill_stage *add_state(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                             void *state, const rill_stage_opts *o) {
    rill_stage *st = NULL;
    return rill_stage_add(p, name, ops, state, o, &st) ? NULL : st;
}

/* A producer ended before the last barrier counts as aligned: barriers seen
 * at the check are those of the longest producer. */
static uint64_t barriers_of(const check *c) {
    uint64_t most = 0;
    for (unsigned s = 0; s < MAXSRC; s++)
        if (c->n[s] / c->k > most)
            most = c->n[s] / c->k;
    return most;
}

#define CHECK_CLEAN(c, t)                                                       \
    do {                                                                        \
        if ((c)->why[0])                                                        \
            rill_test__failf(__FILE__, __LINE__, "check: %s", (c)->why);        \
        if ((t)->why[0])                                                        \
            rill_test__failf(__FILE__, __LINE__, "tail: %s", (t)->why);         \
        CHECK(!(c)->why[0] && !(t)->why[0]);                                    \
    } while (0)

/* ---- the cases ------------------------------------------------------------------ */

/* src -> pass -> check -> tail with each of them inline or threaded. */
static void chain_case(bool src_thr, bool check_thr, bool tail_thr, unsigned cap, unsigned batch,
                       uint64_t n, uint64_t k) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("chain", &p));
    check c = {.k = k, .n = {n}};
    tail t = {0};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch};
    rill_stage *s = add_src(p, "src", 0, n, k, src_thr, NULL);
    rill_stage *ps = add_pass(p, "pass", 0, n, NULL);
    rill_stage *ck = add_state(p, "check", &check_ops, &c, check_thr ? &thr : NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, tail_thr ? &thr : NULL);
    CHECK(s && ps && ck && tl);
    CHECK_OK(rill_connect(s, ps));
    CHECK_OK(rill_connect(ps, ck));
    CHECK_OK(rill_connect(ck, tl));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_CLEAN(&c, &t);
    CHECK_EQ(c.cnt[0], n);
    CHECK_EQ(c.barriers, n / k);
    CHECK_EQ(t.barriers, n / k);
    struct rill_stage_barrier_stats bs;
    CHECK_OK(rill_stage_barrier_stats(ck, &bs));
    CHECK_EQ(bs.barriers, n / k);
    rill_pipeline_free(p);
}

RILL_TEST(barrier, never_overtakes_items_on_inline_edges) {
    chain_case(false, false, false, 0, 0, 1000, 7);
}

RILL_TEST(barrier, never_overtakes_items_across_queues_of_any_capacity) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned i = 0; i < 4; i++) {
        chain_case(true, true, true, caps[i], 0, 3000, 13);
        chain_case(false, true, false, caps[i], caps[i] > 8 ? 8 : 0, 3000, 1);
        chain_case(true, false, true, caps[i], 0, 2000, 250);
    }
}

/* A chain longer than the inline depth limit: barriers are held in order
 * with the items on the domain's FIFO. */
RILL_TEST(barrier, stays_in_order_past_the_inline_depth_limit) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("deep", &p));
    uint64_t n = 500, k = 9;
    check c = {.k = k, .n = {n}};
    tail t = {0};
    rill_stage *prev = add_src(p, "src", 0, n, k, false, NULL);
    char name[32];
    for (unsigned i = 0; i < 150; i++) {
        snprintf(name, sizeof name, "p%u", i);
        rill_stage *ps = add_pass(p, name, 0, n, NULL);
        CHECK(ps);
        CHECK_OK(rill_connect(prev, ps));
        prev = ps;
    }
    rill_stage *ck = add_state(p, "check", &check_ops, &c, NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, NULL);
    CHECK_OK(rill_connect(prev, ck));
    CHECK_OK(rill_connect(ck, tl));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_CLEAN(&c, &t);
    CHECK_EQ(c.barriers, n / k);
    CHECK_EQ(t.barriers, n / k);
    rill_pipeline_free(p);
}

/* One source fanned out to a threaded and an inline branch. */
RILL_TEST(barrier, reaches_every_branch_of_a_fan_out) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("fanout", &p));
    uint64_t n = 4000, k = 100;
    check c1 = {.k = k, .n = {n}}, c2 = {.k = k, .n = {n}};
    tail t1 = {0}, t2 = {0};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED, .capacity = 64};
    rill_stage *s = add_src(p, "src", 0, n, k, false, NULL);
    rill_stage *a = add_state(p, "a", &check_ops, &c1, &thr);
    rill_stage *b = add_state(p, "b", &check_ops, &c2, NULL);
    rill_stage *ta = add_state(p, "ta", &tail_ops, &t1, NULL);
    rill_stage *tb = add_state(p, "tb", &tail_ops, &t2, &thr);
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(s, b));
    CHECK_OK(rill_connect(a, ta));
    CHECK_OK(rill_connect(b, tb));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_CLEAN(&c1, &t1);
    CHECK_CLEAN(&c2, &t2);
    CHECK_EQ(c1.barriers, n / k);
    CHECK_EQ(c2.barriers, n / k);
    CHECK_EQ(t1.barriers + t2.barriers, 2 * (n / k));
    rill_pipeline_free(p);
}

/* Fan-in: sources with the given lengths, threaded or not, the slow one
 * with busy time per item; the check stage inline or threaded. */
static void fanin_case(const char *name, unsigned nsrc, const uint64_t *n, const bool *thr,
                       uint64_t slow_ns, bool check_thr, uint64_t k) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(name, &p));
    check c = {.k = k};
    tail t = {0};
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 32};
    rill_stage *ck = add_state(p, "check", &check_ops, &c, check_thr ? &o : NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, NULL);
    CHECK(ck && tl);
    for (unsigned i = 0; i < nsrc; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "src%u", i);
        src *sp;
        rill_stage *s = add_src(p, nm, i, n[i], k, thr[i], &sp);
        CHECK(s);
        if (i == 0)
            sp->delay_ns = slow_ns;
        c.n[i] = n[i];
        CHECK_OK(rill_connect(s, ck));
    }
    CHECK_OK(rill_connect(ck, tl));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_CLEAN(&c, &t);
    for (unsigned i = 0; i < nsrc; i++)
        CHECK_EQ(c.cnt[i], n[i]);
    CHECK_EQ(c.barriers, barriers_of(&c));
    CHECK_EQ(t.barriers, barriers_of(&c));
    rill_pipeline_free(p);
}

/* Items after the barrier from the fast producers must wait for the slow
 * one's barrier: the prefix check at each barrier fails otherwise. */
RILL_TEST(barrier, aligns_threaded_producers_with_a_slow_one) {
    uint64_t n[] = {600, 3000, 3000};
    bool thr[] = {true, true, true};
    fanin_case("threaded", 3, n, thr, 20000, false, 50);
    fanin_case("threaded2", 3, n, thr, 20000, true, 50);
}

RILL_TEST(barrier, aligns_inline_and_threaded_producers) {
    uint64_t n[] = {600, 3000};
    bool thr1[] = {false, true}, thr2[] = {true, false};
    fanin_case("mixed1", 2, n, thr1, 20000, false, 60);
    fanin_case("mixed2", 2, n, thr2, 20000, false, 60);
}

/* Inline sources on the caller's thread run one after the other: the first
 * one's items after each barrier wait in a stash until the others' barrier
 * arrives, also at a threaded stage (its queues from that one thread are
 * stashed, not held back: the thread could not go on to the next source). */
RILL_TEST(barrier, aligns_inline_sources_run_one_after_the_other) {
    uint64_t n[] = {1000, 700, 1000};
    bool thr[] = {false, false, false};
    fanin_case("seq", 3, n, thr, 0, false, 25);
    fanin_case("seq2", 3, n, thr, 0, true, 25); /* into a threaded stage: stashed */
}

RILL_TEST(barrier, counts_a_finished_producer_as_aligned) {
    uint64_t n[] = {5, 2000};
    bool thr[] = {true, true}, inl[] = {false, false}, mix[] = {false, true};
    fanin_case("early_thr", 2, n, thr, 0, false, 10);
    fanin_case("early_inl", 2, n, inl, 0, false, 10);
    fanin_case("early_mix", 2, n, mix, 0, false, 10);
    uint64_t none[] = {0, 300};
    fanin_case("empty", 2, none, thr, 0, false, 10);
}

/* A diamond on one thread: src -> (a, b) -> check, a and b retagging, the
 * second branch threaded or inline. */
static void diamond_case(bool b_threaded, bool check_threaded) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("diamond", &p));
    uint64_t n = 2000, k = 40;
    check c = {.k = k, .n = {0, n, n}};
    tail t = {0};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED, .capacity = 16};
    rill_stage *s = add_src(p, "src", 0, n, k, false, NULL);
    rill_stage *a = add_pass(p, "a", 1, n, NULL);
    rill_stage *b = add_pass(p, "b", 2, n, b_threaded ? &thr : NULL);
    rill_stage *ck = add_state(p, "check", &check_ops, &c, check_threaded ? &thr : NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, NULL);
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(s, b));
    CHECK_OK(rill_connect(a, ck));
    CHECK_OK(rill_connect(b, ck));
    CHECK_OK(rill_connect(ck, tl));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_CLEAN(&c, &t);
    CHECK_EQ(c.barriers, n / k);
    CHECK_EQ(t.barriers, n / k);
    rill_pipeline_free(p);
}

RILL_TEST(barrier, aligns_the_two_paths_of_a_diamond) {
    diamond_case(false, false);
    diamond_case(true, false);
    diamond_case(false, true);
}

RILL_TEST(barrier, ids_must_increase) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("ids", &p));
    rill_stage *s = add_src(p, "src", 0, 1, 1, false, NULL);
    CHECK(s);
    CHECK_EQ(rill_emit_barrier(NULL, 1), RILL_EINVAL);
    CHECK_OK(rill_pipeline_start(p));
    CHECK_OK(rill_emit_barrier(s, 5));
    CHECK_EQ(rill_emit_barrier(s, 5), RILL_EINVAL);
    CHECK_EQ(rill_emit_barrier(s, 4), RILL_EINVAL);
    CHECK_OK(rill_emit_barrier(s, 6));
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
}

/* A failing callback fails the pipeline, naming the stage. */
static void fail_case(bool threaded) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("fail", &p));
    check c = {.k = 10, .n = {1000}, .fail_at = 3};
    tail t = {0};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED};
    rill_stage *s = add_src(p, "src", 0, 1000, 10, threaded, NULL);
    rill_stage *ck = add_state(p, "checkpointer", &check_ops, &c, threaded ? &thr : NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, NULL);
    CHECK_OK(rill_connect(s, ck));
    CHECK_OK(rill_connect(ck, tl));
    CHECK_EQ(rill_pipeline_run(p), RILL_ESTAGE);
    CHECK_STREQ(rill_pipeline_errstage(p), "checkpointer");
    CHECK(strstr(rill_pipeline_errmsg(p), "checkpointer") != NULL);
    CHECK(strstr(rill_pipeline_errmsg(p), "checkpoint 3 refused") != NULL);
    CHECK_EQ(c.barriers, 3);
    CHECK_EQ(t.barriers, 2); /* the failed barrier is not passed on */
    rill_pipeline_free(p);
}

RILL_TEST(barrier, failing_callback_fails_the_pipeline_naming_the_stage) {
    fail_case(false);
    fail_case(true);
}

/* ---- stop while a stage waits for alignment ---------------------------------- */

typedef struct aborter {
    rill_pipeline *p;
    uint64_t after_ns;
} aborter;

static void *abort_later(void *arg) {
    aborter *a = arg;
    for (uint64_t end = now_ns() + a->after_ns; now_ns() < end;) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    rill_pipeline_abort(a->p);
    return NULL;
}

/* src0 sends nothing until stopped; src1 floods
 * items after its barrier 1, which the check stage must not take: its queue
 * fills and src1 blocks (threaded), or they wait in a stash (inline). The
 * abort must end it all; the check stage saw only the prefix. */
static void stall_case(bool threaded, bool check_threaded, uint64_t flood) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("stall", &p));
    check c = {.k = 1, .n = {5, flood}};
    tail t = {0};
    src *s0, *s1;
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED, .capacity = 64};
    rill_stage *ck = add_state(p, "check", &check_ops, &c, check_threaded ? &thr : NULL);
    rill_stage *tl = add_state(p, "tail", &tail_ops, &t, NULL);
    /* inline: the flooding source runs first, the stalling one after */
    rill_stage *a = add_src(p, "flood", 1, flood, 1, threaded, &s1);
    rill_stage *b = add_src(p, "stall", 0, 5, 1, threaded, &s0);
    CHECK(ck && tl && a && b);
    s0->stall = true;
    s1->flood = true;
    CHECK_OK(rill_connect(a, ck));
    CHECK_OK(rill_connect(b, ck));
    CHECK_OK(rill_connect(ck, tl));
    aborter ab = {p, 100000000u};
    pthread_t tid;
    CHECK(pthread_create(&tid, NULL, abort_later, &ab) == 0);
    double t0 = now_s();
    int rc = rill_pipeline_run(p);
    pthread_join(tid, NULL);
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK(now_s() - t0 < 30);
    CHECK_CLEAN(&c, &t);
    CHECK(c.cnt[1] <= 1); /* nothing after src1's barrier 1 */
    /* conserved: every item emitted was delivered or counted as discarded */
    CHECK_EQ(s1->emitted, c.cnt[1] + rill_pipeline_discarded(p));
    CHECK_EQ(c.closes, 1); /* every stage gets its one close, aborted or not */
    CHECK_EQ(c.barriers, 0);
    rill_pipeline_free(p);
}

RILL_TEST(barrier, abort_during_alignment_does_not_hang) {
    stall_case(true, true, 1000000);
    stall_case(false, false, 20000);
    stall_case(false, true, 20000); /* one thread feeds both queues: stashed */
}

/* ---- a leaky queue drops items, never a barrier ----------------------------- */

typedef struct tally {
    uint64_t items, barriers;
} tally;

static int tally_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    (void)item;
    ((tally *)state)->items++;
    return 0;
}

static int tally_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    (void)id;
    ((tally *)state)->barriers++;
    return 0;
}

static const rill_stage_ops tally_ops = {.send = tally_send, .barrier = tally_barrier};

RILL_TEST(barrier, drop_oldest_queue_drops_items_but_no_barrier) {
    for (unsigned policy = RILL_OVERFLOW_DROP_NEWEST; policy <= RILL_OVERFLOW_DROP_OLDEST;
         policy++) {
        rill_pipeline *p;
        CHECK_OK(rill_pipeline_new("leaky", &p));
        uint64_t n = 20000, k = 50;
        tally t = {0};
        rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 4, .batch = 2,
                             .overflow = policy};
        rill_stage *s = add_src(p, "src", 0, n, k, true, NULL);
        rill_stage *tl = add_state(p, "tally", &tally_ops, &t, &o);
        CHECK(s && tl);
        CHECK_OK(rill_stage_set_delay(tl, 1));
        CHECK_OK(rill_connect(s, tl));
        CHECK_OK(rill_pipeline_run(p));
        CHECK_EQ(t.barriers, n / k);
        CHECK(t.items <= n);
        rill_pipeline_free(p);
    }
}
/* ---- replicas: a barrier reaches every replica, the stage after aligns over them -- */

typedef struct sumck {
    uint64_t k, n, cnt, sum, barriers;
    char why[160];
} sumck;

static int sumck_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    sumck *c = state;
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    c->cnt++;
    c->sum += v & 0xffffffffu;
    return 0;
}

static int sumck_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    sumck *c = state;
    uint64_t want = id * c->k < c->n ? id * c->k : c->n;
    if ((c->cnt != want || c->sum != want * (want + 1) / 2) && !c->why[0])
        snprintf(c->why, sizeof c->why, "barrier %llu: %llu items, want %llu",
                 (unsigned long long)id, (unsigned long long)c->cnt, (unsigned long long)want);
    c->barriers++;
    return 0;
}

static const rill_stage_ops sumck_ops = {.send = sumck_send, .barrier = sumck_barrier};

static int pass_clone(const void *state, void **out) {
    const pass *ps = state;
    pass *c = calloc(1, sizeof *c);
    c->n = ps->n;
    c->vals = malloc((ps->n + 2) * sizeof *c->vals);
    memcpy(c->vals, ps->vals, (ps->n + 2) * sizeof *c->vals);
    *out = c;
    return 0;
}

static const rill_stage_ops rpass_ops = {.send = pass_send, .free = pass_free, .clone = pass_clone};

RILL_TEST(barrier, reaches_every_replica_and_aligns_after_them) {
    for (unsigned r = 2; r <= 4; r++) {
        rill_pipeline *p;
        CHECK_OK(rill_pipeline_new("replicas", &p));
        uint64_t n = 5000, k = 64;
        sumck c = {.k = k, .n = n};
        rill_stage *s = add_src(p, "src", 0, n, k, true, NULL);
        pass *ps = calloc(1, sizeof *ps);
        ps->n = n;
        ps->vals = malloc((n + 2) * sizeof *ps->vals);
        for (uint64_t i = 0; i <= n + 1; i++)
            ps->vals[i] = val(0, i);
        rill_stage_opts ro = {.replicas = r, .capacity = 16, .batch = 4};
        rill_stage *rp = NULL, *ck = NULL;
        CHECK_OK(rill_stage_add(p, "rpass", &rpass_ops, ps, &ro, &rp));
        rill_stage_opts to = {.flags = RILL_STAGE_THREADED, .capacity = 8};
        CHECK_OK(rill_stage_add(p, "sum", &sumck_ops, &c, &to, &ck));
        CHECK_OK(rill_connect(s, rp));
        CHECK_OK(rill_connect(rp, ck));
        CHECK_OK(rill_pipeline_run(p));
        if (c.why[0])
            rill_test__failf(__FILE__, __LINE__, "%s", c.why);
        CHECK(!c.why[0]);
        CHECK_EQ(c.cnt, n);
        CHECK_EQ(c.barriers, n / k);
        rill_pipeline_free(p);
    }
}
