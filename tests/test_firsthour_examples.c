/* The five "first hour" example programs (examples/wordfreq, key_avg,
 * gen_status, slow_stage, push_lines) are run as a user runs them, on the
 * shipped log, and their output is checked against counts computed here
 * from the same file by plain C (no rill). key_avg, slow_stage and
 * push_lines start threads (RILL_STAGE_THREADED): this file runs under
 * ThreadSanitizer too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"

static char out[1 << 16];

typedef struct kc {
    char *key;
    unsigned long n;
} kc;

typedef struct keys {
    char **v;
    size_t n, cap;
} keys;

static void keys_add(keys *k, const char *s, size_t len) {
    if (k->n == k->cap) {
        k->cap = k->cap ? 2 * k->cap : 1024;
        k->v = realloc(k->v, k->cap * sizeof *k->v);
    }
    k->v[k->n++] = strndup(s, len);
}

static int by_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* count descending, then key ascending (rill_count_top's order; keys here
 * hold no NUL, so strcmp orders them as bytes with a prefix first). */
static int by_count(const void *a, const void *b) {
    const kc *x = a, *y = b;
    if (x->n != y->n)
        return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

static int is_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Every whitespace-separated word (words = 1) or the text up to the first
 * space (words = 0) of each line of LOG, counted: *nkc distinct, sorted. */
static kc *count_keys(int words, size_t *nkc, unsigned long *total) {
    FILE *f = fopen(LOG, "r");
    keys k = { 0 };
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (f && (len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            len--;
        if (!words) {
            char *sp = memchr(line, ' ', (size_t)len);
            keys_add(&k, line, sp ? (size_t)(sp - line) : (size_t)len);
            continue;
        }
        for (ssize_t i = 0; i < len;) {
            while (i < len && is_space(line[i]))
                i++;
            ssize_t b = i;
            while (i < len && !is_space(line[i]))
                i++;
            if (i > b)
                keys_add(&k, line + b, (size_t)(i - b));
        }
    }
    free(line);
    if (f)
        fclose(f);
    qsort(k.v, k.n, sizeof *k.v, by_str);
    kc *res = calloc(k.n + 1, sizeof *res);
    size_t m = 0;
    for (size_t i = 0; i < k.n; i++) {
        if (m && strcmp(res[m - 1].key, k.v[i]) == 0) {
            res[m - 1].n++;
            free(k.v[i]);
        } else {
            res[m].key = k.v[i];
            res[m++].n = 1;
        }
    }
    free(k.v);
    qsort(res, m, sizeof *res, by_count);
    *nkc = m;
    *total = (unsigned long)k.n;
    return res;
}

static void kc_free(kc *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i].key);
    free(v);
}

/* The expected "COUNT KEY" lines of the top n. */
static void top_lines(const kc *v, size_t m, size_t n, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && i < m; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%lu %s\n", v[i].n, v[i].key);
}

RILL_TEST(firsthour, wordfreq_top_ten_and_totals) {
    size_t m;
    unsigned long total;
    kc *v = count_keys(1, &m, &total);
    static char want[8192];
    top_lines(v, m, 10, want, sizeof want);
    size_t o = strlen(want);
    snprintf(want + o, sizeof want - o, "words %lu distinct %zu\n", total, m);
    kc_free(v, m);
    CHECK(m > 1000);
    CHECK_EQ(run(RILL_BIN_DIR "/wordfreq " LOG, out, sizeof out), 0);
    CHECK_STREQ(out, want);
}

RILL_TEST(firsthour, wordfreq_missing_file_names_the_path) {
    CHECK_EQ(run(RILL_BIN_DIR "/wordfreq /no/such/file 2>&1", out, sizeof out), 1);
    CHECK(strstr(out, "/no/such/file") != NULL);
    CHECK(strstr(out, "rill_lines_file_add 'lines'") != NULL); /* call and stage, from the library */
    CHECK(strstr(out, "No such file") != NULL);
}

RILL_TEST(firsthour, push_lines_threaded_entry_counts_like_a_loop) {
    size_t m;
    unsigned long total;
    kc *v = count_keys(1, &m, &total);
    static char want[8192];
    top_lines(v, m, 5, want, sizeof want);
    kc_free(v, m);
    CHECK_EQ(run(RILL_BIN_DIR "/push_lines " LOG, out, sizeof out), 0);
    CHECK_STREQ(out, want);
    /* From stdin too, as the seed reads it. */
    CHECK_EQ(run(RILL_BIN_DIR "/push_lines < " LOG, out, sizeof out), 0);
    CHECK_STREQ(out, want);
}

RILL_TEST(firsthour, slow_stage_counts_and_reports_the_bottleneck) {
    size_t m;
    unsigned long total;
    kc *v = count_keys(0, &m, &total);
    static char want[8192];
    top_lines(v, m, 3, want, sizeof want);
    kc_free(v, m);
    const char *err = RILL_TEST_TMP "/slow_stage.err";
    /* ThreadSanitizer slows the source about twenty times and the delay not
     * at all: 5 us a line left the source the slower stage under load. */
    CHECK_EQ(run(RILL_TEST_TSAN ? RILL_BIN_DIR "/slow_stage " LOG " 80 2>" RILL_TEST_TMP "/slow_stage.err"
                                : RILL_BIN_DIR "/slow_stage " LOG " 5 2>" RILL_TEST_TMP "/slow_stage.err",
                 out, sizeof out),
             0);
    CHECK_STREQ(out, want);
    FILE *f = fopen(err, "r");
    CHECK(f != NULL);
    static char rep[16384];
    size_t n = fread(rep, 1, sizeof rep - 1, f);
    rep[n] = '\0';
    fclose(f);
    remove(err);
    CHECK(strstr(rep, "lines -> count") != NULL); /* the queue's row */
    char in_out[64]; /* in and out: every line of the log */
    snprintf(in_out, sizeof in_out, "%lu  %lu", total, total);
    CHECK(total > 0 && strstr(rep, in_out) != NULL);
    CHECK(strstr(rep, "bottleneck: count") != NULL);
}

/* Per status (field 8 on single spaces): lines, and lines and byte sums
 * where field 9 is a number. */
static int status_stats(unsigned long *lines, unsigned long *n, unsigned long long *sum) {
    FILE *f = fopen(LOG, "r");
    char *line = NULL;
    size_t cap = 0;
    if (!f)
        return -1;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *field[10] = { 0 }, *s = line;
        for (int i = 0; i < 10 && s; i++) {
            field[i] = s;
            s = strchr(s, ' ');
            if (s)
                *s++ = '\0';
        }
        if (!field[8])
            continue;
        unsigned code = (unsigned)strtoul(field[8], NULL, 10);
        if (code >= 1000)
            continue;
        lines[code]++;
        if (field[9] && strcmp(field[9], "-") != 0) {
            n[code]++;
            sum[code] += strtoull(field[9], NULL, 10);
        }
    }
    free(line);
    fclose(f);
    return 0;
}

RILL_TEST(firsthour, gen_status_and_key_avg_match_the_log) {
    static unsigned long lines[1000], n[1000];
    static unsigned long long sum[1000];
    CHECK_EQ(status_stats(lines, n, sum), 0);
    static char want_gen[4096], want_avg[4096];
    size_t og = 0, oa = 0;
    for (unsigned c = 0; c < 1000; c++) {
        if (lines[c])
            og += (size_t)snprintf(want_gen + og, sizeof want_gen - og, "%u %lu\n", c, lines[c]);
        if (n[c])
            oa += (size_t)snprintf(want_avg + oa, sizeof want_avg - oa, "%u n=%lu mean=%.2f\n", c,
                                   n[c], (double)sum[c] / (double)n[c]);
    }
    snprintf(want_gen + og, sizeof want_gen - og, "unparsed 0\n");
    CHECK(lines[200] > 0 && lines[404] > 0);
    CHECK_EQ(run(RILL_BIN_DIR "/gen_status " LOG, out, sizeof out), 0);
    CHECK_STREQ(out, want_gen);
    CHECK_EQ(run(RILL_BIN_DIR "/key_avg " LOG, out, sizeof out), 0);
    CHECK_STREQ(out, want_avg);
}
