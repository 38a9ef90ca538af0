/* Queues between threads, through the public API only: capacity is exact
 * (a producer behind a stalled consumer emits exactly `capacity` items, then
 * blocks), order holds per producer along chains and through fan-in, items
 * broadcast to several threads are released exactly once, partial batches
 * are handed over (latency bound, rill_pipeline_flush, a producer whose
 * input runs dry), an empty stream still closes everything, and destroying a
 * started pipeline without close neither hangs nor leaks.
 *
 * Stage callbacks run on worker threads: they record into their state or
 * atomics, and the test thread checks after close (or after a join). Waits
 * for another thread poll with a generous timeout; no assertion is timed. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- stages ------------------------------------------------------------------- */

/* seqsrc: emits vals[0..total-1] (4-byte items), per_call per produce call,
 * as slices of vals (owner NULL) or, with copy, as counted copies. */
typedef struct seqsrc {
    const uint32_t *vals;
    size_t total, next;
    unsigned per_call;
    bool copy;
    atomic_ullong emitted; /* emits that returned 0 */
    atomic_int tid;
    atomic_int closes;
} seqsrc;

static int seqsrc_produce(rill_stage *st, void *state) {
    seqsrc *s = state;
    if (!atomic_load_explicit(&s->tid, memory_order_relaxed))
        atomic_store(&s->tid, my_tid());
    for (unsigned k = 0; k < s->per_call && s->next < s->total; k++) {
        rill_item it = rill_item_static(&s->vals[s->next], sizeof s->vals[0]);
        if (s->copy && rill_item_copy(&s->vals[s->next], sizeof s->vals[0], &it))
            return RILL_ENOMEM;
        int rc = rill_emit(st, &it);
        if (s->copy)
            rill_item_release(&it);
        if (rc)
            return rc;
        s->next++;
        atomic_fetch_add(&s->emitted, 1);
    }
    return s->next == s->total ? RILL_EDONE : 0;
}

static int count_close(rill_stage *st, void *state);

/* sink: checks that values arrive as expect, expect + 1, ... (or, with
 * lanes, per lane = value >> 24); the first item may wait at a gate; an
 * optional share of items gets a busy-wait. Forwards everything. */
typedef struct sink {
    gate *g;
    uint32_t expect[4];
    bool lanes;
    uint64_t n, lane_n[4];
    bool bad_order;
    unsigned permille, spin_us; /* share of items that busy-wait spin_us (0: 3) */
    uint64_t rng;
    atomic_int arrived;
    atomic_int closes;
    atomic_int *closes_ext; /* also counted here (outlives destroy) */
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    sink *k = state;
    if (k->g && k->n == 0)
        gate_pass(k->g);
    uint32_t v;
    if (it->len != sizeof v) {
        k->bad_order = true;
        return rill_emit(st, it);
    }
    memcpy(&v, it->data, sizeof v);
    unsigned lane = k->lanes ? (v >> 24) & 3 : 0;
    if (v != k->expect[lane])
        k->bad_order = true;
    k->expect[lane] = v + 1;
    k->lane_n[lane]++;
    k->n++;
    atomic_store_explicit(&k->arrived, 1, memory_order_release);
    if (k->permille && rng_next(&k->rng) % 1000 < k->permille) {
        double end = now_s() + (k->spin_us ? k->spin_us : 3) * 1e-6;
        while (now_s() < end)
            ;
    }
    return rill_emit(st, it);
}

static int count_close(rill_stage *st, void *state) {
    sink *k = state;
    (void)st;
    atomic_fetch_add(&k->closes, 1);
    if (k->closes_ext)
        atomic_fetch_add(k->closes_ext, 1);
    return 0;
}

static const rill_stage_ops seqsrc_ops = {.produce = seqsrc_produce};
static const rill_stage_ops sink_ops = {.send = sink_send, .close = count_close};

static rill_stage_opts topts(unsigned cap, unsigned batch) {
    return (rill_stage_opts){.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch};
}

static uint32_t *seq_values(size_t n, uint32_t base) {
    uint32_t *v = malloc(n * sizeof *v);
    for (size_t i = 0; v && i < n; i++)
        v[i] = base + (uint32_t)i;
    return v;
}

/* ---- (a) capacity is exact ------------------------------------------------------- */

/* Wait until the producer thread tid has emitted at least min items, sleeps,
 * and its count has not moved over several polls; return the count. Only a
 * wait: the caller asserts on the value. */
static uint64_t wait_blocked(atomic_ullong *count, atomic_int *tid, uint64_t min) {
    uint64_t last = (uint64_t)-1;
    int calm = 0;
    for (double end = now_s() + 10; now_s() < end && calm < 5; sleep_ms(2)) {
        uint64_t c = atomic_load(count);
        int t = atomic_load(tid);
        calm = c >= min && c == last && t && thread_state(t) == 'S' ? calm + 1 : 0;
        last = c;
    }
    return atomic_load(count);
}

typedef struct pusher {
    rill_pipeline *p;
    rill_stage *entry;
    const uint32_t *vals;
    size_t total;
    atomic_ullong pushed;
    atomic_int tid;
    int push_rc, close_rc;
} pusher;

static void *pusher_main(void *arg) {
    pusher *u = arg;
    atomic_store(&u->tid, my_tid());
    for (size_t i = 0; i < u->total && !u->push_rc; i++) {
        rill_item it = rill_item_static(&u->vals[i], sizeof u->vals[i]);
        if (!(u->push_rc = rill_pipeline_push(u->p, u->entry, &it)))
            atomic_fetch_add(&u->pushed, 1);
    }
    u->close_rc = rill_pipeline_close(u->p); /* returns once the gate opens */
    return NULL;
}

/* One case: a producer (a threaded source, or rill_pipeline_push from a
 * thread of its own) feeds a threaded sink whose first send waits at a gate. */
static void capacity_case(unsigned cap, unsigned batch, bool push, int *ok, char *why,
                          size_t whylen) {
    size_t total = cap + 50;
    uint32_t *vals = seq_values(total, 0);
    gate g;
    gate_init(&g);
    sink k = {.g = &g};
    seqsrc s = {.vals = vals, .total = total, .per_call = 1 + cap % 7};
    pusher u = {.vals = vals, .total = total};
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *snk = NULL;
    rill_stage_opts o = topts(cap, batch);
    pthread_t th;
    uint64_t at_block = 0, later = 0;
    int rc = rill_pipeline_new("capacity", &p);
    if (!rc)
        rc = rill_stage_add(p, "sink", &sink_ops, &k, &o, &snk);
    if (!rc && !push && !(rc = rill_stage_add(p, "src", &seqsrc_ops, &s, &o, &src)))
        rc = rill_connect(src, snk);
    if (!rc && push) {
        u.p = p;
        u.entry = snk;
        rc = pthread_create(&th, NULL, pusher_main, &u) ? -1 : 0;
    } else if (!rc) {
        rc = rill_pipeline_start(p);
    }
    atomic_ullong *count = push ? &u.pushed : &s.emitted;
    atomic_int *tid = push ? &u.tid : &s.tid;
    if (!rc) {
        bool entered = wait_for(&g.entered, 1, 10);
        at_block = wait_blocked(count, tid, cap);
        sleep_ms(20); /* and it stays blocked */
        later = atomic_load(count);
        rc = entered ? 0 : -2;
        gate_open(&g);
        if (push) {
            pthread_join(th, NULL);
            rc = rc ? rc : u.push_rc ? u.push_rc : u.close_rc;
        } else {
            rc = rc ? rc : rill_pipeline_close(p);
        }
    }
    *ok = rc == 0 && at_block == cap && later == cap && k.n == total && !k.bad_order &&
          atomic_load(&k.closes) == 1;
    if (!*ok)
        snprintf(why, whylen, "%s cap %u batch %u: rc %d, %llu emitted when blocked, %llu "
                 "later, %llu delivered of %zu, order %s, %d closes",
                 push ? "push" : "source", cap, batch, rc, (unsigned long long)at_block,
                 (unsigned long long)later, (unsigned long long)k.n, total,
                 k.bad_order ? "broken" : "kept", atomic_load(&k.closes));
    if (rc && !push)
        gate_open(&g);
    rill_pipeline_free(p);
    gate_fini(&g);
    free(vals);
}

RILL_TEST(thread_queue, capacity_exact_behind_a_stalled_consumer) {
    static const unsigned caps[] = {1, 2, 3, 5, 64, 1000}, batches[] = {1, 7, 0};
    char why[256];
    for (unsigned push = 0; push < 2; push++)
        for (unsigned c = 0; c < 6; c++)
            for (unsigned b = 0; b < 3; b++) {
                int ok;
                capacity_case(caps[c], batches[b], push, &ok, why, sizeof why);
                if (!ok)
                    rill_test__fail(__FILE__, __LINE__, why);
                CHECK(ok);
            }
}

/* ---- (b) order per producer --------------------------------------------------------- */

/* A chain source -> a -> b -> c -> check with a, c and check threaded and b
 * inline (on a's thread), random capacities and batches, noise in the
 * pass-through stages: check sees 0, 1, 2, ... */
RILL_TEST(thread_queue, order_kept_along_a_threaded_chain) {
    static const unsigned caps[] = {1, 3, 64, 1024}, batches[] = {1, 7, 0};
    enum { N = 3000 };
    uint32_t *vals = seq_values(N, 0);
    CHECK(vals != NULL);
    uint64_t rng = 11;
    int failures = 0;
    for (int run = 0; run < 40 && !failures; run++) {
        seqsrc s = {.vals = vals, .total = N, .per_call = 1 + (unsigned)(rng_next(&rng) % 50),
                    .copy = run & 1};
        sink k[4] = {{.permille = 100, .rng = 1}, {.permille = 0}, {.permille = 100, .rng = 2},
                     {.permille = 0}};
        rill_pipeline *p = NULL;
        rill_stage *st[5] = {0};
        rill_stage_opts o[5];
        for (int i = 0; i < 5; i++)
            o[i] = topts(caps[rng_next(&rng) % 4], batches[rng_next(&rng) % 3]);
        o[2].flags = 0;
        int rc = rill_pipeline_new("chain", &p);
        if (!rc)
            rc = rill_stage_add(p, "src", &seqsrc_ops, &s, &o[0], &st[0]);
        for (int i = 1; i < 5 && !rc; i++) {
            char name[8] = {'s', (char)('0' + i), 0};
            if (!(rc = rill_stage_add(p, name, &sink_ops, &k[i - 1], &o[i], &st[i])))
                rc = rill_connect(st[i - 1], st[i]);
        }
        if (!rc)
            rc = rill_pipeline_run(p);
        for (int i = 0; i < 4; i++)
            if (k[i].n != N || k[i].bad_order || atomic_load(&k[i].closes) != 1)
                rc = rc ? rc : -1000 - i;
        if (rc) {
            rill_test__failf(__FILE__, __LINE__, "run %d: rc %d, check got %llu, order %s",
                             run, rc, (unsigned long long)k[3].n,
                             k[3].bad_order ? "broken" : "kept");
            failures++;
        }
        rill_pipeline_free(p);
    }
    free(vals);
    CHECK_EQ(failures, 0);
}

/* Fan-in: three threaded sources, each through its own pass-through (random
 * threaded or inline), into one checker (threaded, or inline and so
 * promoted): each source's items arrive in its order, none lost. Values
 * carry the source in their top byte. */
RILL_TEST(thread_queue, order_kept_per_producer_through_fan_in) {
    static const unsigned caps[] = {1, 2, 64, 1024}, batches[] = {1, 7, 0};
    enum { N = 2000 };
    uint32_t *vals[3];
    for (uint32_t i = 0; i < 3; i++)
        vals[i] = seq_values(N, (i + 1) << 24);
    CHECK(vals[0] && vals[1] && vals[2]);
    uint64_t rng = 23;
    int failures = 0;
    for (int run = 0; run < 40 && !failures; run++) {
        seqsrc s[3];
        sink pass[3], check = {.lanes = true};
        rill_pipeline *p = NULL;
        rill_stage *src[3], *ps[3], *chk = NULL;
        rill_stage_opts oc = topts(caps[rng_next(&rng) % 4], batches[rng_next(&rng) % 3]);
        if (run % 4 == 3)
            oc.flags = 0; /* fed from three threads: promoted */
        for (int i = 0; i < 4; i++)
            check.expect[i] = (uint32_t)i << 24;
        int rc = rill_pipeline_new("fanin", &p);
        if (!rc)
            rc = rill_stage_add(p, "check", &sink_ops, &check, &oc, &chk);
        for (int i = 0; i < 3 && !rc; i++) {
            char n1[8] = {'s', (char)('0' + i), 0}, n2[8] = {'p', (char)('0' + i), 0};
            s[i] = (seqsrc){.vals = vals[i], .total = N,
                            .per_call = 1 + (unsigned)(rng_next(&rng) % 100), .copy = i == 1};
            pass[i] = (sink){.lanes = true, .permille = 50, .rng = rng_next(&rng)};
            for (int l = 0; l < 4; l++)
                pass[i].expect[l] = (uint32_t)l << 24;
            rill_stage_opts os = topts(caps[rng_next(&rng) % 4], batches[rng_next(&rng) % 3]);
            rill_stage_opts op = topts(caps[rng_next(&rng) % 4], batches[rng_next(&rng) % 3]);
            if (rng_next(&rng) & 1)
                op.flags = 0;
            if (!(rc = rill_stage_add(p, n1, &seqsrc_ops, &s[i], &os, &src[i])) &&
                !(rc = rill_stage_add(p, n2, &sink_ops, &pass[i], &op, &ps[i])) &&
                !(rc = rill_connect(src[i], ps[i])))
                rc = rill_connect(ps[i], chk);
        }
        if (!rc)
            rc = rill_pipeline_run(p);
        bool ok = rc == 0 && !check.bad_order && check.n == 3 * N && rill_stage_threaded(chk);
        for (int i = 1; i < 4; i++)
            ok = ok && check.lane_n[i] == N;
        if (!ok) {
            rill_test__failf(__FILE__, __LINE__,
                             "run %d: rc %d, order %s, got %llu (%llu/%llu/%llu), threaded %d",
                             run, rc, check.bad_order ? "broken" : "kept",
                             (unsigned long long)check.n, (unsigned long long)check.lane_n[1],
                             (unsigned long long)check.lane_n[2],
                             (unsigned long long)check.lane_n[3], rill_stage_threaded(chk));
            failures++;
        }
        rill_pipeline_free(p);
    }
    for (int i = 0; i < 3; i++)
        free(vals[i]);
    CHECK_EQ(failures, 0);
}

/* ---- (c) broadcast of counted items --------------------------------------------------- */

/* An object holding `group` consecutive values, released exactly once. */
enum { MAX_OBJ = 4096 };
static atomic_int g_released[MAX_OBJ];

typedef struct obj {
    rill_ref ref;
    unsigned id;
    uint32_t vals[];
} obj;

static void obj_release(rill_ref *ref) {
    obj *o = RILL_CONTAINER_OF(ref, obj, ref);
    atomic_fetch_add(&g_released[o->id], 1);
    memset(o->vals, 0xdd, sizeof o->vals[0]); /* a late reader would see junk */
    free(o);
}

/* objsrc: one object of `group` items per produce call; the source drops
 * its own reference right after emitting, so only queues keep them. */
typedef struct objsrc {
    unsigned group, nobj, next;
    int err;
} objsrc;

static int objsrc_produce(rill_stage *st, void *state) {
    objsrc *s = state;
    if (s->next == s->nobj)
        return RILL_EDONE;
    obj *o = malloc(sizeof *o + s->group * sizeof o->vals[0]);
    if (!o)
        return RILL_ENOMEM;
    rill_ref_init(&o->ref, obj_release);
    o->id = s->next++;
    int rc = 0;
    for (unsigned j = 0; j < s->group && !rc; j++) {
        o->vals[j] = o->id * s->group + j;
        rill_item it = {&o->vals[j], sizeof o->vals[j], &o->ref};
        rc = rill_emit(st, &it);
    }
    rill_ref_release(&o->ref);
    return rc;
}

static const rill_stage_ops objsrc_ops = {.produce = objsrc_produce};

RILL_TEST(thread_queue, broadcast_items_released_exactly_once) {
    static const unsigned groups[] = {1, 3, 64, 500};
    uint64_t rng = 5;
    for (int run = 0; run < 24; run++) {
        unsigned group = groups[run % 4], nobj = 4000 / group + 1;
        for (unsigned i = 0; i < MAX_OBJ; i++)
            atomic_store(&g_released[i], 0);
        objsrc s = {.group = group, .nobj = nobj};
        sink k[3] = {{.permille = 0}, {.permille = 200, .rng = 3}, {.permille = 20, .rng = 4}};
        rill_pipeline *p = NULL;
        rill_stage *src = NULL, *bc = NULL, *c[3];
        rill_stage_opts os = topts(64, 0), ob = topts(16, 5);
        if (run & 1)
            os.flags = 0;  /* driven by run in this thread */
        if (run & 2)
            ob.flags = 0;  /* broadcast on the source's thread */
        int rc = rill_pipeline_new("owners", &p);
        if (!rc && !(rc = rill_stage_add(p, "src", &objsrc_ops, &s, &os, &src)) &&
            !(rc = rill_broadcast_add(p, "bc", &ob, &bc)))
            rc = rill_connect(src, bc);
        for (int i = 0; i < 3 && !rc; i++) {
            char name[8] = {'c', (char)('0' + i), 0};
            rill_stage_opts oc = topts((unsigned[]){1, 7, 256}[rng_next(&rng) % 3],
                                       (unsigned[]){1, 3, 0}[rng_next(&rng) % 3]);
            if (!(rc = rill_stage_add(p, name, &sink_ops, &k[i], &oc, &c[i])))
                rc = rill_connect(bc, c[i]);
        }
        if (!rc)
            rc = rill_pipeline_run(p);
        uint64_t total = (uint64_t)group * nobj;
        int twice = 0, never = 0;
        for (unsigned i = 0; i < nobj; i++) {
            twice += atomic_load(&g_released[i]) > 1;
            never += atomic_load(&g_released[i]) == 0;
        }
        bool ok = rc == 0 && twice == 0 && never == 0;
        for (int i = 0; i < 3; i++)
            ok = ok && k[i].n == total && !k[i].bad_order;
        rill_pipeline_free(p);
        if (!ok)
            rill_test__failf(__FILE__, __LINE__,
                             "run %d group %u: rc %d, %d objects released twice, %d never, "
                             "consumers got %llu %llu %llu of %llu (order %d %d %d)",
                             run, group, rc, twice, never, (unsigned long long)k[0].n,
                             (unsigned long long)k[1].n, (unsigned long long)k[2].n,
                             (unsigned long long)total, k[0].bad_order, k[1].bad_order,
                             k[2].bad_order);
        CHECK(ok);
    }
}

/* ---- (d) partial batches are handed over ----------------------------------------------- */

static const uint32_t one_value = 0;

/* A pushing caller's partial batch moves on at its next push once the
 * latency bound has passed (no thread watches the clock for a caller: see
 * rill_pipeline_flush). The first item must arrive after the second push,
 * although the batch of 256 is far from full and nothing is flushed. */
RILL_TEST(thread_queue, pushed_item_moves_at_next_push_after_latency_bound) {
    sink k = {.permille = 0};
    rill_pipeline *p = NULL;
    rill_stage *st = NULL;
    rill_stage_opts o = topts(1024, 256);
    o.max_latency_us = 1000;
    CHECK_OK(rill_pipeline_new("latency", &p));
    CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &k, &o, &st));
    rill_item it = rill_item_static(&one_value, sizeof one_value);
    int rc = rill_pipeline_push(p, st, &it);
    sleep_ms(20); /* well past the 1 ms bound */
    if (!rc)
        rc = rill_pipeline_push(p, st, &it);
    bool arrived = wait_for(&k.arrived, 1, 5);
    int crc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    CHECK_OK(rc);
    CHECK(arrived);
    CHECK_OK(crc);
    CHECK_EQ(k.n, 2);
}

/* A full batch pushed by a caller who then goes idle arrives: push announces
 * what it publishes, even below half the capacity, since no later call may
 * come to do it. */
RILL_TEST(thread_queue, pushed_full_batch_arrives_without_further_calls) {
    enum { BATCH = 16 };
    static const uint32_t vals[BATCH] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    sink k = {.permille = 0};
    rill_pipeline *p = NULL;
    rill_stage *st = NULL;
    rill_stage_opts o = topts(1024, BATCH);
    CHECK_OK(rill_pipeline_new("fullbatch", &p));
    CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &k, &o, &st));
    CHECK_OK(rill_pipeline_start(p));
    sleep_ms(50); /* let the consumer go to sleep (not needed to fail, only likelier) */
    int rc = 0;
    for (int i = 0; i < BATCH && !rc; i++) {
        rill_item it = rill_item_static(&vals[i], sizeof vals[i]);
        rc = rill_pipeline_push(p, st, &it);
    }
    bool arrived = wait_for(&k.arrived, 1, 5);
    int crc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    CHECK_OK(rc);
    CHECK(arrived);
    CHECK_OK(crc);
    CHECK_EQ(k.n, BATCH);
}

/* rill_pipeline_flush hands it over at once: with a latency bound of a
 * minute, only the flush can make it arrive within the wait. */
RILL_TEST(thread_queue, flush_hands_pushed_item_over) {
    sink k = {.permille = 0};
    rill_pipeline *p = NULL;
    rill_stage *st = NULL;
    rill_stage_opts o = topts(1024, 256);
    o.max_latency_us = 60u * 1000 * 1000;
    CHECK_OK(rill_pipeline_new("flush", &p));
    CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &k, &o, &st));
    rill_item it = rill_item_static(&one_value, sizeof one_value);
    int rc = rill_pipeline_push(p, st, &it);
    int frc = rill_pipeline_flush(p);
    bool arrived = wait_for(&k.arrived, 1, 5);
    int crc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    CHECK_OK(rc);
    CHECK_OK(frc);
    CHECK(arrived);
    CHECK_OK(crc);
    CHECK_EQ(k.n, 1);
}

/* A threaded stage whose input runs dry hands its partial output batch on
 * before it waits: a -> b, b with a latency bound of a minute and batches
 * of 256, receives a's single item long before either. */
RILL_TEST(thread_queue, producer_with_dry_input_flushes_its_output) {
    sink a = {.permille = 0}, b = {.permille = 0};
    rill_pipeline *p = NULL;
    rill_stage *sa = NULL, *sb = NULL;
    rill_stage_opts oa = topts(1024, 256), ob = topts(1024, 256);
    ob.max_latency_us = 60u * 1000 * 1000;
    CHECK_OK(rill_pipeline_new("dry", &p));
    CHECK_OK(rill_stage_add(p, "a", &sink_ops, &a, &oa, &sa));
    CHECK_OK(rill_stage_add(p, "b", &sink_ops, &b, &ob, &sb));
    CHECK_OK(rill_connect(sa, sb));
    rill_item it = rill_item_static(&one_value, sizeof one_value);
    int rc = rill_pipeline_push(p, sa, &it);
    if (!rc)
        rc = rill_pipeline_flush(p);
    bool arrived = wait_for(&b.arrived, 1, 5);
    int crc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    CHECK_OK(rc);
    CHECK(arrived);
    CHECK_OK(crc);
    CHECK_EQ(b.n, 1);
}

/* A busy producer still hands a partial batch on after the latency bound:
 * a threaded source emits without pause into an inline filter that passes
 * only its first item on to a threaded sink (batches of 256). The source
 * keeps going until the test sees the item arrive (or gives up). */
typedef struct busysrc {
    atomic_int *stop;
    uint32_t n;
} busysrc;

static int busysrc_produce(rill_stage *st, void *state) {
    busysrc *s = state;
    if (atomic_load_explicit(s->stop, memory_order_relaxed))
        return RILL_EDONE;
    for (int i = 0; i < 64; i++, s->n++) {
        rill_item it = rill_item_static(&one_value, sizeof one_value);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct first_only {
    bool done;
} first_only;

static int first_only_send(rill_stage *st, void *state, const rill_item *it) {
    first_only *f = state;
    if (f->done)
        return 0;
    f->done = true;
    return rill_emit(st, it);
}

static const rill_stage_ops busysrc_ops = {.produce = busysrc_produce};
static const rill_stage_ops first_only_ops = {.send = first_only_send};

RILL_TEST(thread_queue, busy_producer_flushes_after_latency_bound) {
    atomic_int stop;
    atomic_init(&stop, 0);
    busysrc s = {.stop = &stop};
    first_only f = {0};
    sink k = {.permille = 0};
    rill_pipeline *p = NULL;
    rill_stage *ss = NULL, *sf = NULL, *sk = NULL;
    rill_stage_opts os = topts(1024, 256), ok = topts(1024, 256);
    ok.max_latency_us = 1000;
    CHECK_OK(rill_pipeline_new("busy", &p));
    CHECK_OK(rill_stage_add(p, "src", &busysrc_ops, &s, &os, &ss));
    CHECK_OK(rill_stage_add(p, "first", &first_only_ops, &f, NULL, &sf));
    CHECK_OK(rill_stage_add(p, "sink", &sink_ops, &k, &ok, &sk));
    CHECK_OK(rill_connect(ss, sf));
    CHECK_OK(rill_connect(sf, sk));
    CHECK_OK(rill_pipeline_start(p));
    bool arrived = wait_for(&k.arrived, 1, 5);
    atomic_store(&stop, 1);
    int rc = rill_pipeline_run(p);
    uint32_t produced = s.n;
    rill_pipeline_free(p);
    CHECK(arrived);
    CHECK_OK(rc);
    CHECK_EQ(k.n, 1);
    CHECK(produced > 64); /* it really kept producing */
}

/* ---- (e) an empty stream ----------------------------------------------------------- */

/* No item at all: every stage is closed exactly once, close returns 0, and
 * every worker thread is gone when it returns. */
RILL_TEST(thread_queue, empty_stream_closes_everything_and_joins) {
    int base = count_threads();
    CHECK(base > 0);
    for (int mode = 0; mode < 3; mode++) {
        seqsrc s = {.vals = &one_value, .total = 0, .per_call = 1};
        sink k[4] = {{0}};
        rill_pipeline *p = NULL;
        rill_stage *st[5] = {0};
        rill_stage_opts t = topts(3, 1), inl = {0};
        CHECK_OK(rill_pipeline_new("empty", &p));
        /* mode 0: a threaded source; 1: pushes (none) into a threaded
         * entry; 2: the same, closed without ever being started. */
        if (mode == 0)
            CHECK_OK(rill_stage_add(p, "src", &seqsrc_ops, &s, &t, &st[0]));
        CHECK_OK(rill_stage_add(p, "a", &sink_ops, &k[0], &t, &st[1]));
        CHECK_OK(rill_stage_add(p, "b", &sink_ops, &k[1], &inl, &st[2]));
        CHECK_OK(rill_stage_add(p, "c", &sink_ops, &k[2], &t, &st[3]));
        CHECK_OK(rill_stage_add(p, "d", &sink_ops, &k[3], &t, &st[4]));
        if (mode == 0)
            CHECK_OK(rill_connect(st[0], st[1]));
        CHECK_OK(rill_connect(st[1], st[2]));
        CHECK_OK(rill_connect(st[2], st[3]));
        CHECK_OK(rill_connect(st[1], st[4])); /* d: fed by a and by c */
        CHECK_OK(rill_connect(st[3], st[4]));
        if (mode == 1)
            CHECK_OK(rill_pipeline_start(p));
        if (mode == 1)
            CHECK(count_threads() > base);
        CHECK_OK(mode == 0 ? rill_pipeline_run(p) : rill_pipeline_close(p));
        CHECK_EQ(count_threads(), base);
        CHECK_EQ(rill_pipeline_discarded(p), 0);
        for (int i = 0; i < 4; i++) {
            CHECK_EQ(atomic_load(&k[i].closes), 1);
            CHECK_EQ(k[i].n, 0);
        }
        CHECK_OK(rill_pipeline_close(p)); /* again: same answer, nothing reruns */
        CHECK_EQ(atomic_load(&k[0].closes), 1);
        rill_pipeline_free(p);
    }
}

/* ---- (f) destroy without close ----------------------------------------------------- */

typedef struct destroyer {
    rill_pipeline *p;
    atomic_int done;
} destroyer;

static void *destroyer_main(void *arg) {
    destroyer *d = arg;
    rill_pipeline_free(d->p);
    atomic_store(&d->done, 1);
    return NULL;
}

/* Items with counted owners are pushed into a threaded chain with small
 * queues and a slow stage, then the pipeline is destroyed without close:
 * destroy returns (a watchdog reports a hang instead of hanging), every
 * close callback ran once, every owner was released once, every thread is
 * gone; LeakSanitizer checks the rest. */
RILL_TEST(thread_queue, destroy_started_pipeline_without_close) {
    int base = count_threads();
    for (int run = 0; run < 4; run++) {
        atomic_int closes;
        atomic_init(&closes, 0);
        for (unsigned i = 0; i < MAX_OBJ; i++)
            atomic_store(&g_released[i], 0);
        sink *k[3];
        rill_pipeline *p = NULL;
        rill_stage *st[3];
        CHECK_OK(rill_pipeline_new("destroy", &p));
        for (int i = 0; i < 3; i++) {
            k[i] = calloc(1, sizeof *k[i]);
            CHECK(k[i] != NULL);
            k[i]->closes_ext = &closes;
            k[i]->permille = i == 1 ? 500 : 0; /* queues are full at destroy */
            k[i]->spin_us = 200;
            k[i]->rng = 9;
            rill_stage_opts o = topts(run & 1 ? 8 : 1024, run & 2 ? 1 : 0);
            if (i == 1)
                o.flags = 0;
            static const rill_stage_ops owned_sink_ops = {
                .send = sink_send, .close = count_close, .free = free};
            char name[8] = {'k', (char)('0' + i), 0};
            CHECK_OK(rill_stage_add(p, name, &owned_sink_ops, k[i], &o, &st[i]));
            if (i)
                CHECK_OK(rill_connect(st[i - 1], st[i]));
        }
        enum { NOBJ = 300 };
        for (unsigned i = 0; i < NOBJ; i++) {
            obj *o = malloc(sizeof *o + sizeof o->vals[0]);
            CHECK(o != NULL);
            rill_ref_init(&o->ref, obj_release);
            o->id = i;
            o->vals[0] = i;
            rill_item it = {&o->vals[0], sizeof o->vals[0], &o->ref};
            int rc = rill_pipeline_push(p, st[0], &it);
            rill_ref_release(&o->ref);
            CHECK_OK(rc);
        }
        destroyer d = {.p = p};
        atomic_init(&d.done, 0);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, destroyer_main, &d) == 0);
        bool done = wait_for(&d.done, 1, 10);
        if (!done) {
            pthread_detach(th);
            CHECK(done); /* hung: report, do not wait forever */
        }
        pthread_join(th, NULL);
        CHECK_EQ(atomic_load(&closes), 3);
        for (unsigned i = 0; i < NOBJ; i++)
            CHECK_EQ(atomic_load(&g_released[i]), 1);
        CHECK_EQ(count_threads(), base);
    }
}
