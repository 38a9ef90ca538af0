/* Threaded stages really run in parallel, on the threads the model says.
 *
 * Parallelism is proved, not timed: two stages meet at a two-party
 * rendezvous from inside their callbacks, round after round. That can only
 * succeed if both are running at the same time on different threads; run
 * inline, the first one waits for a partner that cannot come, and the wait's
 * timeout turns the deadlock into a reported failure (the control cases show
 * the test can fail). Thread identity is recorded with pthread_self() in
 * every callback and compared in the test thread after close. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rill.h"
#include "rill_test.h"

/* ---- a two-party rendezvous with a timeout ------------------------------------ */

typedef struct rdv {
    pthread_mutex_t m;
    pthread_cond_t c;
    unsigned waiting, generation;
    double timeout_s;
    atomic_int broken; /* a meeting timed out: later ones fail at once */
    atomic_int met;    /* meetings completed */
} rdv;

static void rdv_init(rdv *r, double timeout_s) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&r->c, &a);
    pthread_condattr_destroy(&a);
    pthread_mutex_init(&r->m, NULL);
    r->waiting = r->generation = 0;
    r->timeout_s = timeout_s;
    atomic_init(&r->broken, 0);
    atomic_init(&r->met, 0);
}

static void rdv_fini(rdv *r) {
    pthread_mutex_destroy(&r->m);
    pthread_cond_destroy(&r->c);
}

/* 0 once the other party has arrived too; -1 on timeout (or if an earlier
 * meeting timed out: a broken rendezvous stays broken, so a failing run
 * costs one timeout, not one per round). */
static int rdv_meet(rdv *r) {
    if (atomic_load(&r->broken))
        return -1;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    long ns = (long)(r->timeout_s * 1e9) + dl.tv_nsec;
    dl.tv_sec += ns / 1000000000L;
    dl.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&r->m);
    unsigned gen = r->generation;
    if (++r->waiting == 2) {
        r->waiting = 0;
        r->generation++;
        atomic_fetch_add(&r->met, 1);
        pthread_cond_broadcast(&r->c);
        pthread_mutex_unlock(&r->m);
        return 0;
    }
    while (gen == r->generation && !atomic_load(&r->broken))
        if (pthread_cond_timedwait(&r->c, &r->m, &dl) == ETIMEDOUT && gen == r->generation) {
            atomic_store(&r->broken, 1);
            break;
        }
    int rc = gen == r->generation ? -1 : 0;
    if (rc)
        r->waiting--;
    pthread_mutex_unlock(&r->m);
    return rc;
}

/* ---- stages that record where they run ------------------------------------------ */

typedef struct where {
    pthread_t send_thr, close_thr; /* first callback's thread; close's */
    bool sent, varied;             /* varied: a later callback ran elsewhere */
    int calls, closes;
} where;

static void where_note(where *w) {
    pthread_t me = pthread_self();
    if (!w->sent) {
        w->send_thr = me;
        w->sent = true;
    } else if (!pthread_equal(me, w->send_thr)) {
        w->varied = true;
    }
    w->calls++;
}

/* node: records, meets r for items whose first byte is meet_tag (or for
 * every item if meet_all), forwards. */
typedef struct node {
    where w;
    rdv *r;
    bool meet_all;
    int meet_tag;
    int failed_meets;
} node;

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    node *n = state;
    where_note(&n->w);
    const unsigned char *b = it->data;
    if (n->r && (n->meet_all || (it->len && b[0] == n->meet_tag)) && rdv_meet(n->r))
        n->failed_meets++;
    return rill_emit(st, it);
}

static int node_close(rill_stage *st, void *state) {
    node *n = state;
    (void)st;
    n->w.close_thr = pthread_self();
    n->w.closes++;
    return 0;
}

/* src: n one-byte items `tag`; with r, flushes each and meets r after it. */
typedef struct src {
    where w;
    unsigned n, next;
    unsigned char tag;
    rdv *r;
    int failed_meets;
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    where_note(&s->w);
    if (s->next == s->n)
        return RILL_EDONE;
    rill_item it = rill_item_static(&s->tag, 1);
    int rc = rill_emit(st, &it);
    if (rc)
        return rc;
    s->next++;
    if (s->r) {
        rill_stage_flush(st); /* the partner must get the item while we wait */
        if (rdv_meet(s->r))
            s->failed_meets++;
    }
    return 0;
}

static int src_close(rill_stage *st, void *state) {
    src *s = state;
    (void)st;
    s->w.close_thr = pthread_self();
    s->w.closes++;
    return 0;
}

static const rill_stage_ops node_ops = {.send = node_send, .close = node_close};
static const rill_stage_ops src_ops = {.produce = src_produce, .close = src_close};

static const rill_stage_opts threaded = {.flags = RILL_STAGE_THREADED};

/* ---- parallel: two consumers meet on every item --------------------------------- */

/* source -> broadcast -> a, b; a and b meet on each of 100 items. Returns
 * the number of failed meetings (0 when a and b run in parallel). */
static int two_consumers(bool thread_them, double timeout_s, int *met, int *rc_out) {
    rdv r;
    rdv_init(&r, timeout_s);
    src s = {.n = 100, .tag = 'x'};
    node a = {.r = &r, .meet_all = true}, b = {.r = &r, .meet_all = true};
    rill_pipeline *p = NULL;
    rill_stage *ss, *bc, *sa, *sb;
    const rill_stage_opts *o = thread_them ? &threaded : NULL;
    int rc = rill_pipeline_new("two", &p);
    if (!rc && !(rc = rill_stage_add(p, "src", &src_ops, &s, &threaded, &ss)) &&
        !(rc = rill_broadcast_add(p, "bc", NULL, &bc)) &&
        !(rc = rill_stage_add(p, "a", &node_ops, &a, o, &sa)) &&
        !(rc = rill_stage_add(p, "b", &node_ops, &b, o, &sb)) && !(rc = rill_connect(ss, bc)) &&
        !(rc = rill_connect(bc, sa)))
        rc = rill_connect(bc, sb);
    if (!rc)
        rc = rill_pipeline_run(p);
    rill_pipeline_free(p);
    *met = atomic_load(&r.met);
    *rc_out = rc;
    rdv_fini(&r);
    return a.failed_meets + b.failed_meets + (a.w.calls != 100) + (b.w.calls != 100);
}

RILL_TEST(thread_parallel, two_threaded_consumers_meet_on_every_item) {
    int met, rc;
    CHECK_EQ(two_consumers(true, 10.0, &met, &rc), 0);
    CHECK_OK(rc);
    CHECK_EQ(met, 100);
}

/* Control: inline, the same stages cannot meet, and the test says so (after
 * a short timeout) instead of hanging. */
RILL_TEST(thread_parallel, control_inline_consumers_cannot_meet) {
    int met, rc;
    CHECK(two_consumers(false, 0.2, &met, &rc) > 0);
    CHECK_OK(rc);
    CHECK_EQ(met, 0);
}

/* A threaded source and the threaded stage it feeds run in parallel: the
 * source flushes each item and meets the consumer, which meets it on
 * receipt. Also for an inline stage promoted because two threaded sources
 * feed it: it meets source 1 on source 1's items (source 2 does not meet). */
static int producer_consumer(bool promoted, bool thread_them, double timeout_s, int *met,
                             int *rc_out) {
    rdv r;
    rdv_init(&r, timeout_s);
    src s1 = {.n = 50, .tag = '1', .r = &r}, s2 = {.n = 50, .tag = '2'};
    node c = {.r = &r, .meet_tag = '1'};
    rill_pipeline *p = NULL;
    rill_stage *a, *b, *sc;
    const rill_stage_opts *o = thread_them ? &threaded : NULL;
    int rc = rill_pipeline_new("pc", &p);
    if (!rc && !(rc = rill_stage_add(p, "s1", &src_ops, &s1, o, &a)) &&
        !(rc = rill_stage_add(p, "c", &node_ops, &c, promoted ? NULL : o, &sc)))
        rc = rill_connect(a, sc);
    if (!rc && promoted && !(rc = rill_stage_add(p, "s2", &src_ops, &s2, o, &b)))
        rc = rill_connect(b, sc);
    if (!rc && !(rc = rill_pipeline_start(p)) && thread_them && !rill_stage_threaded(sc))
        rc = -1;
    if (!rc)
        rc = rill_pipeline_run(p);
    rill_pipeline_free(p);
    *met = atomic_load(&r.met);
    *rc_out = rc;
    rdv_fini(&r);
    return s1.failed_meets + c.failed_meets + (c.w.calls != (promoted ? 100 : 50));
}

RILL_TEST(thread_parallel, threaded_source_and_consumer_meet) {
    int met, rc;
    CHECK_EQ(producer_consumer(false, true, 10.0, &met, &rc), 0);
    CHECK_OK(rc);
    CHECK_EQ(met, 50);
}

RILL_TEST(thread_parallel, promoted_stage_meets_its_producer) {
    int met, rc;
    CHECK_EQ(producer_consumer(true, true, 10.0, &met, &rc), 0);
    CHECK_OK(rc);
    CHECK_EQ(met, 50);
}

RILL_TEST(thread_parallel, control_inline_source_and_consumer_cannot_meet) {
    int met, rc;
    CHECK(producer_consumer(false, false, 0.2, &met, &rc) > 0);
    CHECK_OK(rc);
    CHECK_EQ(met, 0);
}

/* ---- which thread runs what ------------------------------------------------------ */

/*   s0 (caller's thread) -> y ----------------.
 *   s1 (threaded) -> x -> t (threaded) -> u    v
 *                     \                      t
 *   s2 (threaded) ----> m (inline: promoted) -> n
 * x runs on s1's thread, u on t's, n on m's, y on the caller's; t and m on
 * threads of their own, distinct from their producers'. Closes run there
 * too. */
RILL_TEST(thread_parallel, stages_run_on_the_threads_the_model_says) {
    src s0 = {.n = 40, .tag = '0'}, s1 = {.n = 40, .tag = '1'}, s2 = {.n = 40, .tag = '2'};
    node x = {0}, t = {0}, u = {0}, m = {0}, n = {0}, y = {0};
    rill_pipeline *p = NULL;
    rill_stage *S0, *S1, *S2, *X, *T, *U, *M, *N, *Y;
    CHECK_OK(rill_pipeline_new("where", &p));
    CHECK_OK(rill_stage_add(p, "s0", &src_ops, &s0, NULL, &S0));
    CHECK_OK(rill_stage_add(p, "s1", &src_ops, &s1, &threaded, &S1));
    CHECK_OK(rill_stage_add(p, "s2", &src_ops, &s2, &threaded, &S2));
    CHECK_OK(rill_stage_add(p, "x", &node_ops, &x, NULL, &X));
    CHECK_OK(rill_stage_add(p, "t", &node_ops, &t, &threaded, &T));
    CHECK_OK(rill_stage_add(p, "u", &node_ops, &u, NULL, &U));
    CHECK_OK(rill_stage_add(p, "m", &node_ops, &m, NULL, &M));
    CHECK_OK(rill_stage_add(p, "n", &node_ops, &n, NULL, &N));
    CHECK_OK(rill_stage_add(p, "y", &node_ops, &y, NULL, &Y));
    CHECK_OK(rill_connect(S0, Y));
    CHECK_OK(rill_connect(Y, T));
    CHECK_OK(rill_connect(S1, X));
    CHECK_OK(rill_connect(X, T));
    CHECK_OK(rill_connect(T, U));
    CHECK_OK(rill_connect(X, M));
    CHECK_OK(rill_connect(S2, M));
    CHECK_OK(rill_connect(M, N));
    CHECK_OK(rill_pipeline_start(p));
    /* threads of their own: the flagged ones and the promoted m */
    CHECK(rill_stage_threaded(S1) && rill_stage_threaded(S2) && rill_stage_threaded(T) &&
          rill_stage_threaded(M));
    CHECK(!rill_stage_threaded(S0) && !rill_stage_threaded(X) && !rill_stage_threaded(U) &&
          !rill_stage_threaded(N) && !rill_stage_threaded(Y));
    CHECK_OK(rill_pipeline_run(p));
    pthread_t me = pthread_self();
    /* every stage ran, and always on one thread */
    where *all[] = {&s0.w, &s1.w, &s2.w, &x.w, &t.w, &u.w, &m.w, &n.w, &y.w};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        CHECK(all[i]->sent && !all[i]->varied);
        CHECK_EQ(all[i]->closes, 1);
        CHECK(pthread_equal(all[i]->close_thr, all[i]->send_thr));
    }
    CHECK_EQ(t.w.calls, 80);
    CHECK_EQ(m.w.calls, 80);
    /* the caller's thread: s0 and y */
    CHECK(pthread_equal(s0.w.send_thr, me) && pthread_equal(y.w.send_thr, me));
    /* inline stages on their producer's thread */
    CHECK(pthread_equal(x.w.send_thr, s1.w.send_thr));
    CHECK(pthread_equal(u.w.send_thr, t.w.send_thr));
    CHECK(pthread_equal(n.w.send_thr, m.w.send_thr));
    /* threads of their own, all different */
    pthread_t own[] = {me, s1.w.send_thr, s2.w.send_thr, t.w.send_thr, m.w.send_thr};
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            CHECK(!pthread_equal(own[i], own[j]));
    rill_pipeline_free(p);
}
