/* The task scheduler's cost: spawn N tasks (default 1,000,000) that each
 * yield Y times (default 10), run them to the end, and put the figures next
 * to the seed's Python scheduler (bench/sched_baseline.py) doing the same
 * with N/10 tasks.
 *
 * Usage: bench_sched [N [Y [PYTHON_N]]]    PYTHON=interp (default python3;
 *        PYTHON_N 0 skips the Python run)
 *
 * Prints "<impl> <metric> <value>" lines:
 *   switches_per_s       task resumes per second of rill_sched_run
 *   run_s, spawn_s, total_s
 *   engine_bytes_per_task  what the engine holds per live task (its record,
 *                        the id map's share), from rill_sched_stats()
 *   task_record_bytes    sizeof the engine's record
 *   rss_bytes_per_task   resident memory growth while spawning, per task
 *                        (/proc/self/statm): the engine's part only, the
 *                        tasks' own states were allocated and touched before
 *   state_bytes          the benchmark's state struct per task
 * then the ratio of switches/s, and whether examples/os_sched prints what
 * the seed's Python program prints. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"

#define BASELINE RILL_DATA_DIR "/../bench/sched_baseline.py"

struct worker {
    rill_gen gen;
    uint32_t i, n;
};

static int worker_body(rill_gen *g) {
    struct worker *w = RILL_CONTAINER_OF(g, struct worker, gen);
    RILL_GEN_BEGIN(g);
    for (w->i = 0; w->i < w->n; w->i++)
        RILL_YIELD(g, NULL);
    RILL_GEN_END(g);
}

static double now_s(void) { return (double)rill_sched_now_ns() * 1e-9; }

static long rss_bytes(void) {
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

static void report(const char *metric, double v, const char *note) {
    printf("rill   %-22s %14.3f   # %s\n", metric, v, note);
}

/* Runs cmd, prints its lines, returns python's switches/s (0 if absent). */
static double run_python(const char *cmd) {
    FILE *p = popen(cmd, "r");
    double sps = 0;
    char line[256];
    if (!p)
        return 0;
    while (fgets(line, sizeof line, p)) {
        fputs(line, stdout);
        sscanf(line, "python switches_per_s %lf", &sps);
    }
    pclose(p);
    return sps;
}

/* cmd's whole output in buf; its length, or -1 if it failed. */
static long capture(const char *cmd, char *buf, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(buf, 1, cap - 1, p);
    buf[n] = '\0';
    return pclose(p) == 0 ? (long)n : -1;
}

/* Whether os_sched (next to this program) prints what the seed's Python
 * scheduler prints: 1 same, 0 different, -1 could not run both. */
static int demo_matches(const char *python) {
    char dir[4096], cmd[4400], ours[4096], theirs[4096];
    ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
    if (n <= 0)
        return -1;
    dir[n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash)
        return -1;
    *slash = '\0';
    snprintf(cmd, sizeof cmd, "'%s/os_sched'", dir);
    if (capture(cmd, ours, sizeof ours) <= 0)
        return -1;
    snprintf(cmd, sizeof cmd, "%s '%s' demo 2>/dev/null", python, BASELINE);
    if (capture(cmd, theirs, sizeof theirs) <= 0)
        return -1;
    return strcmp(ours, theirs) == 0;
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long y = argc > 2 ? atol(argv[2]) : 10;
    long pn = argc > 3 ? atol(argv[3]) : n / 10;
    const char *python = getenv("PYTHON") ? getenv("PYTHON") : "python3";
    if (n <= 0 || y < 0) {
        fprintf(stderr, "usage: bench_sched [N [Y [PYTHON_N]]]\n");
        return 2;
    }
    struct worker *w = malloc((size_t)n * sizeof *w);
    rill_sched *s;
    if (!w || rill_sched_new(&s) < 0) {
        fprintf(stderr, "bench_sched: out of memory\n");
        return 1;
    }
    for (long i = 0; i < n; i++) { /* states first: RSS below is the engine's */
        w[i].n = (uint32_t)y;
        rill_gen_init(&w[i].gen, worker_body, NULL);
    }

    long rss0 = rss_bytes();
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (rill_sched_spawn(s, &w[i].gen, NULL, NULL) < 0) {
            fprintf(stderr, "bench_sched: spawn failed\n");
            return 1;
        }
    double t1 = now_s();
    long rss1 = rss_bytes();
    struct rill_sched_stats st;
    rill_sched_stats(s, &st);
    size_t engine = st.engine_bytes;
    int rc = rill_sched_run(s);
    double t2 = now_s();
    rill_sched_stats(s, &st);
    if (rc < 0 || st.switches != (uint64_t)(n * (y + 1))) {
        fprintf(stderr, "bench_sched: run: %s, %" PRIu64 " switches\n", rill_strerror(rc),
                st.switches);
        return 1;
    }
    double sps = (double)st.switches / (t2 - t1);
    printf("rill   tasks %ld x %ld yields\n", n, y);
    report("switches", (double)st.switches, "resumes: yields + the one that ends each task");
    report("spawn_s", t1 - t0, "rill_sched_spawn of every task");
    report("run_s", t2 - t1, "rill_sched_run until none is left");
    report("total_s", t2 - t0, "spawn + run");
    report("switches_per_s", sps, "in rill_sched_run");
    report("ns_per_switch", 1e9 / sps, "");
    report("engine_bytes_per_task", (double)engine / (double)n,
           "record + id map share, all tasks live");
    report("task_record_bytes", (double)st.task_bytes, "sizeof the engine's task record");
    report("rss_bytes_per_task", (double)(rss1 - rss0) / (double)n,
           "resident growth while spawning (engine only)");
    report("state_bytes", (double)sizeof(struct worker), "the task's own state (rill_gen + counters)");
    rill_sched_free(s);
    free(w);
    fflush(stdout);

    char cmd[1024];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1 && %s '%s' bench %ld %ld", python,
             python, BASELINE, pn, y);
    double py = pn > 0 ? run_python(cmd) : 0;
    if (py > 0)
        printf("ratio  switches_per_s rill/python %14.1f\n", sps / py);
    else
        printf("python: %s not found or no Python run: no baseline\n", python);
    int demo = pn > 0 ? demo_matches(python) : -1;
    printf("demo   os_sched output %s the seed's Python scheduler's\n",
           demo == 1 ? "equals" : demo == 0 ? "DIFFERS FROM" : "not compared with");
    return demo == 0 ? 1 : 0;
}
