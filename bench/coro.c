/* What a rill generator costs, next to the threads one would otherwise use.
 *
 * Usage: bench_coro [N]   (N resumes per generator measurement, default 100M)
 *
 * Every result is one line "<impl> <metric> <value>", the same lines that
 * bench/coro_baseline.py prints for Python generators, so that
 * bench/coro_compare.sh can put them side by side:
 *   next_ns        one rill_gen_next of a counter generator, loop included
 *   send_ns        one rill_gen_send to an accumulator
 *   level_ns       extra cost per resume for each level of yield from
 *   create_ns      rill_gen_init + first resume + close of a fresh generator
 *   gen_bytes      sizeof(rill_gen): the engine's state per generator
 *   state_bytes    sizeof a typical state struct (rill_gen + a counter)
 *   next_target, send_target
 *                  next_ns and send_ns over the 2 ns that issue 10 sets for
 *                  a resume on the machine CI runs on (<= 1 meets it)
 *   loadavg        the 1-minute load average before and after the generator
 *                  runs (impl "load"): figures from a busy machine are high
 * and for threads:
 *   create_ns      pthread_create + pthread_join of an empty thread
 *   switch_ns      one hand-off of a mutex/condvar ping-pong between two threads
 *   stack_bytes    default thread stack size (virtual; RLIMIT_STACK)
 *   rss_bytes      resident memory per idle thread
 * Each generator value is used (summed and checked), so nothing is optimized
 * away. rill_gen_next's common case is inline (coro.h): this measures it,
 * an indirect call into the body per resume. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "rill.h"

/* The resume cost that issue 10 asks for, in ns. */
#define RESUME_TARGET_NS 2.0

static void report(const char *impl, const char *metric, double v, const char *note) {
    printf("%-7s %-12s %12.2f   # %s\n", impl, metric, v, note);
}

/* ---- generators ---------------------------------------------------------- */

struct counter {
    rill_gen gen;
    long i, n;
};

static int counter_body(rill_gen *g) {
    struct counter *c = RILL_CONTAINER_OF(g, struct counter, gen);
    RILL_GEN_BEGIN(g);
    for (c->i = 0; c->i < c->n; c->i++)
        RILL_YIELD(g, &c->i);
    RILL_GEN_END(g);
}

struct acc {
    rill_gen gen;
    long sum;
};

static int acc_body(rill_gen *g) {
    struct acc *a = RILL_CONTAINER_OF(g, struct acc, gen);
    RILL_GEN_BEGIN(g);
    for (a->sum = 0;;) {
        RILL_YIELD(g, &a->sum);
        a->sum += *(const long *)RILL_SENT(g);
    }
    RILL_GEN_END(g);
}

struct relay {
    rill_gen gen;
    rill_gen *sub;
};

static int relay_body(rill_gen *g) {
    struct relay *r = RILL_CONTAINER_OF(g, struct relay, gen);
    RILL_GEN_BEGIN(g);
    RILL_YIELD_FROM(g, r->sub);
    RILL_GEN_END(g);
}

/* Drain c through a chain of depth relays; returns seconds, or -1 if the
 * values were wrong. */
static double drain(struct counter *c, struct relay *chain, int depth, long n) {
    c->n = n;
    rill_gen_init(&c->gen, counter_body, NULL);
    rill_gen *top = &c->gen;
    for (int i = depth - 1; i >= 0; i--) {
        chain[i].sub = top;
        rill_gen_init(&chain[i].gen, relay_body, NULL);
        top = &chain[i].gen;
    }
    long sum = 0;
    void *v;
    double t0 = bench_now_s();
    while (rill_gen_next(top, &v) == 0)
        sum += *(const long *)v;
    double t = bench_now_s() - t0;
    return sum == n * (n - 1) / 2 ? t : -1;
}

/* The best of REPS runs: other processes on a shared machine only ever add
 * time, so the minimum is the closest to the cost itself. */
enum { REPS = 5 };

static double send_run(long n) {
    struct acc a;
    void *v;
    long x = 0, odd = 0;
    rill_gen_init(&a.gen, acc_body, NULL);
    rill_gen_next(&a.gen, &v);
    double t0 = bench_now_s();
    for (long i = 0; i < n; i++) {
        x = i & 7;
        rill_gen_send(&a.gen, &x, &v);
        odd += *(const long *)v & 1;
    }
    double t = bench_now_s() - t0;
    return a.sum == (n / 8) * 28 + (n % 8) * (n % 8 - 1) / 2 && odd >= 0 ? t : -1;
}

static int bench_gen(long n) {
    struct counter c;
    enum { DEPTH = 100 };
    struct relay chain[DEPTH];
    long r = n / REPS;
    double best = 1e30, t;

    for (int i = 0; i < REPS; i++) {
        if ((t = drain(&c, chain, 0, r)) < 0)
            return 1;
        best = t < best ? t : best;
    }
    double next_ns = best * 1e9 / (double)r;
    report("rill", "next_ns", next_ns, "rill_gen_next of a counter");

    best = 1e30;
    for (int i = 0; i < REPS; i++) {
        if ((t = send_run(r)) < 0)
            return 1;
        best = t < best ? t : best;
    }
    double send_ns = best * 1e9 / (double)r;
    report("rill", "send_ns", send_ns, "rill_gen_send to an accumulator");

    /* Cost per level: the difference between a deep and a flat chain. */
    long m = r / DEPTH > 1000 ? r / DEPTH : 1000;
    double flat = 1e30, deep = 1e30;
    for (int i = 0; i < REPS; i++) {
        double f = drain(&c, chain, 0, m), d = drain(&c, chain, DEPTH, m);
        if (f < 0 || d < 0)
            return 1;
        flat = f < flat ? f : flat;
        deep = d < deep ? d : deep;
    }
    report("rill", "level_ns", (deep - flat) * 1e9 / (double)m / DEPTH,
           "per resume per level of yield from (depth 100)");

    long k = r / 10;
    void *v;
    long check = 0;
    best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = bench_now_s();
        for (long i = 0; i < k; i++) {
            c.n = 2;
            rill_gen_init(&c.gen, counter_body, NULL);
            rill_gen_next(&c.gen, &v);
            check += *(const long *)v;
            rill_gen_close(&c.gen);
        }
        t = bench_now_s() - t0;
        best = t < best ? t : best;
    }
    report("rill", "create_ns", best * 1e9 / (double)k, "init + first next + close");
    report("rill", "next_target", next_ns / RESUME_TARGET_NS, "next_ns / 2 ns target (<= 1 meets it)");
    report("rill", "send_target", send_ns / RESUME_TARGET_NS, "send_ns / 2 ns target (<= 1 meets it)");
    report("rill", "gen_bytes", (double)sizeof(rill_gen), "sizeof(rill_gen)");
    report("rill", "state_bytes", (double)sizeof(struct counter),
           "sizeof a typical state struct: rill_gen + two longs");
    return check < 0; /* uses check: always 0 */
}

/* ---- threads ------------------------------------------------------------- */

static void *noop(void *arg) { return arg; }

struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long turn, rounds; /* turn: even = main thread's move, odd = the other's */
};

static void *pong(void *arg) {
    struct pingpong *p = arg;
    pthread_mutex_lock(&p->mu);
    for (long r = 0; r < p->rounds; r++) {
        while (!(p->turn & 1))
            pthread_cond_wait(&p->cv, &p->mu);
        p->turn++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct parked {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
};

static void *park(void *arg) {
    struct parked *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->go)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static long rss_bytes(void) {
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = -1;
    fclose(f);
    return rss < 0 ? -1 : rss * sysconf(_SC_PAGESIZE);
}

static double pingpong_run(long rounds) {
    struct pingpong p = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, rounds};
    pthread_t t;
    if (pthread_create(&t, NULL, pong, &p) != 0)
        return -1;
    double t0 = bench_now_s();
    pthread_mutex_lock(&p.mu);
    for (long r = 0; r < rounds; r++) {
        while (p.turn & 1)
            pthread_cond_wait(&p.cv, &p.mu);
        p.turn++;
        pthread_cond_signal(&p.cv);
    }
    while (p.turn < 2 * rounds)
        pthread_cond_wait(&p.cv, &p.mu);
    pthread_mutex_unlock(&p.mu);
    double el = bench_now_s() - t0;
    pthread_join(t, NULL);
    return el;
}

static int bench_threads(long n) {
    long k = n / 5000 / REPS > 200 ? n / 5000 / REPS : 200; /* 20000 threads for N = 100M */
    double best = 1e30, t;
    for (int rep = 0; rep < REPS; rep++) {
        pthread_t th;
        double t0 = bench_now_s();
        for (long i = 0; i < k; i++)
            if (pthread_create(&th, NULL, noop, NULL) != 0 || pthread_join(th, NULL) != 0)
                return 1;
        t = bench_now_s() - t0;
        best = t < best ? t : best;
    }
    report("thread", "create_ns", best * 1e9 / (double)k, "pthread_create + join");

    long rounds = n / 500 / REPS > 2000 ? n / 500 / REPS : 2000;
    best = 1e30;
    for (int rep = 0; rep < REPS; rep++) {
        if ((t = pingpong_run(rounds)) < 0)
            return 1;
        best = t < best ? t : best;
    }
    report("thread", "switch_ns", best * 1e9 / (double)(2 * rounds),
           "one mutex/condvar hand-off between two threads");

    pthread_attr_t attr;
    size_t stack = 0;
    struct rlimit rl;
    pthread_attr_init(&attr);
    pthread_attr_getstacksize(&attr, &stack);
    pthread_attr_destroy(&attr);
    getrlimit(RLIMIT_STACK, &rl);
    report("thread", "stack_bytes", (double)stack,
           rl.rlim_cur == RLIM_INFINITY ? "default stack, ulimit -s unlimited"
                                        : "default stack = ulimit -s (virtual)");

    enum { PARKED = 200 };
    pthread_t ts[PARKED];
    struct parked pk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    long before = rss_bytes();
    int made = 0;
    while (made < PARKED && pthread_create(&ts[made], NULL, park, &pk) == 0)
        made++;
    usleep(100000); /* let every thread reach its wait */
    long after = rss_bytes();
    pthread_mutex_lock(&pk.mu);
    pk.go = 1;
    pthread_cond_broadcast(&pk.cv);
    pthread_mutex_unlock(&pk.mu);
    for (int i = 0; i < made; i++)
        pthread_join(ts[i], NULL);
    if (made > 0 && before > 0 && after > 0)
        report("thread", "rss_bytes", (double)(after - before) / made,
               "resident memory per idle thread");
    return 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 100000000L;
    if (n < 1000) {
        fprintf(stderr, "usage: bench_coro [N >= 1000]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    report("load", "loadavg", loadavg(), "1-minute load average before");
    int bad = bench_gen(n);
    report("load", "loadavg", loadavg(), "1-minute load average after the generators");
    if (bad != 0) {
        fprintf(stderr, "bench_coro: a generator produced wrong values\n");
        return 1;
    }
    if (bench_threads(n) != 0) {
        fprintf(stderr, "bench_coro: thread creation failed\n");
        return 1;
    }
    return 0;
}
