/* The count-by-key reducer, and the seed's IP-statistics topology built from
 * the built-in stages. Every expectation on the real log is computed here
 * from the file itself, with plain stdio and a sorted array: no hash table
 * shared with the code under test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

#define LOG RILL_DATA_DIR "/apache_logs"

/* ---- a file source: one item per line (without '\n'), via getline ------- */

typedef struct file_src {
    FILE *f;
    char *line;
    size_t cap;
} file_src;

static int file_produce(rill_stage *st, void *state) {
    file_src *s = state;
    ssize_t n = getline(&s->line, &s->cap, s->f);
    if (n < 0)
        return ferror(s->f) ? rill_stage_fail(st, -EIO, "read error") : RILL_EDONE;
    if (n > 0 && s->line[n - 1] == '\n')
        n--;
    rill_item it = rill_item_borrow(s->line, (size_t)n);
    return rill_emit(st, &it);
}

static void file_destroy(void *state) {
    file_src *s = state;
    if (s->f)
        fclose(s->f);
    free(s->line);
    free(s);
}

static const rill_stage_ops file_ops = { .produce = file_produce, .free = file_destroy };

static rill_stage *add_file_source(rill_pipeline *p, const char *name, const char *path) {
    file_src *s = calloc(1, sizeof *s);
    s->f = fopen(path, "r");
    rill_stage *st = NULL;
    if (!s->f || rill_stage_add(p, name, &file_ops, s, NULL, &st) != 0)
        file_destroy(s);
    return st;
}

/* ---- the independent computation: first fields, sorted, run-length ------- */

typedef struct kc {
    char *key;
    uint64_t count;
} kc;

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Count first fields of path; *out gets the distinct keys (sorted by key). */
static size_t independent_counts(const char *path, kc **out, size_t *nlines) {
    FILE *f = fopen(path, "r");
    char **keys = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while (f && (len = getline(&line, &lcap, f)) >= 0) {
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            keys = realloc(keys, cap * sizeof *keys);
        }
        line[strcspn(line, " \n")] = '\0';
        keys[n++] = strdup(line);
    }
    free(line);
    if (f)
        fclose(f);
    *nlines = n;
    qsort(keys, n, sizeof *keys, str_cmp);
    kc *d = calloc(n ? n : 1, sizeof *d);
    size_t nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (nd && strcmp(d[nd - 1].key, keys[i]) == 0) {
            d[nd - 1].count++;
            free(keys[i]);
        } else {
            d[nd].key = keys[i];
            d[nd++].count = 1;
        }
    }
    free(keys);
    *out = d;
    return nd;
}

static void free_kc(kc *d, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(d[i].key);
    free(d);
}

static int rank_cmp(const void *a, const void *b) {
    const kc *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->key, y->key);
}

/* Lines of path whose first field equals ip, or that start with ip. */
static uint64_t count_lines(const char *path, const char *ip, int prefix) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    uint64_t n = 0;
    while (f && getline(&line, &cap, f) >= 0) {
        if (prefix)
            n += strncmp(line, ip, strlen(ip)) == 0;
        else
            n += strcspn(line, " \n") == strlen(ip) && strncmp(line, ip, strlen(ip)) == 0;
    }
    free(line);
    if (f)
        fclose(f);
    return n;
}

/* ---- small inputs ------------------------------------------------------------ */

static int push_bytes(rill_pipeline *p, rill_stage *entry, const void *b, size_t len) {
    rill_item it = rill_item_borrow(b, len);
    return rill_pipeline_push(p, entry, &it);
}

RILL_TEST(count, whole_items_and_binary_keys) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *c;
    CHECK_OK(rill_count_add(p, "c", NULL, NULL, NULL, &c));
    const char *in[] = { "a", "b", "a", "", "ab", "a", "" };
    for (int i = 0; i < 7; i++)
        CHECK_OK(push_bytes(p, c, in[i], strlen(in[i])));
    /* Keys are bytes, not strings: an embedded NUL does not end them. */
    CHECK_OK(push_bytes(p, c, "x\0y", 3));
    CHECK_OK(push_bytes(p, c, "x\0z", 3));
    CHECK_OK(push_bytes(p, c, "x\0y", 3));
    CHECK_OK(rill_pipeline_close(p));
    uint64_t n = 99;
    CHECK_OK(rill_count_get(c, "a", 1, &n));
    CHECK_EQ(n, 3);
    CHECK_OK(rill_count_get(c, "", 0, &n));
    CHECK_EQ(n, 2);
    CHECK_OK(rill_count_get(c, NULL, 0, &n));
    CHECK_EQ(n, 2);
    CHECK_OK(rill_count_get(c, "ab", 2, &n));
    CHECK_EQ(n, 1);
    CHECK_OK(rill_count_get(c, "x\0y", 3, &n));
    CHECK_EQ(n, 2);
    CHECK_OK(rill_count_get(c, "x\0z", 3, &n));
    CHECK_EQ(n, 1);
    CHECK_OK(rill_count_get(c, "x", 1, &n));
    CHECK_EQ(n, 0);
    CHECK_OK(rill_count_get(c, "abc", 3, &n));
    CHECK_EQ(n, 0);
    size_t keys = 0;
    uint64_t total = 0;
    CHECK_OK(rill_count_size(c, &keys, &total));
    CHECK_EQ(keys, 6);
    CHECK_EQ(total, 10);
    CHECK_OK(rill_count_size(c, NULL, NULL));
    rill_pipeline_free(p);
}

RILL_TEST(count, top_orders_by_count_then_key) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *c;
    CHECK_OK(rill_count_add(p, "c", NULL, NULL, NULL, &c));
    /* abc x3; then a tie at 2 between "", "a", "ab", "b"; "z" x1. */
    const char *in[] = { "b", "ab", "abc", "a", "", "abc", "z", "ab", "a", "b", "abc", "" };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        CHECK_OK(push_bytes(p, c, in[i], strlen(in[i])));
    CHECK_OK(rill_pipeline_close(p));
    const char *want[] = { "abc", "", "a", "ab", "b", "z" };
    const uint64_t wantc[] = { 3, 2, 2, 2, 2, 1 };
    rill_count_entry e[10];
    size_t n = 99;
    for (size_t k = 0; k <= 10; k++) {
        memset(e, 0, sizeof e);
        CHECK_OK(rill_count_top(c, k, e, &n));
        CHECK_EQ(n, k < 6 ? k : 6); /* asking for more than exists is fine */
        for (size_t i = 0; i < n; i++) {
            CHECK(rill_item_eq(&(rill_item){ e[i].key, e[i].len, NULL }, want[i],
                               strlen(want[i])));
            CHECK_EQ(e[i].count, wantc[i]);
        }
    }
    CHECK_OK(rill_count_top(c, 0, NULL, &n));
    CHECK_EQ(n, 0);
    rill_pipeline_free(p);
}

/* Many keys, many ties: top-n for every n must equal a full sort's prefix. */
RILL_TEST(count, top_matches_a_full_sort) {
    enum { NKEYS = 3000 };
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *c;
    CHECK_OK(rill_count_add(p, "c", NULL, NULL, NULL, &c));
    kc *exp = calloc(NKEYS, sizeof *exp);
    unsigned seed = 12345;
    for (int i = 0; i < NKEYS; i++) {
        seed = seed * 1103515245u + 12345u;
        char buf[32];
        /* Variable-length keys, some proper prefixes of others. */
        snprintf(buf, sizeof buf, "%x", (unsigned)i * 7u);
        exp[i].key = strdup(buf);
        exp[i].count = 1 + (seed >> 16) % 7;
    }
    qsort(exp, NKEYS, sizeof *exp, rank_cmp);
    for (int i = 0; i < NKEYS; i++)
        for (uint64_t j = 0; j < exp[i].count; j++)
            CHECK_OK(push_bytes(p, c, exp[i].key, strlen(exp[i].key)));
    CHECK_OK(rill_pipeline_close(p));
    size_t keys;
    CHECK_OK(rill_count_size(c, &keys, NULL));
    CHECK_EQ(keys, NKEYS);
    rill_count_entry *e = calloc(NKEYS + 5, sizeof *e);
    const size_t ns[] = { 1, 2, 10, 100, 2999, NKEYS, NKEYS + 5 };
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        size_t n = 0;
        CHECK_OK(rill_count_top(c, ns[t], e, &n));
        CHECK_EQ(n, ns[t] < NKEYS ? ns[t] : NKEYS);
        for (size_t i = 0; i < n; i++) {
            CHECK(rill_item_eq(&(rill_item){ e[i].key, e[i].len, NULL }, exp[i].key,
                               strlen(exp[i].key)));
            CHECK_EQ(e[i].count, exp[i].count);
        }
    }
    free(e);
    free_kc(exp, NKEYS);
    rill_pipeline_free(p);
}

RILL_TEST(count, growth_to_100k_keys) {
    enum { NKEYS = 100000 };
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *c;
    CHECK_OK(rill_count_add(p, "c", NULL, NULL, NULL, &c));
    char buf[32];
    uint64_t total = 0;
    /* Key i arrives i % 3 + 1 times, interleaved so the table grows while
     * existing keys keep being counted. */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < NKEYS; i++) {
            if (i % 3 < round)
                continue;
            int len = snprintf(buf, sizeof buf, "key%06d", i);
            CHECK_OK(push_bytes(p, c, buf, (size_t)len));
            total++;
        }
    /* The pushed buffer is reused: the stage must have copied every key. */
    memset(buf, 0, sizeof buf);
    CHECK_OK(rill_pipeline_close(p));
    size_t keys;
    uint64_t tot;
    CHECK_OK(rill_count_size(c, &keys, &tot));
    CHECK_EQ(keys, NKEYS);
    CHECK_EQ(tot, total);
    for (int i = 0; i < NKEYS; i++) {
        int len = snprintf(buf, sizeof buf, "key%06d", i);
        uint64_t n = 0;
        CHECK_OK(rill_count_get(c, buf, (size_t)len, &n));
        if (n != (uint64_t)(i % 3 + 1))
            CHECK_EQ(n, i % 3 + 1);
    }
    uint64_t n = 1;
    CHECK_OK(rill_count_get(c, "key100000", 9, &n));
    CHECK_EQ(n, 0);
    /* Top 4: count 3 (i % 3 == 2), ties by key: 2, 5, 8, 11. */
    rill_count_entry e[4];
    size_t nout;
    CHECK_OK(rill_count_top(c, 4, e, &nout));
    CHECK_EQ(nout, 4);
    for (int i = 0; i < 4; i++) {
        snprintf(buf, sizeof buf, "key%06d", 3 * i + 2);
        CHECK(rill_item_eq(&(rill_item){ e[i].key, e[i].len, NULL }, buf, 9));
        CHECK_EQ(e[i].count, 3);
    }
    rill_pipeline_free(p);
}

RILL_TEST(count, argument_errors_and_wrong_stage_kind) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new(NULL, &p));
    rill_stage *c, *b;
    CHECK_EQ(rill_count_add(NULL, "c", NULL, NULL, NULL, &c), RILL_EINVAL);
    CHECK(c == NULL);
    CHECK_OK(rill_count_add(p, "c", NULL, NULL, NULL, &c));
    CHECK_EQ(rill_count_add(p, "c", NULL, NULL, NULL, NULL), RILL_EEXIST); /* freed: ASan */
    CHECK_OK(rill_broadcast_add(p, "b", NULL, &b));
    uint64_t n;
    size_t k;
    rill_count_entry e[2];
    CHECK_EQ(rill_count_get(b, "a", 1, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_size(b, &k, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_top(b, 2, e, &k), RILL_EINVAL);
    CHECK_EQ(rill_count_get(NULL, "a", 1, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_size(NULL, &k, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_top(NULL, 2, e, &k), RILL_EINVAL);
    CHECK_EQ(rill_count_get(c, "a", 1, NULL), RILL_EINVAL);
    CHECK_EQ(rill_count_get(c, NULL, 1, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_top(c, 2, e, NULL), RILL_EINVAL);
    CHECK_EQ(rill_count_top(c, 2, NULL, &k), RILL_EINVAL);
    /* Before any item: empty, and a top of nothing. */
    CHECK_OK(rill_count_size(c, &k, &n));
    CHECK_EQ(k, 0);
    CHECK_EQ(n, 0);
    CHECK_OK(rill_count_top(c, 2, e, &k));
    CHECK_EQ(k, 0);
    rill_pipeline_free(p);
}

/* ---- the real log --------------------------------------------------------------- */

RILL_TEST(count, apache_log_by_first_field) {
    kc *exp;
    size_t nlines = 0;
    size_t nd = independent_counts(LOG, &exp, &nlines);
    CHECK(nlines == 10000); /* the shipped log, as described in data/README.md */

    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("ips", &p));
    rill_stage *src = add_file_source(p, "src", LOG), *c;
    CHECK(src != NULL);
    CHECK_OK(rill_count_add(p, "count", rill_key_first_field, NULL, NULL, &c));
    CHECK_OK(rill_connect(src, c));
    CHECK_OK(rill_pipeline_run(p));

    size_t keys;
    uint64_t total;
    CHECK_OK(rill_count_size(c, &keys, &total));
    CHECK_EQ(keys, nd);
    CHECK_EQ(total, nlines);
    for (size_t i = 0; i < nd; i++) {
        uint64_t n = 0;
        CHECK_OK(rill_count_get(c, exp[i].key, strlen(exp[i].key), &n));
        if (n != exp[i].count)
            CHECK_EQ(n, exp[i].count);
    }
    qsort(exp, nd, sizeof *exp, rank_cmp);
    rill_count_entry top[10];
    size_t ntop;
    CHECK_OK(rill_count_top(c, 10, top, &ntop));
    CHECK_EQ(ntop, nd < 10 ? nd : 10);
    for (size_t i = 0; i < ntop; i++) {
        CHECK(rill_item_eq(&(rill_item){ top[i].key, top[i].len, NULL }, exp[i].key,
                           strlen(exp[i].key)));
        CHECK_EQ(top[i].count, exp[i].count);
    }
    free_kc(exp, nd);
    rill_pipeline_free(p);
}

/* The seed's topology: source -> broadcast -> one filter per IP (emitting the
 * IP, like map_) -> one reducer fed by all filters. */
static void seed_pipeline(rill_match match, const char *const *ips, size_t nips,
                          uint64_t *counts, size_t *nkeys) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("ip-stats", &p));
    rill_stage *src = add_file_source(p, "src", LOG), *b, *c;
    CHECK(src != NULL);
    CHECK_OK(rill_broadcast_add(p, "broadcast", NULL, &b));
    CHECK_OK(rill_count_add(p, "reduce", NULL, NULL, NULL, &c));
    CHECK_OK(rill_connect(src, b));
    for (size_t i = 0; i < nips; i++) {
        char name[64];
        snprintf(name, sizeof name, "map-%s", ips[i]);
        rill_filter_spec spec = { .match = match, .pattern = ips[i],
                                  .pattern_len = strlen(ips[i]), .emit_pattern = true };
        rill_stage *f;
        CHECK_OK(rill_filter_add(p, name, &spec, NULL, &f));
        CHECK_OK(rill_connect(b, f));
        CHECK_OK(rill_connect(f, c));
    }
    CHECK_OK(rill_pipeline_run(p));
    for (size_t i = 0; i < nips; i++)
        CHECK_OK(rill_count_get(c, ips[i], strlen(ips[i]), &counts[i]));
    CHECK_OK(rill_count_size(c, nkeys, NULL));
    rill_pipeline_free(p);
}

RILL_TEST(count, seed_ip_statistics_exact) {
    const char *ips[] = { "83.149.9.216", "93.114.45.13", "207.241.237.101", "180.76.6.14" };
    uint64_t got[4];
    size_t nkeys = 0;
    seed_pipeline(RILL_MATCH_FIRST_FIELD, ips, 4, got, &nkeys);
    CHECK_EQ(nkeys, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(got[i], count_lines(LOG, ips[i], 0));
    /* The numbers the seed article prints, and the exact count. */
    CHECK_EQ(got[0], 23);
    CHECK_EQ(got[1], 6);
    CHECK_EQ(got[2], 17);
    CHECK_EQ(got[3], 1);
}

RILL_TEST(count, seed_ip_statistics_prefix) {
    const char *ips[] = { "83.149.9.216", "93.114.45.13", "207.241.237.101", "180.76.6.14" };
    uint64_t got[4];
    size_t nkeys = 0;
    seed_pipeline(RILL_MATCH_PREFIX, ips, 4, got, &nkeys);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(got[i], count_lines(LOG, ips[i], 1));
    CHECK_EQ(got[0], 23);
    CHECK_EQ(got[1], 6);
    CHECK_EQ(got[2], 17);
    CHECK_EQ(got[3], 10); /* startswith also counts 180.76.6.140 and the like */
    CHECK(count_lines(LOG, "180.76.6.14", 1) > count_lines(LOG, "180.76.6.14", 0));
}
