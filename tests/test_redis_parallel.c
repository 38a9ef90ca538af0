/* ip_stats --worker --parallel N: N consumers NAME.1..NAME.N, each a
 * pipeline in a thread of its own inside one process (pthread_create in
 * examples/ipstats_redis.h), so this file is labelled threaded and runs
 * under ThreadSanitizer with a TSan-built ip_stats. With SIGTERM the
 * workers end after their current batch, committed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_ipstats.h"
#include "redis_server.h"
#include "rill.h"
#include "rill_test.h"

RILL_TEST(redis_parallel, three_consumers_in_one_process_give_the_file_counts) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "parallel", 3), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    pid_t w = ips_worker(&rs, "s", "p", "--parallel 3 --idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    ips_slurp(err, text, sizeof text);
    CHECK(strstr(text, "worker p.1: ") && strstr(text, "worker p.2: ") &&
          strstr(text, "worker p.3: "));
    ips_check_totals(&rs, "s", log, __LINE__);
    remove(log);
    redis_server_stop(&rs);
}

RILL_TEST(redis_parallel, sigterm_ends_the_workers_with_their_batches_committed) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "term", 3), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    /* No --idle-exit: only the signal ends them. */
    pid_t w = ips_worker(&rs, "s", "t", "--parallel 2", err, sizeof err);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    double end = redis__now() + 30;
    while (redis__now() < end && redis_int(c, "HLEN s:counts") <= 0)
        redis__pause_ms(2);
    kill(w, SIGTERM);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    CHECK(strstr(ips_slurp(err, text, sizeof text), "worker t.2: ") != NULL);
    CHECK_EQ(ips_pending(c, "s", NULL), 0); /* nothing left half-done */
    /* What they did not read, a later worker counts: totals exact. */
    w = ips_worker(&rs, "s", "t", "--idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    ips_check_totals(&rs, "s", log, __LINE__);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

/* --threaded: source, filter, count reducer and sink each in a thread
 * (RILL_STAGE_THREADED); the reducer hands its deltas on at each barrier,
 * the sink commits them with the batch's acknowledgement. Three such
 * workers, one killed while it holds a batch: exact totals. */
RILL_TEST(redis_parallel, threaded_workers_one_killed_give_the_file_counts) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[3][256];
    CHECK_EQ(ips_make_log(log, sizeof log, "threaded", 5), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    const char *names[3] = {"a", "b", "c"};
    pid_t w[3];
    for (int i = 0; i < 3; i++)
        w[i] = ips_worker(&rs, "s", names[i], "--threaded --claim-idle 300 --idle-exit 1500",
                          err[i], 256);
    CHECK(ips_stop_holding(w[1], c, "s", "b")); /* frozen while it holds a batch */
    kill(w[1], SIGKILL);
    CHECK_EQ(proc_wait(w[1], IPS_LIMIT_S), -1);
    CHECK_EQ(proc_wait(w[0], IPS_LIMIT_S), 0);
    CHECK_EQ(proc_wait(w[2], IPS_LIMIT_S), 0);
    ips_check_totals(&rs, "s", log, __LINE__);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

RILL_TEST(redis_parallel, threaded_and_parallel_together) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[256];
    CHECK_EQ(ips_make_log(log, sizeof log, "both", 2), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    pid_t w = ips_worker(&rs, "s", "tp", "--threaded --parallel 2 --idle-exit 300", err,
                         sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    ips_check_totals(&rs, "s", log, __LINE__);
    remove(log);
    redis_server_stop(&rs);
}
