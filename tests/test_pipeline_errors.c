/* The pipeline engine's refusals and failure paths: graph validation (cycles,
 * bad connections, bad options, names, calls in the wrong phase), stage
 * errors (first error wins, innermost stage named, close still runs once,
 * emits after an error discarded) and abort, including from a signal
 * handler. Stages are defined here; see test_pipeline.c for the happy paths. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* ---- test stages ------------------------------------------------------------- */

static int g_destroyed;

static void counted_free(void *state) {
    g_destroyed++;
    free(state);
}

/* node: counts and forwards items; can fail, abort or raise SIGUSR1 on its
 * Nth item, emit "final" on close, or fail in close. */
typedef struct node {
    int sends, closes;
    int fail_at;         /* on this send (1-based): fail with fail_code */
    int fail_code;
    bool fail_detail;    /* via rill_stage_fail with a detail, or plain return */
    int abort_at;        /* on this send: rill_pipeline_abort */
    int raise_at;        /* on this send: raise(SIGUSR1) */
    bool close_emit;     /* emit "final" on close */
    int close_emit_rc;
    int close_fail;      /* close fails with this code (rill_stage_fail) */
    int finals;          /* "final" items received */
} node;

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    node *n = state;
    n->sends++;
    if (rill_item_eq(it, "final", 5))
        n->finals++;
    if (n->sends == n->fail_at)
        return n->fail_detail ? rill_stage_fail(st, n->fail_code, "disk on fire %d", 42)
                              : n->fail_code;
    if (n->sends == n->abort_at)
        rill_pipeline_abort(rill_stage_pipeline(st));
    if (n->sends == n->raise_at)
        raise(SIGUSR1);
    return rill_emit(st, it);
}

static int node_close(rill_stage *st, void *state) {
    node *n = state;
    n->closes++;
    if (n->close_emit) {
        rill_item it = rill_item_cstr("final");
        n->close_emit_rc = rill_emit(st, &it);
    }
    if (n->close_fail)
        return rill_stage_fail(st, n->close_fail, "cannot flush");
    return 0;
}

static const rill_stage_ops node_ops = {
    .send = node_send, .close = node_close, .free = counted_free};

static int add_node(rill_pipeline *p, const char *name, node **n, rill_stage **st) {
    node *x = calloc(1, sizeof *x);
    if (!x)
        return RILL_ENOMEM;
    int rc = rill_stage_add(p, name, &node_ops, x, NULL, st);
    if (rc)
        free(x);
    else if (n)
        *n = x;
    return rc;
}

/* gen: emits one item per produce call, limit items (-1: forever); can fail
 * on a given call. */
typedef struct gen {
    int calls, closes, limit;
    int fail_at, fail_code;
} gen;

static int gen_produce(rill_stage *st, void *state) {
    gen *g = state;
    g->calls++;
    if (g->calls == g->fail_at)
        return rill_stage_fail(st, g->fail_code, "cannot open '%s'", "nowhere.log");
    if (g->limit >= 0 && g->calls > g->limit)
        return RILL_EDONE;
    rill_item it = rill_item_cstr("item");
    return rill_emit(st, &it);
}

static int gen_close(rill_stage *st, void *state) {
    (void)st;
    ((gen *)state)->closes++;
    return 0;
}

static const rill_stage_ops gen_ops = {
    .produce = gen_produce, .close = gen_close, .free = counted_free};

static int add_gen(rill_pipeline *p, const char *name, int limit, gen **g, rill_stage **st) {
    gen *x = calloc(1, sizeof *x);
    if (!x)
        return RILL_ENOMEM;
    x->limit = limit;
    int rc = rill_stage_add(p, name, &gen_ops, x, NULL, st);
    if (rc)
        free(x);
    else if (g)
        *g = x;
    return rc;
}

/* ---- graph validation --------------------------------------------------------- */

RILL_TEST(pipeline_build, cycles_rejected_and_pipeline_still_usable) {
    rill_pipeline *p;
    rill_stage *s, *a, *b, *c;
    gen *gs;
    node *na, *nb, *nc;
    CHECK_OK(rill_pipeline_new("cycles", &p));
    CHECK_OK(add_gen(p, "S", 3, &gs, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(add_node(p, "B", &nb, &b));
    CHECK_OK(add_node(p, "C", &nc, &c));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(b, c));
    CHECK_EQ(rill_connect(c, a), RILL_ECYCLE); /* closes A->B->C->A */
    CHECK_EQ(rill_connect(c, b), RILL_ECYCLE);
    CHECK_EQ(rill_connect(b, a), RILL_ECYCLE);
    CHECK_EQ(rill_connect(a, a), RILL_ECYCLE); /* self-loop */
    CHECK_EQ(rill_stage_outputs(c), 0);        /* a rejected connect leaves nothing */
    CHECK_OK(rill_connect(a, c));              /* a shortcut is not a cycle */
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(na->sends, 3);
    CHECK_EQ(nb->sends, 3);
    CHECK_EQ(nc->sends, 6);
    CHECK_EQ(gs->closes, 1);
    CHECK_EQ(na->closes, 1);
    CHECK_EQ(nb->closes, 1);
    CHECK_EQ(nc->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_build, connect_rejections) {
    rill_pipeline *p, *q;
    rill_stage *s, *a, *qa;
    CHECK_OK(rill_pipeline_new("p", &p));
    CHECK_OK(rill_pipeline_new("q", &q));
    CHECK_OK(add_gen(p, "S", 0, NULL, &s));
    CHECK_OK(add_node(p, "A", NULL, &a));
    CHECK_OK(add_node(q, "A", NULL, &qa));
    CHECK_EQ(rill_connect(a, s), RILL_EINVAL);  /* into a source */
    CHECK_EQ(rill_connect(s, s), RILL_EINVAL);
    CHECK_EQ(rill_connect(a, qa), RILL_EINVAL); /* across pipelines */
    CHECK_EQ(rill_connect(qa, a), RILL_EINVAL);
    CHECK_EQ(rill_connect(NULL, a), RILL_EINVAL);
    CHECK_EQ(rill_connect(a, NULL), RILL_EINVAL);
    CHECK_EQ(rill_stage_outputs(a), 0);
    CHECK_EQ(rill_stage_outputs(qa), 0);
    rill_pipeline_free(q);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_build, add_rejections_leave_state_with_caller) {
    static const rill_stage_ops neither = {.close = NULL, .free = counted_free};
    static const rill_stage_ops both = {
        .send = node_send, .produce = gen_produce, .free = counted_free};
    rill_pipeline *p;
    rill_stage *st = (rill_stage *)&st; /* not NULL: must be cleared on failure */
    node mine = {0};                    /* on the stack: a destroy would crash ASan */
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new("adds", &p));
    CHECK_EQ(rill_stage_add(p, "x", &neither, &mine, NULL, &st), RILL_EINVAL);
    CHECK(st == NULL);
    CHECK_EQ(rill_stage_add(p, "x", &both, &mine, NULL, &st), RILL_EINVAL);
    CHECK_EQ(rill_stage_add(p, "x", NULL, &mine, NULL, &st), RILL_EINVAL);
    CHECK_EQ(rill_stage_add(NULL, "x", &node_ops, &mine, NULL, &st), RILL_EINVAL);
    rill_stage_opts unknown = {.flags = 1u << 7};
    CHECK_EQ(rill_stage_add(p, "x", &node_ops, &mine, &unknown, &st), RILL_EINVAL);
    CHECK(rill_pipeline_find(p, "x") == NULL);

    rill_stage_opts zero = {0};
    node *x = calloc(1, sizeof *x);
    CHECK(x);
    CHECK_OK(rill_stage_add(p, "x", &node_ops, x, &zero, &st));
    CHECK(st != NULL && rill_pipeline_find(p, "x") == st);
    CHECK_EQ(rill_stage_add(p, "x", &node_ops, &mine, NULL, NULL), RILL_EEXIST);
    rill_pipeline_free(p);
    CHECK_EQ(g_destroyed, 1); /* x only: the refused states were never the pipeline's */
}

RILL_TEST(pipeline_build, auto_names_skip_taken_ones) {
    rill_pipeline *p;
    rill_stage *a, *b;
    CHECK_OK(rill_pipeline_new("names", &p));
    CHECK_OK(add_node(p, "stage-2", NULL, &a));
    CHECK_OK(add_node(p, NULL, NULL, &b)); /* would be "stage-2": taken */
    CHECK(rill_stage_name(b) != NULL);
    CHECK(strcmp(rill_stage_name(b), "stage-2") != 0);
    CHECK(rill_pipeline_find(p, rill_stage_name(b)) == b);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_build, no_changes_after_start) {
    rill_pipeline *p;
    rill_stage *e, *r, *late = NULL;
    node *x = calloc(1, sizeof *x);
    CHECK(x);
    CHECK_OK(rill_pipeline_new("started", &p));
    CHECK_OK(add_node(p, "E", NULL, &e));
    CHECK_OK(add_node(p, "R", NULL, &r));
    rill_item it = rill_item_cstr("a");
    CHECK_OK(rill_pipeline_push(p, e, &it)); /* starts it */
    CHECK_EQ(rill_stage_add(p, "late", &node_ops, x, NULL, &late), RILL_ESTATE);
    CHECK(late == NULL);
    CHECK_EQ(rill_connect(e, r), RILL_ESTATE);
    CHECK_OK(rill_pipeline_start(p)); /* starting twice is fine */
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(rill_stage_add(p, "late", &node_ops, x, NULL, &late), RILL_ESTATE);
    CHECK_EQ(rill_connect(e, r), RILL_ESTATE);
    free(x);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_build, diamond_ladder_cycle_check_is_linear) {
    /* 60 diamonds in a row have 2^60 paths: a cycle check that walks paths
     * instead of stages never finishes. */
    enum { K = 60 };
    rill_pipeline *p;
    rill_stage *top, *prev, *l, *r, *join;
    node *last = NULL;
    CHECK_OK(rill_pipeline_new("ladder", &p));
    CHECK_OK(add_node(p, NULL, NULL, &top));
    prev = top;
    for (int i = 0; i < K; i++) {
        CHECK_OK(add_node(p, NULL, NULL, &l));
        CHECK_OK(add_node(p, NULL, NULL, &r));
        CHECK_OK(add_node(p, NULL, &last, &join));
        CHECK_OK(rill_connect(prev, l));
        CHECK_OK(rill_connect(prev, r));
        CHECK_OK(rill_connect(l, join));
        CHECK_OK(rill_connect(r, join));
        prev = join;
    }
    rill_stage *side;
    CHECK_OK(add_node(p, "side", NULL, &side));
    CHECK_OK(rill_connect(side, top)); /* must search every stage below top */
    CHECK_EQ(rill_connect(prev, top), RILL_ECYCLE);
    CHECK_EQ(rill_connect(prev, side), RILL_ECYCLE);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(last->closes, 1);
    rill_pipeline_free(p);
}

/* ---- stage errors ------------------------------------------------------------- */

RILL_TEST(pipeline_errors, send_failure_innermost_stage_first_error) {
    rill_pipeline *p;
    rill_stage *s, *s2, *a, *b, *c;
    gen *gs, *gs2;
    node *na, *nb, *nc;
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new("fails", &p));
    CHECK_OK(add_gen(p, "S", -1, &gs, &s)); /* endless: only the error stops it */
    CHECK_OK(add_gen(p, "S2", 5, &gs2, &s2));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(add_node(p, "B", &nb, &b));
    CHECK_OK(add_node(p, "C", &nc, &c));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(s2, a));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(b, c));
    nc->fail_at = 2;
    nc->fail_code = -EIO;
    nc->fail_detail = true;
    na->close_emit = true;     /* emits after the error: discarded */
    nb->close_fail = -EPIPE;   /* a second error: not kept */
    CHECK_EQ(rill_pipeline_run(p), -EIO);
    CHECK_EQ(gs->calls, 2);    /* no produce call after the failing one */
    CHECK_EQ(gs2->calls, 0);   /* nor for the next source */
    CHECK_EQ(nc->sends, 2);
    CHECK_EQ(rill_pipeline_status(p), -EIO);
    CHECK_STREQ(rill_pipeline_errstage(p), "C");
    char want[256];
    snprintf(want, sizeof want, "stage 'C': disk on fire 42: %s", rill_strerror(-EIO));
    CHECK_STREQ(rill_pipeline_errmsg(p), want);
    CHECK(strstr(rill_pipeline_errmsg(p), "Input/output error") != NULL);
    CHECK_EQ(gs->closes, 1);
    CHECK_EQ(gs2->closes, 1);
    CHECK_EQ(na->closes, 1);
    CHECK_EQ(nb->closes, 1);
    CHECK_EQ(nc->closes, 1);
    CHECK_EQ(na->close_emit_rc, -EIO);
    CHECK_EQ(nb->finals, 0);
    CHECK_EQ(nb->sends, 2);
    CHECK_EQ(rill_pipeline_close(p), -EIO); /* later calls: the same */
    CHECK_EQ(nc->closes, 1);
    rill_pipeline_free(p);
    CHECK_EQ(g_destroyed, 5);
}

RILL_TEST(pipeline_errors, plain_return_code_names_innermost_stage) {
    rill_pipeline *p;
    rill_stage *s, *a, *b;
    node *nb;
    CHECK_OK(rill_pipeline_new("plain", &p));
    CHECK_OK(add_gen(p, "S", 10, NULL, &s));
    CHECK_OK(add_node(p, "A", NULL, &a));
    CHECK_OK(add_node(p, "B", &nb, &b));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(a, b));
    nb->fail_at = 1;
    nb->fail_code = -ENOSPC;
    CHECK_EQ(rill_pipeline_run(p), -ENOSPC);
    CHECK_STREQ(rill_pipeline_errstage(p), "B");
    char want[256];
    snprintf(want, sizeof want, "stage 'B': %s", rill_strerror(-ENOSPC));
    CHECK_STREQ(rill_pipeline_errmsg(p), want);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_errors, close_failure_reported_and_rest_closed) {
    rill_pipeline *p;
    rill_stage *s, *a, *b;
    node *na, *nb;
    CHECK_OK(rill_pipeline_new("closefail", &p));
    CHECK_OK(add_gen(p, "S", 2, NULL, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(add_node(p, "B", &nb, &b));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(a, b));
    na->close_emit = true; /* before its failure: delivered */
    na->close_fail = -EPIPE;
    CHECK_EQ(rill_pipeline_run(p), -EPIPE);
    CHECK_STREQ(rill_pipeline_errstage(p), "A");
    CHECK(strstr(rill_pipeline_errmsg(p), "stage 'A': cannot flush: ") != NULL);
    CHECK(strstr(rill_pipeline_errmsg(p), rill_strerror(-EPIPE)) != NULL);
    CHECK_OK(na->close_emit_rc);
    CHECK_EQ(nb->finals, 1);
    CHECK_EQ(nb->sends, 3);
    CHECK_EQ(nb->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_errors, produce_failure) {
    rill_pipeline *p;
    rill_stage *s, *s2, *a;
    gen *gs, *gs2;
    node *na;
    CHECK_OK(rill_pipeline_new("producefail", &p));
    CHECK_OK(add_gen(p, "S", 10, &gs, &s));
    CHECK_OK(add_gen(p, "S2", 10, &gs2, &s2));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(s2, a));
    gs->fail_at = 4;
    gs->fail_code = -ENOENT;
    CHECK_EQ(rill_pipeline_run(p), -ENOENT);
    CHECK_STREQ(rill_pipeline_errstage(p), "S");
    CHECK(strstr(rill_pipeline_errmsg(p), "stage 'S': cannot open 'nowhere.log': ") != NULL);
    CHECK_EQ(gs->calls, 4);
    CHECK_EQ(gs2->calls, 0);
    CHECK_EQ(na->sends, 3);
    CHECK_EQ(na->closes, 1);
    CHECK_EQ(gs2->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_errors, push_after_error_returns_it) {
    rill_pipeline *p;
    rill_stage *e, *r;
    node *nr;
    CHECK_OK(rill_pipeline_new("pusherr", &p));
    CHECK_OK(add_node(p, "E", NULL, &e));
    CHECK_OK(add_node(p, "R", &nr, &r));
    CHECK_OK(rill_connect(e, r));
    nr->fail_at = 2;
    nr->fail_code = -EBADMSG;
    rill_item it = rill_item_cstr("x");
    CHECK_OK(rill_pipeline_push(p, e, &it));
    CHECK_EQ(rill_pipeline_push(p, e, &it), -EBADMSG);
    CHECK_EQ(rill_pipeline_push(p, e, &it), -EBADMSG);
    CHECK_EQ(nr->sends, 2); /* the third push delivered nothing */
    CHECK_EQ(rill_pipeline_close(p), -EBADMSG);
    CHECK_EQ(nr->closes, 1);
    CHECK_STREQ(rill_pipeline_errstage(p), "R");
    rill_pipeline_free(p);
}

/* ---- abort ------------------------------------------------------------------------- */

RILL_TEST(pipeline_abort, from_inside_a_stage) {
    rill_pipeline *p;
    rill_stage *s, *a, *b;
    gen *gs;
    node *na, *nb;
    CHECK_OK(rill_pipeline_new("abort", &p));
    CHECK_OK(add_gen(p, "S", -1, &gs, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(add_node(p, "B", &nb, &b));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_connect(a, b));
    nb->abort_at = 5;
    na->close_emit = true;
    CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
    CHECK_EQ(gs->calls, 5);
    CHECK_EQ(nb->sends, 5);
    CHECK_EQ(nb->finals, 0);
    CHECK_EQ(na->close_emit_rc, RILL_EABORTED);
    CHECK_EQ(gs->closes, 1);
    CHECK_EQ(na->closes, 1);
    CHECK_EQ(nb->closes, 1);
    CHECK_EQ(rill_pipeline_status(p), RILL_EABORTED);
    CHECK(rill_pipeline_errstage(p) == NULL); /* no stage failed */
    CHECK_STREQ(rill_pipeline_errmsg(p), rill_strerror(RILL_EABORTED));
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_abort, before_run) {
    rill_pipeline *p;
    rill_stage *s, *a;
    gen *gs;
    node *na;
    CHECK_OK(rill_pipeline_new("early", &p));
    CHECK_OK(add_gen(p, "S", 3, &gs, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(rill_connect(s, a));
    rill_pipeline_abort(p);
    CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
    CHECK_EQ(gs->calls, 0);
    CHECK_EQ(gs->closes, 1);
    CHECK_EQ(na->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_abort, after_close_changes_nothing) {
    rill_pipeline *p;
    rill_stage *s, *a;
    node *na;
    CHECK_OK(rill_pipeline_new("late", &p));
    CHECK_OK(add_gen(p, "S", 3, NULL, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(rill_connect(s, a));
    CHECK_OK(rill_pipeline_run(p));
    rill_pipeline_abort(p);
    CHECK_OK(rill_pipeline_status(p));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_STREQ(rill_pipeline_errmsg(p), "");
    CHECK_EQ(na->sends, 3);
    CHECK_EQ(na->closes, 1);
    rill_pipeline_abort(NULL);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_abort, push_mode) {
    rill_pipeline *p;
    rill_stage *e;
    node *ne;
    CHECK_OK(rill_pipeline_new("pushabort", &p));
    CHECK_OK(add_node(p, "E", &ne, &e));
    rill_item it = rill_item_cstr("x");
    CHECK_OK(rill_pipeline_push(p, e, &it));
    rill_pipeline_abort(p);
    CHECK_EQ(rill_pipeline_push(p, e, &it), RILL_EABORTED);
    CHECK_EQ(ne->sends, 1);
    CHECK_EQ(rill_pipeline_close(p), RILL_EABORTED);
    CHECK_EQ(ne->closes, 1);
    CHECK_EQ(rill_pipeline_push(p, e, &it), RILL_ECLOSED);
    rill_pipeline_free(p);
}

static rill_pipeline *g_sig_pipeline;

static void on_sigusr1(int sig) {
    (void)sig;
    rill_pipeline_abort(g_sig_pipeline);
}

RILL_TEST(pipeline_abort, from_signal_handler) {
    rill_pipeline *p;
    rill_stage *s, *a;
    gen *gs;
    node *na;
    CHECK_OK(rill_pipeline_new("signal", &p));
    CHECK_OK(add_gen(p, "S", -1, &gs, &s));
    CHECK_OK(add_node(p, "A", &na, &a));
    CHECK_OK(rill_connect(s, a));
    na->raise_at = 3;
    g_sig_pipeline = p;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr1;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    int rc = rill_pipeline_run(p);
    sigaction(SIGUSR1, &old, NULL);
    g_sig_pipeline = NULL;
    CHECK_EQ(rc, RILL_EABORTED);
    CHECK_EQ(gs->calls, 3);
    CHECK_EQ(na->closes, 1);
    rill_pipeline_free(p);
}
