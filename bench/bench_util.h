/* Small helpers shared by the benchmarks in bench/ (one header, not a
 * library: each bench_*.c stays a single program). */
#ifndef RILL_BENCH_UTIL_H
#define RILL_BENCH_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rill.h"

/* The 1-minute load average, printed next to figures so a reader can tell
 * a busy machine's numbers from a quiet one's; -1 if unknown. */
static inline double loadavg(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1)
            l = -1;
        fclose(f);
    }
    return l;
}

/* The whole of /proc/loadavg (1, 5 and 15 minutes, tasks) in out, or "". */
static inline void loadavg_line(char *out, size_t len) {
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = '\0';
    if (f && fgets(out, (int)len, f))
        out[strcspn(out, "\n")] = '\0';
    if (f)
        fclose(f);
}

/* Monotonic time in seconds. */
static inline double bench_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0..n) (n >= 1; v is sorted in place). */
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The command line of the log benchmarks: --log PATH, --mb N, --rounds N,
 * the benchmark's own `--name VALUE` options (extra, ended by a NULL name),
 * and up to max_ips IPs. Fill the defaults first. 0, or 2 after printing
 * "usage: " usage on stderr (an unknown option, a missing value, a number
 * that is not one or is too large, too many IPs). */
typedef struct bench_opt {
    const char *name;
    const char **value; /* the value as given, or */
    uint64_t *number;   /* a whole number from 0 to max */
    uint64_t max;
} bench_opt;

typedef struct bench_args {
    const char *path;
    uint64_t mb;
    int rounds;
    const char **ips; /* room for max_ips */
    size_t nips, max_ips;
} bench_args;

/* A whole decimal number in s, at most max. */
static inline bool bench_number(const char *s, uint64_t max, uint64_t *out) {
    char *end;
    if (*s < '0' || *s > '9')
        return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > max)
        return false;
    *out = v;
    return true;
}

static inline int bench_usage(const char *usage) {
    fprintf(stderr, "usage: %s\n", usage);
    return 2;
}

static inline int bench_parse_args(int argc, char **argv, bench_args *a, const bench_opt *extra,
                                   const char *usage) {
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (arg[0] != '-') {
            if (a->nips == a->max_ips)
                return bench_usage(usage);
            a->ips[a->nips++] = arg;
            continue;
        }
        const bench_opt *x = extra;
        while (x && x->name && strcmp(arg, x->name) != 0)
            x++;
        uint64_t n;
        if (!val)
            return bench_usage(usage);
        if (x && x->name && x->value)
            *x->value = val;
        else if (x && x->name && bench_number(val, x->max, &n))
            *x->number = n;
        else if (x && x->name)
            return bench_usage(usage);
        else if (!strcmp(arg, "--log"))
            a->path = val;
        else if (!strcmp(arg, "--mb") && bench_number(val, UINT64_MAX / 1000000, &n))
            a->mb = n;
        else if (!strcmp(arg, "--rounds") && bench_number(val, 1000000, &n))
            a->rounds = (int)n;
        else
            return bench_usage(usage);
        i++;
    }
    return 0;
}

#ifdef RILL_DATA_DIR
/* A log of at least `want` bytes at path, the shipped apache_logs repeated;
 * kept if one that large is there already. 0, or -1 (errno says why). */
static inline int bench_make_log(const char *path, uint64_t want) {
    struct stat st;
    if (stat(path, &st) == 0 && (uint64_t)st.st_size >= want)
        return 0;
    FILE *in = fopen(RILL_DATA_DIR "/apache_logs", "rb");
    if (!in)
        return -1;
    static char sample[4 << 20];
    size_t n = fread(sample, 1, sizeof sample, in);
    fclose(in);
    FILE *out = n ? fopen(path, "wb") : NULL;
    if (!out)
        return -1;
    for (uint64_t done = 0; done < want; done += n)
        if (fwrite(sample, 1, n, out) != n) {
            fclose(out);
            return -1;
        }
    return fclose(out);
}
#endif

/* The smallest power of two >= n (at least 2): ck_ring sizes. */
static inline unsigned pow2_at_least(unsigned n) {
    unsigned p = 2;
    while (p < n)
        p <<= 1;
    return p;
}

/* Monotonic time in nanoseconds. */
static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sum of the len field over items 0..n-1 of a pool of `size` items cycled
 * from its start: what a consumer must have counted after n items. */
static inline uint64_t pool_sum(const rill_item *pool, unsigned size, uint64_t n) {
    uint64_t whole = 0, part = 0;
    for (unsigned i = 0; i < size; i++) {
        whole += pool[i].len;
        if (i < n % size)
            part += pool[i].len;
    }
    return whole * (n / size) + part;
}

/* A consumer stage that counts the items it gets and sums their lengths. */
struct count_sink {
    uint64_t sum, count;
};

static inline int count_sink_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    struct count_sink *k = state;
    k->sum += it->len;
    k->count++;
    return 0;
}

static const rill_stage_ops count_sink_ops = {.send = count_sink_send};

#endif
