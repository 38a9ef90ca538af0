/* ip_stats --parallel N: the real binary, on the shipped log and on a copy
 * with long lines, CRLF lines and no final newline, read from the file and
 * from stdin, exact, --prefix and --top, alone and with --threaded, for N
 * from 0 to past twice the core count, against counts this test computes
 * from the file's bytes by itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"
#define BIN RILL_BIN_DIR "/ip_stats"

typedef struct text {
    char *d;
    size_t n;
} text;

static int slurp(const char *path, text *t) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    t->d = malloc((size_t)n + 1);
    t->n = t->d ? fread(t->d, 1, (size_t)n, f) : 0;
    fclose(f);
    return t->d && t->n == (size_t)n ? 0 : -1;
}

/* Calls fn(line, len, arg) for each line: up to '\n', the last one even
 * without it. */
static void each_line(const text *t, void (*fn)(const char *, size_t, void *), void *arg) {
    size_t start = 0;
    for (size_t i = 0; i < t->n; i++)
        if (t->d[i] == '\n') {
            fn(t->d + start, i - start, arg);
            start = i + 1;
        }
    if (start < t->n)
        fn(t->d + start, t->n - start, arg);
}

typedef struct hits {
    const char *ip;
    bool prefix;
    long n;
} hits;

static void count_hit(const char *l, size_t len, void *arg) {
    hits *h = arg;
    size_t n = strlen(h->ip);
    if (len < n || memcmp(l, h->ip, n) != 0)
        return;
    h->n += h->prefix || len == n || l[n] == ' ';
}

/* ---- --top, computed here: sort the first fields, count the runs --------- */

typedef struct field {
    const char *k;
    size_t len;
    long n;
} field;

typedef struct fields {
    field *f;
    size_t n, cap;
} fields;

static void add_field(const char *l, size_t len, void *arg) {
    fields *fs = arg;
    if (len == 0 || l[0] == ' ')
        return; /* no client address */
    const char *sp = memchr(l, ' ', len);
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? 2 * fs->cap : 1024;
        fs->f = realloc(fs->f, fs->cap * sizeof *fs->f);
    }
    fs->f[fs->n++] = (field){l, sp ? (size_t)(sp - l) : len, 1};
}

static int by_key(const void *a, const void *b) {
    const field *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->k, y->k, m);
    return r ? r : (x->len > y->len) - (x->len < y->len);
}

static int by_rank(const void *a, const void *b) {
    const field *x = a, *y = b;
    if (x->n != y->n)
        return x->n > y->n ? -1 : 1;
    return by_key(a, b);
}

static void want_top(const text *t, size_t top, char *out, size_t cap) {
    fields fs = {0};
    each_line(t, add_field, &fs);
    qsort(fs.f, fs.n, sizeof *fs.f, by_key);
    size_t u = 0;
    for (size_t i = 0; i < fs.n; i++) {
        if (u && by_key(&fs.f[u - 1], &fs.f[i]) == 0)
            fs.f[u - 1].n++;
        else
            fs.f[u++] = fs.f[i];
    }
    qsort(fs.f, u, sizeof *fs.f, by_rank);
    out[0] = '\0';
    for (size_t i = 0; i < top && i < u; i++) {
        size_t at = strlen(out);
        /* The test files' addresses are plain: ip_stats prints them as is. */
        snprintf(out + at, cap - at, "%.*s %ld\n", (int)fs.f[i].len, fs.f[i].k, fs.f[i].n);
    }
    free(fs.f);
}

static const char *const ips[] = {"83.149.9.216", "93.114", "66.249.73.135", "10.9.9.9",
                                  "207.241.237.101"};

static void want_ips(const text *t, bool prefix, char *out, size_t cap) {
    out[0] = '\0';
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        hits h = {ips[i], prefix, 0};
        each_line(t, count_hit, &h);
        size_t at = strlen(out);
        snprintf(out + at, cap - at, "%s %ld\n", ips[i], h.n);
    }
}

/* A copy of the shipped log with lines of 20-70 KB, CRLF endings and no
 * final newline: cuts fall inside long lines, and the last line has no end. */
static int make_variant(const text *log, const char *path, text *out) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t start = 0, line = 0;
    for (size_t i = 0; i < log->n; i++) {
        if (log->d[i] != '\n')
            continue;
        fwrite(log->d + start, 1, i - start, f);
        if (line % 7 == 3)
            fputc('\r', f);
        fputc('\n', f);
        if (line % 500 == 17) {
            fputs("66.249.73.135 ", f);
            for (size_t k = 0; k < 20000 + line * 50; k++)
                fputc('a' + (int)(k % 26), f);
            fputc('\n', f);
        }
        start = i + 1;
        line++;
    }
    fputs("83.149.9.216 - - last line without a newline", f);
    if (fclose(f))
        return -1;
    return slurp(path, out);
}

static void check(const char *cmd, const char *want, int *ok) {
    static char out[16384];
    *ok = run(cmd, out, sizeof out) == 0 && strcmp(out, want) == 0;
    if (!*ok)
        rill_test__failf(__FILE__, __LINE__, "%s\ngot:\n%swant:\n%s", cmd, out, want);
}

/* Every mode, input and width on one file (variant: the copy with long
 * lines, CRLF and no final newline). One test per file, so that each stays
 * well inside CI's 120 s under ThreadSanitizer on two loaded cores. */
static void same_counts(bool variant) {
    text log = {0}, var = {0};
    char vpath[512];
    snprintf(vpath, sizeof vpath, "%s/ipstats_parallel_%d.log", RILL_TEST_TMP, (int)getpid());
    CHECK(slurp(LOG, &log) == 0);
    if (variant)
        CHECK(make_variant(&log, vpath, &var) == 0);
    const char *path = variant ? vpath : LOG;
    const text *t = variant ? &var : &log;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned ns[] = {0, 1, 2, 3, (unsigned)cores + 1, 2 * (unsigned)cores + 3};
    size_t nn = sizeof ns / sizeof ns[0];
    bool slow = false;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    nn = 5; /* each run is ten times slower: not the widest, */
    slow = true; /* and stdin (one reader dealing) at every other width */
#endif
    static char want[3][16384];
    char ipargs[256] = "";
    for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
        strcat(ipargs, " ");
        strcat(ipargs, ips[i]);
    }
    want_ips(t, false, want[0], sizeof want[0]);
    want_ips(t, true, want[1], sizeof want[1]);
    want_top(t, 15, want[2], sizeof want[2]);
    for (size_t k = 0; k < nn; k++)
        for (int mode = 0; mode < 3; mode++)
            for (int in = 0; in < 2; in++) {
                if (in && slow && k % 2)
                    continue;
                /* --threaded (a thread per replica of every stage) on a few
                 * widths: it is the slow one. */
                int threaded = (k == 2 || k == 4) && mode != 1;
                char cmd[2048];
                const char *m = mode == 0 ? ipargs : mode == 1 ? "" : " --top 15";
                snprintf(cmd, sizeof cmd, "%s %s%s--parallel %u %s%s%s%s", BIN,
                         threaded ? "--threaded " : "", mode == 1 ? "--prefix " : "", ns[k],
                         in ? "-" : path, mode == 1 ? ipargs : m, in ? " < " : "",
                         in ? path : "");
                int ok;
                check(cmd, want[mode], &ok);
                CHECK(ok);
            }
    if (variant)
        unlink(vpath);
    free(log.d);
    free(var.d);
}

RILL_TEST(ip_stats_parallel, same_counts_as_the_shipped_log_for_any_n) { same_counts(false); }

RILL_TEST(ip_stats_parallel, same_counts_with_long_lines_crlf_and_no_final_newline) {
    same_counts(true);
}

RILL_TEST(ip_stats_parallel, bad_values_are_usage_errors) {
    char out[1024], cmd[512];
    const char *bad[] = {"-1", "x", "", "1025", "99999999999999999999", "2x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s --parallel '%s' %s 2>&1", BIN, bad[i], LOG);
        CHECK_EQ(run(cmd, out, sizeof out), 2);
        CHECK(strstr(out, "--parallel") != NULL);
    }
}
