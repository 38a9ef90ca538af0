/* Redis Streams scale-out: entries per second published and consumed.
 *
 *   bench_redis [REPEAT [K,K...]]  (the shipped log REPEAT times over, default
 *                                   20; checkpoint sizes, default 10,50,100,500,2000)
 *
 * Starts its own redis-server (no persistence) on a free 127.0.0.1 port, then
 * measures, each as a ratio against the server's own limit taken in the same
 * run, `redis-benchmark -P 200` XADDing the log's first line (three rounds
 * alternated with the publish runs, medians):
 *   - publishing the file (ip_stats --publish: pipelined XADD, 1000 in flight);
 *   - consuming and committing it with 1, 2 and 4 `ip_stats --worker`
 *     processes, each run a fresh consumer group on the same stream, timed
 *     until the group has read everything and nothing is pending;
 *   - ip_stats counting the same file locally (no Redis), as the other
 *     yardstick;
 *   - the cost of a checkpoint: one in-process worker (source -> sink) with
 *     K entries per batch, for K from 10 to 2000.
 * Redis, the publisher and the workers share this machine's cores: the load
 * average is printed beside every figure. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "rill.h"
#include "rill/redis.h"

/* tests/util/redis_server.h reports through these. */
void rill_test__skip(const char *file, int line, const char *msg);
void rill_test__failf(const char *file, int line, const char *fmt, ...);
void rill_test__skip(const char *file, int line, const char *msg) {
    (void)file, (void)line;
    fprintf(stderr, "bench_redis: %s\n", msg);
}
void rill_test__failf(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    (void)file, (void)line;
    va_start(ap, fmt);
    fputs("bench_redis: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
#define RILL_TEST_TMP "/tmp"
#include "redis_server.h"

#define IPS RILL_BIN_DIR "/ip_stats"

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of three values (sorted in place). */
static double median3(double v[3]) {
    qsort(v, 3, sizeof *v, cmp_double);
    return v[1];
}

/* Has group g of stream s read every entry, and acked them all? */
static bool group_done(redisContext *c, const char *g) {
    redisReply *r = redisCommand(c, "XINFO GROUPS s");
    bool done = false;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *e = r->element[i];
        bool mine = false;
        long long pending = -1, lag = -1;
        for (size_t j = 0; j + 1 < e->elements; j += 2) {
            const char *k = e->element[j]->str;
            redisReply *v = e->element[j + 1];
            if (strcmp(k, "name") == 0)
                mine = strcmp(v->str, g) == 0;
            else if (strcmp(k, "pending") == 0)
                pending = v->integer;
            else if (strcmp(k, "lag") == 0)
                lag = v->type == REDIS_REPLY_INTEGER ? v->integer : -1;
        }
        if (mine)
            done = pending == 0 && lag == 0;
    }
    if (r)
        freeReplyObject(r);
    return done;
}

/* Consume the whole stream with n worker processes in a new group. */
static double consume(const redis_server *rs, redisContext *c, int n, int run) {
    char group[32];
    snprintf(group, sizeof group, "g%d_%d", n, run);
    pid_t pid[8];
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        char name[16];
        snprintf(name, sizeof name, "w%d", i);
        char *argv[] = {(char *)IPS, (char *)"--redis", (char *)rs->addr, (char *)"--stream",
                        (char *)"s", (char *)"--worker", name, (char *)"--group", group, NULL};
        pid[i] = proc_spawn(argv, NULL, NULL);
    }
    while (!group_done(c, group) && secs(bench_now_ns() - t0) < 600)
        redis__pause_ms(2);
    double t = secs(bench_now_ns() - t0);
    for (int i = 0; i < n; i++) {
        kill(pid[i], SIGTERM);
        proc_wait(pid[i], 30);
    }
    return t;
}

typedef struct kworker {
    rill_pipeline *p;
    rill_stage *src;
    int rc;
} kworker;

static void *krun(void *arg) {
    kworker *k = arg;
    k->rc = rill_pipeline_run(k->p);
    return NULL;
}

/* One in-process worker with K entries per checkpoint: seconds to drain. */
static double consume_k(const redis_server *rs, redisContext *c, unsigned K) {
    char group[32], err[256];
    snprintf(group, sizeof group, "k%u", K);
    rill_redis_conf conf = {.host = "127.0.0.1", .port = rs->port};
    rill_redis_source_opts o = {.stream = "s", .group = group, .consumer = "k", .count = K};
    kworker k = {0};
    rill_stage *sink;
    if (rill_pipeline_new("k", &k.p) ||
        rill_redis_source_add(k.p, "source", &conf, &o, NULL, &k.src, err, sizeof err) ||
        rill_redis_sink_add(k.p, "sink", k.src, rill_key_first_field, NULL, NULL, &sink) ||
        rill_connect(k.src, sink)) {
        fprintf(stderr, "bench_redis: cannot build the K=%u worker: %s\n", K, err);
        rill_pipeline_free(k.p);
        return -1;
    }
    pthread_t t;
    uint64_t t0 = bench_now_ns();
    pthread_create(&t, NULL, krun, &k);
    while (!group_done(c, group) && secs(bench_now_ns() - t0) < 600)
        redis__pause_ms(2);
    double s = secs(bench_now_ns() - t0);
    rill_redis_source_stop(k.src);
    pthread_join(t, NULL);
    rill_pipeline_free(k.p);
    return s;
}

int main(int argc, char **argv) {
    int repeat = argc > 1 ? atoi(argv[1]) : 20;
    if (repeat < 1)
        repeat = 1;
    char log[256], cmd[1024], out[4096];
    snprintf(log, sizeof log, "/tmp/bench_redis_%ld.log", (long)getpid());
    snprintf(cmd, sizeof cmd, "for i in $(seq %d); do cat %s/apache_logs; done > %s", repeat,
             RILL_DATA_DIR, log);
    if (run(cmd, out, sizeof out) != 0)
        return 1;
    snprintf(cmd, sizeof cmd, "wc -l < %s", log);
    run(cmd, out, sizeof out);
    long long lines = atoll(out);
    redis_server rs;
    if (redis_server_start(&rs, false)) {
        remove(log);
        return 1;
    }
    redisContext *c = redis_connect(&rs);
    printf("bench_redis: %lld entries (the shipped log x%d), redis-server on %s\n", lines,
           repeat, rs.addr);

    /* The server's limit, redis-benchmark's own pipelined XADD of the log's
     * first line, and ip_stats --publish of the whole log, alternated three
     * times (the machine is shared: one of each would compare two moments),
     * each publish to a key of its own; medians, and the median of the
     * per-round ratios. Stream s keeps the first round's entries. */
    bool have_rb = run("command -v redis-benchmark >/dev/null && echo y", out, sizeof out) == 0 &&
                   out[0] == 'y';
    char first[512] = "";
    FILE *f = fopen(log, "r");
    if (f && fgets(first, sizeof first, f))
        first[strcspn(first, "\r\n'")] = '\0';
    if (f)
        fclose(f);
    enum { ROUNDS = 3 };
    double rbs[ROUNDS], tps[ROUNDS], ratio[ROUNDS];
    int prc = 0;
    for (int round = 0; round < ROUNDS; round++) {
        rbs[round] = -1;
        if (have_rb) {
            snprintf(cmd, sizeof cmd,
                     "redis-benchmark -p %u -P 200 -n %lld -q XADD rb '*' line '%s' 2>/dev/null "
                     "| tr '\\r' '\\n' | grep 'requests per second' | tail -1",
                     (unsigned)rs.port, lines, first);
            run(cmd, out, sizeof out);
            const char *colon = strrchr(out, ':');
            rbs[round] = colon ? atof(colon + 1) : -1;
            redisReply *r = redisCommand(c, "DEL rb");
            if (r)
                freeReplyObject(r);
        }
        char key[16];
        snprintf(key, sizeof key, round ? "p%d" : "s", round);
        uint64_t t0 = bench_now_ns();
        snprintf(cmd, sizeof cmd, "%s --redis %s --stream %s --publish %s 2>&1", IPS, rs.addr,
                 key, log);
        prc |= run(cmd, out, sizeof out);
        tps[round] = secs(bench_now_ns() - t0);
        ratio[round] = rbs[round] > 0 ? (double)lines / tps[round] / rbs[round] : 0;
        if (round) {
            redisReply *r = redisCommand(c, "DEL %s", key);
            if (r)
                freeReplyObject(r);
        }
    }
    double rb = median3(rbs), tp = median3(tps);
    if (have_rb)
        printf("  redis-benchmark -P 200 XADD    %10.0f entries/s          load %.2f  "
               "(median of %d)\n", rb, loadavg(), ROUNDS);
    else
        printf("  redis-benchmark not installed (Debian redis-tools): no server baseline\n");
    printf("  ip_stats --publish             %10.0f entries/s  %5.2fx  load %.2f  "
           "(medians of %d, alternated)%s\n",
           (double)lines / tp, median3(ratio), loadavg(), ROUNDS, prc ? "  (FAILED)" : "");

    uint64_t t0 = bench_now_ns();
    snprintf(cmd, sizeof cmd, "%s %s --top 10 >/dev/null", IPS, log);
    run(cmd, out, sizeof out);
    double tl = secs(bench_now_ns() - t0);
    printf("  ip_stats LOG (local, no Redis) %10.0f lines/s                load %.2f\n",
           (double)lines / tl, loadavg());

    const int ws[3] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
        double t = consume(&rs, c, ws[i], i);
        printf("  %d worker%s consume + commit     %10.0f entries/s  %5.2fx  %5.3fx local  "
               "load %.2f\n",
               ws[i], ws[i] > 1 ? "s" : " ", (double)lines / t,
               rb > 0 ? (double)lines / t / rb : 0, tl / t, loadavg());
    }

    printf("  checkpoint cost (one in-process worker, K entries per checkpoint):\n");
    unsigned ks[8] = {10, 50, 100, 500, 2000};
    int nk = 5;
    if (argc > 2) { /* bench_redis REPEAT K,K,... */
        nk = 0;
        for (char *p = argv[2]; *p && nk < 8; p += *p == ',')
            ks[nk++] = (unsigned)strtoul(p, &p, 10);
    }
    double tk[8];
    for (int i = 0; i < nk; i++) {
        tk[i] = consume_k(&rs, c, ks[i]);
        printf("    K=%-5u %10.0f entries/s  %6lld checkpoints  load %.2f\n", ks[i],
               (double)lines / tk[i], lines / ks[i] + 1, loadavg());
    }
    /* What a checkpoint adds: the time beyond the fastest run, per extra
     * checkpoint (batches larger than the fastest one cost more per entry,
     * not less: see docs/redis.md). */
    int best = 0;
    for (int i = 1; i < nk; i++)
        if (tk[i] < tk[best])
            best = i;
    for (int i = 0; i < nk; i++) {
        double extra = (double)(lines / ks[i]) - (double)(lines / ks[best]);
        if (extra <= 0)
            continue; /* no more checkpoints than the fastest run */
        printf("    K=%-5u about %.0f us per checkpoint more than K=%u\n", ks[i],
               (tk[i] - tk[best]) / extra * 1e6, ks[best]);
    }
    redisFree(c);
    redis_server_stop(&rs);
    remove(log);
    return 0;
}
