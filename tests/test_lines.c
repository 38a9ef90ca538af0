/* The streaming line source: what a line is, limits, reads across buffer
 * boundaries, pipes, errors, statistics, and that memory stays bounded. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "line_split.h"

/* ---- helpers ---------------------------------------------------------------- */

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/lines_%s_%ld", RILL_TEST_TMP, name, (long)getpid());
}

static bool write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64: reproducible inputs */
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

typedef struct lrun {
    rill_pipeline *p;
    rill_stage *src, *col;
    int add_rc, rc;
    const rill_item *items;
    size_t n;
    struct rill_lines_stats stats;
} lrun;

/* source(path or fd) -> collect, run. */
static lrun run_lines(const char *path, int fd, const rill_lines_opts *lo) {
    lrun r = {0};
    if (rill_pipeline_new("t", &r.p) < 0)
        return r.add_rc = RILL_ENOMEM, r;
    r.add_rc = path ? rill_lines_file_add(r.p, "src", path, lo, NULL, &r.src)
                    : rill_lines_fd_add(r.p, "src", fd, lo, NULL, &r.src);
    if (r.add_rc == 0)
        r.add_rc = rill_collect_add(r.p, "col", NULL, &r.col);
    if (r.add_rc == 0)
        r.add_rc = rill_connect(r.src, r.col);
    if (r.add_rc == 0) {
        r.rc = rill_pipeline_run(r.p);
        rill_collect_items(r.col, &r.items, &r.n);
        rill_lines_stats(r.src, &r.stats);
    }
    return r;
}

/* Write d to a fresh file, run it with lo, compare with ref_split. */
static bool roundtrip(const char *name, const char *d, size_t n, const rill_lines_opts *lo) {
    char path[512];
    tmp_path(path, sizeof path, name);
    if (!write_file(path, d, n))
        return false;
    lrun r = run_lines(path, -1, lo);
    unlink(path);
    span *exp = malloc((n + 1) * sizeof *exp);
    uint64_t ntrunc;
    bool toolong;
    size_t max_line = lo->max_line ? lo->max_line : RILL_LINES_DEFAULT_MAX_LINE;
    size_t k = ref_split(d, n, lo->flags, max_line, exp, &ntrunc, &toolong);
    bool ok = r.add_rc == 0 && r.rc == (toolong ? RILL_ETOOLONG : 0) && r.n == k &&
              r.stats.lines == k && r.stats.truncated == ntrunc;
    if (!toolong)
        ok = ok && r.stats.bytes == n;
    for (size_t i = 0; ok && i < k; i++)
        ok = rill_item_eq(&r.items[i], d + exp[i].off, exp[i].len);
    if (!ok)
        rill_test__failf(__FILE__, __LINE__,
                         "%s: add %d rc %d (%s), %zu lines (expected %zu), truncated %llu/%llu",
                         name, r.add_rc, r.rc, rill_pipeline_errmsg(r.p), r.n, k,
                         (unsigned long long)r.stats.truncated, (unsigned long long)ntrunc);
    free(exp);
    rill_pipeline_free(r.p);
    return ok;
}

#define RT(name, lit, ...)                                                     \
    do {                                                                       \
        rill_lines_opts lo_ = {__VA_ARGS__};                                   \
        CHECK(roundtrip(name, lit, sizeof lit - 1, &lo_));                     \
    } while (0)

static bool item_is(const rill_item *it, const char *s) { return rill_item_eq(it, s, strlen(s)); }

/* ---- what a line is --------------------------------------------------------- */

RILL_TEST(lines, empty_file_has_no_lines) {
    char path[512];
    tmp_path(path, sizeof path, "empty");
    CHECK(write_file(path, "", 0));
    lrun r = run_lines(path, -1, NULL);
    unlink(path);
    CHECK_OK(r.add_rc);
    CHECK_OK(r.rc);
    CHECK_EQ(r.n, 0);
    CHECK_EQ(r.stats.lines, 0);
    CHECK_EQ(r.stats.bytes, 0);
    rill_pipeline_free(r.p);
}

RILL_TEST(lines, basic_shapes) {
    RT("nonl", "one line without newline", .chunk = 0);
    RT("single_nl", "\n", .chunk = 0);
    RT("blank_lines", "\n\na\n\n", .chunk = 1);
    RT("final_nl", "a\nbb\nccc\n", .chunk = 2);
    RT("no_final_nl", "a\nbb\nccc", .chunk = 3);
}

RILL_TEST(lines, crlf_is_data_unless_stripped) {
    char path[512];
    tmp_path(path, sizeof path, "crlf");
    static const char d[] = "a\r\nb\r\r\n\r\nc\rd\r";
    CHECK(write_file(path, d, sizeof d - 1));
    lrun r = run_lines(path, -1, NULL);
    CHECK_OK(r.rc);
    CHECK_EQ(r.n, 4);
    CHECK(item_is(&r.items[0], "a\r") && item_is(&r.items[1], "b\r\r"));
    CHECK(item_is(&r.items[2], "\r") && item_is(&r.items[3], "c\rd\r"));
    rill_pipeline_free(r.p);

    rill_lines_opts lo = {.flags = RILL_LINES_STRIP_CR};
    r = run_lines(path, -1, &lo);
    unlink(path);
    CHECK_OK(r.rc);
    CHECK_EQ(r.n, 4);
    /* One '\r' before '\n' goes; a '\r' at end of file stays. */
    CHECK(item_is(&r.items[0], "a") && item_is(&r.items[1], "b\r"));
    CHECK(item_is(&r.items[2], "") && item_is(&r.items[3], "c\rd\r"));
    CHECK_EQ(r.stats.bytes, sizeof d - 1);
    rill_pipeline_free(r.p);
}

RILL_TEST(lines, nul_and_invalid_utf8_are_data) {
    static const char d[] = "\0\xff\xfe\xc3\x28\n\x80\0\n\xed\xa0\x80\0";
    char path[512];
    tmp_path(path, sizeof path, "bin");
    CHECK(write_file(path, d, sizeof d - 1));
    lrun r = run_lines(path, -1, NULL);
    unlink(path);
    CHECK_OK(r.rc);
    CHECK_EQ(r.n, 3);
    CHECK(rill_item_eq(&r.items[0], "\0\xff\xfe\xc3\x28", 5));
    CHECK(rill_item_eq(&r.items[1], "\x80\0", 2));
    CHECK(rill_item_eq(&r.items[2], "\xed\xa0\x80\0", 4));
    rill_pipeline_free(r.p);
}

/* ---- buffer boundaries and long lines -------------------------------------- */

RILL_TEST(lines, lines_straddle_small_buffers) {
    char d[4000];
    uint64_t seed = 42;
    size_t n = 0;
    while (n < sizeof d) { /* lines of 0..60 bytes around a 16-byte chunk */
        size_t len = rng_next(&seed) % 61;
        for (size_t i = 0; i < len && n < sizeof d; i++)
            d[n++] = (char)('a' + i % 26);
        if (n < sizeof d)
            d[n++] = '\n';
    }
    for (size_t chunk = 1; chunk <= 17; chunk++) {
        rill_lines_opts lo = {.chunk = chunk, .max_line = 64};
        CHECK(roundtrip("straddle", d, sizeof d, &lo));
    }
}

RILL_TEST(lines, five_mib_line_with_eight_mib_limit) {
    size_t big = 5u << 20, n = 5 + big + 1 + 5;
    char *d = malloc(n);
    CHECK(d);
    memcpy(d, "head\n", 5);
    for (size_t i = 0; i < big; i++)
        d[5 + i] = (char)('A' + (i * 7) % 23);
    memcpy(d + 5 + big, "\nafter", 6);
    rill_lines_opts lo = {.max_line = 8u << 20};
    CHECK(roundtrip("big", d, n, &lo));
    lo.chunk = 4096; /* many reads per line: the buffer grows, bounded */
    CHECK(roundtrip("big_small_chunk", d, n, &lo));
    CHECK(roundtrip("big_at_eof", d, n - 6, &lo));
    lo.max_line = big - 1;
    CHECK(roundtrip("big_too_long", d, n, &lo));
    free(d);
}

RILL_TEST(lines, overlong_line_fails_with_stage_name) {
    static const char d[] = "short\n0123456789X\nmore\n";
    char path[512];
    tmp_path(path, sizeof path, "long");
    CHECK(write_file(path, d, sizeof d - 1));
    for (size_t chunk = 3; chunk <= 4096; chunk *= 8) { /* in one read / across reads */
        rill_lines_opts lo = {.max_line = 10, .chunk = chunk};
        lrun r = run_lines(path, -1, &lo);
        CHECK_EQ(r.rc, RILL_ETOOLONG);
        CHECK_EQ(rill_pipeline_status(r.p), RILL_ETOOLONG);
        CHECK_STREQ(rill_pipeline_errstage(r.p), "src");
        CHECK(strstr(rill_pipeline_errmsg(r.p), "stage 'src'"));
        CHECK(strstr(rill_pipeline_errmsg(r.p), "line 2 longer than 10 bytes"));
        CHECK_EQ(r.n, 1);
        CHECK(item_is(&r.items[0], "short"));
        rill_pipeline_free(r.p);
    }
    unlink(path);
}

RILL_TEST(lines, limit_is_inclusive_and_counts_after_strip) {
    RT("exact", "0123456789\nx\n", .max_line = 10, .chunk = 3);
    RT("exact_eof", "0123456789", .max_line = 10, .chunk = 4);
    RT("one_over", "01234567890\n", .max_line = 10, .chunk = 5);
    RT("crlf_exact", "0123456789\r\n", .max_line = 10, .chunk = 3, .flags = RILL_LINES_STRIP_CR);
    RT("crlf_over", "0123456789x\r\n", .max_line = 10, .chunk = 3, .flags = RILL_LINES_STRIP_CR);
    RT("cr_at_eof_over", "0123456789\r", .max_line = 10, .chunk = 3, .flags = RILL_LINES_STRIP_CR);
}

RILL_TEST(lines, truncate_cuts_counts_and_resyncs) {
    char d[3000];
    size_t n = 0;
    n += (size_t)sprintf(d + n, "abc\n");
    memset(d + n, 'L', 2000); /* spans many 5-byte reads: skipped, not buffered */
    n += 2000;
    n += (size_t)sprintf(d + n, "\ntail1\nxxxxxxxxx\r\nend");
    static const char *const want[] = {"abc", "LLLLLLLL", "tail1", "xxxxxxxx", "end"};
    char path[512];
    tmp_path(path, sizeof path, "trunc");
    CHECK(write_file(path, d, n));
    for (size_t chunk = 5; chunk <= 5000; chunk *= 10) {
        rill_lines_opts lo = {.max_line = 8, .chunk = chunk, .flags = RILL_LINES_TRUNCATE};
        lrun r = run_lines(path, -1, &lo);
        CHECK_OK(r.rc);
        CHECK_EQ(r.n, 5);
        for (size_t i = 0; i < 5; i++)
            CHECK(item_is(&r.items[i], want[i]));
        CHECK_EQ(r.stats.lines, 5);
        CHECK_EQ(r.stats.truncated, 2);
        CHECK_EQ(r.stats.bytes, n);
        rill_pipeline_free(r.p);
    }
    unlink(path);
}

/* Random bytes rich in '\n', '\r' and NUL, random chunk, limit and flags. */
RILL_TEST(lines, randomized_roundtrip) {
    uint64_t seed = 0x9e3779b97f4a7c15u;
    char *d = malloc(20000);
    CHECK(d);
    for (int iter = 0; iter < 200; iter++) {
        size_t n = rng_next(&seed) % 20000;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rng_next(&seed) % 40;
            d[i] = r == 0 ? '\n' : r == 1 ? '\r' : r == 2 ? '\0' : (char)rng_next(&seed);
        }
        rill_lines_opts lo = {.chunk = 1 + rng_next(&seed) % 300,
                              .max_line = 1 + rng_next(&seed) % 200,
                              .flags = (unsigned)(rng_next(&seed) % 4)};
        CHECK(roundtrip("random", d, n, &lo));

        /* Without limits in play, lines re-joined with '\n' give the input. */
        lo.flags = 0;
        lo.max_line = n + 1;
        char path[512];
        tmp_path(path, sizeof path, "join");
        CHECK(write_file(path, d, n));
        lrun r = run_lines(path, -1, &lo);
        unlink(path);
        CHECK_OK(r.rc);
        size_t pos = 0;
        for (size_t i = 0; i < r.n; i++) {
            CHECK(pos + r.items[i].len <= n);
            CHECK(memcmp(d + pos, r.items[i].data, r.items[i].len) == 0);
            pos += r.items[i].len;
            if (pos < n) /* the rule: a final '\n' adds no empty line */
                CHECK(d[pos++] == '\n');
        }
        CHECK_EQ(pos, n);
        rill_pipeline_free(r.p);
    }
    free(d);
}

/* ---- pipes ----------------------------------------------------------------- */

typedef struct writer {
    int fd;
    const char *d;
    size_t n;
    int err; /* checked by the test thread */
} writer;

static void *writer_main(void *arg) {
    writer *w = arg;
    uint64_t seed = 7;
    for (size_t pos = 0; pos < w->n;) {
        size_t len = 1 + rng_next(&seed) % 300;
        if (len > w->n - pos)
            len = w->n - pos;
        ssize_t k = write(w->fd, w->d + pos, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->err = errno ? errno : EIO;
            break;
        }
        pos += (size_t)k;
        if (rng_next(&seed) % 8 == 0)
            sched_yield();
    }
    close(w->fd);
    return NULL;
}

RILL_TEST(lines, pipe_fed_in_small_irregular_writes) {
    size_t n = 200000;
    char *d = malloc(n);
    span *exp = malloc((n + 1) * sizeof *exp);
    CHECK(d && exp);
    uint64_t seed = 3;
    for (size_t i = 0; i < n; i++)
        d[i] = rng_next(&seed) % 50 == 0 ? '\n' : (char)('0' + rng_next(&seed) % 70);
    int fds[2];
    CHECK(pipe(fds) == 0);
    writer w = {.fd = fds[1], .d = d, .n = n};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, writer_main, &w) == 0);
    rill_lines_opts lo = {.chunk = 1000};
    lrun r = run_lines(NULL, fds[0], &lo);
    pthread_join(t, NULL);
    close(fds[0]);
    CHECK_EQ(w.err, 0);
    CHECK_OK(r.add_rc);
    CHECK_OK(r.rc);
    uint64_t ntrunc;
    bool toolong;
    size_t k = ref_split(d, n, 0, RILL_LINES_DEFAULT_MAX_LINE, exp, &ntrunc, &toolong);
    CHECK_EQ(r.n, k);
    CHECK_EQ(r.stats.lines, k);
    CHECK_EQ(r.stats.bytes, n);
    for (size_t i = 0; i < k; i++)
        CHECK(rill_item_eq(&r.items[i], d + exp[i].off, exp[i].len));
    rill_pipeline_free(r.p);
    free(exp);
    free(d);
}

/* ---- errors ---------------------------------------------------------------- */

RILL_TEST(lines, bad_arguments_and_open_errors) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    rill_stage *st = (rill_stage *)1;
    CHECK_EQ(rill_lines_fd_add(p, "a", -1, NULL, NULL, &st), RILL_EINVAL);
    CHECK(st == NULL);
    rill_lines_opts bad = {.flags = 1u << 7};
    CHECK_EQ(rill_lines_fd_add(p, "b", 0, &bad, NULL, NULL), RILL_EINVAL);
    CHECK_EQ(rill_lines_file_add(p, "c", RILL_TEST_TMP "/no/such/file", NULL, NULL, NULL),
             -ENOENT);
    CHECK_EQ(rill_lines_file_add(p, "d", RILL_TEST_TMP, NULL, NULL, NULL), -EISDIR);
    if (geteuid() != 0) { /* root reads anything */
        char path[512];
        tmp_path(path, sizeof path, "noperm");
        CHECK(write_file(path, "x\n", 2));
        chmod(path, 0);
        CHECK_EQ(rill_lines_file_add(p, "e", path, NULL, NULL, NULL), -EACCES);
        unlink(path);
    }
    rill_stage *col;
    struct rill_lines_stats s;
    CHECK_OK(rill_collect_add(p, "col", NULL, &col));
    CHECK_EQ(rill_lines_stats(col, &s), RILL_EINVAL);
    CHECK_EQ(rill_lines_stats(NULL, &s), RILL_EINVAL);
    rill_pipeline_free(p);
}

RILL_TEST(lines, read_error_fails_naming_the_fd) {
    int fd = open(RILL_TEST_TMP, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* read(): EISDIR */
    CHECK(fd >= 0);
    lrun r = run_lines(NULL, fd, NULL);
    close(fd);
    CHECK_OK(r.add_rc);
    CHECK_EQ(r.rc, -EISDIR);
    char want[64];
    snprintf(want, sizeof want, "cannot read fd %d", fd);
    CHECK(strstr(rill_pipeline_errmsg(r.p), want));
    CHECK(strstr(rill_pipeline_errmsg(r.p), "stage 'src'"));
    rill_pipeline_free(r.p);
}

typedef struct counter {
    uint64_t lines, bytes;
    const rill_ref *last;
    unsigned owner_changes;
    uint64_t fail_at; /* nonzero: refuse that item (1-based) */
} counter;

static int counter_send(rill_stage *st, void *state, const rill_item *it) {
    counter *c = state;
    if (c->fail_at && c->lines + 1 == c->fail_at)
        return rill_stage_fail(st, RILL_ESTAGE, "refusing item %llu",
                               (unsigned long long)c->fail_at);
    if (c->lines && it->owner != c->last)
        c->owner_changes++;
    c->last = it->owner;
    c->lines++;
    c->bytes += it->len;
    return 0;
}

static const rill_stage_ops counter_ops = {.send = counter_send};

/* source -> counter (state on the caller's stack: no destroy). */
static int run_count(const char *path, const rill_lines_opts *lo, counter *c,
                     struct rill_lines_stats *stats, rill_pipeline **pout) {
    rill_pipeline *p;
    rill_stage *src, *cnt;
    int rc = rill_pipeline_new("t", &p);
    if (rc < 0)
        return rc;
    if ((rc = rill_lines_file_add(p, "src", path, lo, NULL, &src)) == 0 &&
        (rc = rill_stage_add(p, "count", &counter_ops, c, NULL, &cnt)) == 0 &&
        (rc = rill_connect(src, cnt)) == 0) {
        rc = rill_pipeline_run(p);
        rill_lines_stats(src, stats);
    }
    if (pout)
        *pout = p;
    else
        rill_pipeline_free(p);
    return rc;
}

RILL_TEST(lines, downstream_error_stops_the_source) {
    char path[512];
    tmp_path(path, sizeof path, "stop");
    CHECK(write_file(path, "1\n2\n3\n4\n5\n", 10));
    counter c = {.fail_at = 3};
    struct rill_lines_stats s;
    rill_pipeline *p;
    CHECK_EQ(run_count(path, NULL, &c, &s, &p), RILL_ESTAGE);
    unlink(path);
    CHECK_STREQ(rill_pipeline_errstage(p), "count");
    CHECK(strstr(rill_pipeline_errmsg(p), "refusing item 3"));
    CHECK_EQ(c.lines, 2);
    /* The lines go as one run: each line emitted was received (the two
     * counted, the one refused) or discarded when the refusal stopped the
     * pipeline; all five were emitted. */
    CHECK_EQ(s.lines, 5);
    CHECK_EQ(s.lines, c.lines + 1 + rill_pipeline_discarded(p));
    rill_pipeline_free(p);
}

/* A sink that aborts the pipeline at line k (and takes it): whatever the run
 * length, every line the source counts was received or discarded, and the
 * source's items_out agrees with its line count. Every k from 1 to 130, so
 * that some k ends a run exactly: the next run is then refused at once. */
typedef struct aborter {
    uint64_t lines, abort_at;
    rill_pipeline *p;
} aborter;

static int aborter_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    (void)it;
    aborter *a = state;
    if (++a->lines == a->abort_at)
        rill_pipeline_abort(a->p);
    return 0;
}

static const rill_stage_ops aborter_ops = {.send = aborter_send};

RILL_TEST(lines, an_abort_between_runs_leaves_every_line_received_or_discarded) {
    char path[512];
    tmp_path(path, sizeof path, "abort");
    char text[300 * 4];
    size_t len = 0;
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "%03d\n", i % 1000);
    CHECK(write_file(path, text, len));
    for (uint64_t k = 1; k <= 130; k++) {
        rill_pipeline *p;
        rill_stage *src, *sink;
        aborter a = {.abort_at = k};
        CHECK_OK(rill_pipeline_new("abort", &p));
        a.p = p;
        CHECK_OK(rill_lines_file_add(p, "src", path, NULL, NULL, &src));
        CHECK_OK(rill_stage_add(p, "sink", &aborter_ops, &a, NULL, &sink));
        CHECK_OK(rill_connect(src, sink));
        CHECK_EQ(rill_pipeline_run(p), RILL_EABORTED);
        struct rill_lines_stats s;
        rill_lines_stats(src, &s);
        CHECK_EQ(a.lines, k);
        CHECK_EQ(s.lines, a.lines + rill_pipeline_discarded(p));
        rill_stats *st;
        CHECK_OK(rill_pipeline_stats(p, &st));
        for (size_t i = 0; i < st->nstages; i++)
            if (strcmp(st->stages[i].name, "src") == 0)
                CHECK_EQ(st->stages[i].items_out, s.lines);
        rill_stats_free(st);
        rill_pipeline_free(p);
    }
    unlink(path);
}
RILL_TEST(lines, close_fd_flag_and_file_ownership) {
    char path[512];
    tmp_path(path, sizeof path, "fdown");
    CHECK(write_file(path, "x\n", 2));
    for (int flag = 0; flag < 2; flag++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        CHECK(fd >= 0);
        rill_lines_opts lo = {.flags = flag ? RILL_LINES_CLOSE_FD : 0};
        lrun r = run_lines(NULL, fd, &lo);
        CHECK_OK(r.rc);
        rill_pipeline_free(r.p);
        CHECK_EQ(fcntl(fd, F_GETFD) == -1, flag);
        if (!flag)
            close(fd);
    }
    int probe = dup(0); /* the lowest free fd: the one file_add will get */
    CHECK(probe >= 0);
    close(probe);
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_lines_file_add(p, "src", path, NULL, NULL, NULL));
    CHECK(fcntl(probe, F_GETFD) & FD_CLOEXEC);
    rill_pipeline_free(p);
    CHECK(fcntl(probe, F_GETFD) == -1);
    unlink(path);
}

/* ---- the real log, statistics, memory -------------------------------------- */

RILL_TEST(lines, real_log_counts_match_an_independent_count) {
    const char *path = RILL_DATA_DIR "/apache_logs";
    FILE *f = fopen(path, "rb");
    CHECK(f);
    uint64_t newlines = 0, bytes = 0;
    int last = '\n';
    char buf[8192];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) {
        for (size_t i = 0; i < k; i++)
            newlines += buf[i] == '\n';
        bytes += k;
        last = buf[k - 1];
    }
    fclose(f);
    uint64_t lines = newlines + (last != '\n');
    CHECK(lines >= 10000);
    counter c = {0};
    struct rill_lines_stats s;
    CHECK_OK(run_count(path, NULL, &c, &s, NULL));
    CHECK_EQ(c.lines, lines);
    CHECK_EQ(s.lines, lines);
    CHECK_EQ(s.bytes, bytes);
    CHECK_EQ(s.truncated, 0);
    CHECK_EQ(c.bytes + newlines, bytes); /* nothing lost or added within lines */
}

static char *repeat_log(const char *name, int times, size_t *len) {
    static char path[512];
    FILE *in = fopen(RILL_DATA_DIR "/apache_logs", "rb");
    if (!in)
        return NULL;
    char *log = malloc(4u << 20);
    size_t n = fread(log, 1, 4u << 20, in);
    fclose(in);
    tmp_path(path, sizeof path, name);
    FILE *out = fopen(path, "wb");
    for (int i = 0; out && i < times; i++)
        fwrite(log, 1, n, out);
    *len = n * (size_t)times;
    free(log);
    return out && fclose(out) == 0 ? path : NULL;
}

/* Nothing keeps items: every line of a multi-MB file comes out of the same
 * buffer, reused in place (allocating per read would change owners). */
RILL_TEST(lines, constant_memory_without_retaining_stages) {
    size_t len;
    const char *path = repeat_log("const", 3, &len);
    CHECK(path);
    for (size_t chunk = 4096; chunk <= RILL_LINES_DEFAULT_CHUNK; chunk *= 64) {
        counter c = {0};
        struct rill_lines_stats s;
        rill_lines_opts lo = {.chunk = chunk};
        CHECK_OK(run_count(path, &lo, &c, &s, NULL));
        CHECK_EQ(s.bytes, len);
        CHECK(s.bytes / chunk > 20); /* many reads */
        CHECK(c.owner_changes <= 1);
    }
    unlink(path);
}

/* A stage that keeps items keeps their buffers: the source must not reuse them. */
RILL_TEST(lines, retained_buffers_are_not_overwritten) {
    size_t len;
    const char *path = repeat_log("retain", 1, &len);
    CHECK(path);
    char *d = malloc(len);
    FILE *f = fopen(path, "rb");
    CHECK(d && f && fread(d, 1, len, f) == len);
    fclose(f);
    rill_lines_opts lo = {.chunk = 777};
    CHECK(roundtrip("retain_rt", d, len, &lo));
    lrun r = run_lines(path, -1, &lo);
    unlink(path);
    CHECK_OK(r.rc);
    size_t owners = 1;
    for (size_t i = 1; i < r.n; i++)
        owners += r.items[i].owner != r.items[i - 1].owner;
    CHECK(owners > len / 777 / 2); /* about one buffer per read */
    rill_pipeline_free(r.p);
    free(d);
}

/* A threaded consumer reads lines after the source's emit has returned: the
 * source must see the in-flight buffers as shared and not read into them. */
typedef struct hasher {
    uint64_t h, lines;
} hasher;

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3u;
    return (h ^ 0xff) * 0x100000001b3u; /* line separator */
}

static int hasher_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    hasher *h = state;
    h->h = fnv(h->h, it->data, it->len);
    h->lines++;
    return 0;
}

static const rill_stage_ops hasher_ops = {.send = hasher_send};

RILL_TEST(lines, threaded_consumer_sees_intact_lines) {
    size_t len;
    const char *path = repeat_log("thr", 1, &len);
    CHECK(path);
    char *d = malloc(len);
    span *exp = malloc((len + 1) * sizeof *exp);
    FILE *f = fopen(path, "rb");
    CHECK(d && exp && f && fread(d, 1, len, f) == len);
    fclose(f);
    uint64_t ntrunc, want = 0xcbf29ce484222325u;
    bool toolong;
    size_t k = ref_split(d, len, 0, RILL_LINES_DEFAULT_MAX_LINE, exp, &ntrunc, &toolong);
    for (size_t i = 0; i < k; i++)
        want = fnv(want, d + exp[i].off, exp[i].len);
    for (unsigned cap = 1; cap <= 4096; cap *= 64) {
        rill_pipeline *p;
        rill_stage *src, *hs;
        hasher h = {.h = 0xcbf29ce484222325u};
        rill_lines_opts lo = {.chunk = 1000};
        rill_stage_opts so = {.flags = RILL_STAGE_THREADED, .capacity = cap};
        CHECK_OK(rill_pipeline_new("t", &p));
        CHECK_OK(rill_lines_file_add(p, "src", path, &lo, NULL, &src));
        CHECK_OK(rill_stage_add(p, "hash", &hasher_ops, &h, &so, &hs));
        CHECK_OK(rill_connect(src, hs));
        CHECK_OK(rill_pipeline_run(p));
        rill_pipeline_free(p);
        CHECK_EQ(h.lines, k);
        CHECK(h.h == want);
    }
    unlink(path);
    free(exp);
    free(d);
}

/* A signal arriving while read() waits on an empty pipe (handler installed
 * without SA_RESTART, so read fails with EINTR) must not end the stream. */
static volatile sig_atomic_t signals_seen;
static void on_signal(int sig) {
    (void)sig;
    signals_seen++;
}

typedef struct poker {
    pthread_t target;
    int fd;
} poker;

static void sleep_ms(long ms) {
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

static void *poker_main(void *arg) {
    poker *k = arg;
    ssize_t w = write(k->fd, "first\nsec", 9);
    for (int i = 0; i < 3; i++) {
        sleep_ms(30); /* let the reader block in read() */
        pthread_kill(k->target, SIGUSR1);
    }
    sleep_ms(30);
    w += write(k->fd, "ond\nthird", 9);
    close(k->fd);
    return (void *)(intptr_t)w;
}

RILL_TEST(lines, eintr_is_retried) {
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_signal; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, &old) == 0);
    int fds[2];
    CHECK(pipe(fds) == 0);
    poker k = {.target = pthread_self(), .fd = fds[1]};
    pthread_t t;
    signals_seen = 0;
    CHECK(pthread_create(&t, NULL, poker_main, &k) == 0);
    lrun r = run_lines(NULL, fds[0], NULL);
    void *written;
    pthread_join(t, &written);
    sigaction(SIGUSR1, &old, NULL);
    close(fds[0]);
    CHECK_EQ((intptr_t)written, 18);
    CHECK_EQ(signals_seen, 3);
    CHECK_OK(r.rc);
    CHECK_EQ(r.n, 3);
    CHECK(item_is(&r.items[0], "first") && item_is(&r.items[1], "second"));
    CHECK(item_is(&r.items[2], "third"));
    rill_pipeline_free(r.p);
}
