/* Three limits of the statistics, through the public API (rill/stats.h):
 * - a snapshot gives up with RILL_EAGAIN, quickly, when a thread holds a
 *   hand-over open (RILL_FAULT_HANDOVER_US makes every publish take that
 *   long, as if preempted there), instead of waiting for it;
 * - the watchdog keeps its own pace: with a 2 s sample interval and a
 *   50 ms timeout it still reports a stall long before the next sample;
 * - the TCP line source, refused by a full queue and waiting on its room
 *   fd (RILL_STAGE_THREADED slow sink behind it), shows that wait in the
 *   queue's wait_full_ns.
 * Bounds are generous (2 shared cores); nothing asserts a tight timing. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_util.h"
#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- stages -------------------------------------------------------------------- */

typedef struct src {
    uint32_t next, total;
    uint32_t pay[1];
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    if (s->next == s->total)
        return RILL_EDONE;
    s->next++;
    rill_item it = rill_item_static(s->pay, sizeof s->pay);
    return rill_emit(st, &it);
}

/* Holds its first item until `open` is set. */
typedef struct sink {
    atomic_int open;
    atomic_ullong got;
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    (void)it;
    sink *k = state;
    while (!atomic_load(&k->open))
        sleep_ms(1);
    atomic_fetch_add(&k->got, 1);
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce};
static const rill_stage_ops sink_ops = {.send = sink_send};

static rill_pipeline *chain(src *s, sink *k, unsigned cap) {
    rill_pipeline *p = NULL;
    rill_stage *a = NULL, *b = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = 1};
    if (rill_pipeline_new("limits", &p) || rill_stage_add(p, "src", &src_ops, s, &o, &a) ||
        rill_stage_add(p, "sink", &sink_ops, k, &o, &b) || rill_connect(a, b)) {
        rill_pipeline_free(p);
        return NULL;
    }
    return p;
}

/* ---- a snapshot's retries are bounded ------------------------------------------ */

RILL_TEST(thread_stats_limits, snapshot_gives_up_on_a_held_hand_over) {
    src s = {.total = 40};
    sink k = {.open = 1};
    rill_pipeline *p = chain(&s, &k, 4);
    CHECK(p != NULL);
    setenv("RILL_FAULT_HANDOVER_US", "20000", 1); /* read as start builds the queues */
    int started = rill_pipeline_start(p);
    unsetenv("RILL_FAULT_HANDOVER_US");
    CHECK_OK(started);
    int eagain = 0, ok = 0, other = 0;
    uint64_t longest = 0;
    while (atomic_load(&k.got) < s.total - 4) {
        rill_stats *snap = (rill_stats *)1;
        uint64_t t0 = now_ns();
        int rc = rill_pipeline_stats(p, &snap);
        uint64_t took = now_ns() - t0;
        longest = took > longest ? took : longest;
        if (rc == RILL_EAGAIN && snap == NULL)
            eagain++;
        else if (rc == 0)
            ok++;
        else
            other++;
        if (rc == 0)
            rill_stats_free(snap);
        sleep_ms(1);
    }
    CHECK_OK(rill_pipeline_close(p));
    rill_stats *fin = NULL;
    CHECK_OK(rill_pipeline_stats(p, &fin)); /* closed: nothing moves, never gives up */
    CHECK_EQ(fin->queues[0].out, s.total);
    rill_stats_free(fin);
    rill_pipeline_free(p);
    CHECK_EQ(other, 0);
    CHECK(eagain > 0);
    /* The bound is ~5 ms; a hold is 20 ms. Waiting for a hold to end would
     * not be wrong, waiting for many would: allow scheduling slack. */
    if (longest >= 200000000ull)
        rill_test__failf(__FILE__, __LINE__, "a snapshot took %.1f ms (%d ok, %d RILL_EAGAIN)",
                         (double)longest / 1e6, ok, eagain);
}

/* ---- the watchdog's pace --------------------------------------------------------- */

static atomic_int stalls;
static void on_stall(rill_pipeline *p, rill_stall kind, const char *stage, const rill_stats *s,
                     void *arg) {
    (void)p, (void)kind, (void)stage, (void)s, (void)arg;
    atomic_fetch_add(&stalls, 1);
}

RILL_TEST(thread_stats_limits, watchdog_pace_is_not_the_sample_interval) {
    src s = {.total = 20};
    sink k = {.open = 0}; /* stuck on its first item: everything stops */
    rill_pipeline *p = chain(&s, &k, 4);
    CHECK(p != NULL);
    CHECK_OK(rill_pipeline_sampler(p, 2000000, 0)); /* one sample every 2 s */
    CHECK_OK(rill_pipeline_watchdog(p, 50, on_stall, NULL));
    atomic_store(&stalls, 0);
    uint64_t t0 = now_ns();
    CHECK_OK(rill_pipeline_start(p));
    while (atomic_load(&stalls) == 0 && now_ns() - t0 < 10000000000ull)
        sleep_ms(2);
    uint64_t took = now_ns() - t0;
    atomic_store(&k.open, 1);
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    CHECK(atomic_load(&stalls) > 0);
    /* Paced by the samples it would fire at 4 s at the earliest. */
    if (took >= 1500000000ull)
        rill_test__failf(__FILE__, __LINE__, "the stall was reported after %.0f ms",
                         (double)took / 1e6);
}

/* ---- the TCP source's wait for room ------------------------------------------------ */

RILL_TEST(thread_stats_limits, tcp_source_room_wait_counts_as_full_wait) {
    enum { LINES = 2000, DELAY_US = 200 };
    rill_pipeline *p = NULL;
    rill_stage *source = NULL, *slow = NULL;
    sink k = {.open = 1};
    rill_tcp_opts to = {.host = "127.0.0.1", .max_accepts = 1};
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED, .capacity = 8, .batch = 4};
    CHECK_OK(rill_pipeline_new("tcp-room", &p));
    CHECK_OK(rill_tcp_lines_add(p, "source", &to, NULL, NULL, &source));
    CHECK_OK(rill_stage_add(p, "slow", &sink_ops, &k, &so, &slow));
    CHECK_OK(rill_connect(source, slow));
    CHECK_OK(rill_stage_set_delay(slow, DELAY_US));
    uint16_t port = rill_tcp_lines_port(source);
    pipeline_runner r = {p, 0};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, pipeline_runner_main, &r), 0);
    int fd = cli_connect(port);
    int sent = 0;
    if (fd >= 0) {
        static char buf[LINES * 8];
        for (int i = 0; i < LINES; i++)
            memcpy(buf + i * 8, "line-xx\n", 8);
        sent = cli_send(fd, buf, sizeof buf) == 0;
        close(fd);
    }
    pthread_join(t, NULL);
    rill_stats *s = NULL;
    int rc = rill_pipeline_stats(p, &s);
    uint64_t waited = rc == 0 && s->nqueues == 1 ? s->queues[0].wait_full_ns : 0;
    uint64_t out = rc == 0 && s->nqueues == 1 ? s->queues[0].out : 0;
    rill_stats_free(s);
    rill_pipeline_free(p);
    CHECK(fd >= 0);
    CHECK(sent);
    CHECK_OK(r.rc);
    CHECK_OK(rc);
    CHECK_EQ(out, LINES);
    CHECK_EQ(atomic_load(&k.got), LINES);
    /* The sink needs >= 400 ms; the source reads the lot at once and spends
     * nearly all of that refused, on its room fd. Before, it counted 0. */
    uint64_t least = (uint64_t)LINES * DELAY_US * 1000u / 4;
    if (waited < least)
        rill_test__failf(__FILE__, __LINE__, "wait_full_ns %.1f ms, want >= %.1f ms",
                         (double)waited / 1e6, (double)least / 1e6);
}

/* A source refused once by rill_try_emit that goes on with blocking
 * rill_emit has stopped waiting for the room fd at its next emit: its
 * blocking waits are counted once, so the queue's full-wait never exceeds
 * the run's elapsed time (before, the refusal's wait ran on to close and
 * the blocking waits were added on top: 1.4 s of wait in a 0.9 s run). */
typedef struct refused_src {
    int n, refused;
    atomic_int *open;
} refused_src;

static int refused_produce(rill_stage *st, void *state) {
    refused_src *s = state;
    static const int pay = 7;
    rill_item it = rill_item_static(&pay, sizeof pay);
    if (s->n >= 200)
        return RILL_EDONE;
    if (!s->refused) {
        int rc = rill_try_emit(st, &it);
        if (rc == RILL_EAGAIN) { /* give up on this item; block from now on */
            s->refused = 1;
            atomic_store(s->open, 1);
            return 0;
        }
        s->n += rc == 0;
        return rc;
    }
    s->n++;
    return rill_emit(st, &it);
}

static int refused_sink(rill_stage *st, void *state, const rill_item *it) {
    (void)st, (void)it;
    atomic_int *open = state;
    while (!atomic_load(open))
        sleep_ms(1);
    sleep_ms(1);
    return 0;
}

RILL_TEST(thread_stats_limits, refused_then_blocking_emits_count_each_wait_once) {
    atomic_int open = 0;
    refused_src s = {.open = &open};
    rill_stage_ops so = {.produce = refused_produce}, ko = {.send = refused_sink};
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 4, .batch = 1};
    rill_pipeline *p = NULL;
    rill_stage *a = NULL, *b = NULL;
    CHECK_OK(rill_pipeline_new("refused", &p));
    CHECK_OK(rill_stage_add(p, "src", &so, &s, &o, &a));
    CHECK_OK(rill_stage_add(p, "sink", &ko, &open, &o, &b));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_pipeline_run(p));
    CHECK(s.refused);
    rill_stats *st = NULL;
    CHECK_OK(rill_pipeline_stats(p, &st));
    CHECK(st->queues[0].wait_full_ns <= st->elapsed_ns);
    CHECK(st->queues[0].wait_full_ns > 0);
    rill_stats_free(st);
    rill_pipeline_free(p);
}
