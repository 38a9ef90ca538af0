/* One thread hop: a producer thread hands items to a consumer thread, which
 * sums a field of each. Four contenders in the same run, rounds interleaved
 * so machine noise hits them alike:
 *   raw1     concurrencykit SPSC ring, one item pointer per slot: the loop
 *            one would write by hand (~40 M items/s on the developers' box)
 *   rawB     the same ring carrying batches of B items (copied in, as rill
 *            does), batches recycled through a second ring: the best a
 *            batched hand-off can do, so rill's figure shows more than batching
 *   rill     a RILL_STAGE_THREADED source emitting from a preallocated array
 *            of static items (--borrowed: borrowed ones, whose bytes the
 *            queue copies) into a RILL_STAGE_THREADED sink, timed from
 *            start to close (rill_pipeline_run)
 *   rill runs the same, the source emitting each 4096 items as one run
 *            (rill_emit_items: the queue appends it a chunk at a time) and
 *            the sink taking each batch in one call (ops.send_items)
 * Both raw loops spin (ck_pr_stall) and never park; rill spins briefly then
 * parks. Then a sweep of rill's capacity x batch.
 *
 *   bench_hop [--n ITEMS] [--rounds R] [--capacity C] [--batch B]
 *             [--max-s SECONDS] [--sweep-n ITEMS] [--no-sweep] [--only raw1|rawB|rill|runs]
 *             [--borrowed]
 *
 * A run stops early after --max-s seconds (a spinning raw loop on a busy
 * machine can crawl) and its rate counts the items it moved. Every
 * contender must deliver every item it produced: the consumer's count and
 * sum are checked against the producer's. */
#include <ck_pr.h>
#include <ck_ring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "rill.h"

enum { POOL = 4096, CHUNK = 4096, MAXR = 64 };

static rill_item pool[POOL];
static char bytes[POOL + 256];
static double deadline; /* set before each run; read by producers */

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}



/* What a run moved: produced by the producer, count/sum by the consumer. */
struct moved {
    uint64_t produced, count, sum;
    double t;
};

/* ---- raw1: one item per ring slot ---------------------------------------- */

struct raw1 {
    ck_ring_t ring;
    ck_ring_buffer_t *buf;
    uint64_t n;
    struct moved m;
};

static void *raw1_produce(void *arg) {
    struct raw1 *r = arg;
    uint64_t i = 0;
    for (; i < r->n; i++) {
        if ((i & (CHUNK - 1)) == 0 && i && now() > deadline)
            break;
        while (!ck_ring_enqueue_spsc(&r->ring, r->buf, &pool[i & (POOL - 1)]))
            ck_pr_stall();
    }
    r->m.produced = i;
    while (!ck_ring_enqueue_spsc(&r->ring, r->buf, NULL)) /* end of stream */
        ck_pr_stall();
    return NULL;
}

static void *raw1_consume(void *arg) {
    struct raw1 *r = arg;
    uint64_t sum = 0, got = 0;
    for (;;) {
        void *v;
        if (!ck_ring_dequeue_spsc(&r->ring, r->buf, &v)) {
            ck_pr_stall();
            continue;
        }
        if (!v)
            break;
        sum += ((const rill_item *)v)->len;
        got++;
    }
    r->m.sum = sum;
    r->m.count = got;
    return NULL;
}

/* slots: ring size (it holds slots - 1 items). */
static struct moved run_raw1(uint64_t n, unsigned slots) {
    struct raw1 r = {.n = n};
    r.buf = calloc(slots, sizeof *r.buf);
    ck_ring_init(&r.ring, slots);
    pthread_t prod, cons;
    double t0 = now();
    pthread_create(&cons, NULL, raw1_consume, &r);
    pthread_create(&prod, NULL, raw1_produce, &r);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    r.m.t = now() - t0;
    free(r.buf);
    return r.m;
}

/* ---- rawB: batches of B items, recycled -------------------------------------- */

struct batch {
    unsigned n;
    rill_item items[];
};

struct rawb {
    ck_ring_t full, empty;
    ck_ring_buffer_t *full_buf, *empty_buf;
    uint64_t n;
    unsigned b;
    struct moved m;
};

static void *rawb_produce(void *arg) {
    struct rawb *r = arg;
    uint64_t i = 0;
    for (unsigned nb = 0; i < r->n; nb++) {
        if (nb * r->b >= CHUNK) { /* look at the clock about every CHUNK items */
            nb = 0;
            if (now() > deadline)
                break;
        }
        void *v;
        while (!ck_ring_dequeue_spsc(&r->empty, r->empty_buf, &v))
            ck_pr_stall();
        struct batch *b = v;
        unsigned k = r->n - i < r->b ? (unsigned)(r->n - i) : r->b;
        for (unsigned j = 0; j < k; j++)
            b->items[j] = pool[(i + j) & (POOL - 1)];
        b->n = k;
        i += k;
        while (!ck_ring_enqueue_spsc(&r->full, r->full_buf, b))
            ck_pr_stall();
    }
    r->m.produced = i;
    while (!ck_ring_enqueue_spsc(&r->full, r->full_buf, NULL))
        ck_pr_stall();
    return NULL;
}

static void *rawb_consume(void *arg) {
    struct rawb *r = arg;
    uint64_t sum = 0, got = 0;
    for (;;) {
        void *v;
        if (!ck_ring_dequeue_spsc(&r->full, r->full_buf, &v)) {
            ck_pr_stall();
            continue;
        }
        if (!v)
            break;
        struct batch *b = v;
        for (unsigned j = 0; j < b->n; j++)
            sum += b->items[j].len;
        got += b->n;
        while (!ck_ring_enqueue_spsc(&r->empty, r->empty_buf, b))
            ck_pr_stall();
    }
    r->m.sum = sum;
    r->m.count = got;
    return NULL;
}

/* capacity/B batches in circulation: at most `capacity` items in flight. */
static struct moved run_rawb(uint64_t n, unsigned capacity, unsigned bsz) {
    struct rawb r = {.n = n, .b = bsz};
    unsigned nb = capacity / bsz ? capacity / bsz : 1, slots = pow2_at_least(nb + 2);
    struct batch **all = calloc(nb, sizeof *all);
    r.full_buf = calloc(slots, sizeof *r.full_buf);
    r.empty_buf = calloc(slots, sizeof *r.empty_buf);
    ck_ring_init(&r.full, slots);
    ck_ring_init(&r.empty, slots);
    for (unsigned i = 0; i < nb; i++) {
        all[i] = malloc(sizeof(struct batch) + bsz * sizeof(rill_item));
        ck_ring_enqueue_spsc(&r.empty, r.empty_buf, all[i]);
    }
    pthread_t prod, cons;
    double t0 = now();
    pthread_create(&cons, NULL, rawb_consume, &r);
    pthread_create(&prod, NULL, rawb_produce, &r);
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    r.m.t = now() - t0;
    for (unsigned i = 0; i < nb; i++)
        free(all[i]);
    free(all);
    free(r.full_buf);
    free(r.empty_buf);
    return r.m;
}

/* ---- rill: threaded source -> threaded sink ------------------------------------ */

struct src {
    uint64_t left, produced;
    int runs; /* emit each chunk as one run (rill_emit_items) */
};

static int src_produce(rill_stage *st, void *state) {
    struct src *s = state;
    if (s->produced && now() > deadline)
        return RILL_EDONE;
    unsigned k = s->left < CHUNK ? (unsigned)s->left : CHUNK;
    if (s->runs) {
        int rc = rill_emit_items(st, pool, k);
        if (rc < 0)
            return rc;
    }
    for (unsigned i = 0; !s->runs && i < k; i++) {
        int rc = rill_emit(st, &pool[i]); /* CHUNK == POOL: i indexes the pool */
        if (rc < 0)
            return rc;
    }
    s->left -= k;
    s->produced += k;
    return s->left ? 0 : RILL_EDONE;
}

static const rill_stage_ops src_ops = {.produce = src_produce};

/* The sink of the run contender: a batch from the queue in one call. */
static int count_sink_items(rill_stage *st, void *state, const rill_item *items, size_t n) {
    for (size_t i = 0; i < n; i++)
        count_sink_send(st, state, &items[i]);
    return 0;
}
static const rill_stage_ops count_sink_items_ops = {.send = count_sink_send,
                                                    .send_items = count_sink_items};

static struct moved run_rill(uint64_t n, unsigned capacity, unsigned bsz, int runs) {
    struct src s = {.left = n, .runs = runs};
    struct count_sink k = {0};
    struct moved m = {0};
    rill_pipeline *p;
    rill_stage *a, *b;
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
    rill_stage_opts ko = {.flags = RILL_STAGE_THREADED, .capacity = capacity, .batch = bsz};
    if (rill_pipeline_new("hop", &p) || rill_stage_add(p, "source", &src_ops, &s, &so, &a) ||
        rill_stage_add(p, "sink", runs ? &count_sink_items_ops : &count_sink_ops, &k, &ko, &b) ||
        rill_connect(a, b)) {
        fprintf(stderr, "bench_hop: cannot build the pipeline\n");
        exit(1);
    }
    double t0 = now();
    int rc = rill_pipeline_run(p);
    m.t = now() - t0;
    if (rc)
        fprintf(stderr, "bench_hop: run failed: %s\n", rill_pipeline_errmsg(p));
    rill_pipeline_free(p);
    m.produced = rc ? UINT64_MAX : s.produced;
    m.count = k.count;
    m.sum = k.sum;
    return m;
}

/* ---- driver ------------------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* rates[] sorted in place; best and median. */
static void stats(double *rates, int r, double *best, double *med) {
    qsort(rates, (size_t)r, sizeof *rates, cmp_double);
    *best = rates[r - 1];
    *med = r % 2 ? rates[r / 2] : (rates[r / 2 - 1] + rates[r / 2]) / 2;
}

static int bad; /* a contender lost or invented items */

/* Items/s of run m, after checking that it delivered what it produced. */
static double rate(const char *who, struct moved m, uint64_t n) {
    if (m.count != m.produced || m.sum != pool_sum(pool, POOL, m.produced) || m.produced == 0) {
        fprintf(stderr, "bench_hop: %s produced %llu, delivered %llu items (sum %llu, want %llu)\n",
                who, (unsigned long long)m.produced, (unsigned long long)m.count,
                (unsigned long long)m.sum, (unsigned long long)pool_sum(pool, POOL, m.produced));
        bad = 1;
        return 0;
    }
    if (m.produced < n)
        printf("  (%s stopped at the time limit after %llu items)\n", who,
               (unsigned long long)m.produced);
    return (double)m.produced / m.t;
}

/* CPU time and context switches of the whole process so far. */
struct usage {
    double cpu;
    long csw;
};

static struct usage usage_now(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    struct usage r = {(double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
                          ((double)u.ru_utime.tv_usec + (double)u.ru_stime.tv_usec) * 1e-6,
                      u.ru_nvcsw + u.ru_nivcsw};
    return r;
}

enum { RAW1, RAWB, RILL, RILLR };

/* One timed run of a contender: its items/s, and in note how many CPUs it
 * kept busy and how often its threads were switched out (parking or
 * preemption: what makes a hop slow on a shared machine). */
static double measure(int which, uint64_t n, unsigned cap, unsigned bsz, double max_s,
                      char note[48]) {
    static const char *const names[] = {"raw1", "rawB", "rill", "rill runs"};
    struct usage u0 = usage_now();
    deadline = now() + max_s;
    struct moved m = which == RAW1   ? run_raw1(n, pow2_at_least(cap))
                     : which == RAWB ? run_rawb(n, cap, bsz)
                                     : run_rill(n, cap, bsz, which == RILLR);
    struct usage u1 = usage_now();
    snprintf(note, 48, "[%.2f cpu %ld csw]", (u1.cpu - u0.cpu) / m.t, u1.csw - u0.csw);
    return rate(names[which], m, n);
}


static unsigned long long arg_num(const char *s) {
    char *end;
    double v = strtod(s, &end); /* accepts 1e8 */
    if (end == s || *end || v <= 0) {
        fprintf(stderr, "bench_hop: bad number '%s'\n", s);
        exit(2);
    }
    return (unsigned long long)v;
}

int main(int argc, char **argv) {
    uint64_t n = 100000000, sweep_n = 0;
    int rounds = 3, sweep = 1, borrowed = 0;
    const char *only = NULL; /* profile one contender: raw1, rawB or rill */
    unsigned cap = 4096, bsz = 256; /* the engine's defaults */
    double max_s = 1.5; /* keeps the whole run under ~30 s on a busy machine */
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--no-sweep")) {
            sweep = 0;
            continue;
        }
        if (!strcmp(o, "--borrowed")) {
            borrowed = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: bench_hop [--n ITEMS] [--rounds R] [--capacity C] [--batch B] "
                            "[--max-s SECONDS] [--sweep-n ITEMS] [--no-sweep] [--only raw1|rawB|rill|runs] [--borrowed]\n");
            return 2;
        }
        const char *val = argv[++i];
        if (!strcmp(o, "--only")) {
            only = val;
            sweep = 0;
            continue;
        }
        if (!strcmp(o, "--max-s")) {
            max_s = strtod(val, NULL);
            continue;
        }
        unsigned long long v = arg_num(val);
        if (!strcmp(o, "--n"))
            n = v;
        else if (!strcmp(o, "--rounds"))
            rounds = v > MAXR ? MAXR : (int)v;
        else if (!strcmp(o, "--capacity"))
            cap = (unsigned)v;
        else if (!strcmp(o, "--batch"))
            bsz = (unsigned)v;
        else if (!strcmp(o, "--sweep-n"))
            sweep_n = v;
        else {
            fprintf(stderr, "bench_hop: unknown option %s\n", o);
            return 2;
        }
    }
    if (max_s <= 0)
        max_s = 1e9;
    if (bsz > cap)
        bsz = cap;
    if (!sweep_n)
        sweep_n = n / 4;
    for (unsigned i = 0; i < POOL; i++)
        pool[i] = (rill_item){bytes + (i % 256), 1 + (i * 2654435761u) % 200,
                              borrowed ? NULL : RILL_REF_STATIC};

    printf("one thread hop: %llu %s items (at most %.1f s a run), %d rounds, capacity %u, "
           "batch %u, raw1 ring %u slots; load average %.2f\n",
           (unsigned long long)n, borrowed ? "borrowed" : "static", max_s, rounds, cap, bsz,
           pow2_at_least(cap), loadavg());
    double r1[MAXR], rb[MAXR], rr[MAXR], rn[MAXR];
    for (int r = 0; r < rounds; r++) {
        char n1[48] = "", nb[48] = "", nr[48] = "", nn[48] = "";
        r1[r] = rb[r] = rr[r] = rn[r] = 1;
        if (!only || !strcmp(only, "raw1"))
            r1[r] = measure(RAW1, n, cap, bsz, max_s, n1);
        if (!only || !strcmp(only, "rawB"))
            rb[r] = measure(RAWB, n, cap, bsz, max_s, nb);
        if (!only || !strcmp(only, "rill"))
            rr[r] = measure(RILL, n, cap, bsz, max_s, nr);
        if (!only || !strcmp(only, "runs"))
            rn[r] = measure(RILLR, n, cap, bsz, max_s, nn);
        printf("  round %d: raw1 %6.1f M/s %s  rawB %6.1f M/s %s  rill %6.1f M/s %s  "
               "runs %6.1f M/s %s\n", r + 1, r1[r] / 1e6, n1, rb[r] / 1e6, nb, rr[r] / 1e6, nr,
               rn[r] / 1e6, nn);
        fflush(stdout);
    }
    double b1, m1, bb, mb, br, mr, bn, mn;
    stats(r1, rounds, &b1, &m1);
    stats(rb, rounds, &bb, &mb);
    stats(rr, rounds, &br, &mr);
    stats(rn, rounds, &bn, &mn);
    printf("                 best M items/s   median M items/s\n");
    printf("  raw1 per-item  %14.1f   %16.1f\n", b1 / 1e6, m1 / 1e6);
    printf("  rawB batch %-4u%14.1f   %16.1f\n", bsz, bb / 1e6, mb / 1e6);
    printf("  rill           %14.1f   %16.1f\n", br / 1e6, mr / 1e6);
    printf("  rill runs      %14.1f   %16.1f\n", bn / 1e6, mn / 1e6);
    printf("  rill/raw1: best %.2fx median %.2fx (target >= 2.5x)   "
           "rill/rawB: best %.2fx median %.2fx\n",
           br / b1, mr / m1, br / bb, mr / mb);
    printf("  rill runs/raw1: best %.2fx median %.2fx (issue: >= 2x)   "
           "rill runs/rawB: best %.2fx median %.2fx (issue: >= 0.5x)\n",
           bn / b1, mn / m1, bn / bb, mn / mb);

    if (sweep) {
        static const unsigned caps[] = {1024, 4096, 16384}, bats[] = {64, 256, 1024};
        int sr = rounds < 2 ? rounds : 2;
        printf("rill capacity x batch sweep: %llu items, best of %d (M items/s)\n",
               (unsigned long long)sweep_n, sr);
        printf("  capacity \\ batch %10u %10u %10u\n", bats[0], bats[1], bats[2]);
        for (int c = 0; c < 3; c++) {
            printf("  %16u", caps[c]);
            for (int b = 0; b < 3; b++) {
                double best = 0;
                for (int r = 0; r < sr; r++) {
                    char note[48];
                    double v = measure(RILL, sweep_n, caps[c], bats[b], max_s / 2, note);
                    best = v > best ? v : best;
                }
                printf(" %10.1f", best / 1e6);
                fflush(stdout);
            }
            printf("\n");
        }
    }
    printf("load average at the end %.2f\n", loadavg());
    printf("RESULT hop rill_items_per_s=%.0f median=%.0f raw1_items_per_s=%.0f "
           "rawB_items_per_s=%.0f ratio_vs_raw=%.2f ratio_vs_raw_batched=%.2f runs_items_per_s=%.0f "
           "runs_vs_raw=%.2f runs_vs_raw_batched=%.2f sums_ok=%s\n",
           br, mr, b1, bb, br / b1, br / bb, bn, bn / b1, bn / bb, bad ? "no" : "yes");
    return bad;
}
