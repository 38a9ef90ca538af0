/* Runs of items on one thread (rill_emit_items, ops.send_items): they reach
 * every stage whole and in order, as single emits would; a stage failing or
 * a stop in the middle of a run stops it there with every item accounted
 * for (received, or discarded); runs pass the inline depth limit and
 * checkpoint barriers in order; a stage with send_items and one without
 * see the same items; bad arguments are refused. Expectations are computed
 * here from the values the source emits (1..n). The threaded twin is
 * test_thread_runs.c. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_util.h"

/* source -> broadcast -> {sink with send_items, sink with send only}. */
RILL_TEST(runs, reach_every_stage_whole_and_in_order) {
    const unsigned lens[] = {1, 7, 64, 1000};
    for (unsigned l = 0; l < sizeof lens / sizeof lens[0]; l++) {
        for (unsigned kind = RUN_STATIC; kind <= RUN_OWNED; kind++) {
            rill_pipeline *p;
            rill_stage *src, *b, *a, *c;
            run_src s = {.n = 3001, .len = lens[l], .kind = kind};
            run_sink with = {0}, without = {0};
            CHECK_OK(rill_pipeline_new("runs", &p));
            CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
            CHECK_OK(rill_broadcast_add(p, "b", NULL, &b));
            CHECK_OK(rill_stage_add(p, "with", &run_sink_items_ops, &with, NULL, &a));
            CHECK_OK(rill_stage_add(p, "without", &run_sink_ops, &without, NULL, &c));
            CHECK_OK(rill_connect_chain(src, b, a, NULL));
            CHECK_OK(rill_connect(b, c));
            CHECK_OK(rill_pipeline_run(p));
            uint64_t want = run_sum_to(s.n);
            CHECK_EQ(with.n, s.n);
            CHECK_EQ(with.sum, want);
            CHECK(with.in_order);
            CHECK_EQ(without.n, s.n);
            CHECK_EQ(without.sum, want);
            CHECK(without.in_order);
            CHECK_EQ(with.calls_items, (s.n + lens[l] - 1) / lens[l]); /* one call a run */
            uint64_t in, out;
            CHECK(run_stage_counts(p, "src", &in, &out));
            CHECK_EQ(out, s.n);
            CHECK(run_stage_counts(p, "b", &in, &out));
            CHECK_EQ(in, s.n);
            CHECK_EQ(out, s.n);
            CHECK(run_stage_counts(p, "without", &in, &out));
            CHECK_EQ(in, s.n);
            CHECK_EQ(rill_pipeline_discarded(p), 0);
            rill_pipeline_free(p);
        }
    }
}

/* One run of 10 into a stage that fails at item 4: it received 4, the 6
 * after are discarded, and a second port after it gets nothing (10 more
 * discarded). A stage with send_items that fails has received the run. */
RILL_TEST(runs, a_stage_failing_mid_run_stops_it_there) {
    for (int items_op = 0; items_op < 2; items_op++) {
        rill_pipeline *p;
        rill_stage *src, *bad, *other;
        run_src s = {.n = 10, .len = 10};
        run_sink failing = {.fail_at = 4}, after = {0};
        CHECK_OK(rill_pipeline_new("fail", &p));
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        CHECK_OK(rill_stage_add(p, "bad", items_op ? &run_sink_items_ops : &run_sink_ops,
                                &failing, NULL, &bad));
        CHECK_OK(rill_stage_add(p, "other", &run_sink_ops, &after, NULL, &other));
        CHECK_OK(rill_connect(src, bad));
        CHECK_OK(rill_connect(src, other));
        CHECK_EQ(rill_pipeline_run(p), RILL_ESTAGE);
        CHECK_STREQ(rill_pipeline_errstage(p), "bad");
        CHECK(strstr(rill_pipeline_errmsg(p), "refusing item 4"));
        CHECK_EQ(s.rc, RILL_ESTAGE);
        CHECK_EQ(failing.n, 4);
        CHECK_EQ(after.n, 0);
        uint64_t in, out;
        CHECK(run_stage_counts(p, "bad", &in, &out));
        uint64_t received = items_op ? s.n : failing.n; /* send_items took the run */
        CHECK_EQ(in, received);
        CHECK(run_stage_counts(p, "src", &in, &out));
        CHECK_EQ(out, s.n);
        /* every item emitted, on each of the two edges: received or discarded */
        CHECK_EQ(rill_pipeline_discarded(p), 2 * s.n - received);
        rill_pipeline_free(p);
    }
}

/* A stop (an abort from inside the stage) at item 5 of a run of 50: the
 * items after it are not delivered, and are counted as discarded. */
RILL_TEST(runs, a_stop_mid_run_stops_promptly) {
    rill_pipeline *p;
    rill_stage *src, *sink;
    run_src s = {.n = 200, .len = 50};
    run_sink k = {.abort_at = 5};
    CHECK_OK(rill_pipeline_new("stop", &p));
    k.abort_p = p;
    CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &run_sink_ops, &k, NULL, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
    CHECK_EQ(k.n, 5);
    CHECK_EQ(s.runs, 0); /* the first run's emit failed */
    CHECK_EQ(s.rc, RILL_EABORTED);
    CHECK_EQ(rill_pipeline_discarded(p), s.len - k.n);
    rill_pipeline_free(p);
}

/* A chain of 150 pass-throughs, every other one with send_items: deeper than
 * the inline depth limit, so runs are held and delivered later, in order. A
 * fan-out halfway sends each run down a second path too. */
RILL_TEST(runs, pass_the_depth_limit_in_order) {
    enum { DEPTH = 150 };
    rill_pipeline *p;
    rill_stage *prev, *mid = NULL, *st;
    static run_sink pass[DEPTH];
    run_sink end = {0}, side = {0};
    memset(pass, 0, sizeof pass);
    run_src s = {.n = 2000, .len = 33};
    CHECK_OK(rill_pipeline_new("deep", &p));
    CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &prev));
    for (unsigned i = 0; i < DEPTH; i++) {
        char name[32];
        snprintf(name, sizeof name, "pass-%u", i);
        CHECK_OK(rill_stage_add(p, name, i % 2 ? &run_pass_items_ops : &run_pass_ops, &pass[i],
                                NULL, &st));
        CHECK_OK(rill_connect(prev, st));
        if (i == DEPTH / 2)
            mid = st;
        prev = st;
    }
    CHECK_OK(rill_stage_add(p, "end", &run_sink_items_ops, &end, NULL, &st));
    CHECK_OK(rill_connect(prev, st));
    CHECK_OK(rill_stage_add(p, "side", &run_sink_ops, &side, NULL, &st));
    CHECK_OK(rill_connect(mid, st));
    CHECK_OK(rill_pipeline_run(p));
    uint64_t want = run_sum_to(s.n);
    for (unsigned i = 0; i < DEPTH; i++) {
        CHECK_EQ(pass[i].n, s.n);
        CHECK(pass[i].in_order);
    }
    CHECK_EQ(end.n, s.n);
    CHECK_EQ(end.sum, want);
    CHECK(end.in_order);
    CHECK_EQ(side.n, s.n);
    CHECK_EQ(side.sum, want);
    CHECK(side.in_order);
    rill_pipeline_free(p);
}

/* Barriers between runs: source -> broadcast -> {pass, pass with send_items}
 * -> one sink that aligns its two inputs. At barrier b it has exactly the
 * items emitted before it from both inputs: 2 * len * every * b. */
RILL_TEST(runs, keep_barriers_in_order) {
    rill_pipeline *p;
    rill_stage *src, *b, *x, *y, *sink;
    run_src s = {.n = 1200, .len = 10, .barrier_every = 3};
    run_sink px = {0}, py = {0}, k = {0};
    CHECK_OK(rill_pipeline_new("barriers", &p));
    CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
    CHECK_OK(rill_broadcast_add(p, "b", NULL, &b));
    CHECK_OK(rill_stage_add(p, "x", &run_pass_ops, &px, NULL, &x));
    CHECK_OK(rill_stage_add(p, "y", &run_pass_items_ops, &py, NULL, &y));
    CHECK_OK(rill_stage_add(p, "sink", &run_sink_items_ops, &k, NULL, &sink));
    CHECK_OK(rill_connect(src, b));
    CHECK_OK(rill_connect(b, x));
    CHECK_OK(rill_connect(b, y));
    CHECK_OK(rill_connect(x, sink));
    CHECK_OK(rill_connect(y, sink));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(k.n, 2 * s.n);
    CHECK_EQ(k.sum, 2 * run_sum_to(s.n));
    CHECK(s.barriers > 10);
    for (uint64_t id = 1; id <= s.barriers && id < 64; id++) {
        CHECK_EQ(px.at_barrier[id], (uint64_t)s.len * s.barrier_every * id);
        CHECK_EQ(k.at_barrier[id], 2ull * s.len * s.barrier_every * id);
    }
    rill_pipeline_free(p);
}

/* The built-in filter's run op and its send agree: the same prefix filter
 * fed runs and fed single items passes the same items. */
static int emit_one_by_one(rill_stage *st, void *state, const rill_item *items, size_t n) {
    (void)state;
    for (size_t i = 0; i < n; i++) {
        int rc = rill_emit(st, &items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}
static int emit_one(rill_stage *st, void *state, const rill_item *it) {
    (void)state;
    return rill_emit(st, it);
}
static const rill_stage_ops splitter_ops = {.send = emit_one, .send_items = emit_one_by_one};

static bool pred_odd(const rill_item *it, void *arg) {
    (void)arg;
    return run_value(it) % 2 == 1;
}

RILL_TEST(runs, send_items_and_send_give_the_same_results) {
    uint64_t got_n[2], got_sum[2];
    for (int single = 0; single < 2; single++) {
        rill_pipeline *p;
        rill_stage *src, *f, *sink, *mid;
        run_src s = {.n = 5000, .len = 100};
        run_sink k = {0}, m = {0};
        rill_filter_spec spec = {.match = RILL_MATCH_PRED, .pred = pred_odd};
        CHECK_OK(rill_pipeline_new("same", &p));
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        /* single: a stage in between turns each run into single emits */
        CHECK_OK(rill_stage_add(p, "mid", single ? &splitter_ops : &run_pass_items_ops,
                                single ? NULL : &m, NULL, &mid));
        CHECK_OK(rill_filter_add(p, "odd", &spec, NULL, &f));
        CHECK_OK(rill_stage_add(p, "sink", &run_sink_ops, &k, NULL, &sink));
        CHECK_OK(rill_connect_chain(src, mid, f, sink, NULL));
        CHECK_OK(rill_pipeline_run(p));
        CHECK(k.in_order);
        got_n[single] = k.n;
        got_sum[single] = k.sum;
        rill_pipeline_free(p);
    }
    uint64_t want_n = 0, want_sum = 0;
    for (uint64_t v = 1; v <= 5000; v++)
        if (v % 2) {
            want_n++;
            want_sum += v;
        }
    CHECK_EQ(got_n[0], want_n);
    CHECK_EQ(got_sum[0], want_sum);
    CHECK_EQ(got_n[1], want_n);
    CHECK_EQ(got_sum[1], want_sum);
}

/* A delayed stage gets its delay per item: the engine sends it items one by
 * one even if it has send_items. */
RILL_TEST(runs, a_delayed_stage_gets_single_items) {
    rill_pipeline *p;
    rill_stage *src, *sink;
    run_src s = {.n = 40, .len = 20};
    run_sink k = {0};
    CHECK_OK(rill_pipeline_new("delay", &p));
    CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &run_sink_items_ops, &k, NULL, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_stage_set_delay(sink, 1));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(k.n, s.n);
    CHECK_EQ(k.calls_items, 0);
    rill_pipeline_free(p);
}

/* ---- bad arguments ------------------------------------------------------------ */

typedef struct bad_args {
    int null_stage, null_items, null_empty, empty;
} bad_args;

static int bad_produce(rill_stage *st, void *state) {
    bad_args *b = state;
    rill_item one = rill_item_cstr("x");
    b->null_stage = rill_emit_items(NULL, &one, 1);
    b->null_items = rill_emit_items(st, NULL, 3);
    b->null_empty = rill_emit_items(st, NULL, 0);
    b->empty = rill_emit_items(st, &one, 0);
    return RILL_EDONE;
}
static const rill_stage_ops bad_ops = {.produce = bad_produce};

RILL_TEST(runs, bad_arguments_are_refused) {
    rill_pipeline *p;
    rill_stage *src, *sink;
    bad_args b = {1, 1, 1, 1};
    run_sink k = {0};
    CHECK_OK(rill_pipeline_new("bad", &p));
    CHECK_OK(rill_stage_add(p, "src", &bad_ops, &b, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &run_sink_ops, &k, NULL, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(b.null_stage, RILL_EINVAL);
    CHECK_EQ(b.null_items, RILL_EINVAL);
    CHECK_EQ(b.null_empty, 0); /* nothing to emit */
    CHECK_EQ(b.empty, 0);
    CHECK_EQ(k.n, 0);
    rill_pipeline_free(p);

    /* send_items alone is not a stage: send still gets single items */
    static const rill_stage_ops items_only = {.send_items = run_sink_send_items};
    CHECK_OK(rill_pipeline_new("bad-ops", &p));
    CHECK_EQ(rill_stage_add(p, "only", &items_only, &k, NULL, NULL), RILL_EINVAL);
    CHECK(strstr(rill_pipeline_errmsg(p), "'only'"));
    CHECK(strstr(rill_pipeline_errmsg(p), "send_items without send"));
    rill_pipeline_free(p);
}

/* A source with a delay emits its runs item by item; a stop in the middle of
 * one still leaves every item of it counted out and received or discarded,
 * as a run without delay does (and as a source counting runs whole expects). */
RILL_TEST(runs, a_delayed_source_stopped_mid_run_accounts_for_every_item) {
    rill_pipeline *p;
    rill_stage *src, *sink;
    run_src s = {.n = 60, .len = 30};
    run_sink k = {.abort_at = 7};
    CHECK_OK(rill_pipeline_new("delayed-src", &p));
    k.abort_p = p;
    CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &run_sink_ops, &k, NULL, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_stage_set_delay(src, 1));
    CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
    CHECK_EQ(k.n, 7);
    uint64_t in, out;
    CHECK(run_stage_counts(p, "src", &in, &out));
    CHECK_EQ(out, s.len); /* the first run, whole */
    CHECK_EQ(out, k.n + rill_pipeline_discarded(p));
    rill_pipeline_free(p);
}

/* Runs nest one level per stage like single items, so past the depth limit
 * they must be held too: a chain of 10,000 stages passing runs on (all with
 * send_items) on a thread with a 256 KiB stack. Without the limit applied to
 * runs this overflows the stack (SIGSEGV). */
static int count_pass_items(rill_stage *st, void *state, const rill_item *items, size_t n) {
    *(uint64_t *)state += n;
    return rill_emit_items(st, items, n);
}
static int count_pass(rill_stage *st, void *state, const rill_item *it) {
    ++*(uint64_t *)state;
    return rill_emit(st, it);
}
static const rill_stage_ops count_pass_ops = {.send = count_pass, .send_items = count_pass_items};

enum { SMALL_STACK_STAGES = 10000 };
typedef struct small_stack_job {
    uint64_t passed; /* items every pass-through received, added up */
    run_src s;
    run_sink end;
    int rc;
} small_stack_job;

static void *small_stack_chain(void *arg) {
    small_stack_job *j = arg;
    rill_pipeline *p;
    rill_stage *prev, *st;
    j->rc = -1000;
    if (rill_pipeline_new("deep-runs", &p))
        return NULL;
    if (rill_stage_add(p, "src", &run_src_ops, &j->s, NULL, &prev) == 0) {
        unsigned i = 0;
        for (; i < SMALL_STACK_STAGES; i++) {
            if (rill_stage_add(p, NULL, &count_pass_ops, &j->passed, NULL, &st) ||
                rill_connect(prev, st))
                break;
            prev = st;
        }
        if (i == SMALL_STACK_STAGES &&
            rill_stage_add(p, "end", &run_sink_items_ops, &j->end, NULL, &st) == 0 &&
            rill_connect(prev, st) == 0)
            j->rc = rill_pipeline_run(p);
    }
    rill_pipeline_free(p);
    return NULL;
}

RILL_TEST(runs, are_held_past_the_depth_limit_on_a_small_stack) {
    static small_stack_job j;
    memset(&j, 0, sizeof j);
    j.s = (run_src){.n = 300, .len = 50};
    pthread_attr_t a;
    pthread_t tid;
    CHECK_EQ(pthread_attr_init(&a), 0);
    CHECK_EQ(pthread_attr_setstacksize(&a, 256 * 1024), 0);
    CHECK_EQ(pthread_create(&tid, &a, small_stack_chain, &j), 0);
    pthread_join(tid, NULL);
    pthread_attr_destroy(&a);
    CHECK_OK(j.rc);
    CHECK_EQ(j.passed, (uint64_t)SMALL_STACK_STAGES * j.s.n);
    CHECK_EQ(j.end.n, j.s.n);
    CHECK_EQ(j.end.sum, run_sum_to(j.s.n));
    CHECK(j.end.in_order);
}
