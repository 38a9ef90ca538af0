/* Fields and numbers inside items (rill/fields.h), the split stage and
 * rill_stage_add_new. Items are cut out of larger buffers with no NUL after
 * them, so a helper that read past its item would see the bytes after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* An item over the first len bytes of s: what follows is not the item's. */
static rill_item cut(const char *s, size_t len) { return rill_item_static(s, len); }

/* Fields of s (whole string) joined with '|', for one-line comparisons. */
static void joined(const char *s, char sep, unsigned flags, char *out, size_t cap) {
    rill_item it = rill_item_cstr(s), f;
    rill_fields fs;
    size_t n = 0;
    out[0] = '\0';
    if (rill_fields_init(&fs, &it, sep, flags))
        return;
    for (int first = 1; rill_fields_next(&fs, &f) == 0; first = 0)
        n += (size_t)snprintf(out + n, cap - n, "%s[%.*s]", first ? "" : "|", (int)f.len,
                              (const char *)f.data);
}

RILL_TEST(fields, split_on_a_byte_like_python) {
    char buf[256];
    joined("a,b,,c", ',', 0, buf, sizeof buf);
    CHECK_STREQ(buf, "[a]|[b]|[]|[c]");
    joined("a,b,,c,", ',', 0, buf, sizeof buf);
    CHECK_STREQ(buf, "[a]|[b]|[]|[c]|[]");
    joined("", ',', 0, buf, sizeof buf);
    CHECK_STREQ(buf, "[]");
    joined(",a,,b,", ',', RILL_FIELDS_SKIP_EMPTY, buf, sizeof buf);
    CHECK_STREQ(buf, "[a]|[b]");
    joined("", ',', RILL_FIELDS_SKIP_EMPTY, buf, sizeof buf);
    CHECK_STREQ(buf, "");
    joined("  the  quick\tbrown\r\n fox ", 0, RILL_FIELDS_WHITESPACE, buf, sizeof buf);
    CHECK_STREQ(buf, "[the]|[quick]|[brown]|[fox]");
}

RILL_TEST(fields, never_reads_past_the_item) {
    const char *s = "1,22,333";
    rill_item it = cut(s, 4), f; /* "1,22" */
    CHECK_OK(rill_field_nth(&it, ',', 0, 1, &f));
    CHECK(rill_item_eq(&f, "22", 2));
    CHECK_EQ(rill_field_nth(&it, ',', 0, 2, &f), RILL_EDONE);
    CHECK_EQ(f.len, 0);
    int64_t v = 0;
    rill_item num = cut("12345", 3);
    CHECK_OK(rill_item_i64(&num, &v, NULL));
    CHECK_EQ(v, 123);
    double d = 0;
    rill_item fl = cut("2.5e3", 3); /* "2.5" */
    CHECK_OK(rill_item_f64(&fl, &d, NULL));
    CHECK(d == 2.5);
}

static void no_release(rill_ref *ref) { (void)ref; }

RILL_TEST(fields, nth_field_and_owner) {
    rill_ref ref;
    rill_ref_init(&ref, no_release);
    const char *line = "83.149.9.216 - - [17/May/2015] \"GET /x\" 200 1234";
    rill_item it = { line, strlen(line), &ref }, f;
    CHECK_OK(rill_field_nth(&it, ' ', 0, 0, &f));
    CHECK(rill_item_eq(&f, "83.149.9.216", 12));
    CHECK(f.owner == &ref); /* a slice: same owner, no copy */
    CHECK_OK(rill_field_nth(&it, ' ', 0, 7, &f));
    uint64_t bytes = 0;
    CHECK_OK(rill_item_u64(&f, &bytes, NULL));
    CHECK_EQ(bytes, 1234);
    CHECK_EQ(rill_field_nth(NULL, ' ', 0, 0, &f), RILL_EINVAL);
    CHECK_EQ(rill_field_nth(&it, ' ', 1u << 7, 0, &f), RILL_EINVAL);
    rill_item sp = rill_item_cstr(" \t x y \n"), t = rill_item_trim(&sp);
    CHECK(rill_item_eq(&t, "x y", 3));
}

/* A parse that must fail with rc, err.what containing what, at offset at. */
#define CHECK_PARSE_FAIL(call, rc, what_sub, offset)                                 \
    do {                                                                            \
        rill_parse_error e = { NULL, 12345 };                                      \
        CHECK_EQ(call, rc);                                                         \
        CHECK(e.what != NULL && strstr(e.what, what_sub) != NULL);                  \
        CHECK_EQ(e.at, offset);                                                     \
    } while (0)

RILL_TEST(fields, integers_with_errors_that_say_what_and_where) {
    int64_t v = 7;
    uint64_t u = 7;
    rill_item a = rill_item_cstr("-9223372036854775808");
    CHECK_OK(rill_item_i64(&a, &v, NULL));
    CHECK(v == INT64_MIN);
    rill_item b = rill_item_cstr("+18446744073709551615");
    CHECK_OK(rill_item_u64(&b, &u, NULL));
    CHECK(u == UINT64_MAX);
    v = 7;
    rill_item c = rill_item_cstr("12x4");
    CHECK_PARSE_FAIL(rill_item_i64(&c, &v, &e), RILL_EINVAL, "not a digit", 2);
    CHECK_EQ(v, 7); /* untouched on failure */
    rill_item d = rill_item_cstr("9223372036854775808");
    CHECK_PARSE_FAIL(rill_item_i64(&d, &v, &e), -ERANGE, "out of range", 18);
    rill_item big = rill_item_cstr("18446744073709551616");
    CHECK_PARSE_FAIL(rill_item_u64(&big, &u, &e), -ERANGE, "out of range", 19);
    rill_item empty = rill_item_cstr("");
    CHECK_PARSE_FAIL(rill_item_i64(&empty, &v, &e), RILL_EINVAL, "empty", 0);
    rill_item sign = rill_item_cstr("-");
    CHECK_PARSE_FAIL(rill_item_i64(&sign, &v, &e), RILL_EINVAL, "no digits", 1);
    rill_item neg = rill_item_cstr("-1");
    CHECK_PARSE_FAIL(rill_item_u64(&neg, &u, &e), RILL_EINVAL, "negative", 0);
    rill_item space = rill_item_cstr(" 1");
    CHECK_PARSE_FAIL(rill_item_i64(&space, &v, &e), RILL_EINVAL, "not a digit", 0);
}

RILL_TEST(fields, floats_with_errors_that_say_what_and_where) {
    double d = 0;
    rill_item a = rill_item_cstr("-0.125");
    CHECK_OK(rill_item_f64(&a, &d, NULL));
    CHECK(d == -0.125);
    rill_item b = rill_item_cstr("1.5kg");
    CHECK_PARSE_FAIL(rill_item_f64(&b, &d, &e), RILL_EINVAL, "after the number", 3);
    rill_item c = rill_item_cstr("abc");
    CHECK_PARSE_FAIL(rill_item_f64(&c, &d, &e), RILL_EINVAL, "not a number", 0);
    rill_item s = rill_item_cstr(" 1");
    CHECK_PARSE_FAIL(rill_item_f64(&s, &d, &e), RILL_EINVAL, "leading space", 0);
    rill_item huge = rill_item_cstr("1e999");
    CHECK_PARSE_FAIL(rill_item_f64(&huge, &d, &e), -ERANGE, "out of range", 0);
    rill_item nul = rill_item_static("1\0" "5", 3);
    CHECK_PARSE_FAIL(rill_item_f64(&nul, &d, &e), RILL_EINVAL, "NUL", 1);
    static char longnum[600];
    memset(longnum, '1', sizeof longnum);
    rill_item lg = rill_item_static(longnum, sizeof longnum);
    CHECK_PARSE_FAIL(rill_item_f64(&lg, &d, &e), RILL_EINVAL, "too long", 511);
    CHECK(d == -0.125);
}

/* ---- the split stage and rill_stage_add_new ---------------------------- */

typedef struct words {
    char seen[512];
    size_t n;
    int *destroyed;
} words;

static int words_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    words *w = state;
    w->n += (size_t)snprintf(w->seen + w->n, sizeof w->seen - w->n, "[%.*s]", (int)it->len,
                             (const char *)it->data);
    return 0;
}

static void words_destroy(void *state) { ++*((words *)state)->destroyed; }

static const rill_stage_ops words_ops = { .send = words_send, .free = words_destroy };

RILL_TEST(fields, split_stage_tokenizes_pushed_lines) {
    rill_pipeline *p = NULL;
    rill_stage *split, *sink;
    int destroyed = 0;
    CHECK_OK(rill_pipeline_new("split", &p));
    CHECK_OK(rill_split_add(p, "split", 0, RILL_FIELDS_WHITESPACE, NULL, &split));
    CHECK_OK(rill_stage_add_new(p, "words", &words_ops, sizeof(words), NULL, &sink));
    words *w = rill_stage_state(sink);
    CHECK(w != NULL && w->n == 0 && w->seen[0] == '\0'); /* zeroed */
    w->destroyed = &destroyed;
    CHECK_OK(rill_connect(split, sink));
    const char *lines[] = {"the quick  brown", "", "  fox\tjumps "};
    for (int i = 0; i < 3; i++) {
        rill_item it = rill_item_cstr(lines[i]);
        CHECK_OK(rill_pipeline_push(p, split, &it));
    }
    CHECK_OK(rill_pipeline_close(p));
    CHECK_STREQ(w->seen, "[the][quick][brown][fox][jumps]");
    rill_pipeline_free(p);
    CHECK_EQ(destroyed, 1); /* the caller's destroy ran, then the state was freed (ASan) */
}

RILL_TEST(fields, split_on_comma_keeps_empty_fields) {
    rill_pipeline *p = NULL;
    rill_stage *split, *sink;
    int destroyed = 0;
    CHECK_OK(rill_pipeline_new("split", &p));
    CHECK_EQ(rill_split_add(p, "bad", ',', 1u << 9, NULL, &split), RILL_EINVAL);
    CHECK(split == NULL);
    CHECK_OK(rill_split_add(p, "split", ',', 0, NULL, &split));
    CHECK_OK(rill_stage_add_new(p, "words", &words_ops, sizeof(words), NULL, &sink));
    ((words *)rill_stage_state(sink))->destroyed = &destroyed;
    CHECK_OK(rill_connect(split, sink));
    rill_item it = rill_item_cstr("a,,b");
    CHECK_OK(rill_pipeline_push(p, split, &it));
    CHECK_OK(rill_pipeline_close(p));
    CHECK_STREQ(((words *)rill_stage_state(sink))->seen, "[a][][b]");
    rill_pipeline_free(p);
    CHECK_EQ(destroyed, 1);
}

RILL_TEST(fields, stage_add_new_failure_keeps_nothing) {
    rill_pipeline *p = NULL;
    rill_stage *st = (rill_stage *)&st;
    CHECK_OK(rill_pipeline_new("new", &p));
    CHECK_OK(rill_stage_add_new(p, "w", &words_ops, sizeof(words), NULL, NULL));
    ((words *)rill_stage_state(rill_pipeline_find(p, "w")))->destroyed = &(int){0};
    /* A taken name: nothing allocated is left behind (LSan) and the caller's
     * destroy is not called for a state that was never added. */
    CHECK_EQ(rill_stage_add_new(p, "w", &words_ops, sizeof(words), NULL, &st), RILL_EEXIST);
    CHECK(st == NULL);
    static const rill_stage_ops none = { 0 };
    CHECK_EQ(rill_stage_add_new(p, "x", &none, 8, NULL, &st), RILL_EINVAL);
    CHECK_EQ(rill_stage_add_new(NULL, "x", &words_ops, 8, NULL, &st), RILL_EINVAL);
    rill_pipeline_free(p);
}

/* The n-th field as a number: the value, and on failure where in the line. */
RILL_TEST(fields, field_u64_value_and_error_offset_in_the_line) {
    const char *line = "GET /x 200 12x 7";
    rill_item it = rill_item_cstr(line);
    uint64_t v = 0;
    rill_parse_error e = {0};
    CHECK_OK(rill_field_u64(&it, ' ', 0, 2, &v, &e));
    CHECK_EQ(v, 200);
    CHECK_OK(rill_field_u64(&it, ' ', 0, 4, &v, NULL));
    CHECK_EQ(v, 7);
    CHECK_EQ(rill_field_u64(&it, ' ', 0, 3, &v, &e), RILL_EINVAL);
    CHECK_EQ(e.at, (size_t)(strstr(line, "12x") - line) + 2); /* the 'x' of "12x" */
    CHECK_EQ(rill_field_u64(&it, ' ', 0, 5, &v, &e), RILL_EDONE);
    CHECK_STREQ(e.what, "no such field");
    CHECK_EQ(v, 7); /* untouched on failure */
}
