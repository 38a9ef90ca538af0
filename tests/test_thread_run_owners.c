/* Runs across threads and what the queue keeps of them (rill__batch_append):
 * owners retained once per change of owner and released once, borrowed
 * bytes copied (the arena growing in the middle of a chunk), RILL_DEBUG's
 * sums of static items, and a copy running out of memory in the middle of a
 * chunk. The run paths themselves: test_thread_runs.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_util.h"

/* ---- out of memory in the middle of a chunk ----------------------------------- */

/* A borrowed item too long for any arena makes its copy fail with
 * RILL_ENOMEM (before reading a byte of it). In the middle of a run's chunk,
 * between owned items of two owners and a borrowed one: the run stops there
 * with the items before it queued, every owner retained by the queue released
 * exactly once, and every item emitted received or discarded. */
static unsigned released_a, released_b;
static void release_a(rill_ref *r) {
    (void)r;
    released_a++;
}
static void release_b(rill_ref *r) {
    (void)r;
    released_b++;
}

typedef struct oom_src {
    rill_ref a, b;
    int rc;
} oom_src;

static int oom_produce(rill_stage *st, void *state) {
    oom_src *s = state;
    static const char bytes[] = "a1b1xa2a3";
    char local[1] = {'x'};
    rill_item run[] = {
        {bytes, 2, &s->a}, {bytes + 2, 2, &s->b}, rill_item_borrow(local, 1),
        {bytes + 5, 2, &s->a}, rill_item_borrow(local, SIZE_MAX / 4), /* cannot be copied */
        {bytes + 7, 2, &s->a}, rill_item_static(bytes, 1)};
    s->rc = rill_emit_items(st, run, sizeof run / sizeof run[0]);
    return s->rc < 0 ? s->rc : RILL_EDONE;
}
static const rill_stage_ops oom_src_ops = {.produce = oom_produce};

static int count_only(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    (void)it;
    ++*(uint64_t *)state;
    return 0;
}
static const rill_stage_ops count_only_ops = {.send = count_only};

RILL_TEST(thread_runs, out_of_memory_mid_chunk_releases_and_accounts) {
    for (int threaded_src = 0; threaded_src < 2; threaded_src++) {
        rill_pipeline *p;
        rill_stage *src, *sink;
        oom_src s;
        uint64_t got = 0;
        released_a = released_b = 0;
        rill_ref_init(&s.a, release_a);
        rill_ref_init(&s.b, release_b);
        rill_stage_opts so = {.flags = threaded_src ? RILL_STAGE_THREADED : 0};
        rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .batch = 64};
        CHECK_OK(rill_pipeline_new("oom", &p));
        CHECK_OK(rill_stage_add(p, "src", &oom_src_ops, &s, &so, &src));
        CHECK_OK(rill_stage_add(p, "sink", &count_only_ops, &got, &th, &sink));
        CHECK_OK(rill_connect(src, sink));
        CHECK_EQ(rill_pipeline_run(p), RILL_ENOMEM);
        CHECK_EQ(s.rc, RILL_ENOMEM);
        uint64_t in, out;
        CHECK(run_stage_counts(p, "src", &in, &out));
        CHECK_EQ(out, 7);
        CHECK(run_stage_counts(p, "sink", &in, &out));
        CHECK_EQ(in, got);
        CHECK(got <= 4);
        CHECK_EQ(7, got + rill_pipeline_discarded(p));
        rill_pipeline_free(p);
        CHECK_EQ(released_a, 0); /* our own references are still held */
        CHECK_EQ(released_b, 0);
        CHECK_EQ(rill_ref_count(&s.a), 1);
        CHECK_EQ(rill_ref_count(&s.b), 1);
    }
}

/* ---- RILL_DEBUG: a static item of a run changed while queued ------------------ */

/* The tests' library checks static items (RILL_DEBUG): a run appended a
 * chunk at a time is summed item by item too, so a source that rewrites the
 * buffer its "static" run points into, while the run waits in its partial
 * batch, is caught and named. */
typedef struct run_liar {
    char buf[8][8];
    int calls;
} run_liar;

static int run_liar_produce(rill_stage *st, void *state) {
    run_liar *l = state;
    if (l->calls++)
        return RILL_EDONE;
    rill_item run[8];
    for (int i = 0; i < 8; i++) {
        snprintf(l->buf[i], sizeof l->buf[i], "v%d", i);
        run[i] = rill_item_static(l->buf[i], 2);
    }
    int rc = rill_emit_items(st, run, 8);
    l->buf[5][1] = 'X'; /* still in this thread's partial batch: no race */
    return rc;
}
static const rill_stage_ops run_liar_ops = {.produce = run_liar_produce};

RILL_TEST(thread_runs, debug_check_catches_a_static_run_changed_while_queued) {
    run_liar l = {0};
    uint64_t got = 0;
    rill_pipeline *p;
    rill_stage *src, *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .batch = 64,
                          .max_latency_us = 1000000};
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "liar", &run_liar_ops, &l, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &count_only_ops, &got, &th, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_EQ(rill_pipeline_run(p), RILL_ESTAGE);
    const char *msg = rill_pipeline_errmsg(p);
    CHECK(strstr(msg, "stage 'liar'") && strstr(msg, "changed while queued"));
    CHECK_EQ(got, 0);
    rill_pipeline_free(p);
}

/* ---- a run mixing owners, copies that grow the arena ------------------------ */

/* One run of 24 items into one batch: borrowed ones of 3000 bytes (the
 * batch's arena grows, moving the copies made before in the same chunk),
 * owned ones of two owners and static ones, interleaved. Every item arrives
 * with its own bytes, and the owners' counts are back where they were. */
enum { MIX_N = 24, MIX_BIG = 3000 };
static const unsigned char mix_static[MIX_N] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};
typedef struct mix_src {
    rill_ref a, b;
    unsigned char owned[MIX_N][5];
    int calls;
} mix_src;

static size_t mix_len(unsigned i) { return i % 3 == 0 ? MIX_BIG : i % 3 == 1 ? 5 : 1; }

static int mix_produce(rill_stage *st, void *state) {
    mix_src *s = state;
    if (s->calls++)
        return RILL_EDONE;
    unsigned char *big = malloc((size_t)MIX_N * MIX_BIG);
    if (!big)
        return RILL_ENOMEM;
    rill_item run[MIX_N];
    for (unsigned i = 0; i < MIX_N; i++) {
        if (i % 3 == 0) {
            memset(big + (size_t)i * MIX_BIG, (int)i, MIX_BIG);
            run[i] = rill_item_borrow(big + (size_t)i * MIX_BIG, MIX_BIG);
        } else if (i % 3 == 1) {
            memset(s->owned[i], (int)i, 5);
            run[i] = (rill_item){s->owned[i], 5, i % 2 ? &s->a : &s->b};
        } else {
            run[i] = rill_item_static(&mix_static[i], 1);
        }
    }
    int rc = rill_emit_items(st, run, MIX_N);
    memset(big, 0xee, (size_t)MIX_N * MIX_BIG); /* a borrowed item kept shows */
    free(big);
    return rc < 0 ? rc : 0;
}
static const rill_stage_ops mix_src_ops = {.produce = mix_produce};

typedef struct mix_sink {
    unsigned n, bad;
} mix_sink;

static int mix_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    mix_sink *k = state;
    unsigned i = k->n++;
    const unsigned char *d = it->data;
    if (i >= MIX_N || it->len != mix_len(i)) {
        k->bad++;
        return 0;
    }
    for (size_t j = 0; j < it->len; j++)
        k->bad += d[j] != i;
    return 0;
}
static const rill_stage_ops mix_sink_ops = {.send = mix_send};

RILL_TEST(thread_runs, a_mixed_run_arrives_whole_with_owners_balanced) {
    for (int shared = 0; shared < 2; shared++) {
        mix_src s = {0};
        mix_sink k1 = {0}, k2 = {0};
        rill_ref_init(&s.a, release_a);
        rill_ref_init(&s.b, release_b);
        released_a = released_b = 0;
        rill_pipeline *p;
        rill_stage *src, *sink, *other;
        rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .batch = 64};
        CHECK_OK(rill_pipeline_new("mix", &p));
        CHECK_OK(rill_stage_add(p, "src", &mix_src_ops, &s, NULL, &src));
        CHECK_OK(rill_stage_add(p, "sink", &mix_sink_ops, &k1, &th, &sink));
        CHECK_OK(rill_connect(src, sink));
        if (shared) { /* two threaded consumers: one shared batch (share.c) */
            CHECK_OK(rill_stage_add(p, "other", &mix_sink_ops, &k2, &th, &other));
            CHECK_OK(rill_connect(src, other));
        }
        CHECK_OK(rill_pipeline_run(p));
        rill_pipeline_free(p);
        CHECK_EQ(k1.n, MIX_N);
        CHECK_EQ(k1.bad, 0);
        if (shared) {
            CHECK_EQ(k2.n, MIX_N);
            CHECK_EQ(k2.bad, 0);
        }
        CHECK_EQ(rill_ref_count(&s.a), 1);
        CHECK_EQ(rill_ref_count(&s.b), 1);
        CHECK_EQ(released_a + released_b, 0);
    }
}
