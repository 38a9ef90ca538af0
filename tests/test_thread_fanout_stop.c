/* Fan-out into several threaded stages sharing batches (share.c), stopped
 * mid-run by an abort or by a failing consumer: no hang, every queue's
 * items in == out + discarded, and every owner released exactly once; and
 * checkpoint barriers through a shared fan-out still align. Helpers:
 * util/fanout_util.h. */
#include "fanout_util.h"

/* Stopped mid-run, by an abort or by a consumer failing: no hang, every
 * queue's in == out + discarded, the pipeline's discarded is their sum, and
 * every owner is released exactly once. */
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
        pipeline_runner r = {f.p, 0};
        pthread_t t;
        CHECK_OK(pthread_create(&t, NULL, pipeline_runner_main, &r));
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
