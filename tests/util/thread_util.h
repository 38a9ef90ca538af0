/* Helpers shared by the threaded tests (tests/test_thread_*.c): clocks,
 * sleeps and polls with a limit, a seeded generator, a look at our own
 * threads in /proc, and a gate a stage can wait at. All static inline so
 * each test binary takes what it uses and unused ones cost no warning. */
#ifndef RILL_TESTS_THREAD_UTIL_H
#define RILL_TESTS_THREAD_UTIL_H

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"

#include "rill.h"

/* splitmix64: the same seed gives the same run, so a failure can be replayed. */
static inline uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Monotonic time in nanoseconds: immune to wall-clock steps during a test. */
static inline uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Monotonic time in seconds, for limits given in seconds. */
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Give the CPU to other threads while polling (2 shared cores). */
static inline void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* usleep sleeps far too long for microseconds here: busy-wait. */
static inline void spin_ns(uint64_t ns) {
    uint64_t end = now_ns() + ns;
    while (now_ns() < end)
        ;
}

/* Poll until *a >= want, for at most seconds: a hung thread fails the check
 * instead of hanging the test; the limit is generous, nothing is timed. */
static inline bool wait_for(atomic_int *a, int want, double seconds) {
    double end = now_s() + seconds;
    while (atomic_load(a) < want && now_s() < end)
        sleep_ms(1);
    return atomic_load(a) >= want;
}

/* Kernel id of the calling thread, to find it in /proc/self/task. */
static inline int my_tid(void) { return (int)syscall(SYS_gettid); }

/* Scheduler state of one of our threads ('R' running, 'S' sleeping...):
 * tells a thread blocked in a wait from one still running; '?' if unknown. */
static inline char thread_state(int tid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return '?';
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name in parentheses may hold spaces */
    return p && p[1] == ' ' ? p[2] : '?';
}

/* The body of count_threads' warm-up thread. */
/* rill_pipeline_run on a thread of its own:
 * pthread_create(&t, NULL, pipeline_runner_main, &r), rc read after join. */
typedef struct pipeline_runner {
    rill_pipeline *p;
    int rc;
} pipeline_runner;

static inline void *pipeline_runner_main(void *arg) {
    pipeline_runner *r = arg;
    r->rc = rill_pipeline_run(r->p);
    return NULL;
}

static inline void *thread_util__noop(void *arg) { return arg; }

/* Threads of this process, or -1. A sanitizer runtime may start a helper
 * thread of its own with the first thread we create: start and join one
 * first, so a baseline taken here does not move later. */
static inline int count_threads(void) {
    static bool warm;
    pthread_t t;
    if (!warm && pthread_create(&t, NULL, thread_util__noop, NULL) == 0) {
        pthread_join(t, NULL);
        warm = true;
    }
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A door the test thread opens: a stage waits at it inside a callback, so
 * the test controls when it moves on; entered counts who reached it. */
typedef struct gate {
    pthread_mutex_t m;
    pthread_cond_t c;
    bool open;
    atomic_int entered;
} gate;

/* Closed, with nobody entered yet. */
static inline void gate_init(gate *g) {
    pthread_mutex_init(&g->m, NULL);
    pthread_cond_init(&g->c, NULL);
    g->open = false;
    atomic_init(&g->entered, 0);
}

/* Count in first, so the test can see a stage has arrived, then wait for
 * the test to open. */
static inline void gate_pass(gate *g) {
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->m);
    while (!g->open)
        pthread_cond_wait(&g->c, &g->m);
    pthread_mutex_unlock(&g->m);
}

/* Lets through every waiter, and every later arrival. */
static inline void gate_open(gate *g) {
    pthread_mutex_lock(&g->m);
    g->open = true;
    pthread_cond_broadcast(&g->c);
    pthread_mutex_unlock(&g->m);
}

/* Only once no thread can still be inside gate_pass. */
static inline void gate_fini(gate *g) {
    pthread_mutex_destroy(&g->m);
    pthread_cond_destroy(&g->c);
}

/* The counters of the queue into stage `to` now (capacity UINT64_MAX: none). */
static inline rill_queue_stats queue_to(rill_pipeline *p, const char *to) {
    rill_queue_stats q;
    rill_stats *s = NULL;
    memset(&q, 0, sizeof q);
    q.capacity = UINT64_MAX;
    if (rill_pipeline_stats(p, &s) == 0)
        for (size_t i = 0; i < s->nqueues; i++)
            if (strcmp(s->queues[i].to, to) == 0)
                q = s->queues[i];
    rill_stats_free(s);
    return q;
}

#endif
