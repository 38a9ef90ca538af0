/* Fan-out into several threaded stages, whose queues share one batch per
 * hand-off (engine/pipeline/share.c): every consumer still gets every item
 * in order, at any capacity and whichever consumer finishes first; an abort
 * or a failing consumer neither hangs nor loses count, and every batch's
 * owners are released exactly once (a counting owner, and ASan's leak check);
 * barriers still align; emit_to, try_emit and borrowed items still work.
 * And the batch really is shared: every consumer is handed the same item
 * slots, which per-queue copies could never be.
 *
 * Items carry a 64-bit value in their bytes. Expectations are computed here
 * from the values emitted. Stage callbacks record into their state; the test
 * thread checks after close. */
#include "fanout_util.h"

RILL_TEST(fanout, every_consumer_gets_every_item_at_every_capacity) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned nc = 2; nc <= MAXC; nc++)
        for (unsigned ci = 0; ci < 4; ci++)
            for (unsigned kind = OWNED; kind <= BORROWED; kind++) {
                fan f = {.nc = nc, .capacity = caps[ci]};
                f.s.n = caps[ci] <= 2 ? (RILL_TEST_TSAN ? 300 : 1000) : (RILL_TEST_TSAN ? 4000 : 30000);
                f.s.kind = kind;
                bool ok;
                run_complete(&f, &ok);
                rill_pipeline_free(f.p);
                CHECK(ok);
            }
}

/* Runs (rill_emit_items) into a shared fan-out append once for every
 * consumer, as single items do. */
RILL_TEST(fanout, runs_reach_every_consumer_at_every_capacity) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned ci = 0; ci < 4; ci++)
            for (unsigned kind = OWNED; kind <= STATIC; kind++) {
                fan f = {.nc = nc, .capacity = caps[ci]};
                f.s.n = caps[ci] <= 2 ? (RILL_TEST_TSAN ? 300 : 1000) : (RILL_TEST_TSAN ? 3000 : 20000);
                f.s.kind = kind;
                f.s.runs = true;
                f.s.vals = kind == STATIC ? malloc(f.s.n * sizeof *f.s.vals) : NULL;
                for (uint64_t i = 0; f.s.vals && i < f.s.n; i++)
                    f.s.vals[i] = i;
                bool ok = false;
                if (kind != STATIC || f.s.vals)
                    run_complete(&f, &ok);
                rill_pipeline_free(f.p);
                free(f.s.vals);
                CHECK(ok);
            }
}

RILL_TEST(fanout, consumers_finish_in_any_order) {
    for (unsigned nc = 2; nc <= 4; nc++)
        for (unsigned slow = 1; slow <= nc; slow++) {
            fan f = {.nc = nc, .capacity = 64, .slow = slow};
            f.s.n = RILL_TEST_TSAN ? 1500 : 6000;
            f.s.kind = OWNED;
            bool ok;
            run_complete(&f, &ok);
            rill_pipeline_free(f.p);
            CHECK(ok);
        }
}

RILL_TEST(fanout, static_items_and_emit_to_one_port) {
    for (unsigned nc = 2; nc <= 4; nc += 2) {
        fan f = {.nc = nc, .capacity = 256};
        f.s.n = RILL_TEST_TSAN ? 3000 : 6000;
        f.s.kind = STATIC;
        f.s.to_port = 1;
        f.s.vals = malloc(f.s.n * sizeof *f.s.vals);
        CHECK(f.s.vals);
        for (uint64_t i = 0; i < f.s.n; i++)
            f.s.vals[i] = i;
        bool ok;
        run_complete(&f, &ok);
        rill_pipeline_free(f.p);
        free(f.s.vals);
        CHECK(ok);
    }
}

RILL_TEST(fanout, try_emit_waits_for_room_of_every_consumer) {
    for (unsigned cap = 2; cap <= 64; cap *= 32) {
        fan f = {.nc = 3, .capacity = cap, .slow = 2};
        f.s.n = RILL_TEST_TSAN ? 400 : 3000;
        f.s.kind = BORROWED;
        f.s.try_emit = true;
        bool ok;
        run_complete(&f, &ok);
        rill_pipeline_free(f.p);
        CHECK(ok);
    }
}

/* The proof that the batch is shared: item i reaches every consumer in the
 * same slot of the same batch. Queues with batches of their own hand each
 * consumer a different copy (their batches live side by side). */
RILL_TEST(fanout, every_consumer_is_handed_the_same_batch) {
    enum { N = 5000 };
    fan f = {.nc = 3, .capacity = 1024};
    f.s.n = N;
    f.s.kind = BORROWED;
    uintptr_t *slots[3];
    for (unsigned c = 0; c < 3; c++) {
        CHECK((slots[c] = calloc(N, sizeof *slots[c])));
        f.k[c].slots = slots[c];
        f.k[c].nslots = N;
    }
    bool ok;
    run_complete(&f, &ok);
    unsigned same = 0;
    for (unsigned i = 0; i < N; i++)
        same += slots[0][i] == slots[1][i] && slots[0][i] == slots[2][i];
    for (unsigned c = 0; c < 3; c++)
        free(slots[c]);
    rill_pipeline_free(f.p);
    CHECK_EQ(same, N);
}

/* rill_try_emit refuses, without blocking, as soon as one consumer of a
 * shared fan-out is full (whichever port it is), and that consumer's room fd
 * signals once it drains: the retry then goes through. The full consumer is
 * held at a gate in its first send; the source waits on the room fd with a
 * long timeout, so a missing signal shows as a poll that timed out. */
typedef struct try_src {
    unsigned n, next;
    uint64_t v[256];
    atomic_int refused;     /* refusals seen */
    atomic_int poll_timeouts;
    int fd;
} try_src;

static int try_produce(rill_stage *st, void *state) {
    try_src *s = state;
    while (s->next < s->n) {
        s->v[s->next] = s->next;
        rill_item it = rill_item_static(&s->v[s->next], sizeof s->v[0]);
        int rc = rill_try_emit(st, &it);
        if (rc == 0) {
            s->next++;
            continue;
        }
        if (rc != RILL_EAGAIN)
            return rc;
        atomic_fetch_add(&s->refused, 1);
        if (s->fd < 0 && rill_stage_room_fd(st, &s->fd))
            return RILL_ESTAGE;
        struct pollfd pf = {.fd = s->fd, .events = POLLIN};
        if (poll(&pf, 1, 30000) <= 0) {
            atomic_fetch_add(&s->poll_timeouts, 1);
        } else {
            uint64_t d;
            if (read(s->fd, &d, sizeof d) < 0)
                (void)d;
        }
    }
    return RILL_EDONE;
}

static const rill_stage_ops try_src_ops = {.produce = try_produce};

typedef struct held_sink {
    gate *g; /* NULL: never held */
    uint64_t count;
    atomic_int seen; /* count, for the test thread while running */
} held_sink;

static int held_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    (void)item;
    held_sink *k = state;
    if (k->g && k->count == 0)
        gate_pass(k->g);
    k->count++;
    atomic_store(&k->seen, (int)k->count);
    return 0;
}

static const rill_stage_ops held_sink_ops = {.send = held_send};

RILL_TEST(fanout, try_emit_refuses_when_any_consumer_is_full_and_its_fd_signals) {
    enum { NC = 3, CAP = 2 };
    for (unsigned full = 0; full < NC; full++) {
        try_src s = {.n = 200, .fd = -1};
        gate g;
        gate_init(&g);
        held_sink k[NC] = {{0}};
        k[full].g = &g;
        rill_pipeline *p;
        rill_stage *src, *t;
        CHECK_OK(rill_pipeline_new("fanout-try", &p));
        rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
        CHECK_OK(rill_stage_add(p, "src", &try_src_ops, &s, &so, &src));
        rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = CAP};
        for (unsigned i = 0; i < NC; i++) {
            char name[16];
            snprintf(name, sizeof name, "sink-%u", i);
            CHECK_OK(rill_stage_add(p, name, &held_sink_ops, &k[i], &o, &t));
            CHECK_OK(rill_connect(src, t));
        }
        CHECK_OK(rill_pipeline_start(p));
        /* A blocking try_emit never comes back to count a refusal. */
        bool refused = wait_for(&s.refused, 1, 30);
        gate_open(&g);
        CHECK_OK(rill_pipeline_close(p));
        rill_pipeline_free(p);
        gate_fini(&g);
        CHECK(refused);
        CHECK_EQ(atomic_load(&s.poll_timeouts), 0);
        for (unsigned i = 0; i < NC; i++)
            CHECK_EQ(k[i].count, s.n);
    }
}

/* A leaky queue does not join a shared fan-out (share.c's plan): its
 * producer must drop for it rather than wait, which a batch shared with
 * the other queues cannot do. Consumer 1 (drop_oldest) is held at a gate;
 * consumer 0 (blocking) must still get every item while it is held. */
static int plain_produce(rill_stage *st, void *state) {
    try_src *s = state;
    while (s->next < s->n) {
        s->v[s->next] = s->next;
        rill_item it = rill_item_static(&s->v[s->next], sizeof s->v[0]);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
        s->next++;
    }
    return RILL_EDONE;
}

static const rill_stage_ops plain_src_ops = {.produce = plain_produce};

RILL_TEST(fanout, a_drop_oldest_consumer_is_not_shared_and_never_blocks_the_others) {
    enum { CAP = 4 };
    try_src s = {.n = 200, .fd = -1};
    gate g;
    gate_init(&g);
    held_sink k[2] = {{0}};
    k[1].g = &g;
    rill_pipeline *p;
    rill_stage *src, *t;
    CHECK_OK(rill_pipeline_new("fanout-leaky", &p));
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_stage_add(p, "src", &plain_src_ops, &s, &so, &src));
    for (unsigned i = 0; i < 2; i++) {
        rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = CAP,
                             .overflow = i ? RILL_OVERFLOW_DROP_OLDEST : RILL_OVERFLOW_BLOCK};
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        CHECK_OK(rill_stage_add(p, name, &held_sink_ops, &k[i], &o, &t));
        CHECK_OK(rill_connect(src, t));
    }
    CHECK_OK(rill_pipeline_start(p));
    /* a source waiting for the held consumer never gets consumer 0 there */
    bool all = wait_for(&k[0].seen, (int)s.n, 30);
    rill_queue_stats q = queue_to(p, "sink-1");
    gate_open(&g);
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    gate_fini(&g);
    CHECK(all);
    CHECK(q.dropped > 0);
    CHECK_EQ(k[0].count, s.n);
    CHECK(k[1].count < s.n);
}
