/* Built-in transform stages: broadcast, filter, map, selector, and the
 * first-field key function. Items are pushed in with rill_pipeline_push and
 * observed through small recording sinks written here, so these tests depend
 * on nothing but the engine and the stages under test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* ---- a recording sink: appends "tag|bytes" for every item it receives ---- */

typedef struct rec {
    char **v;
    size_t n, cap;
} rec;

static void rec_add(rec *r, const char *tag, const rill_item *it) {
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 16;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
    }
    char *s = NULL;
    if (asprintf(&s, "%s|%.*s", tag, (int)it->len, (const char *)it->data) < 0)
        s = NULL;
    r->v[r->n++] = s;
}

static void rec_free(rec *r) {
    for (size_t i = 0; i < r->n; i++)
        free(r->v[i]);
    free(r->v);
    memset(r, 0, sizeof *r);
}

typedef struct sink {
    rec *r;
    const char *tag;
    const rill_item *last; /* the last item received, as passed in */
    rill_item last_copy;   /* its fields (the pointer above is only borrowed) */
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    sink *k = state;
    rec_add(k->r, k->tag, item);
    k->last_copy = *item;
    return 0;
}

static void sink_destroy(void *state) { free(state); }

static const rill_stage_ops sink_ops = { .send = sink_send, .free = sink_destroy };

/* Add a sink named tag recording into r; returns the stage (NULL on failure). */
static rill_stage *add_sink(rill_pipeline *p, const char *tag, rec *r) {
    sink *k = calloc(1, sizeof *k);
    k->r = r;
    k->tag = tag;
    rill_stage *st = NULL;
    if (rill_stage_add(p, tag, &sink_ops, k, NULL, &st) != 0)
        free(k);
    return st;
}

static sink *sink_of(rill_stage *st) { return rill_stage_state(st); }

/* A sink that fails every item with -EPIPE (a downstream error). */
static int failing_send(rill_stage *st, void *state, const rill_item *item) {
    (void)state;
    (void)item;
    return rill_stage_fail(st, -EPIPE, "refusing item");
}
static const rill_stage_ops failing_ops = { .send = failing_send };

static int push_cstr(rill_pipeline *p, rill_stage *entry, const char *s) {
    rill_item it = rill_item_borrow(s, strlen(s));
    return rill_pipeline_push(p, entry, &it);
}

/* ---- rill_key_first_field -------------------------------------------------- */

RILL_TEST(stages, key_first_field) {
    const char *cases[] = { "1.2.3.4 - - x", "nospace", "", " lead", "a b c", "trail " };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rill_item it = rill_item_cstr(cases[i]);
        const void *k = NULL;
        size_t len = 99;
        rill_key_first_field(&it, NULL, &k, &len);
        CHECK(k == it.data);
        CHECK_EQ(len, strcspn(cases[i], " "));
    }
}

/* ---- broadcast -------------------------------------------------------------- */

RILL_TEST(stages, broadcast_fans_out_in_connect_order) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("bc", &p));
    rec r = { 0 };
    rill_stage *b, *s[3];
    CHECK_OK(rill_broadcast_add(p, "b", NULL, &b));
    const char *tags[3] = { "C", "A", "B" }; /* connect order, not name order */
    for (int i = 0; i < 3; i++) {
        s[i] = add_sink(p, tags[i], &r);
        CHECK(s[i] != NULL);
        CHECK_OK(rill_connect(b, s[i]));
    }
    CHECK_EQ(rill_stage_outputs(b), 3);
    const char *in[] = { "x", "", "y z" };
    for (int j = 0; j < 3; j++)
        CHECK_OK(push_cstr(p, b, in[j]));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(r.n, 9);
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            char want[32];
            snprintf(want, sizeof want, "%s|%s", tags[i], in[j]);
            CHECK_STREQ(r.v[3 * j + i], want);
        }
    /* The very same item (not a copy) reaches every output. */
    CHECK(sink_of(s[0])->last_copy.data == sink_of(s[2])->last_copy.data);
    rill_pipeline_free(p);
    rec_free(&r);
}

RILL_TEST(stages, broadcast_without_outputs_and_downstream_error) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *b, *lone, *bad;
    rec r = { 0 };
    CHECK_OK(rill_broadcast_add(p, "lone", NULL, &lone));
    CHECK_OK(rill_broadcast_add(p, "b", NULL, &b));
    CHECK_OK(rill_stage_add(p, "bad", &failing_ops, NULL, NULL, &bad));
    rill_stage *after = add_sink(p, "after", &r);
    CHECK_OK(rill_connect(b, bad));
    CHECK_OK(rill_connect(b, after));
    CHECK_OK(push_cstr(p, lone, "nobody listens"));
    CHECK_EQ(push_cstr(p, b, "x"), -EPIPE);
    CHECK_STREQ(rill_pipeline_errstage(p), "bad");
    CHECK_EQ(r.n, 0); /* the error stops the fan-out at the failing port */
    CHECK_EQ(rill_pipeline_close(p), -EPIPE);
    rill_pipeline_free(p);
    rec_free(&r);
}

/* ---- filter ------------------------------------------------------------------ */

/* Independent definitions of the two byte matches, for the expectations. */
static int starts_with(const char *s, const char *pat) {
    return strncmp(s, pat, strlen(pat)) == 0;
}
static int first_field_is(const char *s, const char *pat) {
    size_t n = strcspn(s, " ");
    return n == strlen(pat) && strncmp(s, pat, n) == 0;
}

static const char *filter_inputs[] = {
    "10.0.0.1 - - GET /",  "10.0.0.12 - - GET /", "10.0.0.1",     "10.0.0.12",
    "",                    "10.0.0.",             "x 10.0.0.1 y", "10.0.0.1\t- tab",
    "10.0.0.1  two spaces", " 10.0.0.1",          "10.0.0.2 -",   "10.0.0.1 ",
};
#define NFILTER_INPUTS (sizeof filter_inputs / sizeof *filter_inputs)

/* Run every filter input through a filter built from spec; compare what the
 * sink receives with the inputs for which want() holds, in order. */
static void check_filter(const rill_filter_spec *spec, int (*want)(const char *, const char *),
                         const char *pat, size_t *matched) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rec r = { 0 };
    rill_stage *f;
    CHECK_OK(rill_filter_add(p, "f", spec, NULL, &f));
    rill_stage *s = add_sink(p, "s", &r);
    CHECK_OK(rill_connect(f, s));
    for (size_t i = 0; i < NFILTER_INPUTS; i++)
        CHECK_OK(push_cstr(p, f, filter_inputs[i]));
    CHECK_OK(rill_pipeline_close(p));
    size_t j = 0;
    for (size_t i = 0; i < NFILTER_INPUTS; i++) {
        if (!want(filter_inputs[i], pat))
            continue;
        CHECK(j < r.n);
        char exp[64];
        snprintf(exp, sizeof exp, "s|%s", spec->emit_pattern ? pat : filter_inputs[i]);
        CHECK_STREQ(r.v[j], exp);
        j++;
    }
    CHECK_EQ(r.n, j);
    *matched = j;
    rill_pipeline_free(p);
    rec_free(&r);
}

RILL_TEST(stages, filter_prefix_versus_first_field) {
    const char *pat = "10.0.0.1";
    rill_filter_spec sp = { .match = RILL_MATCH_PREFIX, .pattern = pat, .pattern_len = 8 };
    size_t nprefix = 0, nfield = 0;
    check_filter(&sp, starts_with, pat, &nprefix);
    rill_filter_spec sf = { .match = RILL_MATCH_FIRST_FIELD, .pattern = pat, .pattern_len = 8 };
    check_filter(&sf, first_field_is, pat, &nfield);
    /* The point of the two modes: "10.0.0.12" is a prefix match only. */
    CHECK(nprefix > nfield);
    CHECK(starts_with("10.0.0.12 -", pat) && !first_field_is("10.0.0.12 -", pat));
    CHECK(nfield >= 3); /* with a space, alone, and with a trailing space */

    /* A first field never contains a space, so such a pattern matches
     * nothing, although "10.0.0.1 -" starts lines followed by a space. */
    rill_filter_spec sn = { .match = RILL_MATCH_FIRST_FIELD, .pattern = "10.0.0.1 -",
                            .pattern_len = 10 };
    check_filter(&sn, first_field_is, "10.0.0.1 -", &nfield);
    CHECK_EQ(nfield, 0);
    CHECK(starts_with(filter_inputs[0], "10.0.0.1 -"));
}

RILL_TEST(stages, filter_emit_pattern) {
    char pat[] = "10.0.0.1";
    rill_filter_spec sf = { .match = RILL_MATCH_FIRST_FIELD, .pattern = pat,
                            .pattern_len = strlen(pat), .emit_pattern = true };
    size_t n = 0;
    check_filter(&sf, first_field_is, "10.0.0.1", &n);
    CHECK(n > 0);
    sf.match = RILL_MATCH_PREFIX;
    check_filter(&sf, starts_with, "10.0.0.1", &n);

    /* The emitted item is the stage's own copy: no owner, not the input's
     * bytes, and unaffected by later changes to the caller's pattern. */
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rec r = { 0 };
    rill_stage *f;
    sf.match = RILL_MATCH_FIRST_FIELD;
    CHECK_OK(rill_filter_add(p, "f", &sf, NULL, &f));
    rill_stage *s = add_sink(p, "s", &r);
    CHECK_OK(rill_connect(f, s));
    memset(pat, 'X', strlen(pat));
    char line[] = "10.0.0.1 - - GET /";
    rill_item it = rill_item_borrow(line, strlen(line));
    CHECK_OK(rill_pipeline_push(p, f, &it));
    const rill_item *got = &sink_of(s)->last_copy;
    CHECK(got->data != (const void *)line);
    CHECK(got->owner == RILL_REF_STATIC); /* the filter's copy of the pattern */
    CHECK(rill_item_eq(got, "10.0.0.1", 8));
    CHECK_OK(rill_pipeline_close(p));
    CHECK(rill_item_eq(got, "10.0.0.1", 8)); /* still valid after close */
    rill_pipeline_free(p);
    rec_free(&r);
}

RILL_TEST(stages, filter_empty_pattern_and_empty_items) {
    rill_filter_spec sp = { .match = RILL_MATCH_PREFIX, .pattern = NULL, .pattern_len = 0 };
    size_t n = 0;
    check_filter(&sp, starts_with, "", &n);
    CHECK_EQ(n, NFILTER_INPUTS); /* the empty prefix matches everything */
    rill_filter_spec sf = { .match = RILL_MATCH_FIRST_FIELD, .pattern = "", .pattern_len = 0 };
    check_filter(&sf, first_field_is, "", &n);
    CHECK_EQ(n, 2); /* "" and " 10.0.0.1" have an empty first field */
}

static bool even_length(const rill_item *item, void *arg) {
    (*(int *)arg)++;
    return item->len % 2 == 0;
}
static int want_even(const char *s, const char *pat) {
    (void)pat;
    return strlen(s) % 2 == 0;
}

RILL_TEST(stages, filter_predicate) {
    int calls = 0;
    rill_filter_spec sp = { .match = RILL_MATCH_PRED, .pred = even_length, .arg = &calls };
    size_t n = 0;
    check_filter(&sp, want_even, "", &n);
    CHECK_EQ(calls, NFILTER_INPUTS);
    CHECK(n > 0 && n < NFILTER_INPUTS);
    /* A predicate filter can emit a pattern too. */
    calls = 0;
    sp.pattern = "even";
    sp.pattern_len = 4;
    sp.emit_pattern = true;
    check_filter(&sp, want_even, "even", &n);
    CHECK_EQ(calls, NFILTER_INPUTS);
}

RILL_TEST(stages, filter_argument_errors) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *f = (rill_stage *)&f; /* must be reset to NULL on failure */
    rill_filter_spec ok = { .match = RILL_MATCH_PREFIX, .pattern = "a", .pattern_len = 1 };
    CHECK_EQ(rill_filter_add(p, "f", NULL, NULL, &f), RILL_EINVAL);
    CHECK(f == NULL);
    CHECK_EQ(rill_filter_add(NULL, "f", &ok, NULL, &f), RILL_EINVAL);
    rill_filter_spec s = { .match = RILL_MATCH_PRED };
    CHECK_EQ(rill_filter_add(p, "f", &s, NULL, &f), RILL_EINVAL);
    s = (rill_filter_spec){ .match = RILL_MATCH_FIRST_FIELD, .pattern = NULL, .pattern_len = 3 };
    CHECK_EQ(rill_filter_add(p, "f", &s, NULL, &f), RILL_EINVAL);
    s = (rill_filter_spec){ .match = RILL_MATCH_PREFIX, .pattern = NULL, .pattern_len = 1 };
    CHECK_EQ(rill_filter_add(p, "f", &s, NULL, &f), RILL_EINVAL);
    s = (rill_filter_spec){ .match = (rill_match)42, .pattern = "a", .pattern_len = 1 };
    CHECK_EQ(rill_filter_add(p, "f", &s, NULL, &f), RILL_EINVAL);
    CHECK(rill_pipeline_find(p, "f") == NULL); /* nothing was kept */
    /* Errors of rill_stage_add pass through, and the state is freed (ASan). */
    CHECK_OK(rill_filter_add(p, "f", &ok, NULL, &f));
    CHECK(f != NULL);
    CHECK_EQ(rill_filter_add(p, "f", &ok, NULL, NULL), RILL_EEXIST);
    rill_stage_opts th = { .flags = RILL_STAGE_THREADED };
    int rc = rill_filter_add(p, "g", &ok, &th, NULL);
    CHECK(rc == RILL_ENOTSUP || rc == 0); /* threaded stages arrive later */
    rill_pipeline_free(p);
}

/* ---- map -------------------------------------------------------------------- */

/* Upper-case every item into a fresh copy; skip items starting with '#';
 * fail on "bad"; emit a slice of the input (same owner) for "slice:...". */
static int upper_map(const rill_item *in, rill_item *out, void *arg) {
    int *calls = arg;
    (*calls)++;
    const char *s = in->data;
    if (in->len && s[0] == '#')
        return 1;
    if (rill_item_eq(in, "bad", 3))
        return -ENOENT;
    if (in->len >= 6 && memcmp(s, "slice:", 6) == 0) {
        *out = *in;
        out->data = s + 6;
        out->len = in->len - 6;
        return 0;
    }
    int rc = rill_item_copy(in->data, in->len, out);
    if (rc)
        return rc;
    char *w = (char *)out->data;
    for (size_t i = 0; i < out->len; i++)
        if (w[i] >= 'a' && w[i] <= 'z')
            w[i] = (char)(w[i] - 'a' + 'A');
    return 0;
}

RILL_TEST(stages, map_emit_skip_and_copies) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rec r = { 0 };
    int calls = 0;
    rill_stage *m;
    CHECK_OK(rill_map_add(p, "m", upper_map, &calls, NULL, &m));
    rill_stage *s = add_sink(p, "s", &r);
    CHECK_OK(rill_connect(m, s));
    const char *in[] = { "abc", "#comment", "", "Hello, World", "#", "x" };
    for (size_t i = 0; i < 6; i++)
        CHECK_OK(push_cstr(p, m, in[i]));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(calls, 6);
    CHECK_EQ(r.n, 4);
    CHECK_STREQ(r.v[0], "s|ABC");
    CHECK_STREQ(r.v[1], "s|");
    CHECK_STREQ(r.v[2], "s|HELLO, WORLD");
    CHECK_STREQ(r.v[3], "s|X");
    rill_pipeline_free(p); /* ASan: every rill_item_copy freed exactly once */
    rec_free(&r);
}

/* An owner that counts its releases instead of freeing. */
typedef struct counted {
    rill_ref ref;
    int released;
    char bytes[32];
} counted;
static void counted_release(rill_ref *ref) { ((counted *)ref)->released++; }

static int counted_map(const rill_item *in, rill_item *out, void *arg) {
    counted *c = arg;
    if (rill_item_eq(in, "skip", 4) || rill_item_eq(in, "fail", 4)) {
        /* A reference handed over with a skip or a failure is dropped too. */
        rill_ref_init(&c->ref, counted_release);
        out->owner = &c->ref;
        return rill_item_eq(in, "skip", 4) ? 1 : -EIO;
    }
    rill_ref_init(&c->ref, counted_release);
    memcpy(c->bytes, in->data, in->len);
    out->data = c->bytes;
    out->len = in->len;
    out->owner = &c->ref;
    return 0;
}

RILL_TEST(stages, map_releases_the_handed_reference_once) {
    counted c = { 0 };
    const char *cases[] = { "emit", "skip" };
    for (int i = 0; i < 2; i++) {
        rill_pipeline *p;
        CHECK_OK(rill_pipeline_new(NULL, &p));
        rec r = { 0 };
        rill_stage *m;
        CHECK_OK(rill_map_add(p, "m", counted_map, &c, NULL, &m));
        CHECK_OK(rill_connect(m, add_sink(p, "s", &r)));
        c.released = 0;
        CHECK_OK(push_cstr(p, m, cases[i]));
        CHECK_EQ(c.released, 1);
        CHECK_EQ(r.n, i == 0 ? 1 : 0);
        rill_pipeline_free(p);
        rec_free(&r);
    }
    /* ... when the function fails, and when the downstream emit fails. */
    for (int i = 0; i < 2; i++) {
        rill_pipeline *p;
        CHECK_OK(rill_pipeline_new(NULL, &p));
        rill_stage *m, *bad;
        CHECK_OK(rill_map_add(p, "m", counted_map, &c, NULL, &m));
        CHECK_OK(rill_stage_add(p, "bad", &failing_ops, NULL, NULL, &bad));
        CHECK_OK(rill_connect(m, bad));
        c.released = 0;
        CHECK_EQ(push_cstr(p, m, i == 0 ? "fail" : "emit"), i == 0 ? -EIO : -EPIPE);
        CHECK_EQ(c.released, 1);
        CHECK_STREQ(rill_pipeline_errstage(p), i == 0 ? "m" : "bad");
        rill_pipeline_free(p);
    }
}

RILL_TEST(stages, map_slice_of_input_is_not_released) {
    counted in = { 0 };
    rill_ref_init(&in.ref, counted_release);
    strcpy(in.bytes, "slice:tail");
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rec r = { 0 };
    int calls = 0;
    rill_stage *m;
    CHECK_OK(rill_map_add(p, "m", upper_map, &calls, NULL, &m));
    rill_stage *s = add_sink(p, "s", &r);
    CHECK_OK(rill_connect(m, s));
    rill_item it = { in.bytes, strlen(in.bytes), &in.ref };
    CHECK_OK(rill_pipeline_push(p, m, &it));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(r.n, 1);
    CHECK_STREQ(r.v[0], "s|tail");
    CHECK(sink_of(s)->last_copy.owner == &in.ref);
    CHECK_EQ(rill_ref_count(&in.ref), 1); /* the caller's reference only */
    CHECK_EQ(in.released, 0);
    rill_pipeline_free(p);
    rec_free(&r);
}

RILL_TEST(stages, map_failure_names_the_stage) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rec r = { 0 };
    int calls = 0;
    rill_stage *m;
    CHECK_OK(rill_map_add(p, "upper", upper_map, &calls, NULL, &m));
    CHECK_OK(rill_connect(m, add_sink(p, "s", &r)));
    CHECK_OK(push_cstr(p, m, "ok"));
    CHECK_EQ(push_cstr(p, m, "bad"), -ENOENT);
    CHECK_EQ(push_cstr(p, m, "later"), -ENOENT); /* the pipeline has stopped */
    CHECK_EQ(calls, 2);
    CHECK_STREQ(rill_pipeline_errstage(p), "upper");
    CHECK(strstr(rill_pipeline_errmsg(p), "'upper'") != NULL);
    CHECK_EQ(rill_pipeline_close(p), -ENOENT);
    CHECK_EQ(r.n, 1);
    CHECK_EQ(rill_map_add(p, "x", NULL, NULL, NULL, NULL), RILL_EINVAL);
    rill_pipeline_free(p);
    rec_free(&r);

    CHECK_OK(rill_pipeline_new(NULL, &p));
    CHECK_EQ(rill_map_add(p, "x", NULL, NULL, NULL, NULL), RILL_EINVAL);
    CHECK_EQ(rill_map_add(NULL, "x", upper_map, NULL, NULL, NULL), RILL_EINVAL);
    CHECK_OK(rill_map_add(p, "x", upper_map, NULL, NULL, NULL));
    CHECK_EQ(rill_map_add(p, "x", upper_map, NULL, NULL, NULL), RILL_EEXIST);
    rill_pipeline_free(p);
}

/* ---- selector ----------------------------------------------------------------- */

/* Route by the first byte: a digit d goes to port d; anything else to
 * port 0, and "neg" returns an error code. */
static int by_digit(const rill_item *item, unsigned nports, void *arg) {
    (void)nports;
    (*(int *)arg)++;
    const char *s = item->data;
    if (rill_item_eq(item, "neg", 3))
        return -EDOM;
    return item->len && s[0] >= '0' && s[0] <= '9' ? s[0] - '0' : 0;
}

static rill_pipeline *selector_with_sinks(const rill_selector_spec *spec, unsigned nports,
                                          rec *r, rill_stage **sel, rill_stage **sinks) {
    static const char *names[] = { "p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7" };
    rill_pipeline *p = NULL;
    if (rill_pipeline_new(NULL, &p) || rill_selector_add(p, "sel", spec, NULL, sel))
        return p;
    for (unsigned i = 0; i < nports; i++) {
        sinks[i] = add_sink(p, names[i], r);
        rill_connect(*sel, sinks[i]);
    }
    return p;
}

RILL_TEST(stages, selector_by_function) {
    int calls = 0;
    rill_selector_spec spec = { .select = by_digit, .arg = &calls };
    rec r = { 0 };
    rill_stage *sel = NULL, *sinks[3];
    rill_pipeline *p = selector_with_sinks(&spec, 3, &r, &sel, sinks);
    CHECK(sel != NULL);
    const char *in[] = { "2 two", "0 zero", "1 one", "x other", "", "2 again" };
    for (int i = 0; i < 6; i++)
        CHECK_OK(push_cstr(p, sel, in[i]));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(calls, 6);
    CHECK_EQ(r.n, 6); /* exactly one output per item */
    for (int i = 0; i < 6; i++) {
        char want[32];
        snprintf(want, sizeof want, "p%d|%s", by_digit(&(rill_item){ in[i], strlen(in[i]), NULL }, 3, &calls), in[i]);
        CHECK_STREQ(r.v[i], want);
    }
    rill_pipeline_free(p);
    rec_free(&r);
}

RILL_TEST(stages, selector_out_of_range_fails_naming_the_stage) {
    int calls = 0;
    rill_selector_spec spec = { .select = by_digit, .arg = &calls };
    rec r = { 0 };
    rill_stage *sel = NULL, *sinks[3];
    rill_pipeline *p = selector_with_sinks(&spec, 3, &r, &sel, sinks);
    CHECK_OK(push_cstr(p, sel, "2 fine"));
    CHECK_EQ(push_cstr(p, sel, "7 nowhere"), RILL_EINVAL);
    CHECK_STREQ(rill_pipeline_errstage(p), "sel");
    const char *msg = rill_pipeline_errmsg(p);
    CHECK(strstr(msg, "'sel'") != NULL);
    CHECK(strstr(msg, "7") != NULL);
    CHECK_EQ(rill_pipeline_close(p), RILL_EINVAL);
    CHECK_EQ(r.n, 1);
    rill_pipeline_free(p);
    rec_free(&r);

    /* A negative return is the failure code. */
    p = selector_with_sinks(&spec, 2, &r, &sel, sinks);
    CHECK_EQ(push_cstr(p, sel, "neg"), -EDOM);
    CHECK_STREQ(rill_pipeline_errstage(p), "sel");
    rill_pipeline_free(p);
    rec_free(&r);

    /* No outputs: the item is not dropped silently, in either mode. */
    for (int mode = 0; mode < 2; mode++) {
        rill_selector_spec s2 = { .select = mode ? NULL : by_digit, .arg = &calls };
        p = selector_with_sinks(&s2, 0, &r, &sel, sinks);
        CHECK_EQ(push_cstr(p, sel, "1"), RILL_EINVAL);
        CHECK_STREQ(rill_pipeline_errstage(p), "sel");
        CHECK(strstr(rill_pipeline_errmsg(p), "'sel'") != NULL);
        rill_pipeline_free(p);
    }
    CHECK_EQ(rill_selector_add(NULL, "s", &spec, NULL, NULL), RILL_EINVAL);
    CHECK_OK(rill_pipeline_new(NULL, &p));
    CHECK_EQ(rill_selector_add(p, "s", NULL, NULL, NULL), RILL_EINVAL);
    rill_pipeline_free(p);
}

RILL_TEST(stages, selector_by_key_hash) {
    enum { NPORTS = 5, NKEYS = 1000 };
    rill_selector_spec spec = { .key = rill_key_first_field };
    rec r = { 0 };
    rill_stage *sel = NULL, *sinks[NPORTS];
    rill_pipeline *p = selector_with_sinks(&spec, NPORTS, &r, &sel, sinks);
    CHECK(sel != NULL);
    /* Every key twice, with different payloads, far apart in time. */
    char buf[64];
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < NKEYS; k++) {
            snprintf(buf, sizeof buf, "10.%d.%d.1 pass%d", k / 256, k % 256, pass);
            CHECK_OK(push_cstr(p, sel, buf));
        }
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(r.n, 2 * NKEYS);
    int per_port[NPORTS] = { 0 };
    for (int k = 0; k < NKEYS; k++) {
        int port0 = r.v[k][1] - '0', port1 = r.v[NKEYS + k][1] - '0';
        CHECK(port0 >= 0 && port0 < NPORTS);
        CHECK_EQ(port0, port1); /* same key, same port */
        per_port[port0]++;
    }
    for (int i = 0; i < NPORTS; i++)
        CHECK(per_port[i] > NKEYS / NPORTS / 2); /* every port used, roughly evenly */
    rill_pipeline_free(p);
    rec_free(&r);

    /* Whole-item hashing (no key function): equal items, equal ports. */
    rill_selector_spec whole = { 0 };
    p = selector_with_sinks(&whole, 3, &r, &sel, sinks);
    const char *in[] = { "alpha", "beta", "", "alpha", "gamma", "", "beta" };
    for (int i = 0; i < 7; i++)
        CHECK_OK(push_cstr(p, sel, in[i]));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(r.n, 7);
    CHECK_EQ(r.v[0][1], r.v[3][1]);
    CHECK_EQ(r.v[1][1], r.v[6][1]);
    CHECK_EQ(r.v[2][1], r.v[5][1]);
    rill_pipeline_free(p);
    rec_free(&r);
}
