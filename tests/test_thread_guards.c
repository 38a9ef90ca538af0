/* Three behaviours of the queues and workers that a mutation run found no
 * test guarding (issue 15, item 6). Each test here fails with its mutation
 * put back:
 *  - the consumer wakes a producer blocked on a full queue once the queue
 *    is half empty (queue.c, rill__queue_done: `depth <= capacity -
 *    wake_depth`; with `<` the producer sleeps until the queue drains);
 *  - an abort wakes parked workers at once (worker.c, rill__wake_all), not
 *    only at close through end of stream;
 *  - an item left in a queue's unsent partial batch at teardown is counted
 *    in and discarded (queue.c, rill__queue_fini: `q->in += unsent`). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- the wake threshold ------------------------------------------------------ */

typedef struct stall {
    atomic_int pushed;   /* the source's emits that returned */
    atomic_int received; /* the consumer's sends */
    gate first, fifth;   /* the consumer waits at its 1st and 5th item */
} stall;

static int stall_produce(rill_stage *st, void *state) {
    stall *s = state;
    for (int i = 0; i < 16; i++) {
        rill_item it = rill_item_static("x", 1);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
        atomic_fetch_add(&s->pushed, 1);
    }
    return RILL_EDONE;
}

static int stall_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    (void)it;
    stall *s = state;
    int n = atomic_fetch_add(&s->received, 1) + 1;
    if (n == 1)
        gate_pass(&s->first);
    else if (n == 5)
        gate_pass(&s->fifth);
    return 0;
}

/* Capacity 8, batch 4. The consumer holds its first item until the producer
 * is blocked on the full queue (8 pushed), then delivers items 1-4 and
 * holds item 5. Handing back batch 1 leaves 4 queued, half the capacity:
 * the producer must be woken and push 4 more (12) while the consumer still
 * holds item 5. With `<` for `<=` it stays asleep at 8 until the queue
 * drains. */
RILL_TEST(thread_guards, producer_woken_when_the_queue_is_half_empty) {
    static const rill_stage_ops src_ops = {.produce = stall_produce};
    static const rill_stage_ops sink_ops = {.send = stall_send};
    stall s;
    atomic_init(&s.pushed, 0);
    atomic_init(&s.received, 0);
    gate_init(&s.first);
    gate_init(&s.fifth);
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *sink = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 8, .batch = 4};
    CHECK_OK(rill_pipeline_new("wake", &p));
    CHECK_OK(rill_stage_add(p, "source", &src_ops, &s, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &s, &o, &sink));
    CHECK_OK(rill_connect(src, sink));
    pipeline_runner r = {p, -1};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, pipeline_runner_main, &r), 0);
    bool at_first = wait_for(&s.first.entered, 1, 10.0);
    bool full = wait_for(&s.pushed, 8, 10.0);
    sleep_ms(50); /* the 9th emit must be waiting: the queue holds 8 */
    int blocked_at = atomic_load(&s.pushed);
    gate_open(&s.first);
    bool at_fifth = wait_for(&s.fifth.entered, 1, 10.0);
    bool woken = wait_for(&s.pushed, 12, 5.0);
    sleep_ms(50); /* and the 13th waits again: 4 taken, 12 in */
    int while_held = atomic_load(&s.pushed);
    gate_open(&s.fifth);
    pthread_join(t, NULL);
    rill_pipeline_free(p);
    gate_fini(&s.first);
    gate_fini(&s.fifth);
    CHECK(at_first && full && at_fifth);
    CHECK_EQ(blocked_at, 8);
    if (!woken)
        rill_test__failf(__FILE__, __LINE__,
                         "producer not woken with the queue half empty: %d pushed, want 12",
                         while_held);
    CHECK(woken);
    CHECK_EQ(while_held, 12);
    CHECK_OK(r.rc);
    CHECK_EQ(atomic_load(&s.received), 16);
}

/* ---- an abort wakes idle workers --------------------------------------------- */

static _Atomic uint64_t g_closed_at;

static int idle_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    (void)state;
    (void)it;
    return 0;
}

static int idle_close(rill_stage *st, void *state) {
    (void)st;
    (void)state;
    atomic_store(&g_closed_at, now_ns());
    return 0;
}

/* A threaded stage with nothing to do parks its thread. An abort must wake
 * it, so it sees the stop and runs its close now, not when the caller gets
 * round to rill_pipeline_close (measured here: well under 1 ms; the bound
 * is for a loaded machine). */
RILL_TEST(thread_guards, abort_wakes_an_idle_worker_at_once) {
    static const rill_stage_ops ops = {.send = idle_send, .close = idle_close};
    atomic_store(&g_closed_at, 0);
    rill_pipeline *p = NULL;
    rill_stage *t = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_pipeline_new("abort", &p));
    CHECK_OK(rill_stage_add(p, "idle", &ops, NULL, &o, &t));
    CHECK_OK(rill_pipeline_start(p));
    sleep_ms(100); /* past its spin: parked */
    uint64_t t0 = now_ns();
    rill_pipeline_abort(p);
    double end = now_s() + 2.0;
    while (!atomic_load(&g_closed_at) && now_s() < end)
        sleep_ms(1);
    uint64_t closed = atomic_load(&g_closed_at);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    if (!closed)
        rill_test__fail(__FILE__, __LINE__, "the idle stage's close waited for "
                                            "rill_pipeline_close: the abort did not wake it");
    CHECK(closed != 0);
    CHECK(closed - t0 < 1000000000u);
    CHECK_EQ(rc, RILL_EABORTED);
}

/* ---- an unsent partial batch at teardown ---------------------------------------- */

typedef struct late {
    rill_pipeline *p;
    rill_stage *entry;
    int pushed_rc;
} late;

static int fwd_send(rill_stage *st, void *state, const rill_item *it) {
    (void)state;
    return rill_emit(st, it);
}

/* Closed after the entry (added later): pushes one more item into it. */
static int late_close(rill_stage *st, void *state) {
    (void)st;
    late *l = state;
    rill_item it = rill_item_static("late", 4);
    l->pushed_rc = rill_pipeline_push(l->p, l->entry, &it);
    return 0;
}

/* The one way to leave items in a queue's partial batch at teardown: an
 * item pushed into an entry after close has sent that entry's end of
 * stream (here from a later stage's close callback, on the closing thread).
 * It is accepted but never handed over, so teardown counts it in and
 * discarded: the queue's counters still balance (in = out + discarded). */
RILL_TEST(thread_guards, an_unsent_partial_batch_is_counted_at_teardown) {
    static const rill_stage_ops fwd = {.send = fwd_send};
    static const rill_stage_ops sink = {.send = idle_send};
    static const rill_stage_ops closer = {.send = idle_send, .close = late_close};
    late l = {NULL, NULL, -1};
    rill_pipeline *p = NULL;
    rill_stage *entry = NULL, *t = NULL, *z = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_pipeline_new("late", &p));
    CHECK_OK(rill_stage_add(p, "entry", &fwd, NULL, NULL, &entry));
    CHECK_OK(rill_stage_add(p, "sink", &sink, NULL, &o, &t));
    CHECK_OK(rill_stage_add(p, "closer", &closer, &l, NULL, &z));
    CHECK_OK(rill_connect(entry, t));
    l.p = p;
    l.entry = entry;
    for (int i = 0; i < 3; i++) {
        rill_item it = rill_item_static("early", 5);
        CHECK_OK(rill_pipeline_push(p, entry, &it));
    }
    int rc = rill_pipeline_close(p);
    rill_queue_stats q = queue_to(p, "sink");
    uint64_t discarded = rill_pipeline_discarded(p);
    rill_pipeline_free(p);
    CHECK_OK(rc);
    CHECK_OK(l.pushed_rc);
    CHECK_EQ(q.out, 3);
    CHECK_EQ(q.discarded, 1);
    CHECK_EQ(discarded, 1);
    CHECK_EQ(q.in, q.out + q.discarded + q.dropped);
}
