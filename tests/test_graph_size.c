/* Graphs of a million stages: building is linear (names are indexed, the
 * cycle check of a chain is constant time per connection), and no walk of
 * the graph (cycle check, close cascade) recurses as deep as the graph.
 * The per-item delivery through a deep inline chain still nests one C call
 * per stage: tests/deep_chain.c shows that limit (not built yet). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rill.h"
#include "rill_test.h"

/* CPU time of this process: the bounds below are on work done, which a
 * machine shared with other jobs does not stretch the way it does wall time. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Shared by every stage of a test: how often any was sent an item or
 * closed, and how many items reached a stage without outputs. */
typedef struct tally {
    unsigned long long sends, closes, leaves;
    unsigned items; /* the source emits this many */
} tally;

static int pass_send(rill_stage *st, void *state, const rill_item *it) {
    tally *t = state;
    t->sends++;
    if (rill_stage_outputs(st) == 0)
        t->leaves++;
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
        rill_item it = {.data = "x", .len = 1};
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
    }
    return RILL_EDONE;
}

static const rill_stage_ops pass_ops = {.send = pass_send, .close = count_close};
static const rill_stage_ops src_ops = {.produce = src_produce, .close = count_close};

#define MILLION 1000000u

/* A chain of a million stages that no item travels: connected back to front
 * (each connection's cycle check starts at the part already built), closed
 * by one cascade a million stages deep. Before, the build alone was
 * quadratic (100,000 stages took 194 s) and the close cascade recursed once
 * per stage (a 1,000,000-deep recursion overflows an 8 MB stack). Measured
 * here, in CPU time (2-core box shared with other jobs): 2.4-2.7 s in all
 * (RelWithDebInfo; the build is memory-bound: malloc and the name index),
 * 3.8 s under ASan+UBSan. The bound is the test's ctest TIMEOUT (120 s):
 * the quadratic build would take hours. Speed itself is measured in bench/,
 * not asserted here. */
RILL_TEST(graph_size, million_stage_chain_builds_and_closes) {
    tally t = {.items = 0};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("chain", &p));
    rill_stage **s = malloc(MILLION * sizeof *s);
    CHECK(s);
    double t0 = now_s();
    CHECK_OK(rill_stage_add(p, "source", &src_ops, &t, NULL, &s[0]));
    for (unsigned i = 1; i < MILLION; i++) {
        int rc = rill_stage_add(p, NULL, &pass_ops, &t, NULL, &s[i]); /* generated names */
        if (rc) {
            free(s);
            rill_pipeline_free(p);
            CHECK_OK(rc);
        }
    }
    for (unsigned i = MILLION - 1; i > 0; i--) {
        int rc = rill_connect(s[i - 1], s[i]);
        if (rc) {
            free(s);
            rill_pipeline_free(p);
            CHECK_OK(rc);
        }
    }
    double built = now_s() - t0;
    /* Every name resolves; the last stage closing the chain is a cycle. */
    bool found = rill_pipeline_find(p, "stage-2") == s[1] &&
                 rill_pipeline_find(p, "stage-1000000") == s[MILLION - 1];
    int cyc = rill_connect(s[MILLION - 1], s[1]);
    int run = rill_pipeline_run(p);
    double total = now_s() - t0;
    rill_pipeline_free(p);
    free(s);
    fprintf(stderr, "1,000,000-stage chain: built in %.2f s, built+run+closed in %.2f s of CPU\n",
            built, total);
    CHECK(found);
    CHECK_EQ(cyc, RILL_ECYCLE);
    CHECK_OK(run);
    CHECK_EQ(t.closes, MILLION);
}

/* A million stages with fan-out: a source, a broadcast root feeding 1,000
 * branches of 999 inline stages each; every item reaches every stage, and
 * each branch nests only 1,000 calls deep. Measured here, in CPU time: 1.0 s
 * in all (RelWithDebInfo), 2.4 s under ASan+UBSan; bounded by the
 * ctest TIMEOUT. */
RILL_TEST(graph_size, million_stage_fanout_builds_runs_and_closes) {
    enum { BRANCHES = 1000, DEPTH = 999, ITEMS = 3 };
    tally t = {.items = ITEMS};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("fanout", &p));
    double t0 = now_s();
    rill_stage *src = NULL, *root = NULL;
    CHECK_OK(rill_stage_add(p, "source", &src_ops, &t, NULL, &src));
    CHECK_OK(rill_stage_add(p, "root", &pass_ops, &t, NULL, &root));
    CHECK_OK(rill_connect(src, root));
    int rc = 0;
    char name[32];
    for (unsigned b = 0; b < BRANCHES && !rc; b++) {
        rill_stage *prev = root, *st = NULL;
        for (unsigned d = 0; d < DEPTH && !rc; d++) {
            snprintf(name, sizeof name, "b%u.%u", b, d);
            rc = rill_stage_add(p, name, &pass_ops, &t, NULL, &st);
            if (!rc)
                rc = rill_connect(prev, st);
            prev = st;
        }
    }
    if (rc) {
        rill_pipeline_free(p);
        CHECK_OK(rc);
    }
    double built = now_s() - t0;
    rill_stage *dup = NULL;
    int again = rill_stage_add(p, "b999.998", &pass_ops, &t, NULL, &dup);
    int run = rill_pipeline_run(p);
    double total = now_s() - t0;
    rill_pipeline_free(p);
    fprintf(stderr, "1,000,000-stage fan-out: built in %.2f s, built+run+closed in %.2f s of CPU\n",
            built, total);
    CHECK_EQ(again, RILL_EEXIST);
    CHECK_OK(run);
    CHECK_EQ(t.closes, 2u + BRANCHES * DEPTH);
    CHECK_EQ(t.sends, (unsigned long long)ITEMS * (1u + BRANCHES * DEPTH));
    CHECK_EQ(t.leaves, (unsigned long long)ITEMS * BRANCHES);
}

/* Generated names skip the names callers took, through the index. */
RILL_TEST(graph_size, generated_names_skip_taken_ones) {
    static const rill_stage_ops ops = {.send = pass_send};
    tally t = {0};
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("names", &p));
    rill_stage *a = NULL, *b = NULL, *c = NULL;
    CHECK_OK(rill_stage_add(p, "stage-2", &ops, &t, NULL, &a));
    CHECK_OK(rill_stage_add(p, NULL, &ops, &t, NULL, &b));
    CHECK_OK(rill_stage_add(p, NULL, &ops, &t, NULL, &c));
    CHECK_STREQ(rill_stage_name(b), "stage-3");
    CHECK_STREQ(rill_stage_name(c), "stage-4");
    CHECK(rill_pipeline_find(p, "stage-2") == a);
    CHECK(rill_pipeline_find(p, "stage-1") == NULL);
    CHECK_EQ(rill_stage_add(p, "stage-3", &ops, &t, NULL, NULL), RILL_EEXIST);
    rill_pipeline_free(p);
}
