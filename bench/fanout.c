/* Fan-out: one source broadcasting every item to N threaded stages (the
 * shape of `ip_stats --threaded`: broadcast -> filter-1..3). The source runs
 * on the caller's thread; its CPU time per item (CLOCK_THREAD_CPUTIME_ID
 * around rill_pipeline_run) is the producer's cost of the fan-out: emit,
 * the append, owner references, hand-overs, and any spinning while it waits.
 * Two contenders per N, rounds interleaved so machine noise hits them alike:
 *   shared     every consumer with capacity C: the source's queues share one
 *              batch per hand-off (docs/threads.md, "Fan-out")
 *   per-queue  capacities C, C-1, C-2...: not shared, so each item is
 *              appended to N batches, as before shared batches existed
 * Items are 8-byte values owned by a reference per 1024 items (like lines of
 * a read buffer). Each consumer checks its count and sum against the
 * source's. Printed: best and median ns per item (producer CPU, and wall per
 * item), the ratio to N = 1 of the same contender, and shared / per-queue,
 * with the load average.
 *
 *   bench_fanout [--n ITEMS] [--rounds R] [--max-n N] [--capacity C] */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "rill.h"

enum { MAXN = 8, PER_REF = 1024 };

typedef struct block {
    rill_ref ref;
    uint64_t v[PER_REF];
} block;

static void block_release(rill_ref *r) { free(r); }

typedef struct src {
    uint64_t n, next, sum;
    block *b;
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    for (unsigned k = 0; k < 4096; k++) {
        if (s->next == s->n) {
            if (s->b)
                rill_ref_release(&s->b->ref);
            s->b = NULL;
            return RILL_EDONE;
        }
        uint64_t v = s->next++, i = v % PER_REF;
        if (i == 0) {
            if (s->b)
                rill_ref_release(&s->b->ref);
            if (!(s->b = malloc(sizeof *s->b)))
                return RILL_ENOMEM;
            rill_ref_init(&s->b->ref, block_release);
        }
        s->b->v[i] = v * 2654435761u;
        s->sum += s->b->v[i];
        rill_item it = {&s->b->v[i], sizeof v, &s->b->ref};
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
    }
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce};

typedef struct sink {
    uint64_t count, sum;
} sink;

static int sink_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    sink *k = state;
    uint64_t v;
    memcpy(&v, item->data, sizeof v);
    k->count++;
    k->sum += v;
    return 0;
}

static const rill_stage_ops sink_ops = {.send = sink_send};

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One run: ns per item of producer CPU and of wall time; -1 on failure. */
static int run(unsigned n, bool shared, uint64_t items, unsigned cap, double *cpu, double *wall) {
    rill_pipeline *p;
    rill_stage *s, *t;
    src so = {.n = items};
    sink k[MAXN] = {{0}};
    if (rill_pipeline_new("fanout", &p) || rill_stage_add(p, "src", &src_ops, &so, NULL, &s))
        return -1;
    for (unsigned i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "sink-%u", i);
        rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = shared ? cap : cap - i};
        if (rill_stage_add(p, name, &sink_ops, &k[i], &o, &t) || rill_connect(s, t))
            return -1;
    }
    double c0 = thread_cpu_s(), w0 = bench_now_s();
    int rc = rill_pipeline_run(p);
    *cpu = (thread_cpu_s() - c0) * 1e9 / (double)items;
    *wall = (bench_now_s() - w0) * 1e9 / (double)items;
    rill_pipeline_free(p);
    for (unsigned i = 0; i < n && !rc; i++)
        if (k[i].count != items || k[i].sum != so.sum) {
            fprintf(stderr, "sink %u: %llu items, expected %llu\n", i,
                    (unsigned long long)k[i].count, (unsigned long long)items);
            rc = -1;
        }
    return rc ? -1 : 0;
}

int main(int argc, char **argv) {
    uint64_t items = 5000000;
    unsigned rounds = 5, maxn = 5, cap = 4096;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--n"))
            items = strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-n"))
            maxn = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--capacity"))
            cap = (unsigned)atoi(argv[i + 1]);
    }
    if (rounds < 1 || rounds > 50 || maxn < 1 || maxn > MAXN || cap < MAXN + 1 || !items) {
        fprintf(stderr, "usage: bench_fanout [--n ITEMS] [--rounds 1..50] [--max-n 1..%d] "
                        "[--capacity > %d]\n", MAXN, MAXN);
        return 2;
    }
    char la0[128], la1[128];
    loadavg_line(la0, sizeof la0);
    static double cpu[2][MAXN + 1][50], wall[2][MAXN + 1][50];
    for (unsigned r = 0; r < rounds; r++)
        for (unsigned n = 1; n <= maxn; n++)
            for (int sh = 1; sh >= 0; sh--) /* shared first, then per-queue */
                if (run(n, sh, items, cap, &cpu[sh][n][r], &wall[sh][n][r])) {
                    fprintf(stderr, "run failed: N=%u %s\n", n, sh ? "shared" : "per-queue");
                    return 1;
                }
    loadavg_line(la1, sizeof la1);
    printf("fan-out of %llu items to N threaded consumers, capacity %u, %u rounds\n",
           (unsigned long long)items, cap, rounds);
    printf("load average before: %s, after: %s\n", la0, la1);
    printf("%-2s %-10s %9s %9s %9s %9s %9s %9s\n", "N", "contender", "cpu best", "cpu med",
           "cpu/N=1", "wall best", "wall med", "shared/pq");
    double base[2] = {0, 0}, med_cpu[2][MAXN + 1];
    for (unsigned n = 1; n <= maxn; n++)
        for (int sh = 1; sh >= 0; sh--) {
            double c[50], w[50];
            memcpy(c, cpu[sh][n], rounds * sizeof *c);
            memcpy(w, wall[sh][n], rounds * sizeof *w);
            double cm = bench_median(c, (int)rounds), wm = bench_median(w, (int)rounds);
            med_cpu[sh][n] = cm;
            if (n == 1)
                base[sh] = cm;
            printf("%-2u %-10s %9.2f %9.2f %9.2f %9.2f %9.2f", n, sh ? "shared" : "per-queue",
                   c[0], cm, cm / base[sh], w[0], wm);
            if (!sh)
                printf(" %9.2f", med_cpu[1][n] / cm);
            printf("\n");
        }
    printf("(ns per item; cpu = the producing thread's CPU time; med = median; "
           "shared/pq = ratio of the cpu medians)\n");
    return 0;
}
