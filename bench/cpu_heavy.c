/* Two CPU-heavy stages: does putting each in its own thread approach 2x on
 * two cores? Every item is a line of the shipped log; stage A hashes the
 * line's bytes R times (seeded with the item's number), stage B hashes them R
 * times more (seeded with A's hash), and the result is the xor of B's hashes.
 * Contenders, rounds interleaved so machine noise hits them alike:
 *   plain1     one plain loop doing A then B for every item: the work itself
 *   ceiling    two plain pthreads, each doing A+B for half of the items, no
 *              communication: the best two cores can do (plain1 / ceiling)
 *   single     rill: source -> A -> B, all inline in the caller's thread
 *   threaded   rill: source -> A (RILL_STAGE_THREADED) -> B (RILL_STAGE_THREADED)
 *   split      rill: source -> A inline in the caller's thread -> B threaded
 * All five must produce the same xor and item count.
 *
 *   bench_cpu_heavy [--n ITEMS] [--rounds R] [--us MICROSECONDS] [--reps R]
 *                   [--capacity C] [--log PATH]
 *
 * --us sets the work per item per stage (default 1.0 us), calibrated into a
 * number of hash passes at start; --reps fixes the passes instead. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "rill.h"

enum { CHUNK = 1024, MAXR = 32 };

static rill_item *lines; /* owner-less items into the loaded log */
static size_t nlines;
static unsigned reps;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* FNV-1a, chained R times: each pass depends on the previous one, so the
 * compiler can neither skip nor merge passes. */
static uint64_t work(const rill_item *it, uint64_t seed) {
    const unsigned char *p = it->data;
    uint64_t h = seed ^ 0xcbf29ce484222325u;
    for (unsigned r = 0; r < reps; r++) {
        for (size_t i = 0; i < it->len; i++)
            h = (h ^ p[i]) * 0x100000001b3u;
        h ^= h >> 29;
    }
    return h;
}

static const rill_item *line_of(uint64_t i) { return &lines[i % nlines]; }

/* ---- plain loops --------------------------------------------------------------- */

struct part {
    uint64_t from, to, x;
};

static void *plain_part(void *arg) {
    struct part *s = arg;
    uint64_t x = 0;
    for (uint64_t i = s->from; i < s->to; i++) {
        const rill_item *it = line_of(i);
        x ^= work(it, work(it, i));
    }
    s->x = x;
    return NULL;
}

static uint64_t run_plain1(uint64_t n, double *t) {
    struct part s = {0, n, 0};
    double t0 = now();
    plain_part(&s);
    *t = now() - t0;
    return s.x;
}

static uint64_t run_ceiling(uint64_t n, double *t) {
    struct part a = {0, n / 2, 0}, b = {n / 2, n, 0};
    pthread_t th;
    double t0 = now();
    pthread_create(&th, NULL, plain_part, &b);
    plain_part(&a);
    pthread_join(th, NULL);
    *t = now() - t0;
    return a.x ^ b.x;
}

/* ---- rill ------------------------------------------------------------------------ */

struct src {
    uint64_t next, n;
};

static int src_produce(rill_stage *st, void *state) {
    struct src *s = state;
    uint64_t end = s->n - s->next < CHUNK ? s->n : s->next + CHUNK;
    for (; s->next < end; s->next++) {
        int rc = rill_emit(st, line_of(s->next));
        if (rc < 0)
            return rc;
    }
    return s->next < s->n ? 0 : RILL_EDONE;
}

/* A's output: the line and A's hash. One slot per item, alive until the
 * pipeline is destroyed, so B reads it whatever thread it runs on. */
struct slot {
    rill_item line;
    uint64_t h;
};

struct stage_a {
    struct slot *slots;
    uint64_t next;
};

static int a_send(rill_stage *st, void *state, const rill_item *it) {
    struct stage_a *a = state;
    struct slot *s = &a->slots[a->next];
    s->line = *it;
    s->h = work(it, a->next++);
    rill_item out = rill_item_static(s, sizeof *s);
    return rill_emit(st, &out);
}

struct stage_b {
    uint64_t x, count;
};

static int b_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    struct stage_b *b = state;
    const struct slot *s = it->data;
    b->x ^= work(&s->line, s->h);
    b->count++;
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce};
static const rill_stage_ops a_ops = {.send = a_send};
static const rill_stage_ops b_ops = {.send = b_send};

static struct slot *slots;

/* flags for A and B. Returns the xor; *count gets B's item count. */
static uint64_t run_rill(uint64_t n, unsigned fa, unsigned fb, unsigned cap, double *t,
                         uint64_t *count) {
    struct src s = {0, n};
    struct stage_a a = {slots, 0};
    struct stage_b b = {0, 0};
    rill_stage_opts oa = {.flags = fa, .capacity = cap}, ob = {.flags = fb, .capacity = cap};
    rill_pipeline *p;
    rill_stage *ss, *sa, *sb;
    if (rill_pipeline_new("cpu_heavy", &p) || rill_stage_add(p, "source", &src_ops, &s, NULL, &ss) ||
        rill_stage_add(p, "A", &a_ops, &a, &oa, &sa) ||
        rill_stage_add(p, "B", &b_ops, &b, &ob, &sb) || rill_connect(ss, sa) ||
        rill_connect(sa, sb)) {
        fprintf(stderr, "bench_cpu_heavy: cannot build the pipeline\n");
        exit(1);
    }
    double t0 = now();
    int rc = rill_pipeline_run(p);
    *t = now() - t0;
    if (rc) {
        fprintf(stderr, "bench_cpu_heavy: %s\n", rill_pipeline_errmsg(p));
        exit(1);
    }
    rill_pipeline_free(p);
    *count = b.count;
    return b.x;
}

/* ---- setup and driver -------------------------------------------------------------- */

static void load(const char *path) {
    FILE *f = fopen(path, "rb");
    static char *buf;
    size_t cap = 0, len = 0, n;
    if (!f) {
        perror(path);
        exit(1);
    }
    do {
        if (len == cap && !(buf = realloc(buf, cap = cap ? 2 * cap : 1 << 20)))
            exit(1);
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n);
    fclose(f);
    size_t cnt = 0;
    for (size_t i = 0; i < len; i++)
        cnt += buf[i] == '\n';
    lines = malloc((cnt + 1) * sizeof *lines);
    for (size_t i = 0, start = 0; i < len; i++)
        if (buf[i] == '\n') {
            lines[nlines++] = rill_item_static(buf + start, i - start);
            start = i + 1;
        }
    if (!nlines) {
        fprintf(stderr, "bench_cpu_heavy: no lines in %s\n", path);
        exit(1);
    }
}

static volatile uint64_t calib_sink; /* keeps the calibration loop */

/* Passes per stage for about us microseconds per item. */
static unsigned calibrate(double us) {
    uint64_t k = nlines < 4000 ? nlines : 4000;
    double best = 1e9;
    reps = 1;
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        for (uint64_t i = 0; i < k; i++)
            calib_sink ^= work(line_of(i), i);
        double t = (now() - t0) / (double)k;
        best = t < best ? t : best;
    }
    unsigned r = (unsigned)(us * 1e-6 / best + 0.5);
    return r ? r : 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void stats(double *t, int r, double *best, double *med) {
    qsort(t, (size_t)r, sizeof *t, cmp_double);
    *best = t[0];
    *med = r % 2 ? t[r / 2] : (t[r / 2 - 1] + t[r / 2]) / 2;
}


static void usage(void) {
    fprintf(stderr, "usage: bench_cpu_heavy [--n ITEMS] [--rounds R] [--us US] [--reps R] "
                    "[--capacity C] [--log PATH]\n");
    exit(2);
}

int main(int argc, char **argv) {
    uint64_t n = 400000;
    int rounds = 3;
    double us = 1.0;
    unsigned fixed_reps = 0, cap = 0;
    const char *log = RILL_DATA_DIR "/apache_logs";
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            usage();
        const char *o = argv[i], *v = argv[i + 1];
        double d = strtod(v, NULL);
        if (!strcmp(o, "--log")) {
            log = v;
            continue;
        }
        if (d <= 0)
            usage();
        if (!strcmp(o, "--n"))
            n = (uint64_t)d;
        else if (!strcmp(o, "--rounds"))
            rounds = d > MAXR ? MAXR : (int)d;
        else if (!strcmp(o, "--us"))
            us = d;
        else if (!strcmp(o, "--reps"))
            fixed_reps = (unsigned)d;
        else if (!strcmp(o, "--capacity"))
            cap = (unsigned)d;
        else
            usage();
    }
    load(log);
    reps = fixed_reps ? fixed_reps : calibrate(us);
    slots = malloc(n * sizeof *slots);
    if (!slots)
        return 1;

    /* The reference: the plain loop once, untimed (also warms up). */
    double t, tp1[MAXR], tc[MAXR], ts[MAXR], tt[MAXR], tx[MAXR];
    uint64_t want = run_plain1(n, &t), count;
    printf("two CPU-heavy stages: %llu items (lines of %s), %u hash passes per stage "
           "= %.2f us per item per stage, %d rounds; load average %.2f\n",
           (unsigned long long)n, log, reps, t / (double)n / 2 * 1e6, rounds, loadavg());
    int bad = 0;
    for (int r = 0; r < rounds; r++) {
        bad |= run_plain1(n, &tp1[r]) != want;
        bad |= run_ceiling(n, &tc[r]) != want;
        bad |= run_rill(n, 0, 0, cap, &ts[r], &count) != want || count != n;
        bad |= run_rill(n, RILL_STAGE_THREADED, RILL_STAGE_THREADED, cap, &tt[r], &count) != want ||
               count != n;
        bad |= run_rill(n, 0, RILL_STAGE_THREADED, cap, &tx[r], &count) != want || count != n;
        printf("  round %d: plain1 %.3f s  ceiling %.3f s  single %.3f s  threaded %.3f s  "
               "split %.3f s%s\n",
               r + 1, tp1[r], tc[r], ts[r], tt[r], tx[r], bad ? "  RESULT MISMATCH" : "");
        fflush(stdout);
    }
    double bp1, mp1, bc, mc, bs, ms, bt, mt, bx, mx;
    stats(tp1, rounds, &bp1, &mp1);
    stats(tc, rounds, &bc, &mc);
    stats(ts, rounds, &bs, &ms);
    stats(tt, rounds, &bt, &mt);
    stats(tx, rounds, &bx, &mx);
    printf("                       best s   median s\n");
    printf("  plain1 (1 thread)   %7.3f    %7.3f\n", bp1, mp1);
    printf("  ceiling (2 threads) %7.3f    %7.3f   speedup best %.2fx median %.2fx\n", bc, mc,
           bp1 / bc, mp1 / mc);
    printf("  rill single         %7.3f    %7.3f\n", bs, ms);
    printf("  rill threaded A|B   %7.3f    %7.3f   speedup best %.2fx median %.2fx\n", bt, mt,
           bs / bt, ms / mt);
    printf("  rill split (B only) %7.3f    %7.3f   speedup best %.2fx median %.2fx\n", bx, mx,
           bs / bx, ms / mx);
    printf("  threaded speedup as a share of the ceiling's: %.0f%%\n",
           100 * (bs / bt) / (bp1 / bc));
    printf("load average at the end %.2f\n", loadavg());
    printf("RESULT cpu_heavy single_s=%.3f threaded_s=%.3f speedup=%.2f ceiling_speedup=%.2f "
           "split_speedup=%.2f results_ok=%s\n",
           bs, bt, bs / bt, bp1 / bc, bs / bx, bad ? "no" : "yes");
    return bad;
}
