/* Partial batches between threads: what a producer has queued but not yet
 * handed over must neither be held back by another full queue nor cost the
 * capacity it promises.
 *
 * 1. A producer blocked on one full queue first hands over what it queued
 *    for its other consumers: a threaded source (emitting to two ports, or
 *    through an inline broadcast) or a pushing thread feeds `slow`
 *    (capacity 16, stalled inside send at a gate) and `fast` (capacity
 *    4096); while `slow` stays stalled, `fast` receives every item already
 *    emitted to it — partial batches and batches published without a
 *    wake-up alike (once, `fast` got nothing until `slow` moved).
 * 2. Capacity stays exact when batches go out partially (a flush after every
 *    push or emit, or a latency bound shorter than the gap between items):
 *    the producer offers exactly C items behind a stalled consumer for
 *    C <= 64 (once, it stopped at 5 of 64), and at least
 *    64 + ceil(C/B) beyond that (the slack engine/pipeline/queue.c keeps for partial
 *    batches: beyond it the capacity is not reached).
 *    Leaky queues (drop_newest, drop_oldest) under the same flushes never
 *    make their producer wait: every offer returns 0 while the consumer is
 *    still stalled, drops are counted, in == out + dropped at close, and
 *    the survivors are the ones each policy keeps.
 *
 * Stage callbacks run on worker threads: they record into atomics and the
 * test thread checks. Waits for another thread poll with generous limits;
 * no assertion depends on how long anything took. */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { WAIT_S = 10, ARRIVE_S = 5, MAXV = 1024 };

/* ---- helpers ------------------------------------------------------------------- */

static bool wait_count(atomic_ullong *a, uint64_t want, unsigned seconds) {
    uint64_t end = now_ns() + seconds * 1000000000ull;
    while (atomic_load(a) < want && now_ns() < end)
        sleep_ms(1);
    return atomic_load(a) >= want;
}

/* Wait until thread *tid sleeps and *count (>= min) stays put over several
 * polls; return *count. Only a wait: the caller asserts on the value. */
static uint64_t wait_blocked(atomic_ullong *count, atomic_int *tid, uint64_t min) {
    uint64_t last = UINT64_MAX;
    int calm = 0;
    for (uint64_t end = now_ns() + WAIT_S * 1000000000ull; now_ns() < end && calm < 5;
         sleep_ms(2)) {
        uint64_t c = atomic_load(count);
        int t = atomic_load(tid);
        calm = c >= min && c == last && t && thread_state(t) == 'S' ? calm + 1 : 0;
        last = c;
    }
    return atomic_load(count);
}

static uint32_t g_vals[MAXV]; /* g_vals[i] == i: items point here (no owner) */

static void vals_init(void) {
    for (uint32_t i = 0; i < MAXV; i++)
        g_vals[i] = i;
}

static rill_item val_item(uint32_t v) { return rill_item_static(&g_vals[v], sizeof g_vals[v]); }

/* ---- stages ---------------------------------------------------------------------- */

/* sink: records the values it gets (they must increase), waits at g (if
 * set) inside send on its first item, counts closes. */
typedef struct sink {
    gate *g;
    uint32_t got[MAXV];
    uint64_t n;
    bool bad;
    bool consecutive;  /* values must be 0, 1, 2, ... */
    atomic_ullong count; /* == n, for the test thread while running */
    atomic_int tid;      /* of the thread that runs it */
    atomic_int closes;
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    sink *k = state;
    uint32_t v;
    (void)st;
    if (k->n == 0)
        atomic_store(&k->tid, my_tid());
    if (k->g && k->n == 0)
        gate_pass(k->g);
    if (it->len != sizeof v) {
        k->bad = true;
        return 0;
    }
    memcpy(&v, it->data, sizeof v);
    if ((k->n && v <= k->got[(k->n - 1) % MAXV]) || (k->consecutive && v != k->n))
        k->bad = true;
    k->got[k->n % MAXV] = v;
    k->n++;
    atomic_store(&k->count, k->n);
    return 0;
}

static int sink_close(rill_stage *st, void *state) {
    (void)st;
    atomic_fetch_add(&((sink *)state)->closes, 1);
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send, .close = sink_close};

/* feeder: offers values 0 .. total-1, as a threaded source (rill_emit) or
 * from a thread of its own (rill_pipeline_push into up to two entries, in
 * order, for each value). After each offer: rill_stage_flush or
 * rill_pipeline_flush (flush), or a busy-wait longer than the latency bound
 * (spin_ns), or nothing. Value 0 can be a warm-up: handed over at once, then
 * the feeder waits until a sink is stalled at its gate (wait_gate) or until
 * a sink got it and its thread went back to sleep (warm_sink). A source
 * offers one value per produce call, or (burst) all after the warm-up in
 * one call, so nothing of rill's runs between them. In push mode the thread
 * closes the pipeline once the test says go (all calls from one thread). */
typedef struct feeder {
    rill_pipeline *p;
    rill_stage *entry[2];
    unsigned nentry;
    uint32_t total, next;
    bool push, flush, burst;
    uint64_t spin;
    atomic_ullong done;   /* values whose offers all returned (0 or not) */
    atomic_int tid;
    atomic_int finished;  /* every value offered */
    atomic_int go_close;
    gate *wait_gate;
    struct sink *warm_sink;
    int rc;               /* first failed offer */
    int close_rc;
    pthread_t th;
} feeder;

/* Wait until sink k has received an item and its thread sleeps (parked for
 * input) over several polls. */
static void wait_parked(struct sink *k) {
    int calm = 0;
    for (uint64_t end = now_ns() + WAIT_S * 1000000000ull; now_ns() < end && calm < 5;
         sleep_ms(2)) {
        int t = atomic_load(&k->tid);
        calm = atomic_load(&k->count) >= 1 && t && thread_state(t) == 'S' ? calm + 1 : 0;
    }
}

/* After value v was offered (st: the source, NULL when pushing). */
static void feeder_after(feeder *f, rill_stage *st, uint32_t v) {
    bool warm = v == 0 && (f->wait_gate || f->warm_sink);
    if (f->flush || warm) {
        if (st)
            rill_stage_flush(st);
        else
            rill_pipeline_flush(f->p);
    }
    if (warm && f->wait_gate)
        wait_for(&f->wait_gate->entered, 1, WAIT_S);
    if (warm && f->warm_sink)
        wait_parked(f->warm_sink);
    atomic_fetch_add(&f->done, 1);
}

static int feeder_produce(rill_stage *st, void *state) {
    feeder *f = state;
    if (!atomic_load_explicit(&f->tid, memory_order_relaxed))
        atomic_store(&f->tid, my_tid());
    do {
        if (f->next == f->total)
            break;
        if (f->spin)
            spin_ns(f->spin);
        uint32_t v = f->next++;
        rill_item it = val_item(v);
        int rc = rill_emit(st, &it);
        feeder_after(f, st, v);
        if (rc)
            return rc;
    } while (f->burst && f->next > 1);
    if (f->next < f->total)
        return 0;
    atomic_store(&f->finished, 1);
    return RILL_EDONE;
}

static const rill_stage_ops feeder_ops = {.produce = feeder_produce};

static void *pusher_main(void *arg) {
    feeder *f = arg;
    atomic_store(&f->tid, my_tid());
    for (uint32_t v = 0; v < f->total && !f->rc; v++) {
        if (f->spin)
            spin_ns(f->spin);
        rill_item it = val_item(v);
        for (unsigned e = 0; e < f->nentry && !f->rc; e++)
            f->rc = rill_pipeline_push(f->p, f->entry[e], &it);
        feeder_after(f, NULL, v);
    }
    atomic_store(&f->finished, 1);
    wait_for(&f->go_close, 1, 3 * WAIT_S); /* a test gone wrong still closes */
    f->close_rc = rill_pipeline_close(f->p);
    return NULL;
}

/* ---- 1. a blocked producer hands over what it queued for its other consumers ---- */

enum fan_mode { FAN_EMIT, FAN_BROADCAST, FAN_PUSH };
static const char *const fan_names[] = {"emit", "broadcast", "push"};

/* slow (capacity 16, stalled on its first item) and fast (capacity 4096,
 * batch fast_batch) are fed the same N values by one producer; fast_first:
 * fast is connected (or pushed to) first. The producer blocks on slow's
 * 17th value; by then fast holds 16 (17 if first) values in its queue,
 * and must get every one while slow stays stalled. 0 if all held, else
 * *why. */
static int fan_case(enum fan_mode mode, bool fast_first, unsigned fast_batch, char *why,
                    size_t len) {
    enum { N = 100, SLOW_CAP = 16 };
    gate g;
    gate_init(&g);
    static sink slow, fast;
    memset(&slow, 0, sizeof slow);
    memset(&fast, 0, sizeof fast);
    slow.g = &g;
    slow.consecutive = fast.consecutive = true;
    /* Value 0 reaches both; slow stalls on it, fast goes back to sleep before
     * the rest comes in one burst. */
    feeder f = {.total = N, .push = mode == FAN_PUSH, .nentry = 2, .burst = true,
                .warm_sink = &fast};
    rill_pipeline *p = NULL;
    rill_stage *s_slow = NULL, *s_fast = NULL, *src = NULL, *bc = NULL;
    rill_stage_opts os = {.flags = RILL_STAGE_THREADED, .capacity = SLOW_CAP};
    /* A latency bound far beyond the test: only the hand-over before the
     * producer blocks can move fast's items. */
    rill_stage_opts of = {.flags = RILL_STAGE_THREADED, .capacity = 4096, .batch = fast_batch,
                          .max_latency_us = 10000000};
    rill_stage_opts osrc = {.flags = RILL_STAGE_THREADED};
    int rc = rill_pipeline_new("fan", &p);
    if (!rc)
        rc = rill_stage_add(p, "slow", &sink_ops, &slow, &os, &s_slow);
    if (!rc)
        rc = rill_stage_add(p, "fast", &sink_ops, &fast, &of, &s_fast);
    rill_stage *first = fast_first ? s_fast : s_slow, *second = fast_first ? s_slow : s_fast;
    if (!rc && mode != FAN_PUSH)
        rc = rill_stage_add(p, "src", &feeder_ops, &f, &osrc, &src);
    if (!rc && mode == FAN_BROADCAST && !(rc = rill_broadcast_add(p, "bc", NULL, &bc)))
        rc = rill_connect(src, bc);
    rill_stage *from = mode == FAN_BROADCAST ? bc : src;
    if (!rc && mode != FAN_PUSH && !(rc = rill_connect(from, first)))
        rc = rill_connect(from, second);
    f.p = p;
    f.entry[0] = first;
    f.entry[1] = second;
    if (!rc && mode == FAN_PUSH)
        rc = pthread_create(&f.th, NULL, pusher_main, &f) ? -1 : 0;
    else if (!rc)
        rc = rill_pipeline_start(p);
    uint64_t at_block = 0, want_fast = 0, fast_at = 0, slow_at = 0;
    if (!rc) {
        bool entered = wait_for(&g.entered, 1, WAIT_S);
        at_block = wait_blocked(&f.done, &f.tid, SLOW_CAP);
        /* Values offered in full, plus the blocked one if fast came first. */
        want_fast = at_block + (fast_first ? 1 : 0);
        wait_count(&fast.count, want_fast, ARRIVE_S);
        fast_at = atomic_load(&fast.count);
        slow_at = atomic_load(&slow.count);
        rc = entered ? 0 : -2;
    }
    gate_open(&g); /* only now may slow move on */
    atomic_store(&f.go_close, 1);
    if (mode == FAN_PUSH && f.th) {
        pthread_join(f.th, NULL);
        rc = rc ? rc : f.rc ? f.rc : f.close_rc;
    } else if (p) {
        int crc = rill_pipeline_close(p);
        rc = rc ? rc : crc;
    }
    int ok = rc == 0 && at_block == SLOW_CAP && slow_at == 0 && fast_at == want_fast &&
             slow.n == N && fast.n == N && !slow.bad && !fast.bad &&
             atomic_load(&slow.closes) == 1 && atomic_load(&fast.closes) == 1;
    if (!ok)
        snprintf(why, len, "%s, %s first, fast batch %u: rc %d; producer blocked after %llu "
                 "(want %d); while slow stalled (%llu delivered) fast got %llu of %llu; at "
                 "close slow %llu fast %llu of %d, order %s/%s, closes %d/%d",
                 fan_names[mode], fast_first ? "fast" : "slow", fast_batch, rc,
                 (unsigned long long)at_block, SLOW_CAP, (unsigned long long)slow_at,
                 (unsigned long long)fast_at, (unsigned long long)want_fast,
                 (unsigned long long)slow.n, (unsigned long long)fast.n, N,
                 slow.bad ? "broken" : "kept", fast.bad ? "broken" : "kept",
                 atomic_load(&slow.closes), atomic_load(&fast.closes));
    rill_pipeline_free(p);
    gate_fini(&g);
    return ok ? 0 : -1;
}

/* fast_batch 0 (256): fast's values wait in a partial batch; 5: values
 * 1..15 went out in three full batches published lazily (no wake-up below
 * half the capacity) to a consumer asleep since value 0, plus, when fast is
 * first, value 16 in a partial batch. Pushing announces each lazy batch at
 * the next push (rill_pipeline_push), so there only the partial one waits. */
RILL_TEST(partial_batches, blocked_producer_hands_over_to_sibling_queues) {
    char why[512];
    vals_init();
    for (int mode = FAN_EMIT; mode <= FAN_PUSH; mode++)
        for (int fast_first = 0; fast_first < 2; fast_first++)
            for (unsigned b = 0; b < 2; b++) {
                int rc = fan_case((enum fan_mode)mode, fast_first, b ? 5 : 0, why, sizeof why);
                if (rc)
                    rill_test__fail(__FILE__, __LINE__, why);
                CHECK_EQ(rc, 0);
            }
}

/* ---- 2. capacity when batches go out partially ------------------------------------ */

enum part_mode { FLUSH_PUSH, FLUSH_SOURCE, LATENCY_PUSH, LATENCY_SOURCE };
static const char *const part_names[] = {"flush per push", "flush per emit",
                                         "latency, push", "latency, source"};

typedef struct part_result {
    int rc;
    bool entered, finished_while_stalled;
    uint64_t at_block, later;  /* values offered when the producer blocked, and 20 ms on */
    rill_queue_stats stalled;  /* the queue while the consumer was stalled */
    rill_queue_stats fin;      /* at close */
    uint64_t discarded;
    sink k;
} part_result;

/* A producer offers `total` values, handing each over at once (a flush, or a
 * latency bound of 1 us with 20 us between values) to a threaded sink
 * (capacity cap, batch, policy) stalled inside send on value 0. The producer
 * waits for the stall after value 0, as a live source would not: so every
 * later value meets a stalled consumer. */
static void part_run(enum part_mode mode, unsigned cap, unsigned batch, unsigned policy,
                     uint32_t total, part_result *r) {
    bool push = mode == FLUSH_PUSH || mode == LATENCY_PUSH;
    bool latency = mode == LATENCY_PUSH || mode == LATENCY_SOURCE;
    gate g;
    memset(r, 0, sizeof *r);
    gate_init(&g);
    r->k.g = &g;
    r->k.consecutive = policy == RILL_OVERFLOW_BLOCK;
    feeder f = {.total = total, .push = push, .flush = !latency, .spin = latency ? 20000 : 0,
                .nentry = 1, .wait_gate = &g};
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *snk = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = batch,
                         .overflow = policy, .max_latency_us = latency ? 1 : 0};
    rill_stage_opts os = {.flags = RILL_STAGE_THREADED};
    int rc = rill_pipeline_new("partial", &p);
    if (!rc)
        rc = rill_stage_add(p, "sink", &sink_ops, &r->k, &o, &snk);
    if (!rc && !push && !(rc = rill_stage_add(p, "src", &feeder_ops, &f, &os, &src)))
        rc = rill_connect(src, snk);
    f.p = p;
    f.entry[0] = snk;
    if (!rc && push)
        rc = pthread_create(&f.th, NULL, pusher_main, &f) ? -1 : 0;
    else if (!rc)
        rc = rill_pipeline_start(p);
    if (!rc) {
        r->entered = wait_for(&g.entered, 1, WAIT_S);
        if (policy == RILL_OVERFLOW_BLOCK) {
            r->at_block = wait_blocked(&f.done, &f.tid, 1);
            sleep_ms(20); /* and it stays blocked */
            r->later = atomic_load(&f.done);
        } else {
            r->finished_while_stalled = wait_for(&f.finished, 1, ARRIVE_S);
            r->at_block = r->later = atomic_load(&f.done);
        }
        r->stalled = queue_to(p, "sink");
    }
    gate_open(&g);
    atomic_store(&f.go_close, 1);
    if (push && f.th) {
        pthread_join(f.th, NULL);
        rc = rc ? rc : f.close_rc;
    } else if (p) {
        int crc = rill_pipeline_close(p);
        rc = rc ? rc : crc;
    }
    r->rc = rc ? rc : f.rc;
    if (p) {
        r->fin = queue_to(p, "sink");
        r->discarded = rill_pipeline_discarded(p);
    }
    rill_pipeline_free(p);
    gate_fini(&g);
}

static int part_fail(const char *what, enum part_mode mode, unsigned cap, unsigned batch,
                     unsigned policy, const part_result *r) {
    rill_test__failf(__FILE__, __LINE__,
                     "%s (%s, capacity %u, batch %u, policy %u): rc %d entered %d finished "
                     "%d; offered %llu when blocked, %llu later; stalled: in %llu out %llu "
                     "dropped %llu depth %llu high %llu; final: in %llu out %llu dropped %llu "
                     "discarded %llu depth %llu wait_full %llu; sink got %llu%s",
                     what, part_names[mode], cap, batch, policy, r->rc, r->entered,
                     r->finished_while_stalled, (unsigned long long)r->at_block,
                     (unsigned long long)r->later, (unsigned long long)r->stalled.in,
                     (unsigned long long)r->stalled.out, (unsigned long long)r->stalled.dropped,
                     (unsigned long long)r->stalled.depth,
                     (unsigned long long)r->stalled.high_water, (unsigned long long)r->fin.in,
                     (unsigned long long)r->fin.out, (unsigned long long)r->fin.dropped,
                     (unsigned long long)r->fin.discarded, (unsigned long long)r->fin.depth,
                     (unsigned long long)r->fin.wait_full_ns, (unsigned long long)r->k.n,
                     r->k.bad ? ", order broken" : "");
    return -1;
}

/* Block: exactly cap values offered before the producer blocks (for
 * cap <= 64; beyond, at least ceil(cap/batch) + 64: the batches of a full
 * queue plus the slack for partial ones), all of them handed over, then
 * everything delivered. */
static int part_block(enum part_mode mode, unsigned cap, unsigned batch) {
    enum { EXTRA = 20 };
    static part_result r;
    part_run(mode, cap, batch, RILL_OVERFLOW_BLOCK, cap + EXTRA, &r);
    unsigned b = batch ? batch : 256;
    b = b < cap ? b : cap;
    uint64_t least = cap <= 64 ? cap : 64 + (cap + b - 1) / b;
    bool ok = r.rc == 0 && r.entered && r.at_block >= least && r.at_block <= cap &&
              r.later == r.at_block && (cap > 64 || r.at_block == cap);
    ok = ok && r.stalled.depth == r.at_block && r.stalled.in == r.at_block &&
         r.stalled.out == 0 && r.stalled.high_water == r.at_block;
    ok = ok && r.fin.in == cap + EXTRA && r.fin.out == cap + EXTRA && r.fin.dropped == 0 &&
         r.fin.discarded == 0 && r.fin.depth == 0 && r.fin.wait_full_ns > 0 &&
         r.k.n == cap + EXTRA && !r.k.bad && atomic_load(&r.k.closes) == 1 &&
         r.discarded == 0;
    return ok ? 0 : part_fail("block", mode, cap, batch, RILL_OVERFLOW_BLOCK, &r);
}

RILL_TEST(partial_batches, capacity_exact_with_partial_batches) {
    static const unsigned cfg[][2] = {{64, 0}, {64, 8}, {64, 2}, {5, 0}, {16, 3}};
    vals_init();
    for (int mode = FLUSH_PUSH; mode <= LATENCY_SOURCE; mode++)
        for (unsigned c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
            CHECK_EQ(part_block((enum part_mode)mode, cfg[c][0], cfg[c][1]), 0);
    /* Beyond 64 partial batches a producer may block before the capacity:
     * the slack, not the capacity, is what holds there. */
    CHECK_EQ(part_block(FLUSH_PUSH, 1000, 100), 0);
    CHECK_EQ(part_block(FLUSH_SOURCE, 1000, 100), 0);
}

/* Leaky: every offer returns 0 while the consumer is still stalled, drops
 * are counted and never waited for, and the survivors are the first values
 * (drop_newest) or value 0 — being delivered — and the last ones
 * (drop_oldest). cap 1000 / batch 100 runs out of batches (each holds one
 * value) long before the capacity: the path the fix made leaky too. No wait
 * is counted while the consumer is stalled; at close a source may still wait
 * for a batch to carry its end of stream (all are in flight then), which is
 * not an offer and drops nothing. */
static int part_leaky(enum part_mode mode, unsigned cap, unsigned batch, unsigned policy) {
    enum { TOTAL = 500 };
    static part_result r;
    part_run(mode, cap, batch, policy, TOTAL, &r);
    const rill_queue_stats *s = &r.stalled, *q = &r.fin;
    /* With latency flushes the last value may still wait in the producer's
     * partial batch (not yet "in"); it goes out at close. */
    bool latency = mode == LATENCY_PUSH || mode == LATENCY_SOURCE;
    uint64_t held = TOTAL - s->in;
    bool ok = r.rc == 0 && r.entered && r.finished_while_stalled && r.at_block == TOTAL;
    ok = ok && s->in <= TOTAL && (latency || held == 0) && s->out == 0 && s->dropped > 0 &&
         s->in == s->out + s->dropped + s->depth && s->depth <= cap &&
         s->wait_full_ns == 0;
    ok = ok && q->in == TOTAL && q->in == q->out + q->dropped && q->dropped > 0 &&
         q->discarded == 0 && q->depth == 0 && r.discarded == 0 &&
         r.k.n == q->out && q->out == s->depth + held && !r.k.bad && atomic_load(&r.k.closes) == 1;
    for (uint64_t i = 0; ok && i < r.k.n; i++) {
        uint64_t want = policy == RILL_OVERFLOW_DROP_NEWEST || i == 0 ? i : TOTAL - (r.k.n - i);
        ok = r.k.got[i] == want;
    }
    return ok ? 0 : part_fail("leaky", mode, cap, batch, policy, &r);
}

RILL_TEST(partial_batches, leaky_queues_never_block_on_partial_batches) {
    static const unsigned cfg[][2] = {{64, 0}, {64, 8}, {1000, 100}};
    static const enum part_mode modes[] = {FLUSH_PUSH, FLUSH_SOURCE, LATENCY_PUSH};
    vals_init();
    for (unsigned policy = RILL_OVERFLOW_DROP_NEWEST; policy <= RILL_OVERFLOW_DROP_OLDEST;
         policy++)
        for (unsigned m = 0; m < 3; m++)
            for (unsigned c = 0; c < sizeof cfg / sizeof cfg[0]; c++)
                CHECK_EQ(part_leaky(modes[m], cfg[c][0], cfg[c][1], policy), 0);
}
