/* Deep inline chains (issue 15, item 1). Each stage delivers inside the
 * previous one's rill_emit up to a depth limit; past it the item is held in
 * its thread's FIFO and delivered once that thread is back at depth 0
 * (engine/pipeline/held.c). Before that, the first two tests crashed with
 * SIGSEGV (stack overflow): the 1,000,000-stage chain on the 8 MB main stack,
 * the 10,000-stage chain on a thread with a 256 KiB stack. The graph walks
 * (cycle check, close cascade) are iterative: test_graph_size.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

typedef struct tally {
    unsigned long long sends, closes;
    unsigned items;
} tally;

static int pass_send(rill_stage *st, void *state, const rill_item *it) {
    ((tally *)state)->sends++;
    return rill_emit(st, it);
}

static int count_close(rill_stage *st, void *state) {
    (void)st;
    ((tally *)state)->closes++;
    return 0;
}

static int src_produce(rill_stage *st, void *state) {
    tally *t = state;
    for (unsigned i = 0; i < t->items; i++) {
        rill_item it = rill_item_static("x", 1);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
    }
    return RILL_EDONE;
}

static const rill_stage_ops pass_ops = {.send = pass_send, .close = count_close};
static const rill_stage_ops src_ops = {.produce = src_produce, .close = count_close};

/* A source and n-1 inline stages in a chain, run with `items` items.
 * Returns the run's code; -1000 if the graph could not be built. */
static int run_chain(unsigned n, unsigned items, tally *t) {
    t->items = items;
    rill_pipeline *p = NULL;
    rill_stage *prev = NULL, *st = NULL;
    if (rill_pipeline_new("deep", &p) || rill_stage_add(p, "source", &src_ops, t, NULL, &prev)) {
        rill_pipeline_free(p);
        return -1000;
    }
    for (unsigned i = 1; i < n; i++)
        if (rill_stage_add(p, NULL, &pass_ops, t, NULL, &st) || rill_connect(prev, st)) {
            rill_pipeline_free(p);
            return -1000;
        } else {
            prev = st;
        }
    int rc = rill_pipeline_run(p);
    rill_pipeline_free(p);
    return rc;
}

/* Builds, runs 3 items through and closes in 3-4 s here (release, on a busy
 * 2-core machine; 5-7 s under ASan); ctest's timeout of 120 s bounds it.
 * ThreadSanitizer (this file has threads) takes 27 s for a million stages
 * that never leave one thread: a tenth of them is enough there. */
#if defined(__SANITIZE_THREAD__)
#define DEEP_N 100000u
#else
#define DEEP_N 1000000u
#endif
RILL_TEST(deep_chain, million_stage_inline_chain_runs) {
    tally t = {0};
    CHECK_OK(run_chain(DEEP_N, 3, &t));
    CHECK_EQ(t.sends, 3ull * (DEEP_N - 1));
    CHECK_EQ(t.closes, DEEP_N);
}

typedef struct job {
    tally t;
    int rc;
} job;

static void *small_stack_run(void *arg) {
    job *j = arg;
    j->rc = run_chain(10000, 3, &j->t);
    return NULL;
}

RILL_TEST(deep_chain, ten_thousand_stages_on_a_256k_stack) {
    job j = {.rc = -1};
    pthread_attr_t a;
    pthread_t tid;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setstacksize(&a, 256 * 1024), 0);
    CHECK_EQ(pthread_create(&tid, &a, small_stack_run, &j), 0);
    pthread_join(tid, NULL);
    pthread_attr_destroy(&a);
    CHECK_OK(j.rc);
    CHECK_EQ(j.t.sends, 3ull * 9999);
    CHECK_EQ(j.t.closes, 10000);
}

/* ---- order, borrowed bytes, errors and threads past the depth limit ---- */

/* Appends a stage to *prev; -1000 from the caller's run if it fails. */
static rill_stage *add_after(rill_pipeline *p, rill_stage *prev, const rill_stage_ops *ops,
                             void *state, const rill_stage_opts *opts) {
    rill_stage *st = NULL;
    if (rill_stage_add(p, NULL, ops, state, opts, &st) || (prev && rill_connect(prev, st)))
        return NULL;
    return st;
}

static rill_stage *add_chain(rill_pipeline *p, rill_stage *prev, unsigned n, tally *t) {
    for (unsigned i = 0; i < n && prev; i++)
        prev = add_after(p, prev, &pass_ops, t, NULL);
    return prev;
}

/* A source of items "0".."N-1" in a stack buffer that is wiped after each
 * emit: a held item must have been copied. */
typedef struct numbers {
    unsigned n;
    int owned; /* emit rill_item_copy results (released after the emit) */
} numbers;

static int numbers_produce(rill_stage *st, void *state) {
    numbers *s = state;
    for (unsigned i = 0; i < s->n; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "%u", i);
        rill_item it = rill_item_borrow(buf, (size_t)len);
        if (s->owned && rill_item_copy(buf, (size_t)len, &it))
            return RILL_ENOMEM;
        int rc = rill_emit(st, &it);
        if (s->owned)
            rill_item_release(&it);
        memset(buf, '#', sizeof buf);
        if (rc)
            return rc;
    }
    return RILL_EDONE;
}
static const rill_stage_ops numbers_ops = {.produce = numbers_produce};

/* Re-emits "TAG:ITEM" from its own stack buffer. */
typedef struct tagger {
    char tag;
} tagger;

static int tag_send(rill_stage *st, void *state, const rill_item *it) {
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%c:%.*s", ((tagger *)state)->tag, (int)it->len,
                       (const char *)it->data);
    rill_item out = rill_item_borrow(buf, (size_t)len);
    int rc = rill_emit(st, &out);
    memset(buf, '#', sizeof buf);
    return rc;
}
static const rill_stage_ops tag_ops = {.send = tag_send};

/* Checks, per tag, that the numbers arrive as 0,1,2,... each `repeat` times. */
typedef struct recorder {
    unsigned repeat;
    unsigned long long seen[2]; /* per tag 'a', 'b': items seen */
    unsigned long long bad;     /* out of order, or bytes not as sent */
    char first_bad[40];
} recorder;

static int record_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    recorder *r = state;
    const char *d = it->data;
    unsigned t = it->len > 2 && d[1] == ':' ? (unsigned)(d[0] - 'a') : 2;
    char want[32];
    int len = t < 2 ? snprintf(want, sizeof want, "%c:%llu", d[0], r->seen[t] / r->repeat) : 0;
    if (t >= 2 || !rill_item_eq(it, want, (size_t)len)) {
        if (!r->bad++)
            snprintf(r->first_bad, sizeof r->first_bad, "%.*s", (int)(it->len < 30 ? it->len : 30),
                     d);
        return 0;
    }
    r->seen[t]++;
    return 0;
}
static const rill_stage_ops record_ops = {.send = record_send};

/* Source -> 300 inline stages -> fan-out to a 200-stage branch tagged 'a'
 * and a 10-stage branch tagged 'b', which meet again in one recorder (fan-in
 * on one thread); 'b' also reaches a second recorder connected twice (every
 * item twice, in order). Every stretch is longer than the depth limit, so
 * items are held: each producer's items must still arrive in its order. */
RILL_TEST(deep_chain, order_kept_through_held_fan_out_and_fan_in) {
    enum { N = 2000 };
    tally t = {0};
    numbers src = {.n = N};
    tagger ta = {'a'}, tb = {'b'};
    recorder r1 = {.repeat = 1}, r2 = {.repeat = 2};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("order", &p));
    rill_stage *s = add_after(p, NULL, &numbers_ops, &src, NULL);
    rill_stage *mid = add_chain(p, s, 300, &t);
    rill_stage *a = add_chain(p, add_after(p, mid, &tag_ops, &ta, NULL), 200, &t);
    rill_stage *b = add_chain(p, add_after(p, mid, &tag_ops, &tb, NULL), 10, &t);
    rill_stage *rec1 = add_after(p, a, &record_ops, &r1, NULL);
    rill_stage *rec2 = add_after(p, b, &record_ops, &r2, NULL);
    CHECK(rec1 && rec2);
    CHECK_OK(rill_connect(b, rec1));
    CHECK_OK(rill_connect(b, rec2));
    CHECK_OK(rill_pipeline_run(p));
    rill_pipeline_free(p);
    CHECK_STREQ(r1.bad ? r1.first_bad : "", "");
    CHECK_STREQ(r2.bad ? r2.first_bad : "", "");
    CHECK_EQ(r1.seen[0], N);
    CHECK_EQ(r1.seen[1], N);
    CHECK_EQ(r2.seen[0], 0);
    CHECK_EQ(r2.seen[1], 2 * N);
    CHECK_EQ(t.sends, (300ull + 200 + 10) * N);
}

/* Fails on its first item. */
static int fail_send(rill_stage *st, void *state, const rill_item *it) {
    (void)it;
    ((tally *)state)->sends++;
    return rill_stage_fail(st, RILL_ESTAGE, "deep failure");
}
static const rill_stage_ops fail_ops = {.send = fail_send};

/* A stage `at` stages down a chain fans out to 50 leaves; the first leaf
 * fails. Delivered directly, the fan-out stops at the failure; held (the
 * fan-out at the depth limit), the 49 items held for the other leaves are
 * discarded. Owned items: ASan finds any held reference not released. */
static int fail_at(unsigned at, unsigned long long *leaf_sends, uint64_t *discarded,
                   const char **errstage) {
    tally t = {0}, leaves = {0}, bad = {0};
    numbers src = {.n = 10, .owned = 1};
    rill_pipeline *p = NULL;
    if (rill_pipeline_new("fail", &p))
        return -1000;
    rill_stage *fan = add_chain(p, add_after(p, NULL, &numbers_ops, &src, NULL), at, &t);
    rill_stage *st = NULL;
    if (!fan || rill_stage_add(p, "leaf0", &fail_ops, &bad, NULL, &st) || rill_connect(fan, st)) {
        rill_pipeline_free(p);
        return -1000;
    }
    for (unsigned i = 1; i < 50; i++)
        if (!add_after(p, fan, &pass_ops, &leaves, NULL)) {
            rill_pipeline_free(p);
            return -1000;
        }
    int rc = rill_pipeline_run(p);
    *leaf_sends = leaves.sends + bad.sends;
    *discarded = rill_pipeline_discarded(p);
    *errstage = rill_pipeline_errstage(p) && !strcmp(rill_pipeline_errstage(p), "leaf0")
                    ? "leaf0"
                    : "other";
    rill_pipeline_free(p);
    return rc;
}

RILL_TEST(deep_chain, error_in_a_held_stretch_stops_and_discards) {
    uint64_t most = 0;
    for (unsigned at = 40; at < 140; at++) {
        unsigned long long sends = 0;
        uint64_t discarded = 0;
        const char *who = NULL;
        CHECK_EQ(fail_at(at, &sends, &discarded, &who), RILL_ESTAGE);
        CHECK_STREQ(who, "leaf0");
        CHECK_EQ(sends, 1); /* only the failing leaf ran */
        CHECK(discarded == 0 || discarded == 49);
        most = discarded > most ? discarded : most;
    }
    CHECK_EQ(most, 49); /* some placement put the fan-out at the limit */
}

/* 1,000 inline stages, a threaded stage, 1,000 more, a recorder: held items
 * on the caller's thread and on the worker's. */
RILL_TEST(deep_chain, threaded_stage_between_deep_inline_chains) {
    enum { N = 2000 };
    tally t1 = {0}, t2 = {0};
    numbers src = {.n = N};
    tagger ta = {'a'};
    recorder r = {.repeat = 1};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("threaded", &p));
    rill_stage *s = add_chain(p, add_after(p, NULL, &numbers_ops, &src, NULL), 1000, &t1);
    rill_stage *w = add_chain(p, add_after(p, s, &tag_ops, &ta, &thr), 1000, &t2);
    CHECK(w && add_after(p, w, &record_ops, &r, NULL));
    CHECK_OK(rill_pipeline_run(p));
    rill_pipeline_free(p);
    CHECK_STREQ(r.bad ? r.first_bad : "", "");
    CHECK_EQ(r.seen[0], N);
    CHECK_EQ(t1.sends, 1000ull * N);
    CHECK_EQ(t2.sends, 1000ull * N);
}

/* Re-emits each item as "a:K", K counting from 0: its output order. */
static int stamp_send(rill_stage *st, void *state, const rill_item *it) {
    (void)it;
    char buf[32];
    int len = snprintf(buf, sizeof buf, "a:%llu", (*(unsigned long long *)state)++);
    rill_item out = rill_item_borrow(buf, (size_t)len);
    return rill_emit(st, &out);
}
static const rill_stage_ops stamp_ops = {.send = stamp_send};

/* One producer at two depths inside one outermost send: after the source, a
 * stage fans out to a 40-stage branch and a 5-stage one, both into the
 * stamp stage, which has 100 stages after it. Its output from the long side
 * is held 60-odd stages down; its output from the short side, emitted
 * later, would reach that point shallower and overtake it if it were not
 * held too. The recorder must see the stamps in order. */
RILL_TEST(deep_chain, one_producer_at_two_depths_keeps_its_order) {
    enum { N = 500 };
    tally t = {0};
    numbers src = {.n = N};
    unsigned long long stamps = 0;
    recorder r = {.repeat = 1};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("two-depths", &p));
    rill_stage *s = add_chain(p, add_after(p, NULL, &numbers_ops, &src, NULL), 1, &t);
    rill_stage *stamp = add_after(p, add_chain(p, s, 40, &t), &stamp_ops, &stamps, NULL);
    rill_stage *shallow = add_chain(p, s, 5, &t);
    CHECK(stamp && shallow);
    CHECK_OK(rill_connect(shallow, stamp));
    CHECK(add_after(p, add_chain(p, stamp, 100, &t), &record_ops, &r, NULL));
    CHECK_OK(rill_pipeline_run(p));
    rill_pipeline_free(p);
    CHECK_STREQ(r.bad ? r.first_bad : "", "");
    CHECK_EQ(r.seen[0], 2 * N);
    CHECK_EQ(stamps, 2 * N);
}

/* rill_pipeline_push into an inline entry ahead of a 500-stage chain: the
 * pushed bytes are a stack buffer wiped after each push (held copies must
 * be taken), items arrive in push order, and the last stage's close runs
 * only after every held item has reached it. */
typedef struct closing_recorder {
    recorder r;
    unsigned long long seen_at_close;
    int closes;
} closing_recorder;

static int closing_record_send(rill_stage *st, void *state, const rill_item *it) {
    return record_send(st, &((closing_recorder *)state)->r, it);
}

static int closing_record_close(rill_stage *st, void *state) {
    (void)st;
    closing_recorder *c = state;
    c->seen_at_close = c->r.seen[0];
    c->closes++;
    return 0;
}
static const rill_stage_ops closing_record_ops = {.send = closing_record_send,
                                                  .close = closing_record_close};

RILL_TEST(deep_chain, pushed_items_pass_a_held_chain_in_order_before_close) {
    enum { N = 1000 };
    tally t = {0};
    closing_recorder c = {.r = {.repeat = 1}};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("push-deep", &p));
    rill_stage *entry = add_after(p, NULL, &pass_ops, &t, NULL);
    rill_stage *last = add_chain(p, entry, 500, &t);
    CHECK(last != NULL);
    CHECK(add_after(p, last, &closing_record_ops, &c, NULL) != NULL);
    CHECK_OK(rill_pipeline_start(p));
    int rc = 0;
    for (unsigned i = 0; i < N && !rc; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "a:%u", i);
        rill_item it = rill_item_borrow(buf, (size_t)len);
        rc = rill_pipeline_push(p, entry, &it);
        memset(buf, '#', sizeof buf);
    }
    CHECK_OK(rc);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(c.r.bad, 0ull);
    CHECK_EQ(c.r.seen[0], (unsigned long long)N);
    CHECK_EQ(c.closes, 1);
    CHECK_EQ(c.seen_at_close, (unsigned long long)N);
    CHECK_EQ(t.sends, 501ull * N);
    rill_pipeline_free(p);
}
