/* The single-threaded pipeline engine: delivery and close order, fan-out
 * ports, fan-in counting, sources, push mode, destroy, items and state
 * lifetime. Every stage is a small one defined here, so these tests depend
 * on the engine only, not on the built-in stages. Error paths, abort and
 * graph validation are in test_pipeline_errors.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* ---- test stages ----------------------------------------------------------- */

/* One event log shared by the stages of a test: "B:x" = B was sent x,
 * "B!" = B was closed. Comparing whole logs checks order across stages. */
typedef struct tlog {
    char s[8192];
    size_t len;
} tlog;

static void tlog_add(tlog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tlog_add(tlog *l, const char *fmt, ...) {
    if (l->len && l->len + 1 < sizeof l->s)
        l->s[l->len++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->s + l->len, sizeof l->s - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len = l->len + (size_t)n < sizeof l->s ? l->len + (size_t)n : sizeof l->s - 1;
}

static int g_destroyed; /* destroy callbacks of the current test */

/* rec: logs what it is sent, forwards it, and optionally emits on close the
 * number of items it received (from its own state: owner NULL). */
typedef struct rec {
    tlog *log;
    char name[16];
    int sends, closes;
    bool close_total;
    char total[24];
    int close_emit_rc;
} rec;

static int rec_send(rill_stage *st, void *state, const rill_item *it) {
    rec *r = state;
    r->sends++;
    tlog_add(r->log, "%s:%.*s", r->name, (int)it->len, (const char *)it->data);
    return rill_emit(st, it);
}

static int rec_close(rill_stage *st, void *state) {
    rec *r = state;
    r->closes++;
    tlog_add(r->log, "%s!", r->name);
    if (!r->close_total)
        return 0;
    snprintf(r->total, sizeof r->total, "%d", r->sends);
    rill_item it = rill_item_cstr(r->total);
    r->close_emit_rc = rill_emit(st, &it);
    return r->close_emit_rc;
}

static void counted_free(void *state) {
    g_destroyed++;
    free(state);
}

static const rill_stage_ops rec_ops = {
    .send = rec_send, .close = rec_close, .free = counted_free};

static int add_rec(rill_pipeline *p, const char *name, tlog *log, rec **r, rill_stage **st) {
    rec *x = calloc(1, sizeof *x);
    if (!x)
        return RILL_ENOMEM;
    x->log = log;
    snprintf(x->name, sizeof x->name, "%s", name ? name : "?");
    int rc = rill_stage_add(p, name, &rec_ops, x, NULL, st);
    if (rc)
        free(x);
    else if (r)
        *r = x;
    return rc;
}

/* src: emits items[] (or, if items is NULL, the numbers base, base+1, ...)
 * per_call at a time; RILL_EDONE once nothing is left. */
typedef struct src {
    tlog *log;
    char name[16];
    const char *const *items;
    size_t n, next, base;
    unsigned per_call;
    int calls, closes;
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    s->calls++;
    if (s->next == s->n)
        return RILL_EDONE;
    for (unsigned k = s->per_call ? s->per_call : 1; k && s->next < s->n; k--) {
        rill_item it = rill_item_cstr(s->items ? s->items[s->next] : "");
        if (!s->items) { /* a counted copy: owner NULL bytes must not change */
            char num[24];
            int len = snprintf(num, sizeof num, "%zu", s->base + s->next);
            if (rill_item_copy(num, (size_t)len, &it))
                return RILL_ENOMEM;
        }
        s->next++;
        int rc = rill_emit(st, &it);
        rill_item_release(&it);
        if (rc)
            return rc;
    }
    return 0;
}

static int src_close(rill_stage *st, void *state) {
    (void)st;
    src *s = state;
    s->closes++;
    if (s->log)
        tlog_add(s->log, "%s!", s->name);
    return 0;
}

static const rill_stage_ops src_ops = {
    .produce = src_produce, .close = src_close, .free = counted_free};

static int add_src(rill_pipeline *p, const char *name, tlog *log, const char *const *items,
                   size_t n, src **s, rill_stage **st) {
    src *x = calloc(1, sizeof *x);
    if (!x)
        return RILL_ENOMEM;
    x->log = log;
    snprintf(x->name, sizeof x->name, "%s", name);
    x->items = items;
    x->n = n;
    int rc = rill_stage_add(p, name, &src_ops, x, NULL, st);
    if (rc)
        free(x);
    else if (s)
        *s = x;
    return rc;
}

/* ---- linear chains and close order ------------------------------------------ */

RILL_TEST(pipeline, linear_chain_order_and_close_once) {
    static const char *const items[] = {"a", "b", "c"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *a, *b, *c, *d;
    rec *rb, *rc, *rd;
    src *sa;
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new("chain", &p));
    /* Added out of graph order: close order must follow the edges. */
    CHECK_OK(add_rec(p, "D", &log, &rd, &d));
    CHECK_OK(add_rec(p, "C", &log, &rc, &c));
    CHECK_OK(add_rec(p, "B", &log, &rb, &b));
    CHECK_OK(add_src(p, "A", &log, items, 3, &sa, &a));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(b, c));
    CHECK_OK(rill_connect(c, d));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_STREQ(log.s, "B:a C:a D:a B:b C:b D:b B:c C:c D:c A! B! C! D!");
    CHECK_EQ(sa->closes, 1);
    CHECK_EQ(rb->closes, 1);
    CHECK_EQ(rc->closes, 1);
    CHECK_EQ(rd->closes, 1);
    CHECK_EQ(sa->calls, 4); /* three items, then RILL_EDONE */
    CHECK_OK(rill_pipeline_status(p));
    CHECK_STREQ(rill_pipeline_errmsg(p), "");
    CHECK(rill_pipeline_errstage(p) == NULL);
    CHECK_OK(rill_pipeline_close(p)); /* already closed: same answer, no callbacks */
    CHECK_EQ(rd->closes, 1);
    CHECK_EQ(g_destroyed, 0);
    rill_pipeline_free(p);
    CHECK_EQ(g_destroyed, 4);
}

/* ---- fan-out ----------------------------------------------------------------- */

/* router: "all" goes to every port, a digit d to port d only. */
typedef struct router {
    int einval;
} router;

static int router_send(rill_stage *st, void *state, const rill_item *it) {
    router *r = state;
    if (rill_item_eq(it, "all", 3))
        return rill_emit(st, it);
    int rc = rill_emit_to(st, (unsigned)(((const char *)it->data)[0] - '0'), it);
    if (rc == RILL_EINVAL) {
        r->einval++;
        return 0;
    }
    return rc;
}

static const rill_stage_ops router_ops = {.send = router_send, .free = counted_free};

RILL_TEST(pipeline, fanout_ports_follow_connect_order) {
    static const char *const items[] = {"all", "2", "0", "1", "3", "9", "all"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *s, *r, *x, *y, *z;
    router *rs = calloc(1, sizeof *rs);
    CHECK(rs);
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    CHECK_STREQ(rill_pipeline_name(p), "pipeline");
    CHECK_OK(add_src(p, "S", NULL, items, 7, NULL, &s));
    CHECK_OK(rill_stage_add(p, "R", &router_ops, rs, NULL, &r));
    CHECK_OK(add_rec(p, "Z", &log, NULL, &z)); /* add order Z, Y, X ... */
    CHECK_OK(add_rec(p, "Y", &log, NULL, &y));
    CHECK_OK(add_rec(p, "X", &log, NULL, &x));
    CHECK_OK(rill_connect(s, r));
    CHECK_EQ(rill_stage_outputs(r), 0);
    CHECK_OK(rill_connect(r, x)); /* ... but ports X=0, Y=1, Z=2 */
    CHECK_OK(rill_connect(r, y));
    CHECK_OK(rill_connect(r, z));
    CHECK_EQ(rill_stage_outputs(r), 3);
    CHECK_OK(rill_pipeline_run(p));
    CHECK_STREQ(log.s, "X:all Y:all Z:all Z:2 X:0 Y:1 X:all Y:all Z:all X! Y! Z!");
    CHECK_EQ(rs->einval, 2); /* ports 3 and 9 do not exist */
    rill_pipeline_free(p);
    CHECK_EQ(g_destroyed, 5);
}

/* ---- fan-in ------------------------------------------------------------------ */

RILL_TEST(pipeline, fanin_reducer_closes_once_after_last_producer) {
    static const char *const i1[] = {"1a", "1b"}, *const i2[] = {"2a"},
                             *const i3[] = {"3a", "3b", "3c"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *p1, *p2, *p3, *r, *out;
    rec *rr, *ro;
    CHECK_OK(rill_pipeline_new("fanin", &p));
    CHECK_OK(add_src(p, "P1", &log, i1, 2, NULL, &p1));
    CHECK_OK(add_src(p, "P2", &log, i2, 1, NULL, &p2));
    CHECK_OK(add_src(p, "P3", &log, i3, 3, NULL, &p3));
    CHECK_OK(add_rec(p, "R", &log, &rr, &r));
    CHECK_OK(add_rec(p, "O", &log, &ro, &out));
    rr->close_total = true; /* the reducer emits its total on close */
    CHECK_OK(rill_connect(p1, r));
    CHECK_OK(rill_connect(p2, r));
    CHECK_OK(rill_connect(p3, r));
    CHECK_OK(rill_connect(r, out));
    CHECK_OK(rill_pipeline_run(p));
    /* Every item, then the producers' closes, then R once, then its total
     * reaching O before O's own close. */
    CHECK_STREQ(log.s, "R:1a O:1a R:1b O:1b R:2a O:2a R:3a O:3a R:3b O:3b R:3c O:3c "
                       "P1! P2! P3! R! O:6 O!");
    CHECK_EQ(rr->closes, 1);
    CHECK_EQ(rr->sends, 6);
    CHECK_OK(rr->close_emit_rc);
    CHECK_EQ(ro->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline, diamond_closes_join_once) {
    static const char *const items[] = {"x"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *a, *b, *c, *d;
    rec *rd;
    CHECK_OK(rill_pipeline_new("diamond", &p));
    CHECK_OK(add_src(p, "A", &log, items, 1, NULL, &a));
    CHECK_OK(add_rec(p, "B", &log, NULL, &b));
    CHECK_OK(add_rec(p, "C", &log, NULL, &c));
    CHECK_OK(add_rec(p, "D", &log, &rd, &d));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(a, c));
    CHECK_OK(rill_connect(b, d));
    CHECK_OK(rill_connect(c, d));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_STREQ(log.s, "B:x D:x C:x D:x A! B! C! D!");
    CHECK_EQ(rd->closes, 1);
    CHECK_EQ(rd->sends, 2);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline, mixed_depths_and_duplicate_edge) {
    /* A->B->C->D, A->D directly, E->D, and E->D a second time (every item of
     * E twice, and two producer counts to release). */
    static const char *const ia[] = {"a"}, *const ie[] = {"e"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *a, *b, *c, *d, *e;
    rec *rd;
    CHECK_OK(rill_pipeline_new("mixed", &p));
    CHECK_OK(add_src(p, "A", &log, ia, 1, NULL, &a));
    CHECK_OK(add_rec(p, "B", &log, NULL, &b));
    CHECK_OK(add_rec(p, "C", &log, NULL, &c));
    CHECK_OK(add_rec(p, "D", &log, &rd, &d));
    CHECK_OK(add_src(p, "E", &log, ie, 1, NULL, &e));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(b, c));
    CHECK_OK(rill_connect(c, d));
    CHECK_OK(rill_connect(a, d));
    CHECK_OK(rill_connect(e, d));
    CHECK_OK(rill_connect(e, d));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_STREQ(log.s, "B:a C:a D:a D:a D:e D:e A! B! C! E! D!");
    CHECK_EQ(rd->closes, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline, close_emits_reach_downstream_before_its_close) {
    /* Two reducers in a row, each emitting its total on close: the second
     * counts the first's total as one more item. */
    static const char *const items[] = {"a", "b", "c", "d"};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *s, *r1, *r2, *o;
    rec *x1, *x2;
    CHECK_OK(rill_pipeline_new("totals", &p));
    CHECK_OK(add_src(p, "S", NULL, items, 4, NULL, &s));
    CHECK_OK(add_rec(p, "R1", &log, &x1, &r1));
    CHECK_OK(add_rec(p, "R2", &log, &x2, &r2));
    CHECK_OK(add_rec(p, "O", &log, NULL, &o));
    x1->close_total = x2->close_total = true;
    CHECK_OK(rill_connect(s, r1));
    CHECK_OK(rill_connect(r1, r2));
    CHECK_OK(rill_connect(r2, o));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_STREQ(log.s, "R1:a R2:a O:a R1:b R2:b O:b R1:c R2:c O:c R1:d R2:d O:d "
                       "R1! R2:4 O:4 R2! O:5 O!");
    rill_pipeline_free(p);
}

/* ---- sources ----------------------------------------------------------------- */

/* seq: checks that items are the numbers 0, 1, 2, ... in order. */
typedef struct seq {
    size_t next, bad;
} seq;

static int seq_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    seq *q = state;
    char buf[24];
    snprintf(buf, sizeof buf, "%zu", q->next++);
    if (!rill_item_eq(it, buf, strlen(buf)))
        q->bad++;
    return 0;
}

static const rill_stage_ops seq_ops = {.send = seq_send, .free = counted_free};

RILL_TEST(pipeline, sources_run_to_exhaustion_in_add_order) {
    const size_t n1 = 1000, n2 = 500;
    const unsigned per1 = 64, per2 = 7;
    rill_pipeline *p;
    rill_stage *s1, *s2, *k;
    src *x1, *x2;
    seq *q = calloc(1, sizeof *q);
    CHECK(q);
    CHECK_OK(rill_pipeline_new("sources", &p));
    CHECK_OK(add_src(p, "first", NULL, NULL, n1, &x1, &s1));
    CHECK_OK(rill_stage_add(p, "check", &seq_ops, q, NULL, &k));
    CHECK_OK(add_src(p, "second", NULL, NULL, n2, &x2, &s2));
    x1->per_call = per1;
    x2->per_call = per2;
    x2->base = n1; /* numbers continue where "first" stops */
    CHECK_OK(rill_connect(s2, k));
    CHECK_OK(rill_connect(s1, k));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(q->next, n1 + n2);
    CHECK_EQ(q->bad, 0);
    CHECK_EQ(x1->calls, (n1 + per1 - 1) / per1 + 1); /* the last call says RILL_EDONE */
    CHECK_EQ(x2->calls, (n2 + per2 - 1) / per2 + 1);
    CHECK_EQ(x1->closes, 1);
    CHECK_EQ(x2->closes, 1);
    rill_pipeline_free(p);
}

/* ---- push mode ----------------------------------------------------------------- */

RILL_TEST(pipeline, push_then_close_completes_results) {
    tlog log = {0};
    rill_pipeline *p, *other;
    rill_stage *e1, *e2, *r, *o, *s, *foreign;
    rec *rr, *ro;
    CHECK_OK(rill_pipeline_new("push", &p));
    CHECK_OK(rill_pipeline_new("other", &other));
    CHECK_OK(add_rec(p, "E1", &log, NULL, &e1));
    CHECK_OK(add_rec(p, "E2", &log, NULL, &e2));
    CHECK_OK(add_rec(p, "R", &log, &rr, &r));
    CHECK_OK(add_rec(p, "O", &log, &ro, &o));
    CHECK_OK(add_src(p, "S", NULL, NULL, 0, NULL, &s));
    CHECK_OK(add_rec(other, "E1", &log, NULL, &foreign));
    rr->close_total = true;
    CHECK_OK(rill_connect(e1, r));
    CHECK_OK(rill_connect(e2, r));
    CHECK_OK(rill_connect(r, o));
    rill_item a = rill_item_cstr("a"), b = rill_item_cstr("b");
    CHECK_OK(rill_pipeline_push(p, e1, &a));
    CHECK_OK(rill_pipeline_push(p, e2, &b));
    CHECK_OK(rill_pipeline_push(p, e1, &b));
    CHECK_EQ(rill_pipeline_push(p, r, &a), RILL_EINVAL);       /* has producers */
    CHECK_EQ(rill_pipeline_push(p, s, &a), RILL_EINVAL);       /* a source */
    CHECK_EQ(rill_pipeline_push(p, foreign, &a), RILL_EINVAL); /* not p's */
    CHECK_EQ(rill_pipeline_push(p, NULL, &a), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_push(p, e1, NULL), RILL_EINVAL);
    CHECK_EQ(rr->closes, 0); /* nothing closes before rill_pipeline_close */
    CHECK_STREQ(log.s, "E1:a R:a O:a E2:b R:b O:b E1:b R:b O:b");
    CHECK_OK(rill_pipeline_close(p));
    CHECK_STREQ(log.s, "E1:a R:a O:a E2:b R:b O:b E1:b R:b O:b E1! E2! R! O:3 O!");
    CHECK_EQ(rr->closes, 1);
    CHECK_EQ(ro->closes, 1);
    CHECK_EQ(rill_pipeline_push(p, e1, &a), RILL_ECLOSED);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(ro->closes, 1);
    rill_pipeline_free(other);
    rill_pipeline_free(p);
}

/* ---- destroy ------------------------------------------------------------------- */

RILL_TEST(pipeline, destroy_never_run_frees_every_state) {
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *a, *b, *c;
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new("idle", &p));
    CHECK_OK(add_src(p, "A", &log, NULL, 5, NULL, &a));
    CHECK_OK(add_rec(p, "B", &log, NULL, &b));
    CHECK_OK(add_rec(p, "C", &log, NULL, &c));
    CHECK_OK(add_rec(p, NULL, &log, NULL, NULL));
    CHECK_OK(rill_connect(a, b));
    CHECK_OK(rill_connect(b, c));
    rill_pipeline_free(p);
    CHECK_EQ(g_destroyed, 4);
    CHECK_STREQ(log.s, ""); /* never started: no close callbacks */
    rill_pipeline_free(NULL);
}

RILL_TEST(pipeline, destroy_closes_a_started_pipeline) {
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *e, *r;
    g_destroyed = 0;
    CHECK_OK(rill_pipeline_new("open", &p));
    CHECK_OK(add_rec(p, "E", &log, NULL, &e));
    CHECK_OK(add_rec(p, "R", &log, NULL, &r));
    CHECK_OK(rill_connect(e, r));
    rill_item a = rill_item_cstr("a");
    CHECK_OK(rill_pipeline_push(p, e, &a));
    rill_pipeline_free(p); /* never closed by the caller */
    CHECK_STREQ(log.s, "E:a R:a E! R!");
    CHECK_EQ(g_destroyed, 2);
}

/* ---- names and handles ----------------------------------------------------------- */

RILL_TEST(pipeline, names_and_handles) {
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *a, *b, *c;
    rec *rb;
    CHECK_OK(rill_pipeline_new("named", &p));
    CHECK_STREQ(rill_pipeline_name(p), "named");
    CHECK_OK(add_rec(p, "first", &log, NULL, &a));
    CHECK_OK(add_rec(p, NULL, &log, &rb, &b));
    CHECK_OK(add_rec(p, NULL, &log, NULL, &c));
    CHECK_STREQ(rill_stage_name(b), "stage-2");
    CHECK_STREQ(rill_stage_name(c), "stage-3");
    CHECK(rill_pipeline_find(p, "first") == a);
    CHECK(rill_pipeline_find(p, "stage-2") == b);
    CHECK(rill_pipeline_find(p, "nope") == NULL);
    CHECK(rill_stage_state(b) == rb);
    CHECK(rill_stage_ops_of(b) == &rec_ops);
    CHECK(rill_stage_pipeline(b) == p);
    rill_pipeline_free(p);
}

/* ---- items ------------------------------------------------------------------------- */

RILL_TEST(items, copy_static_cstr_eq) {
    char src_bytes[] = {'a', '\0', 'b', 'c'};
    rill_item it;
    CHECK_OK(rill_item_copy(src_bytes, sizeof src_bytes, &it));
    CHECK(it.data != src_bytes);
    CHECK_EQ(it.len, 4);
    CHECK(memcmp(it.data, src_bytes, 4) == 0);
    CHECK_EQ(((const char *)it.data)[4], '\0');
    CHECK(it.owner != NULL);
    CHECK_EQ(rill_ref_count(it.owner), 1);
    rill_item_retain(&it);
    CHECK_EQ(rill_ref_count(it.owner), 2);
    rill_item_release(&it);
    CHECK_EQ(rill_ref_count(it.owner), 1);
    rill_item_release(&it); /* frees: ASan reports a leak or a double free */

    rill_item empty;
    CHECK_OK(rill_item_copy(NULL, 0, &empty));
    CHECK_EQ(empty.len, 0);
    CHECK_EQ(((const char *)empty.data)[0], '\0');
    rill_item_release(&empty);
    CHECK_EQ(rill_item_copy(NULL, 3, &empty), RILL_EINVAL);
    CHECK_EQ(rill_item_copy("x", 1, NULL), RILL_EINVAL);

    rill_item s = rill_item_static("hello", 3);
    CHECK(s.owner == RILL_REF_STATIC);
    CHECK_EQ(s.len, 3);
    CHECK(rill_item_eq(&s, "hel", 3));
    CHECK(!rill_item_eq(&s, "hex", 3));
    CHECK(!rill_item_eq(&s, "hell", 4));
    unsigned long before = rill_ref_count(RILL_REF_STATIC);
    rill_item_retain(&s); /* static: no-ops, the shared count untouched */
    rill_item_release(&s);
    rill_ref_retain(RILL_REF_STATIC);
    CHECK_EQ(rill_ref_count(RILL_REF_STATIC), before);
    rill_item b = rill_item_borrow("hello", 3);
    CHECK(b.owner == NULL && rill_item_borrowed(&b) && !rill_item_borrowed(&s));
    rill_item_retain(&b); /* borrowed: nothing to count */
    rill_item_release(&b);
    rill_item c = rill_item_cstr("abc");
    CHECK_EQ(c.len, 3);
    CHECK(rill_item_eq(&c, "abc", 3));
    rill_item z = rill_item_cstr("");
    CHECK(rill_item_eq(&z, NULL, 0));
}

/* A user payload: a struct embedding its counter, freed by its own release. */
typedef struct payload {
    rill_ref ref;
    int value;
} payload;

static int g_payload_freed;

static void payload_release(rill_ref *ref) {
    payload *pl = (payload *)(void *)((char *)ref - offsetof(payload, ref));
    g_payload_freed++;
    free(pl);
}

static int payload_produce(rill_stage *st, void *state) {
    int *next = state;
    if (*next == 10)
        return RILL_EDONE;
    payload *pl = malloc(sizeof *pl);
    if (!pl)
        return RILL_ENOMEM;
    rill_ref_init(&pl->ref, payload_release);
    pl->value = (*next)++;
    rill_item it = {pl, sizeof *pl, &pl->ref};
    int rc = rill_emit(st, &it);
    rill_ref_release(&pl->ref); /* the source's reference */
    return rc;
}

/* keeper: keeps the even payloads (one reference each) until destroy. */
typedef struct keeper {
    rill_item kept[16];
    size_t n;
    long sum; /* of every value seen */
} keeper;

static int keeper_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    keeper *k = state;
    const payload *pl = it->data;
    k->sum += pl->value;
    if (pl->value % 2 == 0 && k->n < 16) {
        rill_item_retain(it);
        k->kept[k->n++] = *it;
    }
    return 0;
}

static void keeper_destroy(void *state) {
    keeper *k = state;
    for (size_t i = 0; i < k->n; i++)
        rill_item_release(&k->kept[i]);
    free(k);
}

static int pass_send(rill_stage *st, void *state, const rill_item *it) {
    (void)state;
    return rill_emit(st, it);
}

static const rill_stage_ops payload_src_ops = {.produce = payload_produce, .free = free};
static const rill_stage_ops keeper_ops = {.send = keeper_send, .free = keeper_destroy};
static const rill_stage_ops pass_ops = {.send = pass_send};

RILL_TEST(items, custom_payload_released_once) {
    rill_pipeline *p;
    rill_stage *s, *m, *k;
    int *next = calloc(1, sizeof *next);
    keeper *kp = calloc(1, sizeof *kp);
    CHECK(next && kp);
    g_payload_freed = 0;
    CHECK_OK(rill_pipeline_new("payload", &p));
    CHECK_OK(rill_stage_add(p, "src", &payload_src_ops, next, NULL, &s));
    CHECK_OK(rill_stage_add(p, "pass", &pass_ops, NULL, NULL, &m));
    CHECK_OK(rill_stage_add(p, "keep", &keeper_ops, kp, NULL, &k));
    CHECK_OK(rill_connect(s, m));
    CHECK_OK(rill_connect(m, k));
    CHECK_OK(rill_pipeline_run(p));
    CHECK_EQ(kp->sum, 45);
    CHECK_EQ(kp->n, 5);
    CHECK_EQ(g_payload_freed, 5); /* the odd ones, as soon as the source let go */
    for (size_t i = 0; i < kp->n; i++) {
        const payload *pl = kp->kept[i].data;
        CHECK_EQ(pl->value, (int)(2 * i)); /* still readable after close */
        CHECK_EQ(rill_ref_count(kp->kept[i].owner), 1);
    }
    rill_pipeline_free(p);
    CHECK_EQ(g_payload_freed, 10);
}

/* ---- state lives until destroy --------------------------------------------------- */

/* last: keeps the last item it was sent, without a reference (owner NULL
 * items live until destroy). */
static int last_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    if (it->owner != RILL_REF_STATIC) /* kept: must live until free */
        return RILL_EINVAL;
    *(rill_item *)state = *it;
    return 0;
}

static const rill_stage_ops last_ops = {.send = last_send, .free = free};

RILL_TEST(pipeline, state_outlives_close) {
    static const char *const items[] = {"a", "b", "c"};
    rill_pipeline *p;
    rill_stage *s, *r, *l;
    rec *rr;
    tlog log = {0};
    rill_item *last = calloc(1, sizeof *last);
    CHECK(last);
    CHECK_OK(rill_pipeline_new("state", &p));
    CHECK_OK(add_src(p, "S", NULL, items, 3, NULL, &s));
    CHECK_OK(add_rec(p, "R", &log, &rr, &r));
    CHECK_OK(rill_stage_add(p, "L", &last_ops, last, NULL, &l));
    rr->close_total = true;
    CHECK_OK(rill_connect(s, r));
    CHECK_OK(rill_connect(r, l));
    CHECK_OK(rill_pipeline_run(p));
    /* The total points into R's state, which the pipeline still owns. */
    CHECK(last->data == rr->total);
    CHECK(rill_item_eq(last, "3", 1));
    CHECK_OK(rill_pipeline_close(p));
    CHECK(rill_item_eq(last, "3", 1));
    rill_pipeline_free(p);
}

/* ---- the example of docs/stages.md, compiled so the doc cannot rot ---------- */

/* BEGIN docs/stages.md example */
/* upper: a map-like stage emitting an upper-case copy of every item. */
typedef struct upper {
    unsigned long items; /* converted so far */
} upper;

static int upper_send(rill_stage *st, void *state, const rill_item *in) {
    upper *u = state;
    rill_item out;
    int rc = rill_item_copy(in->data, in->len, &out);
    if (rc)
        return rill_stage_fail(st, rc, "cannot copy a %zu-byte item", in->len);
    char *s = (char *)out.data; /* ours to change until it is emitted */
    for (size_t i = 0; i < out.len; i++)
        s[i] = (char)toupper((unsigned char)s[i]);
    u->items++;
    rc = rill_emit(st, &out);
    rill_item_release(&out); /* a stage that kept the copy took its own reference */
    return rc;
}

static const rill_stage_ops upper_ops = {.send = upper_send, .free = free};

/* count_lines: a sink counting items and bytes. On close it emits a summary
 * that points into its own state, which lives until rill_pipeline_free. */
typedef struct count_lines {
    unsigned long lines, bytes;
    char summary[64];
} count_lines;

static int count_lines_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    count_lines *c = state;
    c->lines++;
    c->bytes += item->len;
    return 0;
}

static int count_lines_close(rill_stage *st, void *state) {
    count_lines *c = state;
    int n = snprintf(c->summary, sizeof c->summary, "%lu lines, %lu bytes", c->lines,
                     c->bytes);
    rill_item it = rill_item_static(c->summary, (size_t)n);
    return rill_emit(st, &it);
}

static const rill_stage_ops count_lines_ops = {
    .send = count_lines_send, .close = count_lines_close, .free = free};

/* words: a source emitting the strings of a NULL-terminated array, two per
 * produce call. The strings must outlive the pipeline (owner NULL). */
typedef struct words {
    const char *const *next;
} words;

static int words_produce(rill_stage *st, void *state) {
    words *w = state;
    if (!*w->next)
        return RILL_EDONE;
    for (int k = 0; k < 2 && *w->next; k++) {
        rill_item it = rill_item_cstr(*w->next++);
        int rc = rill_emit(st, &it);
        if (rc)
            return rc; /* a stage downstream failed: stop */
    }
    return 0;
}

static const rill_stage_ops words_ops = {.produce = words_produce, .free = free};

/* Allocate a zeroed state and add a stage owning it. If the add fails the
 * state is still ours: free it. */
static int add_new(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                   size_t size, rill_stage **out) {
    void *state = calloc(1, size);
    if (!state)
        return RILL_ENOMEM;
    int rc = rill_stage_add(p, name, ops, state, NULL, out);
    if (rc)
        free(state);
    return rc;
}

/* Push mode, the seed's flow.send(line) ... flow.close(): push lines through
 * upper -> count_lines and copy the summary into buf. */
static int summarize(const char *const *lines, char *buf, size_t size) {
    rill_pipeline *p;
    rill_stage *up, *count;
    int rc = rill_pipeline_new("summarize", &p);
    if (rc)
        return rc;
    if ((rc = add_new(p, "upper", &upper_ops, sizeof(upper), &up)) == 0 &&
        (rc = add_new(p, "count", &count_lines_ops, sizeof(count_lines), &count)) == 0 &&
        (rc = rill_connect(up, count)) == 0) {
        for (; *lines && rc == 0; lines++) {
            rill_item line = rill_item_cstr(*lines);
            rc = rill_pipeline_push(p, up, &line);
        }
        int crc = rill_pipeline_close(p); /* every close has run: results complete */
        rc = rc ? rc : crc;
        if (rc)
            fprintf(stderr, "%s\n", rill_pipeline_errmsg(p));
        else
            snprintf(buf, size, "%s", ((count_lines *)rill_stage_state(count))->summary);
    }
    rill_pipeline_free(p); /* frees every state */
    return rc;
}

/* Run mode: a source drives the pipeline. Builds words -> upper -> sink and
 * runs it; sink is any stage the caller added to p. */
static int shout(rill_pipeline *p, const char *const *list, rill_stage *sink) {
    rill_stage *src, *up;
    int rc = add_new(p, "words", &words_ops, sizeof(words), &src);
    if (rc)
        return rc;
    ((words *)rill_stage_state(src))->next = list;
    if ((rc = add_new(p, "upper", &upper_ops, sizeof(upper), &up)) != 0 ||
        (rc = rill_connect(src, up)) != 0 || (rc = rill_connect(up, sink)) != 0)
        return rc;
    return rill_pipeline_run(p); /* start, produce until RILL_EDONE, close */
}
/* END docs/stages.md example */

RILL_TEST(stages_doc, example_push_mode) {
    static const char *const lines[] = {"hello", "World", "", "rill 1.0", NULL};
    size_t n = 0, bytes = 0;
    for (; lines[n]; n++)
        bytes += strlen(lines[n]);
    char want[64], got[64] = "";
    snprintf(want, sizeof want, "%zu lines, %zu bytes", n, bytes);
    CHECK_OK(summarize(lines, got, sizeof got));
    CHECK_STREQ(got, want);
}

RILL_TEST(stages_doc, example_run_mode) {
    static const char *const list[] = {"a", "Bc", "d-e", "xyz", "Q", NULL};
    tlog log = {0};
    rill_pipeline *p;
    rill_stage *sink;
    CHECK_OK(rill_pipeline_new("shout", &p));
    CHECK_OK(add_rec(p, "K", &log, NULL, &sink));
    CHECK_OK(shout(p, list, sink));
    CHECK_STREQ(log.s, "K:A K:BC K:D-E K:XYZ K:Q K!");
    const upper *u = rill_stage_state(rill_pipeline_find(p, "upper"));
    CHECK_EQ(u->items, 5);
    rill_pipeline_free(p);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len + 4096 + 1 > cap) {
            char *b = realloc(buf, cap = 2 * cap + 4096 + 1);
            if (!b)
                break;
            buf = b;
        }
        got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
    } while (got > 0);
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

RILL_TEST(stages_doc, example_is_the_documented_code) {
    static const char begin[] = "/* BEGIN docs/stages.md example */\n";
    static const char end[] = "/* END docs/stages.md example */";
    char *self = slurp(__FILE__);
    char *doc = slurp(RILL_DATA_DIR "/../docs/stages.md");
    int found = 0;
    char *b = self ? strstr(self, begin) : NULL;
    char *e = b ? strstr(b, end) : NULL;
    if (b && e && doc) {
        *e = '\0';
        found = strstr(doc, b + strlen(begin)) != NULL;
    }
    free(self);
    free(doc);
    CHECK(b && e && doc);
    CHECK(found); /* the example in docs/stages.md differs from this file's */
}
