/* Abort at the edges of a pipeline's life, with threads in it:
 *
 * - before start: run or close returns RILL_EABORTED, nothing is produced,
 *   every close runs once, free is clean; an aborted pipeline that never
 *   started is freed without a thread or a close; a push after the abort is
 *   refused;
 * - after close: a no-op. The status, message and stage stay, close answers
 *   the same, and the counters do not move.
 *
 * Stage callbacks run on worker threads: they record into atomics and the
 * test thread checks. */

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

enum { MAXV = 1024 };

static uint32_t g_vals[MAXV]; /* g_vals[i] == i: items point here (no owner) */

static void vals_init(void) {
    for (uint32_t i = 0; i < MAXV; i++)
        g_vals[i] = i;
}

static rill_item val_item(uint32_t v) { return rill_item_static(&g_vals[v], sizeof g_vals[v]); }

/* T (threaded source) and U (source on the caller's thread) feed M (inline,
 * so promoted: fed from two threads) -> W (threaded) -> X (inline). */
enum { NT, NU, NM, NW, NX, NNODES };
static const char *const node_names[NNODES] = {"T", "U", "M", "W", "X"};

typedef struct node {
    uint32_t items, next;       /* sources */
    unsigned fail_at, abort_at; /* on this send (1-based; 0: never) */
    atomic_int produces, sends, closes, destroys;
} node;

static int node_produce(rill_stage *st, void *state) {
    node *n = state;
    atomic_fetch_add(&n->produces, 1);
    if (n->next == n->items)
        return RILL_EDONE;
    rill_item it = val_item(n->next++);
    int rc = rill_emit(st, &it);
    return rc ? rc : n->next == n->items ? RILL_EDONE : 0;
}

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    node *n = state;
    int k = atomic_fetch_add(&n->sends, 1) + 1;
    if (n->fail_at && (unsigned)k == n->fail_at)
        return rill_stage_fail(st, -EIO, "injected on item %d", k);
    if (n->abort_at && (unsigned)k == n->abort_at)
        rill_pipeline_abort(rill_stage_pipeline(st));
    int rc = rill_emit(st, it);
    return n->abort_at ? 0 : rc; /* after its own abort: refusals expected */
}

static int node_close(rill_stage *st, void *state) {
    (void)st;
    atomic_fetch_add(&((node *)state)->closes, 1);
    return 0;
}

static void node_destroy(void *state) { atomic_fetch_add(&((node *)state)->destroys, 1); }

static const rill_stage_ops src_node_ops = {
    .produce = node_produce, .close = node_close, .free = node_destroy};
static const rill_stage_ops node_ops = {
    .send = node_send, .close = node_close, .free = node_destroy};

typedef struct net {
    node n[NNODES];
    rill_stage *st[NNODES];
    rill_pipeline *p;
} net;

static int net_build(net *t, uint32_t items) {
    memset(t, 0, sizeof *t);
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 4, .batch = 2};
    int rc = rill_pipeline_new("aborts", &t->p);
    for (int i = 0; i < NNODES && !rc; i++) {
        bool source = i == NT || i == NU, threaded = i == NT || i == NW;
        t->n[i].items = source ? items : 0;
        rc = rill_stage_add(t->p, node_names[i], source ? &src_node_ops : &node_ops, &t->n[i],
                            threaded ? &th : NULL, &t->st[i]);
    }
    if (!rc && !(rc = rill_connect(t->st[NT], t->st[NM])) &&
        !(rc = rill_connect(t->st[NU], t->st[NM])) && !(rc = rill_connect(t->st[NM], t->st[NW])))
        rc = rill_connect(t->st[NW], t->st[NX]);
    return rc;
}

static int sum_of(net *t, size_t off) {
    int s = 0;
    for (int i = 0; i < NNODES; i++)
        s += atomic_load((atomic_int *)((char *)&t->n[i] + off));
    return s;
}

#define EACH(t, field, want)                                                              \
    do {                                                                                   \
        for (int i_ = 0; i_ < NNODES; i_++)                                                \
            if (atomic_load(&(t)->n[i_].field) != (want)) {                                \
                rill_test__failf(__FILE__, __LINE__, "%s: %s = %d, want %d", node_names[i_], \
                                 #field, atomic_load(&(t)->n[i_].field), (int)(want));     \
                return;                                                                    \
            }                                                                              \
    } while (0)

/* Aborted before start, then run (0), close (1), or run after a second abort
 * (2): RILL_EABORTED with no stage named, nothing produced or sent, each
 * close once, the promoted stage threaded, and every thread joined. */
RILL_TEST(thread_abort, before_start_then_run_or_close) {
    static net t;
    vals_init();
    int base = count_threads();
    for (int how = 0; how < 3; how++) {
        CHECK_OK(net_build(&t, 50));
        rill_pipeline_abort(t.p);
        if (how == 2)
            rill_pipeline_abort(t.p);
        CHECK_EQ(rill_pipeline_status(t.p), 0); /* requested; close reports it */
        int rc = how == 1 ? rill_pipeline_close(t.p) : rill_pipeline_run(t.p);
        CHECK_EQ(rc, RILL_EABORTED);
        CHECK_EQ(count_threads(), base);
        CHECK_EQ(rill_pipeline_status(t.p), RILL_EABORTED);
        CHECK(rill_pipeline_errstage(t.p) == NULL);
        CHECK_STREQ(rill_pipeline_errmsg(t.p), "pipeline aborted");
        CHECK_EQ(sum_of(&t, offsetof(node, produces)), 0);
        CHECK_EQ(sum_of(&t, offsetof(node, sends)), 0);
        EACH(&t, closes, 1);
        CHECK_EQ(rill_pipeline_discarded(t.p), 0);
        CHECK(rill_stage_threaded(t.st[NT]) && rill_stage_threaded(t.st[NW]));
        CHECK(rill_stage_threaded(t.st[NM]));  /* promoted */
        CHECK(!rill_stage_threaded(t.st[NU]) && !rill_stage_threaded(t.st[NX]));
        /* Closed: the same answer, and a run is refused. */
        CHECK_EQ(rill_pipeline_close(t.p), RILL_EABORTED);
        CHECK_EQ(rill_pipeline_run(t.p), RILL_ECLOSED);
        EACH(&t, closes, 1);
        rill_pipeline_free(t.p);
        EACH(&t, destroys, 1);
        EACH(&t, closes, 1);
    }
}

/* Aborted and freed, never started: no thread, no close (close is for
 * started pipelines), every destroy once. */
RILL_TEST(thread_abort, then_free_never_started) {
    static net t;
    int base = count_threads();
    CHECK_OK(net_build(&t, 50));
    rill_pipeline_abort(t.p);
    rill_pipeline_free(t.p);
    CHECK_EQ(count_threads(), base);
    EACH(&t, closes, 0);
    EACH(&t, produces, 0);
    EACH(&t, destroys, 1);
}

/* A threaded entry fed by rill_pipeline_push, aborted before the first push:
 * the push starts the pipeline and is refused; close reports the abort. */
RILL_TEST(thread_abort, before_first_push) {
    static node e, f;
    memset(&e, 0, sizeof e);
    memset(&f, 0, sizeof f);
    vals_init();
    int base = count_threads();
    rill_pipeline *p = NULL;
    rill_stage *se = NULL, *sf = NULL;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 2};
    CHECK_OK(rill_pipeline_new("pushabort", &p));
    CHECK_OK(rill_stage_add(p, "E", &node_ops, &e, &th, &se));
    CHECK_OK(rill_stage_add(p, "F", &node_ops, &f, NULL, &sf));
    CHECK_OK(rill_connect(se, sf));
    rill_pipeline_abort(p);
    rill_item it = val_item(1);
    CHECK_EQ(rill_pipeline_push(p, se, &it), RILL_EABORTED);
    CHECK_EQ(rill_pipeline_flush(p), 0);
    CHECK_EQ(rill_pipeline_close(p), RILL_EABORTED);
    CHECK_EQ(count_threads(), base);
    CHECK_EQ(rill_pipeline_push(p, se, &it), RILL_ECLOSED);
    CHECK_EQ(atomic_load(&e.sends) + atomic_load(&f.sends), 0);
    CHECK_EQ(atomic_load(&e.closes), 1);
    CHECK_EQ(atomic_load(&f.closes), 1);
    CHECK(rill_stage_threaded(se));
    rill_pipeline_free(p);
    CHECK_EQ(atomic_load(&e.destroys) + atomic_load(&f.destroys), 2);
}

/* After close an abort changes nothing: a clean run (0), a failed one (-EIO
 * in X), an aborted one (by W): status, stage and message stay, close
 * answers the same, the counters stay. */
RILL_TEST(thread_abort, after_close_changes_nothing) {
    static net t;
    vals_init();
    for (int how = 0; how < 3; how++) {
        CHECK_OK(net_build(&t, 50));
        if (how == 1)
            t.n[NX].fail_at = 10;
        if (how == 2)
            t.n[NW].abort_at = 10;
        int rc = rill_pipeline_run(t.p);
        int want = how == 0 ? 0 : how == 1 ? -EIO : RILL_EABORTED;
        CHECK_EQ(rc, want);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", rill_pipeline_errmsg(t.p));
        const char *stage = rill_pipeline_errstage(t.p);
        CHECK(how == 1 ? stage && strcmp(stage, "X") == 0 : stage == NULL);
        CHECK(how == 0 ? msg[0] == '\0' : msg[0] != '\0');
        rill_queue_stats q = queue_to(t.p, "W");
        uint64_t discarded = rill_pipeline_discarded(t.p);
        if (how == 0)
            CHECK_EQ(atomic_load(&t.n[NX].sends), 100);
        rill_pipeline_abort(t.p);
        rill_pipeline_abort(t.p);
        CHECK_EQ(rill_pipeline_status(t.p), want);
        CHECK_STREQ(rill_pipeline_errmsg(t.p), msg);
        CHECK(rill_pipeline_errstage(t.p) == stage);
        CHECK_EQ(rill_pipeline_close(t.p), want);
        CHECK_EQ(rill_pipeline_close(t.p), want);
        CHECK_EQ(rill_pipeline_run(t.p), RILL_ECLOSED);
        CHECK_STREQ(rill_pipeline_errmsg(t.p), msg);
        CHECK_EQ(rill_pipeline_discarded(t.p), discarded);
        rill_queue_stats q2 = queue_to(t.p, "W");
        CHECK(q.capacity == 4 && q2.capacity == 4);
        CHECK(q2.in == q.in && q2.out == q.out && q2.discarded == q.discarded);
        CHECK_EQ(q.in, q.out + q.dropped + q.discarded + q.depth);
        EACH(&t, closes, 1);
        rill_pipeline_free(t.p);
        EACH(&t, destroys, 1);
    }
}
