/* Backpressure: what a queue's capacity buys in front of a slow consumer, as
 * the statistics of issue 4 report it, and what the depth sampler costs.
 *
 * A RILL_STAGE_THREADED source emits N preallocated owner-less items into a
 * RILL_STAGE_THREADED consumer (capacity C) that busy-waits --cost-ns per item
 * on CLOCK_MONOTONIC (usleep is far too coarse here). Two sources, steady and
 * bursty; print_header() says why both: with a steady source the consumer
 * bounds throughput at any capacity, a bursty one shows what buffering buys.
 * Every run of the sweep has the sampler on; mean depth and %full come from
 * its samples, so the sweep also exercises it. Rounds are interleaved across
 * capacities (machine noise drifts slowly: it then hits all alike).
 *
 * Then the sampler's overhead on a fast consumer (no cost: the engine's own
 * hop), off vs default interval vs 100 us, rounds rotated.
 *
 *   bench_backpressure [--n ITEMS] [--rounds R] [--cost-ns NS] [--burst B]
 *       [--pause-us US] [--batch B] [--batch-div D] [--sample-us US]
 *       [--fast-n ITEMS] [--json FILE] [--only sweep|overhead]
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_util.h"
#include "rill.h"

enum { POOL = 4096, MAXR = 64, NCAP = 7, STEADY_CHUNK = 4096 };
static const unsigned caps[NCAP] = {1, 4, 16, 64, 256, 1024, 4096};

static rill_item pool[POOL];
static char bytes[POOL + 256];

static double tv_s(struct timeval t) { return (double)t.tv_sec + (double)t.tv_usec * 1e-6; }


/* ---- stages ---------------------------------------------------------------- */

struct src {
    uint64_t left, emitted;
    unsigned burst;     /* items per produce call */
    uint64_t pause_ns;  /* after each burst but the last; 0: steady */
    uint64_t paused_ns; /* measured */
    uint64_t pauses;
};

static int src_produce(rill_stage *st, void *state) {
    struct src *s = state;
    unsigned k = s->left < s->burst ? (unsigned)s->left : s->burst;
    for (unsigned i = 0; i < k; i++) {
        int rc = rill_emit(st, &pool[(s->emitted + i) & (POOL - 1)]);
        if (rc < 0)
            return rc;
    }
    s->left -= k;
    s->emitted += k;
    if (!s->left)
        return RILL_EDONE;
    if (s->pause_ns) {
        /* The burst's tail must not sit in a partial batch while we wait. */
        rill_stage_flush(st);
        uint64_t t0 = bench_now_ns();
        struct timespec ts = {(time_t)(s->pause_ns / 1000000000u),
                              (long)(s->pause_ns % 1000000000u)};
        nanosleep(&ts, NULL);
        s->paused_ns += bench_now_ns() - t0;
        s->pauses++;
    }
    return 0;
}

struct sink {
    uint64_t count, sum, cost_ns;
};

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    struct sink *k = state;
    k->count++;
    k->sum += it->len;
    if (k->cost_ns) {
        uint64_t end = bench_now_ns() + k->cost_ns;
        while (bench_now_ns() < end)
            ;
    }
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce};
static const rill_stage_ops sink_ops = {.send = sink_send};

/* ---- one run ------------------------------------------------------------------ */

struct cfg {
    uint64_t n, cost_ns, pause_ns;
    unsigned capacity, batch, burst;
    int sample_us; /* -1: no sampler, 0: its default interval */
};

struct run {
    double rate, elapsed_s;
    double wait_full_ms, wait_empty_ms, mean_depth, full_pct, model;
    double item_ns; /* consumer's busy time per item: the cost it really paid */
    uint64_t high_water, samples;
    double cpus;    /* CPUs the process kept busy (all its threads) */
    double csw;     /* context switches per ms: parking and preemption */
};

static int bad; /* a run lost items or failed */

static struct run run_once(const struct cfg *c) {
    struct src s = {.left = c->n, .burst = c->burst, .pause_ns = c->pause_ns};
    struct sink k = {.cost_ns = c->cost_ns};
    struct run r = {0};
    rill_pipeline *p;
    rill_stage *a, *b;
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
    rill_stage_opts ko = {.flags = RILL_STAGE_THREADED, .capacity = c->capacity, .batch = c->batch};
    if (rill_pipeline_new("backpressure", &p) ||
        rill_stage_add(p, "source", &src_ops, &s, &so, &a) ||
        rill_stage_add(p, "consumer", &sink_ops, &k, &ko, &b) || rill_connect(a, b) ||
        (c->sample_us >= 0 && rill_pipeline_sampler(p, (unsigned)c->sample_us, 0))) {
        fprintf(stderr, "bench_backpressure: cannot build the pipeline\n");
        exit(1);
    }
    struct rusage u0, u1;
    getrusage(RUSAGE_SELF, &u0);
    int rc = rill_pipeline_run(p);
    getrusage(RUSAGE_SELF, &u1);
    rill_stats *st = NULL;
    if (rc || rill_pipeline_stats(p, &st) || st->nqueues != 1) {
        fprintf(stderr, "bench_backpressure: run failed: %s\n", rill_pipeline_errmsg(p));
        bad = 1;
        rill_stats_free(st);
        rill_pipeline_free(p);
        return r;
    }
    const rill_queue_stats *q = &st->queues[0];
    if (k.count != c->n || k.sum != pool_sum(pool, POOL, c->n) || q->in != c->n || q->out != c->n ||
        q->dropped || q->discarded) {
        fprintf(stderr, "bench_backpressure: capacity %u: %llu of %llu items delivered "
                        "(queue in %llu out %llu)\n", c->capacity, (unsigned long long)k.count,
                (unsigned long long)c->n, (unsigned long long)q->in, (unsigned long long)q->out);
        bad = 1;
    }
    double el = (double)st->elapsed_ns;
    r.elapsed_s = el * 1e-9;
    r.rate = el > 0 ? (double)c->n / r.elapsed_s : 0;
    r.wait_full_ms = (double)q->wait_full_ns * 1e-6;
    r.wait_empty_ms = (double)q->wait_empty_ns * 1e-6;
    r.high_water = q->high_water;
    r.cpus = el > 0 ? (tv_s(u1.ru_utime) + tv_s(u1.ru_stime) - tv_s(u0.ru_utime) -
                       tv_s(u0.ru_stime)) / r.elapsed_s : 0;
    r.csw = el > 0 ? (double)(u1.ru_nvcsw + u1.ru_nivcsw - u0.ru_nvcsw - u0.ru_nivcsw) /
                         (r.elapsed_s * 1e3) : 0;
    r.samples = q->samples;
    r.mean_depth = q->samples ? (double)q->depth_sum / (double)q->samples : 0;
    uint64_t full = 0; /* the kept samples: thinned evenly if the buffer filled */
    for (size_t i = 0; i < st->nsamples; i++)
        full += st->samples[i].depth >= q->capacity;
    r.full_pct = st->nsamples ? 100.0 * (double)full / (double)st->nsamples : 0;
    r.item_ns = (double)st->stages[1].busy_ns / (double)c->n;
    if (s.pauses) { /* print_header() explains the model */
        double pause = (double)s.paused_ns / (double)s.pauses, cost = r.item_ns;
        double ce = c->capacity < c->burst ? c->capacity : c->burst;
        double room = ce * cost > pause ? ce * cost : pause;
        r.model = (double)c->burst / (((double)c->burst - ce) * cost + room) * 1e9;
    }
    rill_stats_free(st);
    rill_pipeline_free(p);
    return r;
}

/* ---- reporting ------------------------------------------------------------------ */

static int cmp_run(const void *a, const void *b) {
    double x = ((const struct run *)a)->rate, y = ((const struct run *)b)->rate;
    return (x > y) - (x < y);
}

/* Sorts runs by rate; *best is the fastest, the median run is returned. */
static struct run best_median(struct run *runs, int n, double *best, double *median) {
    qsort(runs, (size_t)n, sizeof *runs, cmp_run);
    *best = runs[n - 1].rate;
    *median = n % 2 ? runs[n / 2].rate : (runs[n / 2 - 1].rate + runs[n / 2].rate) / 2;
    return runs[n / 2];
}

struct row {
    const char *mode;
    unsigned capacity, batch;
    double best, median;
    struct run m; /* the median run */
};

static double pct(double part_ms, double whole_s) {
    return whole_s > 0 ? part_ms / (whole_s * 10.0) : 0;
}

static void print_table(const char *mode, const struct row *rows) {
    printf("%-6s %8s %5s %10s %10s %10s %7s %9s %6s %9s %6s %10s %6s %6s\n", mode, "capacity",
           "batch", "best it/s", "median", "model", "ns/item", "prod wait", "%run", "cons idle",
           "%run", "mean depth", "%full", "hi-wat");
    for (int i = 0; i < NCAP; i++) {
        const struct row *w = &rows[i];
        char model[16] = "-";
        if (w->m.model > 0)
            snprintf(model, sizeof model, "%.0f", w->m.model);
        printf("%-6s %8u %5u %10.0f %10.0f %10s %7.0f %7.1fms %5.1f%% %7.1fms %5.1f%% %10.1f "
               "%5.1f%% %6llu\n", "", w->capacity, w->batch, w->best, w->median, model,
               w->m.item_ns, w->m.wait_full_ms,
               pct(w->m.wait_full_ms, w->m.elapsed_s), w->m.wait_empty_ms,
               pct(w->m.wait_empty_ms, w->m.elapsed_s), w->m.mean_depth, w->m.full_pct,
               (unsigned long long)w->m.high_water);
    }
}

static void json_rows(FILE *f, const struct row *rows, bool first) {
    for (int i = 0; i < NCAP; i++) {
        const struct row *w = &rows[i];
        fprintf(f, "%s\n  {\"mode\":\"%s\",\"capacity\":%u,\"batch\":%u,\"items_per_s_best\":%.0f,"
                   "\"items_per_s_median\":%.0f,\"model_items_per_s\":%.0f,\"consumer_ns_per_item\":%.1f,"
                   "\"elapsed_s\":%.6f,"
                   "\"producer_wait_ms\":%.3f,\"producer_wait_pct\":%.2f,"
                   "\"consumer_idle_ms\":%.3f,\"consumer_idle_pct\":%.2f,\"mean_depth\":%.2f,"
                   "\"full_pct\":%.2f,\"high_water\":%llu,\"samples\":%llu}",
                first && i == 0 ? "" : ",", w->mode, w->capacity, w->batch, w->best, w->median,
                w->m.model, w->m.item_ns, w->m.elapsed_s, w->m.wait_full_ms, pct(w->m.wait_full_ms, w->m.elapsed_s),
                w->m.wait_empty_ms, pct(w->m.wait_empty_ms, w->m.elapsed_s), w->m.mean_depth,
                w->m.full_pct, (unsigned long long)w->m.high_water, (unsigned long long)w->m.samples);
    }
}

/* ---- driver ----------------------------------------------------------------------- */

static struct opts {
    uint64_t n, fast_n, cost_ns, pause_ns;
    unsigned burst, batch, batch_div, sample_us;
    int rounds;
    const char *json, *only;
} o = {.n = 200000, .fast_n = 4000000, .cost_ns = 1000, .pause_ns = UINT64_MAX,
       .burst = 1000, .sample_us = 100, .rounds = 3};

/* min(256 or --batch, capacity / --batch-div), at least 1, at most capacity. */
static unsigned batch_for(unsigned cap) {
    unsigned b = o.batch ? o.batch : 256;
    if (o.batch_div) {
        unsigned d = cap / o.batch_div ? cap / o.batch_div : 1;
        b = d < b ? d : b;
    }
    return b < cap ? b : cap;
}

static void sweep(struct row rows[2][NCAP]) {
    static struct run runs[2][NCAP][MAXR];
    for (int r = 0; r < o.rounds; r++)
        for (int m = 0; m < 2; m++)
            for (int i = 0; i < NCAP; i++) {
                struct cfg c = {.n = o.n, .cost_ns = o.cost_ns, .capacity = caps[i],
                                .batch = batch_for(caps[i]), .burst = m ? o.burst : STEADY_CHUNK,
                                .pause_ns = m ? o.pause_ns : 0, .sample_us = (int)o.sample_us};
                runs[m][i][r] = run_once(&c);
            }
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < NCAP; i++) {
            struct row *w = &rows[m][i];
            w->mode = m ? "bursty" : "steady";
            w->capacity = caps[i];
            w->batch = batch_for(caps[i]);
            w->m = best_median(runs[m][i], o.rounds, &w->best, &w->median);
        }
}

/* Sampler overhead on a fast consumer: items/s best and median per setting. */
enum { OFF, DEFAULT_IV, FAST_IV, NSET };
static const char *const set_names[NSET] = {"sampler off", "sampler default (2 ms)",
                                            "sampler 100 us"};
static const int set_us[NSET] = {-1, 0, 100};

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Best and median items/s per setting, and the median over rounds of each
 * setting's rate relative to "off" in the same round: machine noise drifts
 * slowly, so neighbours in time compare more fairly than bests. */
struct over {
    double best, med, paired; /* items/s; paired: % lost against "off" */
    struct run m;             /* the median run */
};

static void overhead(int rounds, struct over ov[NSET]) {
    static struct run runs[NSET][MAXR];
    static double ratio[NSET][MAXR];
    for (int r = 0; r < rounds; r++) {
        for (int j = 0; j < NSET; j++) { /* rotated so no setting always goes first */
            int w = (r + j) % NSET;
            struct cfg c = {.n = o.fast_n, .burst = STEADY_CHUNK, .sample_us = set_us[w]};
            runs[w][r] = run_once(&c);
        }
        for (int w = 0; w < NSET; w++)
            ratio[w][r] = runs[OFF][r].rate > 0 ? runs[w][r].rate / runs[OFF][r].rate : 0;
    }
    for (int w = 0; w < NSET; w++) {
        ov[w].m = best_median(runs[w], rounds, &ov[w].best, &ov[w].med);
        qsort(ratio[w], (size_t)rounds, sizeof(double), cmp_double);
        double m = rounds % 2 ? ratio[w][rounds / 2]
                              : (ratio[w][rounds / 2 - 1] + ratio[w][rounds / 2]) / 2;
        ov[w].paired = (1 - m) * 100;
    }
}

static double loss_pct(double base, double with) { return base > 0 ? (base - with) / base * 100 : 0; }

/* rows NULL: no sweep ran; ov NULL: no overhead run. */
static void write_json(FILE *f, struct row rows[2][NCAP], const struct over *ov, int orounds) {
    fprintf(f, "{\"benchmark\":\"backpressure\",\"cost_ns\":%llu,\"n\":%llu,\"rounds\":%d,"
               "\"burst\":%u,\"pause_ns\":%llu,\"sample_us\":%u,\"rows\":[",
            (unsigned long long)o.cost_ns, (unsigned long long)o.n, o.rounds, o.burst,
            (unsigned long long)o.pause_ns, o.sample_us);
    if (rows) {
        json_rows(f, rows[0], true);
        json_rows(f, rows[1], false);
    }
    fprintf(f, "\n],\n\"sampler_overhead\":");
    if (ov)
        fprintf(f, "{\"n\":%llu,\"rounds\":%d,\"off_best\":%.0f,\"off_median\":%.0f,"
                   "\"default_best\":%.0f,\"default_median\":%.0f,\"us100_best\":%.0f,"
                   "\"us100_median\":%.0f,\"pct\":%.2f,\"pct_100us\":%.2f,"
                   "\"paired_pct\":%.2f,\"paired_pct_100us\":%.2f}",
                (unsigned long long)o.fast_n, orounds, ov[OFF].best, ov[OFF].med,
                ov[DEFAULT_IV].best, ov[DEFAULT_IV].med, ov[FAST_IV].best, ov[FAST_IV].med,
                loss_pct(ov[OFF].best, ov[DEFAULT_IV].best), loss_pct(ov[OFF].best, ov[FAST_IV].best),
                ov[DEFAULT_IV].paired, ov[FAST_IV].paired);
    else
        fprintf(f, "null");
    fprintf(f, "\n}\n");
}

static unsigned long long arg_num(const char *s, bool zero_ok) {
    char *end;
    double v = strtod(s, &end); /* accepts 2e5 */
    if (end == s || *end || v < 0 || (v == 0 && !zero_ok)) {
        fprintf(stderr, "bench_backpressure: bad number '%s'\n", s);
        exit(2);
    }
    return (unsigned long long)v;
}

static int parse(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc)
            return -1;
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--json"))
            o.json = v;
        else if (!strcmp(k, "--only") && (!strcmp(v, "sweep") || !strcmp(v, "overhead")))
            o.only = v;
        else if (!strcmp(k, "--n"))
            o.n = arg_num(v, false);
        else if (!strcmp(k, "--rounds"))
            o.rounds = (int)arg_num(v, false);
        else if (!strcmp(k, "--cost-ns"))
            o.cost_ns = arg_num(v, true);
        else if (!strcmp(k, "--burst"))
            o.burst = (unsigned)arg_num(v, false);
        else if (!strcmp(k, "--pause-us"))
            o.pause_ns = arg_num(v, true) * 1000u;
        else if (!strcmp(k, "--batch"))
            o.batch = (unsigned)arg_num(v, false);
        else if (!strcmp(k, "--batch-div"))
            o.batch_div = (unsigned)arg_num(v, false);
        else if (!strcmp(k, "--sample-us"))
            o.sample_us = (unsigned)arg_num(v, false);
        else if (!strcmp(k, "--fast-n"))
            o.fast_n = arg_num(v, false);
        else
            return -1;
    }
    o.rounds = o.rounds > MAXR ? MAXR : o.rounds;
    if (o.pause_ns == UINT64_MAX)
        o.pause_ns = (uint64_t)o.burst * o.cost_ns;
    return 0;
}


static void print_header(void) {
    printf("backpressure: threaded source -> threaded consumer busy-waiting %llu ns per item "
           "(consumer bound %.0f items/s on an idle core); %llu items, %d rounds interleaved; "
           "sampler every %u us; load average %.2f\n",
           (unsigned long long)o.cost_ns, o.cost_ns ? 1e9 / (double)o.cost_ns : 0.0,
           (unsigned long long)o.n, o.rounds, o.sample_us, loadavg());
    printf("  steady: the source emits flat out. The consumer bounds throughput: a bigger queue\n"
           "          only holds more waiting items (mean depth) while the producer waits for room\n"
           "          most of the run (prod wait). Except at small capacities: the batch is then\n"
           "          the whole capacity, the producer cannot refill while the consumer delivers\n"
           "          it, and every C items pay a stop-and-go hand-off (two wake-ups).\n"
           "  bursty: the source emits %u items, then pauses %.0f us (by default burst x cost:\n"
           "          its average rate matches the consumer's). A queue smaller than the burst\n"
           "          blocks the producer through the burst and idles the consumer through the\n"
           "          pause; one that holds the burst lets them overlap: that is what buffering\n"
           "          buys. model = burst / ((burst - C) x ns/item + max(pause, C x ns/item)),\n"
           "          with the pause and ns/item measured in that run (no hand-off latency).\n"
           "  ns/item = consumer's busy time per item (cost + engine + time stolen by other\n"
           "  processes); prod wait = queue wait_full_ns, cons idle = wait_empty_ns (ms, %% of the\n"
           "  run); mean depth and %%full (depth == capacity) from the sampler's samples; hi-wat =\n"
           "  high_water. Throughput best and median of the rounds; the other columns are those\n"
           "  of the median run.\n",
           o.burst, (double)o.pause_ns / 1000);
}

int main(int argc, char **argv) {
    if (parse(argc, argv)) {
        fprintf(stderr, "usage: bench_backpressure [--n ITEMS] [--rounds R] [--cost-ns NS] "
                        "[--burst B] [--pause-us US] [--batch B] [--batch-div D] "
                        "[--sample-us US] [--fast-n ITEMS] [--json FILE] "
                        "[--only sweep|overhead]\n");
        return 2;
    }
    for (unsigned i = 0; i < POOL; i++)
        pool[i] = rill_item_static(bytes + (i % 256), 1 + (i * 2654435761u) % 200);
    bool do_sweep = !o.only || !strcmp(o.only, "sweep");
    bool do_over = !o.only || !strcmp(o.only, "overhead");

    static struct row rows[2][NCAP];
    if (do_sweep) {
        print_header();
        fflush(stdout);
        sweep(rows);
        print_table("steady", rows[0]);
        print_table("bursty", rows[1]);
        fflush(stdout);
    }
    int orounds = o.rounds * 5 > MAXR ? MAXR : o.rounds * 5;
    struct over ov[NSET];
    if (do_over) {
        overhead(orounds, ov);
        printf("sampler overhead: fast consumer (no cost, default capacity), %llu items, best and "
               "median of %d rounds rotated; load average %.2f\n",
               (unsigned long long)o.fast_n, orounds, loadavg());
        printf("  %-23s %11s %11s %9s %9s %11s %5s %6s\n", "", "best it/s", "median", "loss best",
               "loss med", "loss paired", "cpus", "csw/ms");
        for (int w = 0; w < NSET; w++)
            printf("  %-23s %11.0f %11.0f %8.1f%% %8.1f%% %10.1f%% %5.2f %6.1f\n", set_names[w],
                   ov[w].best, ov[w].med, loss_pct(ov[OFF].best, ov[w].best),
                   loss_pct(ov[OFF].med, ov[w].med), ov[w].paired, ov[w].m.cpus, ov[w].m.csw);
        printf("  loss paired: median over rounds of 1 - rate / rate of 'off' in the same round;\n"
               "  cpus (CPUs kept busy) and csw/ms (context switches) of the median run.\n");
        printf("  Target < 5%%. The per-queue counters themselves are always on: there is no\n"
               "  switch to measure them against (they are updated per batch, not per item).\n");
    }
    printf("JSON:\n");
    write_json(stdout, do_sweep ? rows : NULL, do_over ? ov : NULL, orounds);
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (f) {
            write_json(f, do_sweep ? rows : NULL, do_over ? ov : NULL, orounds);
            bad |= fclose(f) != 0;
        } else {
            fprintf(stderr, "bench_backpressure: cannot write %s\n", o.json);
            bad = 1;
        }
    }
    printf("load average at the end %.2f\n", loadavg());
    if (do_sweep) {
        const struct row *s1 = &rows[0][0], *sN = &rows[0][NCAP - 1];
        const struct row *b1 = &rows[1][0], *bN = &rows[1][NCAP - 1];
        printf("RESULT backpressure cost_ns=%llu steady_c1=%.0f steady_c4096=%.0f "
               "bursty_c1=%.0f bursty_c4096=%.0f bursty_gain=%.2f steady_wait_pct_c4096=%.1f "
               "items_ok=%s\n",
               (unsigned long long)o.cost_ns, s1->best, sN->best, b1->best, bN->best,
               b1->best > 0 ? bN->best / b1->best : 0, pct(sN->m.wait_full_ms, sN->m.elapsed_s),
               bad ? "no" : "yes");
    }
    if (do_over)
        printf("RESULT sampler_overhead pct=%.1f pct_100us=%.1f paired_pct=%.1f "
               "paired_pct_100us=%.1f\n", loss_pct(ov[OFF].best, ov[DEFAULT_IV].best),
               loss_pct(ov[OFF].best, ov[FAST_IV].best), ov[DEFAULT_IV].paired, ov[FAST_IV].paired);
    return bad;
}
