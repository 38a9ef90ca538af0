/* rill_try_emit and the room eventfd (rill_stage_room_fd): a source that
 * must not block — a TCP source running an event loop — emits with
 * rill_try_emit, and on RILL_EAGAIN waits for the room fd with poll() next
 * to whatever else it serves (tests/util/room_util.h).
 *
 * Refusals: a threaded sink that waits at a gate inside send on its first
 * item holds its queue: a source then emits exactly `capacity` items, is
 * refused with nothing emitted (downstream counts, queue counters), the fd
 * stays quiet while the sink is held and becomes readable once the test
 * opens the gate. Also: fan-out (one full queue refuses the item to every
 * port; a refusal moves to the next full queue), drop policies (never
 * refuse), every batch in flight. Stops and fds made late:
 * test_thread_room_stop.c; a million items and the arming window:
 * test_thread_room_stress.c. RILL_STAGE_THREADED sinks throughout. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "room_util.h"

/* ---- a held sink ------------------------------------------------------------ */

/* The source is accepted exactly cap times, then refused with nothing
 * emitted; the fd stays quiet while the sink is held and becomes readable
 * once it is released; every item arrives once, in order. */
static void held_sink(unsigned cap, unsigned batch) {
    enum { N = 5000 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    source s = {.n = N, .refused = 3};
    CHECK_OK(rill_pipeline_new("room", &p));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *snk = add_sink(p, "sink", &k, cap, batch, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_pipeline_start(p));
    /* Look while the source waits for room, then let everything finish
     * before checking, so a failed check leaves no thread behind. */
    bool waited = wait_phase(&s, 1);
    /* The refusal handed the sink its batch and woke it: it gets to item 0. */
    bool reached = wait_for(&g.entered, 1, WAIT_S);
    rill_queue_stats held = queue_to(p, "sink");
    uint64_t out = items_out(p, "source");
    int entered = atomic_load(&g.entered), got = atomic_load(&k.count);
    int fd = atomic_load(&s.fd);
    int quiet = readable(fd, 0);
    sleep_ms(20);
    int still_quiet = readable(fd, 0), still_waiting = atomic_load(&s.phase) == 1;
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_queue_stats fin = queue_to(p, "sink");
    rill_pipeline_free(p);
    gate_fini(&g);

    CHECK(waited);
    CHECK(reached);
    CHECK_EQ(s.emitted_first, cap);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(s.extra_rc[i], RILL_EAGAIN);
    CHECK_EQ(out, cap); /* the refused tries emitted nothing */
    CHECK_EQ(held.in, cap); /* the partial batch was handed over */
    CHECK_EQ(held.depth, cap);
    CHECK_EQ(held.high_water, cap);
    CHECK_EQ(held.out, 0);
    CHECK_EQ(held.dropped, 0);
    CHECK_EQ(held.in, held.out + held.dropped + held.discarded + held.depth);
    CHECK_EQ(entered, 1);
    CHECK_EQ(got, 0); /* held inside send of item 0 */
    CHECK_EQ(quiet, 0);
    CHECK_EQ(still_quiet, 0);
    CHECK(still_waiting);
    CHECK_OK(rc);
    CHECK_EQ(s.wait_rc, 1); /* woken by the release, within POLL_MS */
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), N);
    CHECK_EQ(k.sum, (uint64_t)N * (N - 1) / 2);
    CHECK_EQ(fin.in, N);
    CHECK_EQ(fin.out, N);
    CHECK_EQ(fin.in, fin.out + fin.dropped + fin.discarded + fin.depth);
}

RILL_TEST(room, capacity_7_refuses_the_8th_and_wakes_on_release) { held_sink(7, 0); }
RILL_TEST(room, partial_batch_counts_and_is_handed_over) { held_sink(10, 4); }
RILL_TEST(room, capacity_1) { held_sink(1, 0); }
RILL_TEST(room, capacity_4096) { held_sink(4096, 0); }

/* ---- fan-out ------------------------------------------------------------------ */

RILL_TEST(room, one_full_queue_refuses_the_item_to_every_port) {
    enum { N = 3000, CAP = 4 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink in = {0}, free_ = {0}, held = {.g = &g};
    source s = {.n = N, .refused = 1};
    CHECK_OK(rill_pipeline_new("fan", &p));
    rill_stage *src = add_source(p, &s, true), *i = NULL;
    atomic_init(&in.count, 0);
    CHECK_OK(rill_stage_add(p, "inline", &sink_ops, &in, NULL, &i));
    rill_stage *f = add_sink(p, "free", &free_, 4096, 0, RILL_OVERFLOW_BLOCK);
    rill_stage *h = add_sink(p, "held", &held, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && f && h);
    /* The full queue is the last port: the others must not get the item
     * before it is looked at. */
    CHECK_OK(rill_connect(src, i));
    CHECK_OK(rill_connect(src, f));
    CHECK_OK(rill_connect(src, h));
    CHECK_OK(rill_pipeline_start(p));
    bool waited = wait_phase(&s, 1);
    bool free_got = wait_for(&free_.count, CAP, WAIT_S); /* handed over at the refusal */
    sleep_ms(20);
    int free_n = atomic_load(&free_.count), in_n = atomic_load(&in.count);
    rill_queue_stats qf = queue_to(p, "free"), qh = queue_to(p, "held");
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    gate_fini(&g);

    CHECK(waited);
    CHECK(free_got);
    CHECK_EQ(s.emitted_first, CAP);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.extra_rc[0], RILL_EAGAIN);
    CHECK_EQ(in_n, CAP);
    CHECK_EQ(free_n, CAP);
    CHECK_EQ(qf.in, CAP);
    CHECK_EQ(qh.in, CAP);
    CHECK_OK(rc);
    CHECK(!s.hung);
    sink *all[] = {&in, &free_, &held};
    for (int k = 0; k < 3; k++) {
        CHECK(!all[k]->bad);
        CHECK_EQ(atomic_load(&all[k]->count), N);
        CHECK_EQ(all[k]->sum, (uint64_t)N * (N - 1) / 2);
    }
}

/* Two held queues: refused on the first, the source waits; the first is
 * released and drains, the retry is refused on the second (nothing emitted
 * anywhere), and that refusal arms the second queue: the fd stays quiet
 * while it is held and wakes the source once it is released. A signal armed
 * on the wrong queue would leave the source waiting until POLL_MS. */
RILL_TEST(room, a_refusal_moves_to_the_next_full_queue_and_arms_it) {
    enum { N = 2000, CAP = 4 };
    rill_pipeline *p = NULL;
    gate ga, gb;
    gate_init(&ga);
    gate_init(&gb);
    sink a = {.g = &ga}, b = {.g = &gb};
    source s = {.n = N};
    CHECK_OK(rill_pipeline_new("two", &p));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *sa = add_sink(p, "a", &a, CAP, 0, RILL_OVERFLOW_BLOCK);
    rill_stage *sb = add_sink(p, "b", &b, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && sa && sb);
    CHECK_OK(rill_connect(src, sa));
    CHECK_OK(rill_connect(src, sb));
    CHECK_OK(rill_pipeline_start(p));
    bool waited = wait_phase(&s, 1);
    bool at_gates = wait_for(&ga.entered, 1, WAIT_S) && wait_for(&gb.entered, 1, WAIT_S);
    gate_open(&ga);
    bool a_drained = wait_for(&a.count, CAP, WAIT_S);
    bool second_wait = wait_for(&s.waits, 1, WAIT_S); /* refused again: on b */
    sleep_ms(20);
    int woken = atomic_load(&s.woken), quiet = readable(atomic_load(&s.fd), 0);
    uint64_t out = items_out(p, "source");
    int a_n = atomic_load(&a.count), b_n = atomic_load(&b.count);
    rill_queue_stats qa = queue_to(p, "a"), qb = queue_to(p, "b");
    gate_open(&gb);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    gate_fini(&ga);
    gate_fini(&gb);

    CHECK(waited);
    CHECK(at_gates);
    CHECK(a_drained);
    CHECK(second_wait);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.emitted_first, CAP);
    CHECK_EQ(s.wait_rc, 1); /* the first wait, woken by a's release */
    CHECK_EQ(woken, 0);     /* the second, on b, still waits */
    CHECK_EQ(quiet, 0);
    CHECK_EQ(out, CAP);     /* the retry was refused on b: a got nothing more */
    CHECK_EQ(a_n, CAP);
    CHECK_EQ(b_n, 0);
    CHECK_EQ(qa.in, CAP);
    CHECK_EQ(qa.out, CAP);
    CHECK_EQ(qb.in, CAP);
    CHECK_EQ(qb.depth, CAP);
    CHECK_EQ(qa.in, qa.out + qa.dropped + qa.discarded + qa.depth);
    CHECK_EQ(qb.in, qb.out + qb.dropped + qb.discarded + qb.depth);
    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK(s.eagain >= 1);
    sink *all[] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        CHECK(!all[k]->bad);
        CHECK_EQ(atomic_load(&all[k]->count), N);
        CHECK_EQ(all[k]->sum, (uint64_t)N * (N - 1) / 2);
    }
}

/* ---- drop policies -------------------------------------------------------------- */

/* A held sink behind a drop policy next to a blocking queue with room:
 * rill_try_emit never refuses, the drops are counted. */
static void never_refused(unsigned policy) {
    enum { N = 1000, CAP = 4 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink held = {.g = &g}, roomy = {0};
    source s = {.n = N, .done_after_first = true};
    CHECK_OK(rill_pipeline_new("drop", &p));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *h = add_sink(p, "held", &held, CAP, 0, policy);
    rill_stage *r = add_sink(p, "roomy", &roomy, 2 * N, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && h && r);
    CHECK_OK(rill_connect(src, h));
    CHECK_OK(rill_connect(src, r));
    CHECK_OK(rill_pipeline_start(p));
    bool done = wait_phase(&s, 2);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_queue_stats q = queue_to(p, "held");
    rill_pipeline_free(p);
    gate_fini(&g);

    CHECK(done);
    CHECK_OK(rc);
    CHECK_EQ(s.first_rc, 0);
    CHECK_EQ(s.emitted_first, N);
    CHECK_EQ(q.in, N);
    CHECK_EQ(q.out, (uint64_t)atomic_load(&held.count));
    CHECK(!held.bad);
    CHECK_EQ((uint64_t)atomic_load(&held.count) + q.dropped, N);
    if (policy == RILL_OVERFLOW_DROP_NEWEST) {
        CHECK_EQ(q.dropped, N - CAP);
        CHECK_EQ(held.sum, (uint64_t)CAP * (CAP - 1) / 2); /* items 0 .. CAP-1 */
    } else {
        CHECK(q.dropped >= N - 2 * CAP);
    }
    CHECK(!roomy.bad);
    CHECK_EQ(atomic_load(&roomy.count), N);
}

RILL_TEST(room, drop_newest_never_refuses) { never_refused(RILL_OVERFLOW_DROP_NEWEST); }
RILL_TEST(room, drop_oldest_never_refuses) { never_refused(RILL_OVERFLOW_DROP_OLDEST); }

/* ---- every batch in flight ---------------------------------------------------------- */

/* A source that hands over every item alone runs out of batches before it
 * reaches the capacity: ceil(capacity/batch) + 66 of them (rill/pipeline.h).
 * That refuses too, and the release wakes it.
 *
 * With `flusher`, the source does not flush: a stage on its thread,
 * connected before the queue, hands over the thread's partial batches for
 * every item (rill_stage_flush; a blocking emit of its own about to wait
 * does the same). The look before emitting saw the queue's partial batch
 * with room in it; a flush between the look and the queue's append takes
 * that batch away, and with every batch in flight the append would wait for
 * one. rill_try_emit must not: it refuses at the same item, and the flusher
 * never gets a refused item. */
typedef struct flusher {
    atomic_int count;
} flusher;

static int flusher_send(rill_stage *st, void *state, const rill_item *it) {
    flusher *f = state;
    (void)it;
    atomic_fetch_add(&f->count, 1);
    rill_stage_flush(st);
    return 0;
}

static const rill_stage_ops flusher_ops = {.send = flusher_send};

static void batches_in_flight(bool with_flusher) {
    enum { N = 300, CAP = 4096, BATCH = 256 };
    const uint64_t batches = (CAP + BATCH - 1) / BATCH + 66;
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    flusher fl;
    atomic_init(&fl.count, 0);
    source s = {.n = N, .flush_each = !with_flusher, .refused = 2};
    CHECK_OK(rill_pipeline_new("batches", &p));
    rill_stage *src = add_source(p, &s, true), *f = NULL;
    if (with_flusher) {
        CHECK_OK(rill_stage_add(p, "flusher", &flusher_ops, &fl, NULL, &f));
        CHECK_OK(rill_connect(src, f)); /* before the queue, in connect order */
    }
    rill_stage *snk = add_sink(p, "sink", &k, CAP, BATCH, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_pipeline_start(p));
    bool waited = wait_phase(&s, 1); /* a source stuck inside the call never gets there */
    rill_queue_stats q = queue_to(p, "sink");
    int quiet = readable(atomic_load(&s.fd), 0), flushed = atomic_load(&fl.count);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    gate_fini(&g);

    CHECK(waited);
    CHECK_EQ(s.emitted_first, batches);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.extra_rc[0], RILL_EAGAIN);
    CHECK_EQ(s.extra_rc[1], RILL_EAGAIN);
    CHECK_EQ(q.in, batches);
    CHECK(q.in < CAP);
    CHECK_EQ(q.in, q.out + q.dropped + q.discarded + q.depth);
    CHECK_EQ(quiet, 0);
    CHECK_OK(rc);
    CHECK_EQ(s.wait_rc, 1);
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), N);
    CHECK_EQ(flushed, with_flusher ? batches : 0);
    CHECK_EQ(atomic_load(&fl.count), with_flusher ? N : 0);
}

RILL_TEST(room, every_batch_in_flight_refuses_and_wakes) { batches_in_flight(false); }
RILL_TEST(room, a_stage_on_its_thread_that_flushes_never_makes_it_wait) {
    batches_in_flight(true);
}

/* ---- arguments and names ---------------------------------------------------------------- */

RILL_TEST(room, bad_arguments_and_the_error_code) {
    rill_pipeline *p = NULL;
    rill_stage *st = NULL;
    sink k = {0};
    int fd;
    rill_item it = value(1);
    CHECK_OK(rill_pipeline_new("args", &p));
    atomic_init(&k.count, 0);
    CHECK_OK(rill_stage_add(p, "s", &sink_ops, &k, NULL, &st));
    CHECK_EQ(rill_try_emit(NULL, &it), RILL_EINVAL);
    CHECK_EQ(rill_try_emit(st, NULL), RILL_EINVAL);
    CHECK_EQ(rill_stage_room_fd(NULL, &fd), RILL_EINVAL);
    CHECK_EQ(rill_stage_room_fd(st, NULL), RILL_EINVAL);
    rill_pipeline_free(p);
    CHECK_EQ(RILL_EAGAIN, -EAGAIN);
    CHECK_STREQ(rill_errname(RILL_EAGAIN), "EAGAIN");
    CHECK(strcmp(rill_strerror(RILL_EAGAIN), "unknown error") != 0);
}
