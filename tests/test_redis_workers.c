/* Several ip_stats --worker processes on one stream against a real
 * redis-server: the totals equal an independent count of the published file
 * when a worker is killed (SIGKILL) while it holds pending entries, when it
 * comes back under the same name, when a stopped worker resumes after its
 * entries were claimed, when the server is killed and restarted (AOF) under
 * the workers, and when the server refuses a commit. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_ipstats.h"
#include "redis_server.h"
#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

RILL_TEST(redis_workers, three_workers_one_killed_while_holding_entries) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[3][256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "kill", 10), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    const char *names[3] = {"a", "b", "c"};
    pid_t w[3];
    /* Published first, so that the workers are busy from the start, holding
     * a batch most of the time (a publisher beside them leaves them waiting
     * for entries: see bench/redis.c). */
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    for (int i = 0; i < 3; i++)
        w[i] = ips_worker(&rs, "s", names[i], "--claim-idle 300 --idle-exit 1500", err[i], 256);
    CHECK(ips_stop_holding(w[1], c, "s", "b"));
    long long held = ips_pending(c, "s", "b");
    kill(w[1], SIGKILL);
    CHECK_EQ(proc_wait(w[1], IPS_LIMIT_S), -1);
    CHECK_EQ(proc_wait(w[0], IPS_LIMIT_S), 0);
    CHECK_EQ(proc_wait(w[2], IPS_LIMIT_S), 0);
    ips_check_totals(&rs, "s", log, __LINE__);
    /* b's entries were taken over by a or c. */
    long long claimed = 0;
    for (int i = 0; i < 3; i += 2) {
        const char *p = strstr(ips_slurp(err[i], text, sizeof text), "own pending, ");
        claimed += p ? atoll(p + strlen("own pending, ")) : 0;
    }
    if (claimed < held)
        rill_test__failf(__FILE__, __LINE__, "b held %lld entries, the others claimed %lld",
                         held, claimed);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

RILL_TEST(redis_workers, killed_worker_restarted_under_its_name_reads_its_own_first) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "restart", 5), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    /* Nobody claims (claim-idle far above the test): only a restart under
     * the same name can count what a holds. */
    pid_t a = ips_worker(&rs, "s", "a", "--claim-idle 600000 --idle-exit 300", err, sizeof err);
    CHECK(ips_stop_holding(a, c, "s", "a"));
    long long held = ips_pending(c, "s", "a");
    kill(a, SIGKILL);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), -1);
    CHECK_EQ(ips_pending(c, "s", "a"), held); /* nothing of it was committed */
    a = ips_worker(&rs, "s", "a", "--claim-idle 600000 --idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), 0);
    char want[64];
    snprintf(want, sizeof want, "(%lld own pending,", held);
    if (!strstr(ips_slurp(err, text, sizeof text), want))
        rill_test__failf(__FILE__, __LINE__, "want '%s' in: %s", want, text);
    ips_check_totals(&rs, "s", log, __LINE__);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

/* a is frozen holding entries; b claims and commits them; a wakes and
 * commits its batch: the script refuses it (the entries are no longer a's),
 * so nothing counts twice. */
RILL_TEST(redis_workers, frozen_worker_whose_entries_were_claimed_commits_nothing_twice) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], erra[256], errb[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "frozen", 5), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    pid_t a = ips_worker(&rs, "s", "a", "--claim-idle 600000 --idle-exit 800", erra, 256);
    CHECK(ips_stop_holding(a, c, "s", "a"));
    pid_t b = ips_worker(&rs, "s", "b", "--claim-idle 100 --idle-exit 300", errb, 256);
    CHECK_EQ(proc_wait(b, IPS_LIMIT_S), 0);
    CHECK_EQ(ips_pending(c, "s", NULL), 0);
    kill(a, SIGCONT);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), 0);
    CHECK(strstr(ips_slurp(erra, text, sizeof text), " 1 refused") != NULL);
    ips_check_totals(&rs, "s", log, __LINE__);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

/* The server is killed (SIGKILL: whatever it was doing, a commit included)
 * twice while three workers consume, and restarted from its AOF; the workers reconnect and the totals are exact. */
RILL_TEST(redis_workers, server_killed_and_restarted_under_the_workers) {
    redis_server rs;
    if (redis_server_start(&rs, true))
        return;
    char log[256], err[3][256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "aof", 10), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    pid_t w[3];
    const char *names[3] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        w[i] = ips_worker(&rs, "s", names[i], "--claim-idle 500 --idle-exit 2000", err[i], 256);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    double end = redis__now() + 30; /* the first kill once all three have read */
    for (bool ready = false; !ready && redis__now() < end; redis__pause_ms(2)) {
        redisReply *r = redisCommand(c, "XINFO CONSUMERS s ip_stats");
        ready = r && r->type == REDIS_REPLY_ARRAY && r->elements == 3;
        if (r)
            freeReplyObject(r);
    }
    redisFree(c);
    CHECK_EQ(redis_server_restart(&rs), 0);
    redis__pause_ms(300); /* the second while they work again */
    CHECK_EQ(redis_server_restart(&rs), 0);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(proc_wait(w[i], IPS_LIMIT_S), 0);
    long long reconnects = 0;
    for (int i = 0; i < 3; i++) {
        const char *p = strstr(ips_slurp(err[i], text, sizeof text), " refused, ");
        reconnects += p ? atoll(p + strlen(" refused, ")) : 0;
    }
    CHECK(reconnects >= 3); /* every worker saw the server go */
    ips_check_totals(&rs, "s", log, __LINE__);
    remove(log);
    redis_server_stop(&rs);
}

/* The server refuses a commit (the counts hash is made a string under the
 * worker): the worker fails with status 1, and the refused batch changed
 * nothing (its entries are still pending, no count was added). Restored, a
 * worker under the same name finishes with exact totals. */
RILL_TEST(redis_workers, refused_commit_changes_nothing) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char log[256], err[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "refused", 3), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    pid_t a = ips_worker(&rs, "s", "a", "--idle-exit 300", err, sizeof err);
    CHECK(ips_stop_holding(a, c, "s", "a"));
    long long held = ips_pending(c, "s", "a");
    bool had = redis_int(c, "EXISTS s:counts") == 1;
    redisReply *r = redisCommand(c, had ? "RENAME s:counts saved" : "PING");
    freeReplyObject(r);
    r = redisCommand(c, "SET s:counts oops");
    freeReplyObject(r);
    kill(a, SIGCONT);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), 1);
    CHECK(strstr(ips_slurp(err, text, sizeof text), "holds a string, not a hash") != NULL);
    CHECK_EQ(ips_pending(c, "s", "a"), held);
    r = redisCommand(c, "GET s:counts");
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "oops") == 0);
    freeReplyObject(r);
    r = redisCommand(c, had ? "RENAME saved s:counts" : "DEL s:counts");
    freeReplyObject(r);
    a = ips_worker(&rs, "s", "a", "--idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), 0);
    ips_check_totals(&rs, "s", log, __LINE__);
    redisFree(c);
    remove(log);
    redis_server_stop(&rs);
}

/* Is a client of the server blocked (by CLIENT PAUSE) in a commit? */
static bool commit_blocked(redisContext *c) {
    redisReply *r = redisCommand(c, "CLIENT LIST");
    bool found = false;
    for (char *line = r && r->type == REDIS_REPLY_STRING ? strtok(r->str, "\n") : NULL;
         line && !found; line = strtok(NULL, "\n")) {
        char *flags = strstr(line, " flags=");
        found = strstr(line, " cmd=evalsha") && flags && strchr(flags + 7, 'b') &&
                strchr(flags + 7, 'b') < strchr(flags + 7, ' ');
    }
    if (r)
        freeReplyObject(r);
    return found;
}

/* The server dies while a commit is in flight: the worker's EVALSHA is held
 * by CLIENT PAUSE WRITE, the server is SIGKILLed and restarted (AOF). The
 * commit never ran; the worker reconnects, runs it again, and it applies
 * once: totals exact. */
RILL_TEST(redis_workers, server_killed_with_a_commit_in_flight) {
    redis_server rs;
    if (redis_server_start(&rs, true))
        return;
    char log[256], err[256], text[4096];
    CHECK_EQ(ips_make_log(log, sizeof log, "inflight", 3), 0);
    CHECK_EQ(ips_publish(&rs, "s", log), 0);
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    pid_t a = ips_worker(&rs, "s", "a", "--idle-exit 1000", err, sizeof err);
    double end = redis__now() + 30;
    while (redis__now() < end && redis_int(c, "HLEN s:counts") <= 0)
        redis__pause_ms(1);
    bool caught = false;
    while (!caught && redis__now() < end) {
        redisReply *r = redisCommand(c, "CLIENT PAUSE 60000 WRITE");
        freeReplyObject(r);
        for (int i = 0; i < 50 && !caught; i++, redis__pause_ms(2))
            caught = commit_blocked(c);
        if (!caught) {
            r = redisCommand(c, "CLIENT UNPAUSE");
            freeReplyObject(r);
            redis__pause_ms(1);
        }
    }
    CHECK(caught);
    redisFree(c);
    CHECK_EQ(redis_server_restart(&rs), 0);
    CHECK_EQ(proc_wait(a, IPS_LIMIT_S), 0);
    CHECK(strstr(ips_slurp(err, text, sizeof text), " 0 refused, ") != NULL);
    ips_check_totals(&rs, "s", log, __LINE__);
    remove(log);
    redis_server_stop(&rs);
}
