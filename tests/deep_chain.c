/* Deep inline chains (issue 15, item 1): NOT BUILT YET. Rename to
 * test_deep_chain.c once delivery through an inline chain no longer nests
 * one C call per stage (a depth bound with a hand-off point, or iterative
 * delivery). Today each stage delivers inside the previous one's rill_emit,
 * so both tests below crash with SIGSEGV (stack overflow), measured here:
 * the 1,000,000-stage chain on the 8 MB main stack, and the 10,000-stage
 * chain on a thread with a 256 KiB stack. The graph walks themselves
 * (cycle check, close cascade) are iterative already: test_graph_size.c. */
#include <pthread.h>
#include <stdlib.h>

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

/* Bound to state once delivery is bounded: seconds, measured here. */
RILL_TEST(deep_chain, million_stage_inline_chain_runs) {
    tally t = {0};
    CHECK_OK(run_chain(1000000, 3, &t));
    CHECK_EQ(t.sends, 3ull * 999999);
    CHECK_EQ(t.closes, 1000000);
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
