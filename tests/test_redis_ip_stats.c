/* ip_stats' Redis Streams modes end to end against a real redis-server
 * (tests/util/redis_server.h): publish, one worker, the totals query, the
 * dead-letter stream, a password, and the errors (exit status 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_ipstats.h"
#include "redis_server.h"
#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

#define LOG RILL_DATA_DIR "/apache_logs"

RILL_TEST(redis_ip_stats, publish_then_one_worker_gives_the_file_counts) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char cmd[512], out[4096], err[256], why[256];
    snprintf(cmd, sizeof cmd, "%s --redis %s --stream logs --publish 2>&1", IPS_BIN, rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    char lines[64];
    snprintf(cmd, sizeof cmd, "wc -l < %s", LOG);
    run(cmd, lines, sizeof lines);
    char want[96];
    snprintf(want, sizeof want, "%lld entries published to logs", atoll(lines));
    CHECK(strstr(out, want) != NULL); /* the shipped log by default, every line */
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    CHECK_EQ(redis_int(c, "XLEN logs"), atoll(lines));
    pid_t w = ips_worker(&rs, "logs", "w1", "--idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    CHECK_EQ(ips_pending(c, "logs", NULL), 0);
    bool ok = ips_totals_match(&rs, "logs", LOG, why, sizeof why);
    if (!ok)
        rill_test__failf(__FILE__, __LINE__, "totals differ: %s", why);
    /* IPs mode prints in argument order, 0 for an address never seen. */
    snprintf(cmd, sizeof cmd, "%s --redis %s --stream logs 10.9.8.7 66.249.73.135", IPS_BIN,
             rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    char local[256];
    snprintf(cmd, sizeof cmd, "%s %s 10.9.8.7 66.249.73.135", IPS_BIN, LOG);
    CHECK_EQ(run(cmd, local, sizeof local), 0);
    CHECK_STREQ(out, local);
    redisFree(c);
    redis_server_stop(&rs);
}

RILL_TEST(redis_ip_stats, stdin_publish_and_a_second_run_adds_nothing_twice) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    char cmd[512], out[256], err[256], why[256];
    snprintf(cmd, sizeof cmd, "head -n 3000 %s | %s --redis %s --stream s --publish - 2>&1",
             LOG, IPS_BIN, rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "3000 entries") != NULL);
    char part[256];
    snprintf(part, sizeof part, "%s/redis_head_%ld.log", RILL_TEST_TMP, (long)getpid());
    snprintf(cmd, sizeof cmd, "head -n 3000 %s > %s", LOG, part);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    for (int round = 0; round < 2; round++) { /* the second finds nothing new */
        pid_t w = ips_worker(&rs, "s", "w", "--idle-exit 200", err, sizeof err);
        CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
        bool ok = ips_totals_match(&rs, "s", part, why, sizeof why);
        if (!ok)
            rill_test__failf(__FILE__, __LINE__, "round %d: %s", round, why);
    }
    remove(part);
    redis_server_stop(&rs);
}

/* An entry without the line field, and one delivered more than ten times
 * (a worker that keeps dying on it), go to KEY:dead and are acknowledged
 * instead of coming back for ever; the counts leave them out. */
RILL_TEST(redis_ip_stats, poison_entries_go_to_the_dead_letter_stream) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    redisReply *r = redisCommand(c, "XGROUP CREATE s ip_stats 0 MKSTREAM");
    freeReplyObject(r);
    r = redisCommand(c, "XADD s * other 1.1.1.1");
    freeReplyObject(r);
    r = redisCommand(c, "XADD s * line %s", "9.9.9.9 - - poison");
    char poison[64];
    snprintf(poison, sizeof poison, "%s", r->str);
    freeReplyObject(r);
    r = redisCommand(c, "XADD s * line %s", "8.8.8.8 - - fine");
    freeReplyObject(r);
    /* A consumer takes the first two entries and never acks them; eleven
     * claims more make the poison one delivered twelve times. */
    r = redisCommand(c, "XREADGROUP GROUP ip_stats ghost COUNT 2 STREAMS s >");
    CHECK(r && r->type == REDIS_REPLY_ARRAY);
    freeReplyObject(r);
    for (int i = 0; i < 11; i++) {
        r = redisCommand(c, "XCLAIM s ip_stats ghost 0 %s", poison);
        freeReplyObject(r);
    }
    char err[256], text[4096];
    pid_t w = ips_worker(&rs, "s", "w", "--claim-idle 1 --idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    CHECK_EQ(ips_pending(c, "s", NULL), 0);
    CHECK_EQ(redis_int(c, "XLEN s:dead"), 2);
    r = redisCommand(c, "XRANGE s:dead - +");
    CHECK(r && r->elements == 2);
    bool saw_field = false, saw_deliveries = false;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (size_t j = 0; j + 1 < f->elements; j += 2) {
            saw_field |= strcmp(f->element[j + 1]->str, "no such field") == 0;
            saw_deliveries |= strcmp(f->element[j + 1]->str, "too many deliveries") == 0;
        }
    }
    freeReplyObject(r);
    CHECK(saw_field && saw_deliveries);
    CHECK_EQ(redis_int(c, "HGET s:counts 9.9.9.9") == -1, 1); /* nil */
    r = redisCommand(c, "HGET s:counts 8.8.8.8");
    CHECK(r && r->type == REDIS_REPLY_STRING && strcmp(r->str, "1") == 0);
    freeReplyObject(r);
    CHECK(strstr(ips_slurp(err, text, sizeof text), "2 to the dead-letter stream") != NULL);
    redisFree(c);
    redis_server_stop(&rs);
}


/* A poison entry with many fields goes to KEY:dead whole: every field and
 * value is kept (a list cut at a fixed size could end on a field without its
 * value, which XADD refuses, and the entry would stay pending for ever). */
RILL_TEST(redis_ip_stats, dead_letter_keeps_every_field_of_a_wide_entry) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    enum { PAIRS = 45 }; /* 90 words: past any small fixed argument array */
    const char *argv[3 + 2 * PAIRS];
    char words[2 * PAIRS][16];
    int n = 0;
    argv[n++] = "XADD", argv[n++] = "s", argv[n++] = "*";
    for (int i = 0; i < 2 * PAIRS; i++) {
        snprintf(words[i], sizeof words[i], i % 2 ? "v%d" : "f%d", i / 2);
        argv[n++] = words[i];
    }
    redisReply *r = redisCommandArgv(c, n, argv, NULL);
    CHECK(r && r->type == REDIS_REPLY_STRING);
    freeReplyObject(r);
    char err[256];
    pid_t w = ips_worker(&rs, "s", "w", "--idle-exit 300", err, sizeof err);
    CHECK_EQ(proc_wait(w, IPS_LIMIT_S), 0);
    CHECK_EQ(ips_pending(c, "s", NULL), 0);
    r = redisCommand(c, "XRANGE s:dead - +");
    CHECK(r && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
    redisReply *f = r->element[0]->element[1];
    size_t want = 2 * PAIRS + 6; /* id, reason, deliveries, then the entry's own */
    bool last = f->elements == want && strcmp(f->element[want - 1]->str, words[2 * PAIRS - 1]) == 0;
    size_t got = f->elements;
    freeReplyObject(r);
    if (!last)
        rill_test__failf(__FILE__, __LINE__, "dead entry has %zu words, want %zu", got, want);
    redisFree(c);
    redis_server_stop(&rs);
}
RILL_TEST(redis_ip_stats, password_from_the_environment_or_a_file_only) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    redisReply *r = redisCommand(c, "CONFIG SET requirepass s3cr3t-pw");
    freeReplyObject(r);
    redisFree(c);
    char cmd[1536], out[1024], pwfile[256];
    snprintf(cmd, sizeof cmd, "%s --redis %s --stream s --top 3 2>&1", IPS_BIN, rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "RILL_REDIS_PASSWORD") != NULL);
    snprintf(cmd, sizeof cmd, "RILL_REDIS_PASSWORD=wrong %s --redis %s --stream s 2>&1", IPS_BIN,
             rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "refused the password") != NULL);
    CHECK(strstr(out, "wrong") == NULL || strstr(out, "WRONGPASS") != NULL);
    snprintf(cmd, sizeof cmd,
             "head -n 100 %s | RILL_REDIS_PASSWORD=s3cr3t-pw %s --redis %s --stream s "
             "--publish - 2>&1",
             LOG, IPS_BIN, rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "s3cr3t") == NULL);
    snprintf(pwfile, sizeof pwfile, "%s/redis_pw_%ld", RILL_TEST_TMP, (long)getpid());
    FILE *f = fopen(pwfile, "w");
    CHECK(f != NULL);
    fputs("s3cr3t-pw\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "RILL_REDIS_PASSWORD_FILE=%s %s --redis %s --stream s --worker w --idle-exit 200 "
             "2>&1 && RILL_REDIS_PASSWORD_FILE=%s %s --redis %s --stream s --top 1000",
             pwfile, IPS_BIN, rs.addr, pwfile, IPS_BIN, rs.addr);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK(strstr(out, "s3cr3t") == NULL);
    CHECK(strstr(out, "100 entries read") != NULL);
    remove(pwfile);
    redis_server_stop(&rs);
}

RILL_TEST(redis_ip_stats, errors_are_clear_and_exit_1) {
    redis_server rs;
    if (redis_server_start(&rs, false))
        return;
    redisContext *c = redis_connect(&rs);
    CHECK(c != NULL);
    redisReply *r = redisCommand(c, "SET notastream x");
    freeReplyObject(r);
    redisFree(c);
    const char *modes[] = {"--publish", "--worker w", ""};
    char cmd[768], out[1024];
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s --redis %s --stream notastream %s 2>&1 </dev/null",
                 IPS_BIN, rs.addr, modes[i]);
        CHECK_EQ(run(cmd, out, sizeof out), 1);
        CHECK(strstr(out, "'notastream' holds a string, not a stream") != NULL);
    }
    uint16_t dead = redis__free_port(); /* nothing listens there */
    for (int i = 0; i < 3; i++) {
        snprintf(cmd, sizeof cmd, "%s --redis 127.0.0.1:%u --stream s %s 2>&1", IPS_BIN,
                 (unsigned)dead, modes[i]);
        CHECK_EQ(run(cmd, out, sizeof out), 1);
        CHECK(strstr(out, "cannot connect to 127.0.0.1:") != NULL);
    }
    const char *bad[] = {"localhost", "127.0.0.1:0", "127.0.0.1:65536", ":6379", "[::1:6379",
                         "127.0.0.1:x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s --redis '%s' --stream s 2>&1", IPS_BIN, bad[i]);
        CHECK_EQ(run(cmd, out, sizeof out), 1);
        CHECK(strstr(out, "--redis needs HOST:PORT") != NULL);
    }
    redis_server_stop(&rs);
}
