/* The per-queue statistics of a shared fan-out (engine/pipeline/share.c)
 * while it runs: a queue reports as `unpublished` only the producer's
 * partial batch that is for it. A batch for one port (rill_emit_to) is not
 * the other queues' (it does not count against their capacity either).
 *
 * The source holds its partial batch at a gate inside its produce (a long
 * max_latency_us, so nothing flushes it meanwhile), and the test thread
 * reads the statistics then. */
#include <stdint.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { NSINK = 3 };

typedef struct held_src {
    unsigned to_one, to_all; /* items emitted to port 0 alone, then to every port */
    uint64_t v[64];
    gate after_one, after_all;
} held_src;

static int held_produce(rill_stage *st, void *state) {
    held_src *s = state;
    for (unsigned i = 0; i < s->to_one; i++) {
        s->v[i] = i;
        int rc = rill_emit_to(st, 0, &(rill_item){&s->v[i], sizeof s->v[i], RILL_REF_STATIC});
        if (rc)
            return rc;
    }
    gate_pass(&s->after_one);
    for (unsigned i = 0; i < s->to_all; i++) {
        s->v[s->to_one + i] = s->to_one + i;
        rill_item it = {&s->v[s->to_one + i], sizeof s->v[0], RILL_REF_STATIC};
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
    }
    gate_pass(&s->after_all);
    return RILL_EDONE;
}

static const rill_stage_ops held_ops = {.produce = held_produce};

static int count_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    (void)item;
    (*(uint64_t *)state)++;
    return 0;
}

static const rill_stage_ops count_ops = {.send = count_send};

RILL_TEST(fanout_stats, unpublished_counts_only_the_partial_batch_for_that_queue) {
    held_src s = {.to_one = 5, .to_all = 7};
    gate_init(&s.after_one);
    gate_init(&s.after_all);
    uint64_t got[NSINK] = {0};
    rill_pipeline *p;
    rill_stage *src, *t;
    CHECK_OK(rill_pipeline_new("fanout-stats", &p));
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_stage_add(p, "src", &held_ops, &s, &so, &src));
    /* capacity and batch far above what is emitted; no latency flush */
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 1024, .batch = 256,
                         .max_latency_us = 60u * 1000 * 1000};
    for (unsigned i = 0; i < NSINK; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        CHECK_OK(rill_stage_add(p, name, &count_ops, &got[i], &o, &t));
        CHECK_OK(rill_connect(src, t));
    }
    CHECK_OK(rill_pipeline_start(p));
    unsigned unpub_one[NSINK], unpub_all[NSINK];
    bool arrived = wait_for(&s.after_one.entered, 1, 30);
    for (unsigned i = 0; i < NSINK; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        unpub_one[i] = (unsigned)queue_to(p, name).unpublished;
    }
    gate_open(&s.after_one);
    arrived = arrived && wait_for(&s.after_all.entered, 1, 30);
    for (unsigned i = 0; i < NSINK; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        unpub_all[i] = (unsigned)queue_to(p, name).unpublished;
    }
    gate_open(&s.after_all);
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    gate_fini(&s.after_one);
    gate_fini(&s.after_all);
    CHECK(arrived);
    for (unsigned i = 0; i < NSINK; i++) {
        /* port 0's items went to it alone; the rest to every queue */
        CHECK_EQ(unpub_one[i], i == 0 ? s.to_one : 0);
        CHECK_EQ(unpub_all[i], s.to_all);
        CHECK_EQ(got[i], (i == 0 ? s.to_one : 0) + s.to_all);
    }
}
