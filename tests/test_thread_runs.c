/* Runs of items across threads (rill_emit_items into queues, batches handed
 * to send_items): every item arrives once and in order, whatever the run
 * length against the queue's batch and capacity, and whether its bytes are
 * static, owned or borrowed (copied: the source overwrites them after the
 * call); replicas dealt by key see each key in one replica only; a stop in
 * the middle, also in a shared fan-out, leaves every emitted item received
 * or discarded; a leaky queue's drops account for the rest. What the queue
 * keeps of a run (owners, copies, sums): test_thread_run_owners.c. Expectations
 * are computed here from the values emitted (1..n). Threads record into
 * their own stage state, read after close (the join orders it). */
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_util.h"

/* threaded source -> {threaded sink with send_items, threaded sink without},
 * queues of capacity 16 and batches of 4 (runs span many batches and wait
 * for room), and the same with default queues. */
RILL_TEST(thread_runs, cross_threads_whole_and_in_order) {
    const unsigned lens[] = {1, 5, 300};
    const unsigned caps[] = {16, 0};
    for (unsigned l = 0; l < 3; l++)
        for (unsigned c = 0; c < 2; c++)
            for (unsigned kind = RUN_STATIC; kind <= RUN_OWNED; kind++) {
                rill_pipeline *p;
                rill_stage *src, *a, *b;
                run_src s = {.n = 2000, .len = lens[l], .kind = kind};
                run_sink with = {0}, without = {0};
                rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = caps[c],
                                      .batch = caps[c] ? 4 : 0};
                CHECK_OK(rill_pipeline_new("truns", &p));
                CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, &th, &src));
                CHECK_OK(rill_stage_add(p, "with", &run_sink_items_ops, &with, &th, &a));
                CHECK_OK(rill_stage_add(p, "without", &run_sink_ops, &without, &th, &b));
                CHECK_OK(rill_connect(src, a));
                CHECK_OK(rill_connect(src, b));
                CHECK_OK(rill_pipeline_run(p));
                uint64_t want = run_sum_to(s.n);
                CHECK_EQ(with.n, s.n);
                CHECK_EQ(with.sum, want);
                CHECK(with.in_order);
                CHECK(with.calls_items > 0);
                CHECK_EQ(without.n, s.n);
                CHECK_EQ(without.sum, want);
                CHECK(without.in_order);
                uint64_t in, out;
                CHECK(run_stage_counts(p, "with", &in, &out));
                CHECK_EQ(in, s.n);
                CHECK_EQ(rill_pipeline_discarded(p), 0);
                rill_pipeline_free(p);
            }
}

/* ---- replicas ---------------------------------------------------------------- */

static uint64_t key_of(const void *state, const rill_item *it) {
    (void)state;
    return run_value(it) % 13;
}

typedef struct keyed {
    uint64_t n, sum, keys; /* keys: bit per key seen */
} keyed;

static int keyed_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    keyed *k = state;
    uint64_t v = run_value(it);
    k->n++;
    k->sum += v;
    k->keys |= 1ull << (v % 13);
    return 0;
}
static int keyed_clone(const void *state, void **out) {
    (void)state;
    return (*out = calloc(1, sizeof(keyed))) ? 0 : RILL_ENOMEM;
}
static const rill_stage_ops keyed_hash_ops = {
    .send = keyed_send, .clone = keyed_clone, .free = free, .hash = key_of};
static const rill_stage_ops keyed_rr_ops = {.send = keyed_send, .clone = keyed_clone, .free = free};

/* Runs dealt over 3 replicas: by key, each key reaches one replica only; round
 * robin, all arrive. Count and sum are conserved either way. */
RILL_TEST(thread_runs, replicas_deal_runs_exactly) {
    for (int by_key = 0; by_key < 2; by_key++) {
        rill_pipeline *p;
        rill_stage *src, *r;
        run_src s = {.n = 6000, .len = 70};
        keyed *k0 = calloc(1, sizeof *k0);
        CHECK(k0);
        rill_stage_opts ro = {.replicas = 3, .batch = 8, .capacity = 64};
        CHECK_OK(rill_pipeline_new("deal", &p));
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        CHECK_OK(rill_stage_add(p, "r", by_key ? &keyed_hash_ops : &keyed_rr_ops, k0, &ro, &r));
        CHECK_OK(rill_connect(src, r));
        CHECK_OK(rill_pipeline_run(p));
        uint64_t n = 0, sum = 0, seen = 0;
        for (unsigned i = 0; i < 3; i++) {
            keyed *k = rill_stage_state(rill_stage_replica(r, i));
            n += k->n;
            sum += k->sum;
            if (by_key)
                CHECK_EQ(seen & k->keys, 0); /* no key in two replicas */
            seen |= k->keys;
            CHECK(k->n > 0);
        }
        CHECK_EQ(n, s.n);
        CHECK_EQ(sum, run_sum_to(s.n));
        CHECK_EQ(seen, (1ull << 13) - 1);
        rill_pipeline_free(p);
    }
}

/* A threaded sink that aborts at item 100 of runs of 50 behind a queue of
 * 32: every item the source emitted was received or discarded. */
RILL_TEST(thread_runs, a_stop_mid_run_accounts_for_every_item) {
    for (int items_op = 0; items_op < 2; items_op++) {
        rill_pipeline *p;
        rill_stage *src, *sink;
        run_src s = {.n = 20000, .len = 50};
        run_sink k = {.abort_at = 100};
        rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 32, .batch = 8};
        CHECK_OK(rill_pipeline_new("tstop", &p));
        k.abort_p = p;
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        CHECK_OK(rill_stage_add(p, "sink", items_op ? &run_sink_items_ops : &run_sink_ops, &k,
                                &th, &sink));
        CHECK_OK(rill_connect(src, sink));
        CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
        uint64_t in = 0, out = 0, src_out = 0;
        CHECK(run_stage_counts(p, "src", &in, &src_out));
        CHECK(run_stage_counts(p, "sink", &in, &out));
        CHECK(k.n >= 100);
        CHECK(src_out < s.n); /* it stopped: not everything was emitted */
        CHECK_EQ(in, k.n);
        CHECK_EQ(src_out, in + rill_pipeline_discarded(p));
        rill_pipeline_free(p);
    }
}

/* ---- leaky queues ----------------------------------------------------------- */

/* Runs into a threaded sink behind a small leaky queue (each policy), the
 * sink slowed so that the queue overflows: what the source emitted is what
 * the sink received plus what the queue dropped (and nothing is discarded
 * without a stop); what arrives is in order. */
RILL_TEST(thread_runs, leaky_queues_account_for_every_item_of_a_run) {
    const unsigned policies[] = {RILL_OVERFLOW_DROP_NEWEST, RILL_OVERFLOW_DROP_OLDEST};
    for (unsigned k = 0; k < 2; k++) {
        rill_pipeline *p;
        rill_stage *src, *sink;
        run_src s = {.n = 3000, .len = 40, .kind = k ? RUN_OWNED : RUN_BORROWED};
        run_sink got = {0};
        rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 16, .batch = 4,
                              .overflow = policies[k]};
        CHECK_OK(rill_pipeline_new("leaky", &p));
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        CHECK_OK(rill_stage_add(p, "sink", &run_sink_items_ops, &got, &th, &sink));
        CHECK_OK(rill_connect(src, sink));
        CHECK_OK(rill_stage_set_delay(sink, 2000));
        CHECK_OK(rill_pipeline_run(p));
        rill_stats *st;
        CHECK_OK(rill_pipeline_stats(p, &st));
        CHECK_EQ(st->nqueues, 1);
        uint64_t dropped = st->queues[0].dropped;
        rill_stats_free(st);
        uint64_t in, out;
        CHECK(run_stage_counts(p, "src", &in, &out));
        CHECK_EQ(out, s.n);
        CHECK(dropped > 0);
        CHECK_EQ(got.n + dropped, s.n);
        CHECK(got.in_order);
        CHECK_EQ(rill_pipeline_discarded(p), 0);
        rill_pipeline_free(p);
    }
}

/* ---- shared fan-out ------------------------------------------------------- */

/* A source whose two ports both cross to threads (one shared batch for both
 * queues, engine/pipeline/share.c), one consumer aborting in the middle:
 * on each of the two connections every item emitted was received or
 * discarded. */
RILL_TEST(thread_runs, a_stop_in_a_shared_fan_out_accounts_for_every_item) {
    for (int items_op = 0; items_op < 2; items_op++) {
        rill_pipeline *p;
        rill_stage *src, *a, *b;
        run_src s = {.n = 20000, .len = 50};
        run_sink ka = {.abort_at = 100}, kb = {0};
        rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 32, .batch = 8};
        CHECK_OK(rill_pipeline_new("tshare", &p));
        ka.abort_p = p;
        CHECK_OK(rill_stage_add(p, "src", &run_src_ops, &s, NULL, &src));
        const rill_stage_ops *ops = items_op ? &run_sink_items_ops : &run_sink_ops;
        CHECK_OK(rill_stage_add(p, "a", ops, &ka, &th, &a));
        CHECK_OK(rill_stage_add(p, "b", ops, &kb, &th, &b));
        CHECK_OK(rill_connect(src, a));
        CHECK_OK(rill_connect(src, b));
        CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
        uint64_t in_a = 0, in_b = 0, out = 0, ignore = 0;
        CHECK(run_stage_counts(p, "src", &ignore, &out));
        CHECK(run_stage_counts(p, "a", &in_a, &ignore));
        CHECK(run_stage_counts(p, "b", &in_b, &ignore));
        CHECK(ka.n >= 100);
        CHECK(out < s.n);
        CHECK_EQ(in_a, ka.n);
        CHECK_EQ(in_b, kb.n);
        CHECK_EQ(2 * out, in_a + in_b + rill_pipeline_discarded(p));
        rill_pipeline_free(p);
    }
}
