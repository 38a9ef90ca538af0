/* Scaling of ip_stats --parallel N (replicas, docs/threads.md) on a >= 1 GB
 * log, for N = 1, 2, ... 2 x nproc, against two hand-written loops in the
 * same process: one thread reading the file with 4 MiB reads, and N threads
 * each pread()ing a line-aligned Nth of it. Every contender counts the same
 * IPs (taken at run time: the operands, or the seed's three copied to the
 * heap) and must agree.
 *
 *   bench_ip_stats_scale [--log PATH] [--mb N] [--rounds N] [--max N] [IP...]
 *   bench_ip_stats_scale --once hand|rill:N --log PATH [IP...]
 *
 * Rounds alternate the contenders; medians are printed as ratios to the
 * one-thread hand loop, with /proc/loadavg before and after: on a shared
 * machine a busy core makes every ratio above 1 thread meaningless. --once
 * runs one contender once and exits, for whole-process timing by a script
 * (hyperfine, or `time`). */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "ipstats.h"

enum { MAXIPS = 16, MAXN = 256, BUF = 4 << 20 };

static const char **ips;
static size_t nips, iplen[MAXIPS];

/* CPU time of the whole process (every thread), user + system. */
static double cpu(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Count the lines of buf[0..len) (whole lines) into counts. */
static void count_lines(const char *p, const char *e, uint64_t *counts) {
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *end = nl ? nl : e;
        size_t len = (size_t)(end - p);
        for (size_t i = 0; i < nips; i++)
            if (len >= iplen[i] && memcmp(p, ips[i], iplen[i]) == 0 &&
                (len == iplen[i] || p[iplen[i]] == ' '))
                counts[i]++;
        p = end + 1;
    }
}

/* One thread over [from, to) of fd, by pread, whole lines only: a line cut
 * by a read is carried over to the next. */
static int range_loop(int fd, uint64_t from, uint64_t to, char *buf, uint64_t *counts) {
    size_t have = 0;
    while (from < to || have) {
        size_t want = BUF - have;
        if (want > to - from)
            want = (size_t)(to - from);
        ssize_t n = want ? pread(fd, buf + have, want, (off_t)from) : 0;
        if (n < 0 || (want && n == 0 && have == BUF))
            return -1;
        from += (uint64_t)n;
        size_t end = have + (size_t)n;
        if (n == 0) { /* the range's end: the rest is its last line */
            count_lines(buf, buf + end, counts);
            return 0;
        }
        char *last = memrchr(buf, '\n', end);
        size_t whole = last ? (size_t)(last - buf) + 1 : 0;
        count_lines(buf, buf + whole, counts);
        have = end - whole;
        memmove(buf, buf + whole, have);
    }
    return 0;
}

/* The first line start at or after c (the same rule as the line source's,
 * written again here). */
static uint64_t line_start(int fd, uint64_t c, uint64_t size) {
    char b[4096];
    if (c == 0 || c >= size)
        return c < size ? c : size;
    for (uint64_t at = c - 1; at < size;) {
        ssize_t n = pread(fd, b, sizeof b, (off_t)at);
        if (n <= 0)
            break;
        char *nl = memchr(b, '\n', (size_t)n);
        if (nl)
            return at + (uint64_t)(nl - b) + 1;
        at += (uint64_t)n;
    }
    return size;
}

typedef struct part {
    int fd;
    uint64_t from, to;
    uint64_t counts[MAXIPS];
    int rc;
} part;

static void *part_main(void *arg) {
    part *pt = arg;
    char *buf = malloc(BUF);
    pt->rc = buf ? range_loop(pt->fd, pt->from, pt->to, buf, pt->counts) : -1;
    free(buf);
    return NULL;
}

/* The hand loops: n = 1 is the single-thread baseline (on this thread). */
static int hand(const char *path, unsigned n, uint64_t *counts) {
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return -1;
    uint64_t size = (uint64_t)st.st_size;
    static part parts[MAXN];
    pthread_t tid[MAXN];
    for (unsigned k = 0; k < n; k++) {
        parts[k] = (part){.fd = fd};
        parts[k].from = line_start(fd, size / n * k + size % n * k / n, size);
        parts[k].to = line_start(fd, size / n * (k + 1) + size % n * (k + 1) / n, size);
    }
    int rc = 0;
    if (n == 1) {
        part_main(&parts[0]);
    } else {
        for (unsigned k = 0; k < n; k++)
            if (pthread_create(&tid[k], NULL, part_main, &parts[k]))
                return -1;
        for (unsigned k = 0; k < n; k++)
            pthread_join(tid[k], NULL);
    }
    memset(counts, 0, nips * sizeof *counts);
    for (unsigned k = 0; k < n; k++) {
        rc |= parts[k].rc;
        for (size_t i = 0; i < nips; i++)
            counts[i] += parts[k].counts[i];
    }
    close(fd);
    return rc;
}

static int rill_par(const char *path, unsigned n, uint64_t *counts) {
    ipstats_config cfg = {.log = path, .ips = ips, .nips = nips, .parallel = n};
    return ipstats_run_counts(&cfg, counts);
}

int main(int argc, char **argv) {
    const char *once = NULL;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    uint64_t maxn = 2 * (unsigned)(cores > 0 ? cores : 1);
    static const char *ipv[MAXIPS];
    bench_args a = {.path = "/tmp/rill-bench-scale.log", .mb = 1000, .rounds = 5, .ips = ipv,
                    .max_ips = MAXIPS};
    const bench_opt own[] = {
        {"--max", NULL, &maxn, UINT32_MAX}, {"--once", &once, NULL, 0}, {NULL, NULL, NULL, 0}};
    if (bench_parse_args(argc, argv, &a, own, "bench_ip_stats_scale [--log PATH] [--mb N] "
                                               "[--rounds N] [--max N] [--once hand|rill:N] "
                                               "[IP...]"))
        return 2;
    const char *path = a.path;
    uint64_t mb = a.mb;
    int rounds = a.rounds;
    nips = a.nips;
    if (nips == 0) { /* the seed's IPs, copied: the loops cannot fold them */
        static const char *const seed[] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};
        for (; nips < 3; nips++)
            ipv[nips] = strdup(seed[nips]);
    }
    ips = ipv;
    for (size_t i = 0; i < nips; i++)
        iplen[i] = strlen(ips[i]);
    if (maxn < 1 || maxn > MAXN || rounds < 1) {
        fprintf(stderr, "bench: --max from 1 to %d, --rounds from 1\n", MAXN);
        return 2;
    }
    uint64_t c0[MAXIPS], c1[MAXIPS];
    if (once) {
        unsigned n = strncmp(once, "rill:", 5) == 0 ? (unsigned)atoi(once + 5) : 0;
        int rc = n ? rill_par(path, n, c0) : hand(path, 1, c0);
        for (size_t i = 0; !rc && i < nips; i++)
            printf("%s %llu\n", ips[i], (unsigned long long)c0[i]);
        return rc ? 1 : 0;
    }
    if (mb < 1 || bench_make_log(path, mb * 1000000)) {
        perror("bench: cannot make the log");
        return 1;
    }
    if (hand(path, 1, c0)) /* warms the page cache */
        return 1;
    char la0[128], la1[128];
    loadavg_line(la0, sizeof la0);
    printf("log %s; %ld cores; loadavg before: %s\n", path, cores, la0);
    double *th = calloc((size_t)rounds, sizeof *th), *tn = calloc((size_t)rounds, sizeof *tn),
           *tr = calloc((size_t)rounds, sizeof *tr), *ch = calloc((size_t)rounds, sizeof *ch),
           *cr = calloc((size_t)rounds, sizeof *cr);
    /* Wall time, and CPU time (all threads): on a machine whose cores are
     * busy with other work, N threads cannot run at once and wall ratios
     * stay near 1; the CPU ratio still says what the work costs, and
     * cpu/N is the wall time with N free cores and a perfect split. */
    printf("%4s %9s %9s %9s %11s %11s %11s %6s\n", "N", "hand1 s", "handN s", "rillN s",
           "handN/hand1", "rillN/hand1", "cpu r/h1", "load");
    for (unsigned n = 1; n <= maxn; n++) {
        for (int r = 0; r < rounds; r++) {
            double t = bench_now_s(), c = cpu();
            if (hand(path, 1, c0))
                return 1;
            th[r] = bench_now_s() - t;
            ch[r] = cpu() - c;
            t = bench_now_s();
            if (hand(path, n, c1) || memcmp(c0, c1, nips * sizeof *c0))
                return fprintf(stderr, "bench: the %u-thread hand loop disagrees\n", n), 1;
            tn[r] = bench_now_s() - t;
            t = bench_now_s();
            c = cpu();
            if (rill_par(path, n, c1) || memcmp(c0, c1, nips * sizeof *c0))
                return fprintf(stderr, "bench: rill --parallel %u disagrees\n", n), 1;
            tr[r] = bench_now_s() - t;
            cr[r] = cpu() - c;
        }
        double h1 = bench_median(th, rounds), hn = bench_median(tn, rounds), rn = bench_median(tr, rounds);
        double cpu_ratio = bench_median(cr, rounds) / bench_median(ch, rounds);
        printf("%4u %9.3f %9.3f %9.3f %11.2f %11.2f %11.2f %6.2f\n", n, h1, hn, rn, hn / h1,
               rn / h1, cpu_ratio, loadavg());
        fflush(stdout);
    }
    loadavg_line(la1, sizeof la1);
    printf("medians of %d alternating rounds; loadavg after: %s\n", rounds, la1);
    for (size_t i = 0; i < nips; i++)
        printf("  %s %llu\n", ips[i], (unsigned long long)c0[i]);
    free(th);
    free(tn);
    free(tr);
    free(ch);
    free(cr);
    return 0;
}
