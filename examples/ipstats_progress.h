/* ip_stats' progress line: while a long run goes on, a thread prints on
 * stderr (a terminal) the bytes read of the total and lines per second,
 * every quarter second, from the source's counters (rill_lines_stats():
 * file and TCP line sources alike), and clears the line when stopped. */
#ifndef IPSTATS_PROGRESS_H
#define IPSTATS_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "rill.h"

typedef struct progress {
    rill_stage *source;
    uint64_t total; /* bytes to read; 0: unknown */
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done, running;
} progress;

static inline void *progress_main(void *arg) {
    progress *pr = (progress *)arg;
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool shown = false;
    pthread_mutex_lock(&pr->lock);
    while (!pr->done) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&pr->cond, &pr->lock, &until);
        if (pr->done)
            break;
        struct rill_lines_stats ls;
        if (rill_lines_stats(pr->source, &ls))
            continue;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double secs = (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) * 1e-9;
        if (pr->total)
            fprintf(stderr, "\r%.1f of %.1f MB (%.0f%%), %.2f M lines/s   ",
                    (double)ls.bytes / 1e6, (double)pr->total / 1e6,
                    100.0 * (double)ls.bytes / (double)pr->total, (double)ls.lines / secs / 1e6);
        else
            fprintf(stderr, "\r%.1f MB, %.2f M lines/s   ", (double)ls.bytes / 1e6,
                    (double)ls.lines / secs / 1e6);
        shown = true;
    }
    pthread_mutex_unlock(&pr->lock);
    if (shown)
        fprintf(stderr, "\r%60s\r", "");
    return NULL;
}

/* Show the progress of source (total bytes, 0 if unknown). If the thread
 * cannot start there is simply no progress line. */
static inline void progress_start(progress *pr, rill_stage *source, uint64_t total) {
    pr->source = source;
    pr->total = total;
    pr->done = false;
    pthread_mutex_init(&pr->lock, NULL);
    pthread_cond_init(&pr->cond, NULL);
    pr->running = pthread_create(&pr->tid, NULL, progress_main, pr) == 0;
}

/* Stop and join the thread (no-op if it never ran). */
static inline void progress_stop(progress *pr) {
    if (!pr->running)
        return;
    pthread_mutex_lock(&pr->lock);
    pr->done = true;
    pthread_cond_signal(&pr->cond);
    pthread_mutex_unlock(&pr->lock);
    pthread_join(pr->tid, NULL);
    pr->running = false;
}

#endif
