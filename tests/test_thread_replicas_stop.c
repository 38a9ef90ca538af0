/* Replicated stages that stop early: a failing replica and an abort end
 * the run without hanging, with every item that entered a queue delivered
 * or counted as discarded; an abort while replica 0 waits to merge ends the
 * wait with nothing merged; a failing merge fails the pipeline. Expected
 * figures are computed from the ids and the graph alone. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica_util.h"
#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- failures and aborts ------------------------------------------------- */

/* src (1 or 3 replicas) -> mid (4 replicas, dealt) -> red (merged, 2 replicas).
 * One replica of mid fails, or aborts the pipeline: the run ends with that
 * error; items that entered a queue were delivered or discarded. */
static void run_failing(int abort_it, unsigned srcw, unsigned capacity, int *ok) {
    *ok = 0;
    rill_pipeline *p = NULL;
    if (rill_pipeline_new("failing", &p))
        return;
    rill_stage_opts o = {.capacity = capacity, .batch = 8, .replicas = srcw};
    src_state *src = calloc(1, sizeof *src);
    src->n = 6000;
    rill_stage *s = NULL, *mid = NULL, *red = NULL;
    sum_state *m = calloc(1, sizeof *m), *r = calloc(1, sizeof *r);
    rill_stage_opts mo = o, ro = o;
    mo.replicas = 4;
    ro.replicas = 2;
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, &o, &s));
    CHECK_OK(rill_stage_add(p, "mid", &pass_ops, m, &mo, &mid));
    CHECK_OK(rill_stage_add(p, "red", &merged_ops, r, &ro, &red));
    CHECK_OK(rill_connect(s, mid));
    CHECK_OK(rill_connect(mid, red));
    sum_state *victim = rill_stage_state(rill_stage_replica(mid, 2));
    if (abort_it) {
        victim->abort_p = p;
        victim->abort_at = 100;
    } else {
        victim->fail_at = 100;
    }
    int rc = rill_pipeline_run(p);
    CHECK_EQ(rc, abort_it ? RILL_EABORTED : RILL_ESTAGE);
    if (!abort_it)
        CHECK_STREQ(rill_pipeline_errstage(p), "mid#2");
    /* Into mid's queues: the sources' successful emits. Out of them: what
     * mid's replicas received, or what was discarded. Likewise mid -> red. */
    uint64_t emitted = 0, got = 0, mid_out = 0, red_got = 0;
    rill_stage *x;
    for (unsigned k = 0; (x = rill_stage_replica(s, k)) != NULL; k++)
        emitted += ((const src_state *)rill_stage_state(x))->emitted_ok;
    for (unsigned k = 0; (x = rill_stage_replica(mid, k)) != NULL; k++) {
        got += ((const sum_state *)rill_stage_state(x))->n;
        mid_out += ((const sum_state *)rill_stage_state(x))->emitted_ok;
    }
    for (unsigned k = 0; (x = rill_stage_replica(red, k)) != NULL; k++)
        red_got += ((const sum_state *)rill_stage_state(x))->n;
    /* mid's replicas are dealt to on their own threads, and so is red,
     * which no group of mid's width pairs. */
    uint64_t discarded = rill_pipeline_discarded(p);
    if (got + red_got + discarded != emitted + mid_out)
        rill_test__failf(__FILE__, __LINE__, "abort %d srcw %u cap %u: %llu + %llu + %llu "
                         "discarded != %llu + %llu", abort_it, srcw, capacity,
                         (unsigned long long)got, (unsigned long long)red_got,
                         (unsigned long long)discarded, (unsigned long long)emitted,
                         (unsigned long long)mid_out);
    else
        *ok = 1;
    rill_pipeline_free(p);
}

RILL_TEST(replicas, failing_replica_and_abort_end_the_run_and_count_the_discarded) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (int a = 0; a < 2; a++)
        for (unsigned w = 1; w <= 3; w += 2)
            for (unsigned c = 0; c < 4; c++) {
                int ok = 0;
                run_failing(a, w, caps[c], &ok);
                CHECK(ok);
            }
}

/* ---- the merge's wait ends on a stop ------------------------------------------ */

/* Replica 1 of a merged group crawls; replica 0 is done at once and waits
 * to merge. An abort from another thread must end that wait (the test's
 * TIMEOUT catches a hang): the run returns RILL_EABORTED, counts the
 * discarded items, and nothing is merged (replica 0 keeps its own share). */
static atomic_int fast_done; /* items replica 0 has taken */

static int crawl_send(rill_stage *st, void *state, const rill_item *item) {
    unsigned k;
    rill_stage_replicas(st, &k);
    if (k == 1)
        spin_ns(1000000);
    int rc = sum_send(st, state, item);
    if (k == 0)
        atomic_fetch_add(&fast_done, 1);
    return rc;
}

static const rill_stage_ops crawl_ops = {
    .send = crawl_send, .free = free, .clone = sum_clone, .merge = sum_merge};
typedef struct aborter {
    rill_pipeline *p;
    unsigned ms;
    int items; /* replica 0's share (0: 2000) */
} aborter;

/* Once replica 0 has had all its items (and so waits to merge soon
 * after), wait a.ms more and abort. */
static void *abort_later(void *arg) {
    aborter *a = arg;
    wait_for(&fast_done, a->items ? a->items : 2000, 60.0);
    sleep_ms(a->ms);
    rill_pipeline_abort(a->p);
    return NULL;
}

RILL_TEST(replicas, abort_ends_the_wait_for_a_merge) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("crawl", &p));
    src_state *src = calloc(1, sizeof *src);
    src->n = 4000;
    rill_stage *s, *c;
    /* Room for every item: the source ends at once, and so does replica 0,
     * which then waits for replica 1 (2 s of crawling) to merge. */
    rill_stage_opts o = {.replicas = 2, .capacity = 4096, .batch = 8};
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, NULL, &s));
    CHECK_OK(rill_stage_add(p, "crawl", &crawl_ops, calloc(1, sizeof(sum_state)), &o, &c));
    CHECK_OK(rill_connect(s, c));
    atomic_store(&fast_done, 0);
    aborter a = {p, 20, 2000};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, abort_later, &a) == 0);
    int rc = rill_pipeline_run(p);
    pthread_join(t, NULL);
    CHECK_EQ(rc, RILL_EABORTED);
    const sum_state *r0 = rill_stage_state(c), *r1 = rill_stage_state(rill_stage_replica(c, 1));
    CHECK_EQ(src->emitted_ok, 4000);
    CHECK_EQ(r0->n, 2000); /* all its own, and nothing merged into it */
    CHECK(r1->n < 2000);   /* stopped half-way: the wait ended on the abort */
    CHECK_EQ(src->emitted_ok, r0->n + r1->n + rill_pipeline_discarded(p));
    rill_pipeline_free(p);
}

/* A merge that fails fails the pipeline, naming replica 0. */
static int merge_fails(void *into, const void *from) {
    (void)into;
    (void)from;
    return RILL_ENOMEM;
}

static const rill_stage_ops bad_merge_ops = {
    .send = sum_send, .free = free, .clone = sum_clone, .merge = merge_fails};

RILL_TEST(replicas, a_failing_merge_fails_the_pipeline) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("badmerge", &p));
    src_state *src = calloc(1, sizeof *src);
    src->n = 100;
    rill_stage *s, *c;
    rill_stage_opts o = {.replicas = 3};
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, NULL, &s));
    CHECK_OK(rill_stage_add(p, "m", &bad_merge_ops, calloc(1, sizeof(sum_state)), &o, &c));
    CHECK_OK(rill_connect(s, c));
    CHECK_EQ(rill_pipeline_run(p), RILL_ENOMEM);
    CHECK_STREQ(rill_pipeline_errstage(p), "m");
    rill_pipeline_free(p);
}

/* Dealt by key and merged: every key's items in one share, the total exact. */

/* The wait ends on the stop itself, not because the other replicas end:
 * replica 1 holds its first item until replica 0's close has run (at most
 * 60 s). Ended by the abort, replica 0 closes while replica 1 still holds
 * it; a wait that needed replica 1 to end would hold both until the limit. */
static atomic_int close0_ran, held_timed_out;

static int hold_send(rill_stage *st, void *state, const rill_item *item) {
    unsigned k;
    rill_stage_replicas(st, &k);
    if (k == 1 && ((sum_state *)state)->n == 0)
        atomic_store(&held_timed_out, !wait_for(&close0_ran, 1, 60.0));
    int rc = sum_send(st, state, item);
    if (k == 0)
        atomic_fetch_add(&fast_done, 1);
    return rc;
}

static int hold_close(rill_stage *st, void *state) {
    (void)st;
    (void)state;
    atomic_store(&close0_ran, 1); /* merged ops: replica 0 alone closes */
    return 0;
}

static const rill_stage_ops hold_ops = {
    .send = hold_send, .close = hold_close, .free = free, .clone = sum_clone, .merge = sum_merge};

RILL_TEST(replicas, a_stop_ends_the_wait_while_a_replica_still_runs) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("hold", &p));
    src_state *src = calloc(1, sizeof *src);
    src->n = 400;
    rill_stage *s, *c;
    rill_stage_opts o = {.replicas = 2, .capacity = 4096, .batch = 8};
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, NULL, &s));
    CHECK_OK(rill_stage_add(p, "hold", &hold_ops, calloc(1, sizeof(sum_state)), &o, &c));
    CHECK_OK(rill_connect(s, c));
    atomic_store(&fast_done, 0);
    atomic_store(&close0_ran, 0);
    atomic_store(&held_timed_out, 0);
    aborter a = {p, 20, 200};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, abort_later, &a) == 0);
    int rc = rill_pipeline_run(p);
    pthread_join(t, NULL);
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK_EQ(atomic_load(&held_timed_out), 0);
    CHECK_EQ(atomic_load(&close0_ran), 1);
    const sum_state *r0 = rill_stage_state(c);
    CHECK_EQ(r0->n, 200); /* its own share only: nothing merged after the stop */
    rill_pipeline_free(p);
}
