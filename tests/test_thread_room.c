/* rill_try_emit and the room eventfd (rill_stage_room_fd): a source that
 * must not block — a TCP source running an event loop — emits with
 * rill_try_emit, and on RILL_EAGAIN waits for the room fd with poll() next
 * to whatever else it serves.
 *
 * A threaded sink that waits at a gate inside send on its first item holds
 * its queue: a source then emits exactly `capacity` items, is refused with
 * nothing emitted (downstream counts, queue counters), the fd stays quiet
 * while the sink is held and becomes readable once the test opens the gate.
 * Also: fan-out (one full queue refuses the item to every port), drop
 * policies (never refuse), every batch in flight, abort and errors wake a
 * waiting loop, and a million items through capacities 1, 7 and 4096 with a
 * sink that stalls at random, with the source threaded and inline.
 *
 * Stage callbacks record into their state or atomics; the test thread
 * checks after close or while the source waits. Waits have generous limits;
 * nothing is timed. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { WAIT_S = 20, POLL_MS = WAIT_S * 1000 };

static const char byte[1] = "x"; /* items carry their value in len; data is never read */

static rill_item value(uint64_t v) { return rill_item_static(byte, (size_t)v); }

/* 1 if fd is readable within ms, 0 if not, -errno on failure. */
static int readable(int fd, int ms) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    int n;
    while ((n = poll(&pf, 1, ms)) < 0 && errno == EINTR)
        ;
    return n < 0 ? -errno : n > 0 && (pf.revents & POLLIN);
}

static void drain(int fd) {
    uint64_t v;
    while (read(fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
}

/* ---- the sink --------------------------------------------------------------- */

/* Counts and sums the values it receives and checks they increase (with
 * count == n and sum == n(n-1)/2 that means 0 .. n-1 once each, in order);
 * waits at g (if any) on its first item; with `stall`, now and then busy for
 * a while. */
typedef struct sink {
    gate *g;
    uint64_t next, sum;
    bool bad;
    unsigned stall;      /* one item in `stall` (on average) spins up to 200 us */
    uint64_t rng;
    atomic_int count;    /* items received, for the test thread */
    atomic_int tid;      /* its thread, once it has received an item */
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    sink *k = state;
    (void)st;
    if (k->next == 0)
        atomic_store(&k->tid, my_tid());
    if (k->g && k->next == 0)
        gate_pass(k->g);
    if (it->len < k->next)
        k->bad = true;
    k->next = it->len + 1;
    k->sum += it->len;
    atomic_fetch_add(&k->count, 1);
    if (k->stall && rng_next(&k->rng) % k->stall == 0)
        spin_ns(rng_next(&k->rng) % 200000);
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send};

/* ---- the source ------------------------------------------------------------------ */

/* Emits 0 .. n-1 with rill_try_emit only. First, emit until refused
 * (recording what came back) and try `refused` more times; then, if refused,
 * publish the fd, phase 1, and wait for room with poll; phase 2; then emit
 * the rest, waiting on the fd after every refusal. */
typedef struct source {
    uint64_t n, next;
    unsigned refused;          /* extra tries after the first refusal (<= 4) */
    bool flush_each;           /* rill_stage_flush after every item */
    bool stop_after_wait;      /* after the first wait: one more try, then end */
    bool done_after_first;     /* end after the first part */
    bool late_fd;              /* refused: phase 1, wait for go, only then ask
                                  for the fd and look at it without waiting */
    uint64_t emitted_first;    /* items accepted before the first refusal */
    int first_rc, extra_rc[4];
    int wait_rc, after_rc, late_rc;
    unsigned eagain;           /* refusals after the first part */
    bool hung;                 /* a wait for room gave up: a lost wake-up */
    atomic_int fd, phase, go;
    atomic_int waits, woken;   /* waits for room begun in the loop, and ended */
} source;

/* Wait for room as an event loop would: poll the fd, drain, retry. */
static int wait_room(rill_stage *st, source *s) {
    int fd;
    int rc = rill_stage_room_fd(st, &fd);
    if (rc)
        return rc;
    atomic_fetch_add(&s->waits, 1);
    rc = readable(fd, POLL_MS);
    atomic_fetch_add(&s->woken, 1);
    if (rc <= 0) {
        s->hung = rc == 0;
        return rill_stage_fail(st, rc ? rc : -ETIMEDOUT, "waiting for room");
    }
    drain(fd);
    return 0;
}

static int try_value(rill_stage *st, uint64_t v) {
    rill_item it = value(v);
    return rill_try_emit(st, &it);
}

static int source_first(rill_stage *st, source *s) {
    int rc = 0, fd;
    while (s->next < s->n && (rc = try_value(st, s->next)) == 0) {
        s->next++;
        if (s->flush_each)
            rill_stage_flush(st);
    }
    s->emitted_first = s->next;
    s->first_rc = rc;
    for (unsigned i = 0; i < s->refused && i < 4; i++)
        s->extra_rc[i] = try_value(st, s->next);
    if (s->late_fd) {
        atomic_store(&s->phase, 1);
        double end = now_s() + WAIT_S;
        while (!atomic_load(&s->go) && now_s() < end)
            sleep_ms(1);
    }
    if ((rc = rill_stage_room_fd(st, &fd)))
        return rc;
    atomic_store(&s->fd, fd);
    if (s->late_fd) {
        s->late_rc = readable(fd, 0);
    } else if (s->first_rc == RILL_EAGAIN) {
        atomic_store(&s->phase, 1);
        s->wait_rc = readable(fd, POLL_MS);
        drain(fd);
    }
    if (s->stop_after_wait) {
        s->after_rc = try_value(st, s->next);
        atomic_store(&s->phase, 2);
        return s->after_rc ? s->after_rc : RILL_EDONE;
    }
    atomic_store(&s->phase, 2);
    return s->done_after_first ? RILL_EDONE : 0;
}

static int source_produce(rill_stage *st, void *state) {
    source *s = state;
    if (atomic_load(&s->phase) < 2) {
        int rc = source_first(st, s);
        if (rc)
            return rc;
    }
    for (unsigned k = 0; k < 1024 && s->next < s->n; k++) {
        int rc = try_value(st, s->next);
        if (rc == 0) {
            s->next++;
        } else if (rc == RILL_EAGAIN) {
            s->eagain++;
            if ((rc = wait_room(st, s)))
                return rc;
        } else {
            return rc;
        }
    }
    return s->next < s->n ? 0 : RILL_EDONE;
}

static const rill_stage_ops source_ops = {.produce = source_produce};

/* ---- building ------------------------------------------------------------------ */

static rill_stage *add_source(rill_pipeline *p, source *s, bool threaded) {
    rill_stage_opts o = {.flags = threaded ? RILL_STAGE_THREADED : 0};
    rill_stage *st = NULL;
    atomic_init(&s->fd, -1);
    atomic_init(&s->phase, 0);
    atomic_init(&s->go, 0);
    atomic_init(&s->waits, 0);
    atomic_init(&s->woken, 0);
    return rill_stage_add(p, "source", &source_ops, s, &o, &st) == 0 ? st : NULL;
}

static rill_stage *add_sink(rill_pipeline *p, const char *name, sink *k, unsigned cap,
                            unsigned batch, unsigned overflow) {
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch,
                         .overflow = overflow};
    rill_stage *st = NULL;
    atomic_init(&k->count, 0);
    atomic_init(&k->tid, 0);
    return rill_stage_add(p, name, &sink_ops, k, &o, &st) == 0 ? st : NULL;
}

/* The counters of the queue into stage `to` now (capacity UINT64_MAX: none). */
static rill_queue_stats queue_to(rill_pipeline *p, const char *to) {
    rill_queue_stats q;
    rill_stats *s = NULL;
    memset(&q, 0, sizeof q);
    q.capacity = UINT64_MAX;
    if (rill_pipeline_stats(p, &s) == 0)
        for (size_t i = 0; i < s->nqueues; i++)
            if (strcmp(s->queues[i].to, to) == 0)
                q = s->queues[i];
    rill_stats_free(s);
    return q;
}

static uint64_t items_out(rill_pipeline *p, const char *name) {
    rill_stats *s = NULL;
    uint64_t n = UINT64_MAX;
    if (rill_pipeline_stats(p, &s) == 0)
        for (size_t i = 0; i < s->nstages; i++)
            if (strcmp(s->stages[i].name, name) == 0)
                n = s->stages[i].items_out;
    rill_stats_free(s);
    return n;
}

static bool wait_phase(source *s, int want) {
    double end = now_s() + WAIT_S;
    while (atomic_load(&s->phase) < want && now_s() < end)
        sleep_ms(1);
    return atomic_load(&s->phase) >= want;
}

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
    CHECK_OK(rill_pipeline_new(&p, "room"));
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
    rill_pipeline_destroy(p);
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
    CHECK_OK(rill_pipeline_new(&p, "fan"));
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
    rill_pipeline_destroy(p);
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
    CHECK_OK(rill_pipeline_new(&p, "two"));
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
    rill_pipeline_destroy(p);
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
    CHECK_OK(rill_pipeline_new(&p, "drop"));
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
    rill_pipeline_destroy(p);
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
    CHECK_OK(rill_pipeline_new(&p, "batches"));
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
    rill_pipeline_destroy(p);
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

/* ---- a stop wakes a waiting loop ---------------------------------------------------- */

/* The source waits for room behind a held sink; the test aborts (or a third
 * stage fails): the fd becomes readable and rill_try_emit returns the stop. */
typedef struct failer {
    gate *g;
} failer;

static int failer_send(rill_stage *st, void *state, const rill_item *it) {
    failer *f = state;
    (void)it;
    gate_pass(f->g);
    return rill_stage_fail(st, -EPIPE, "told to fail");
}

static const rill_stage_ops failer_ops = {.send = failer_send};

static void stop_while_waiting(bool abort_it) {
    enum { CAP = 4 };
    rill_pipeline *p = NULL;
    gate g, gf;
    gate_init(&g);
    gate_init(&gf);
    sink k = {.g = &g};
    failer f = {.g = &gf};
    source s = {.n = 100, .stop_after_wait = true};
    rill_stage_opts t = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_pipeline_new(&p, "stop"));
    rill_stage *src = add_source(p, &s, true), *fs = NULL;
    rill_stage *snk = add_sink(p, "sink", &k, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK_OK(rill_stage_add(p, "fail", &failer_ops, &f, &t, &fs));
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_connect(src, fs));
    CHECK_OK(rill_pipeline_start(p));
    bool waited = wait_phase(&s, 1);
    int quiet = readable(atomic_load(&s.fd), 0);
    sleep_ms(20);
    int still_waiting = atomic_load(&s.phase) == 1;
    if (abort_it)
        rill_pipeline_abort(p);
    else
        gate_open(&gf);
    bool woke = wait_phase(&s, 2);
    gate_open(&g);
    gate_open(&gf);
    int rc = rill_pipeline_close(p);
    rill_pipeline_destroy(p);
    gate_fini(&g);
    gate_fini(&gf);

    int want = abort_it ? RILL_EABORTED : -EPIPE;
    CHECK(waited);
    CHECK_EQ(quiet, 0);
    CHECK(still_waiting);
    CHECK(woke);
    CHECK_EQ(s.wait_rc, 1);
    CHECK_EQ(s.after_rc, want);
    CHECK_EQ(rc, want);
}

RILL_TEST(room, abort_wakes_a_loop_waiting_for_room) { stop_while_waiting(true); }
RILL_TEST(room, an_error_wakes_a_loop_waiting_for_room) { stop_while_waiting(false); }

/* ---- the fd made late ---------------------------------------------------------------- */

/* Refused before the fd existed, and room freed before it was made: the new
 * fd is readable at once (the signal was kept for it). */
RILL_TEST(room, fd_made_after_the_room_was_freed_is_readable) {
    enum { N = 2000, CAP = 7 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    source s = {.n = N, .late_fd = true};
    CHECK_OK(rill_pipeline_new(&p, "late"));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *snk = add_sink(p, "sink", &k, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_pipeline_start(p));
    bool refused = wait_phase(&s, 1);
    gate_open(&g);
    /* The sink has handed the batch back once it sleeps after item CAP-1
     * (it parks waiting for input only after the hand-back). */
    bool drained = wait_for(&k.count, CAP, WAIT_S), parked = false;
    for (double end = now_s() + WAIT_S; drained && !parked && now_s() < end; sleep_ms(1))
        parked = queue_to(p, "sink").out == CAP && thread_state(atomic_load(&k.tid)) == 'S';
    atomic_store(&s.go, 1);
    int rc = rill_pipeline_close(p);
    rill_pipeline_destroy(p);
    gate_fini(&g);

    CHECK(refused);
    CHECK(drained);
    CHECK(parked);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.late_rc, 1);
    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK_EQ(atomic_load(&k.count), N);
    CHECK(!k.bad);
}

/* Refused before the fd existed, then the pipeline stopped while the sink
 * still holds the queue (nothing frees room): the fd made after the stop is
 * readable at once, so a loop that makes it and waits on it learns of the
 * stop (rill__wake_all wrote only the fds that existed). */
RILL_TEST(room, fd_made_after_an_abort_is_readable) {
    enum { N = 2000, CAP = 7 };
    rill_pipeline *p = NULL;
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    source s = {.n = N, .late_fd = true};
    CHECK_OK(rill_pipeline_new(&p, "late_stop"));
    rill_stage *src = add_source(p, &s, true);
    rill_stage *snk = add_sink(p, "sink", &k, CAP, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_pipeline_start(p));
    bool refused = wait_phase(&s, 1);
    rill_pipeline_abort(p);
    atomic_store(&s.go, 1);
    bool looked = wait_phase(&s, 2);
    gate_open(&g);
    int rc = rill_pipeline_close(p);
    rill_pipeline_destroy(p);
    gate_fini(&g);

    CHECK(refused);
    CHECK(looked);
    CHECK_EQ(s.first_rc, RILL_EAGAIN);
    CHECK_EQ(s.late_rc, 1);
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK(!s.hung);
}

/* An fd made before the start, and an abort before the start: readable once
 * the pipeline starts (a loop may wait on it before its first try). */
RILL_TEST(room, abort_before_start_signals_at_start) {
    rill_pipeline *p = NULL;
    sink k = {0};
    source s = {.n = 10};
    int fd = -1, fd2 = -1;
    CHECK_OK(rill_pipeline_new(&p, "early"));
    rill_stage *src = add_source(p, &s, false);
    rill_stage *snk = add_sink(p, "sink", &k, 4, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK_OK(rill_stage_room_fd(src, &fd));
    CHECK_OK(rill_stage_room_fd(src, &fd2));
    CHECK_EQ(fd, fd2);
    int quiet = readable(fd, 0);
    rill_pipeline_abort(p);
    int rc_start = rill_pipeline_start(p);
    int woke = readable(fd, 0);
    int rc = rill_pipeline_close(p);
    int after = rill_stage_room_fd(src, &fd2);
    rill_pipeline_destroy(p);

    CHECK_EQ(quiet, 0);
    CHECK_OK(rc_start);
    CHECK_EQ(woke, 1);
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK_EQ(after, RILL_ESTATE);
    CHECK_EQ(atomic_load(&k.count), 0);
}

/* ---- a million items ------------------------------------------------------------------ */

/* ThreadSanitizer makes every hand-off and system call far dearer; with
 * capacity 1 each item is a wake-up through the fd (about 50 s for a million
 * items there): a tenth of the items keeps the TSan run in the CI budget. */
#if defined(__SANITIZE_THREAD__)
#define ROOM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ROOM_TSAN 1
#endif
#endif
#ifdef ROOM_TSAN
enum { MILLION_CAP1 = 100000 };
#else
enum { MILLION_CAP1 = 1000000 };
#endif

/* try_emit + poll only, against a sink that stalls at random: everything
 * arrives once, in order, and no wait for room ever gives up. */
static void million(unsigned cap, bool threaded_source) {
    const uint64_t n = cap == 1 ? MILLION_CAP1 : 1000000;
    rill_pipeline *p = NULL;
    sink k = {.stall = 2000, .rng = 0x5eed0000u + cap};
    source s = {.n = n};
    CHECK_OK(rill_pipeline_new(&p, "million"));
    rill_stage *src = add_source(p, &s, threaded_source);
    rill_stage *snk = add_sink(p, "sink", &k, cap, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    int rc = rill_pipeline_run(p);
    rill_pipeline_destroy(p);

    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), n);
    CHECK_EQ(k.sum, n * (n - 1) / 2);
    CHECK_EQ(s.next, n);
}

RILL_TEST(room, million_capacity_1_threaded_source) { million(1, true); }
RILL_TEST(room, million_capacity_7_threaded_source) { million(7, true); }
RILL_TEST(room, million_capacity_4096_threaded_source) { million(4096, true); }
RILL_TEST(room, million_capacity_1_inline_source) { million(1, false); }
RILL_TEST(room, million_capacity_7_inline_source) { million(7, false); }
RILL_TEST(room, million_capacity_4096_inline_source) { million(4096, false); }

/* ---- a hand-back while the source arms ------------------------------------------------- */

/* The window the arming protocol exists for: the consumer frees the last
 * room after the source's look found none, but before the source armed the
 * queue, so the consumer sees no flag and writes nothing. Only the source's
 * second look at the wake-up epoch notices; without it the source would
 * wait on a quiet fd with an empty queue. A stress run alone almost never
 * lands there (a few nanoseconds between a load and a store):
 * RILL_FAULT_ROOM_ARM_US makes every refused source spin that long between
 * its look and arming, so a fast sink's hand-back falls inside nearly every
 * time. Every item must arrive and no wait may give up. */
static void hand_back_while_arming(unsigned cap, bool threaded_source) {
    enum { N = 20000 };
    rill_pipeline *p = NULL;
    sink k = {0};
    source s = {.n = N};
    CHECK_OK(rill_pipeline_new(&p, "arming"));
    rill_stage *src = add_source(p, &s, threaded_source);
    rill_stage *snk = add_sink(p, "sink", &k, cap, 0, RILL_OVERFLOW_BLOCK);
    CHECK(src && snk);
    CHECK_OK(rill_connect(src, snk));
    CHECK(setenv("RILL_FAULT_ROOM_ARM_US", "20", 1) == 0);
    int rc_start = rill_pipeline_start(p); /* queues are built, and read it, here */
    unsetenv("RILL_FAULT_ROOM_ARM_US");
    int rc = rill_pipeline_run(p);
    rill_pipeline_destroy(p);

    CHECK_OK(rc_start);
    CHECK_OK(rc);
    CHECK(!s.hung);
    CHECK(!k.bad);
    CHECK_EQ(atomic_load(&k.count), N);
    CHECK_EQ(k.sum, (uint64_t)N * (N - 1) / 2);
    CHECK(s.eagain > 0);
}

RILL_TEST(room, hand_back_while_arming_capacity_1_threaded) { hand_back_while_arming(1, true); }
RILL_TEST(room, hand_back_while_arming_capacity_1_inline) { hand_back_while_arming(1, false); }
RILL_TEST(room, hand_back_while_arming_capacity_7_threaded) { hand_back_while_arming(7, true); }

/* ---- arguments and names ---------------------------------------------------------------- */

RILL_TEST(room, bad_arguments_and_the_error_code) {
    rill_pipeline *p = NULL;
    rill_stage *st = NULL;
    sink k = {0};
    int fd;
    rill_item it = value(1);
    CHECK_OK(rill_pipeline_new(&p, "args"));
    atomic_init(&k.count, 0);
    CHECK_OK(rill_stage_add(p, "s", &sink_ops, &k, NULL, &st));
    CHECK_EQ(rill_try_emit(NULL, &it), RILL_EINVAL);
    CHECK_EQ(rill_try_emit(st, NULL), RILL_EINVAL);
    CHECK_EQ(rill_stage_room_fd(NULL, &fd), RILL_EINVAL);
    CHECK_EQ(rill_stage_room_fd(st, NULL), RILL_EINVAL);
    rill_pipeline_destroy(p);
    CHECK_EQ(RILL_EAGAIN, -EAGAIN);
    CHECK_STREQ(rill_errname(RILL_EAGAIN), "EAGAIN");
    CHECK(strcmp(rill_strerror(RILL_EAGAIN), "unknown error") != 0);
}
