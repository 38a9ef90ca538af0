/* ip_stats' Redis modes driven as a user would, for tests/test_redis_*.c:
 * publish a log, run worker processes, read the totals, and count the log
 * independently (a sort of its first fields, no rill code) to compare. */
#ifndef RILL_TESTS_REDIS_IPSTATS_H
#define RILL_TESTS_REDIS_IPSTATS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_server.h"
#include "run_cmd.h"

#define IPS_BIN RILL_BIN_DIR "/ip_stats"
#define IPS_LIMIT_S 90 /* bound on any worker's run: a hang fails, nothing is timed */

typedef struct ips_total {
    char key[64];
    long long n;
} ips_total;

static int ips__cmp(const void *a, const void *b) {
    return strcmp(((const ips_total *)a)->key, ((const ips_total *)b)->key);
}

/* Sort and merge equal keys (adding their counts). Returns the new length. */
static inline size_t ips__merge(ips_total *t, size_t n) {
    qsort(t, n, sizeof *t, ips__cmp);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && strcmp(t[m - 1].key, t[i].key) == 0)
            t[m - 1].n += t[i].n;
        else
            t[m++] = t[i];
    }
    return m;
}

/* The client addresses of path counted directly: the first field (up to a
 * space) of every line that is not empty and does not start with a space. */
static inline ips_total *ips_count_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "r");
    size_t cap = 1024, len = 0;
    ips_total *t = malloc(cap * sizeof *t);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t got;
    while (f && t && (got = getline(&line, &lcap, f)) >= 0) {
        if (got > 0 && line[got - 1] == '\n')
            line[--got] = '\0';
        if (got == 0 || line[0] == ' ')
            continue;
        if (len == cap && !(t = realloc(t, (cap *= 2) * sizeof *t)))
            break;
        size_t k = strcspn(line, " ");
        snprintf(t[len].key, sizeof t[len].key, "%.*s", (int)k, line);
        t[len++].n = 1;
    }
    free(line);
    if (f)
        fclose(f);
    *n = t ? ips__merge(t, len) : 0;
    return t;
}

/* The committed totals as `ip_stats --redis --stream KEY --top 1000000000`
 * prints them, sorted by key; NULL if it failed. */
static inline ips_total *ips_query(const redis_server *s, const char *key, size_t *n) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --redis %s --stream %s --top 1000000000", IPS_BIN, s->addr,
             key);
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    *n = 0;
    if (!out || run(cmd, out, cap) != 0) {
        free(out);
        return NULL;
    }
    size_t lines = 1;
    for (char *p = out; *p; p++)
        lines += *p == '\n';
    ips_total *t = calloc(lines, sizeof *t);
    size_t m = 0;
    for (char *p = strtok(out, "\n"); p && t; p = strtok(NULL, "\n")) {
        char *sp = strrchr(p, ' ');
        if (!sp)
            continue;
        snprintf(t[m].key, sizeof t[m].key, "%.*s", (int)(sp - p), p);
        t[m++].n = atoll(sp + 1);
    }
    free(out);
    *n = t ? ips__merge(t, m) : 0;
    return t;
}

/* Do the committed totals of key equal the independent count of path?
 * Writes the first difference to why. */
static inline bool ips_totals_match(const redis_server *s, const char *key, const char *path,
                                    char *why, size_t whylen) {
    size_t ne = 0, ng = 0;
    ips_total *want = ips_count_file(path, &ne), *got = ips_query(s, key, &ng);
    bool ok = want && got && ne == ng;
    snprintf(why, whylen, "%zu addresses in the file, %zu in Redis", ne, ng);
    for (size_t i = 0; ok && i < ne; i++)
        if (strcmp(want[i].key, got[i].key) != 0 || want[i].n != got[i].n) {
            snprintf(why, whylen, "%s: %lld in the file, %s: %lld in Redis", want[i].key,
                     want[i].n, got[i].key, got[i].n);
            ok = false;
        }
    free(want);
    free(got);
    return ok;
}

/* `ip_stats --redis ADDR --stream KEY --publish PATH`: its exit status. */
static inline int ips_publish(const redis_server *s, const char *key, const char *path) {
    char cmd[768], out[64];
    snprintf(cmd, sizeof cmd, "%s --redis %s --stream %s --publish %s 2>/dev/null", IPS_BIN,
             s->addr, key, path);
    return run(cmd, out, sizeof out);
}

/* A file of the shipped log `times` times over; its path in path. */
static inline int ips_make_log(char *path, size_t len, const char *tag, int times) {
    snprintf(path, len, "%s/redis_%s_%ld.log", RILL_TEST_TMP, tag, (long)getpid());
    char cmd[1024], out[8];
    snprintf(cmd, sizeof cmd, "for i in $(seq %d); do cat %s/apache_logs; done > %s", times,
             RILL_DATA_DIR, path);
    return run(cmd, out, sizeof out);
}

/* A worker process: ip_stats --redis ADDR --stream KEY --worker NAME ARGS
 * (ARGS split at spaces), its stderr in err (a path). */
static inline pid_t ips_worker(const redis_server *s, const char *key, const char *name,
                               const char *args, char *err, size_t errlen) {
    static int seq;
    snprintf(err, errlen, "%s/redis_worker_%ld_%s_%d.err", RILL_TEST_TMP, (long)getpid(), name,
             seq++);
    char buf[512];
    snprintf(buf, sizeof buf, "%s", args ? args : "");
    char *argv[32] = {(char *)IPS_BIN, (char *)"--redis", (char *)s->addr, (char *)"--stream",
                      (char *)key, (char *)"--worker", (char *)name};
    int n = 7;
    for (char *p = strtok(buf, " "); p && n < 31; p = strtok(NULL, " "))
        argv[n++] = strdup(p);
    argv[n] = NULL;
    pid_t pid = proc_spawn(argv, NULL, err);
    for (int i = 7; i < n; i++)
        free(argv[i]);
    return pid;
}

/* The whole of a (small) file, NUL-terminated, in buf. */
static inline const char *ips_slurp(const char *path, char *buf, size_t len) {
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, len - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

/* Entries pending in group ip_stats of key (for consumer, or all if NULL). */
static inline long long ips_pending(redisContext *c, const char *key, const char *consumer) {
    redisReply *r = consumer ? (redisReply *)redisCommand(c, "XPENDING %s ip_stats - + 100000 %s",
                                                          key, consumer)
                             : (redisReply *)redisCommand(c, "XPENDING %s ip_stats", key);
    long long n = -1;
    if (r && r->type == REDIS_REPLY_ARRAY)
        n = consumer ? (long long)r->elements
                     : (r->elements ? r->element[0]->integer : -1);
    if (r)
        freeReplyObject(r);
    return n;
}

/* Freeze worker pid at a moment it holds entries it has not committed
 * (SIGSTOP, look at its pending list, SIGCONT and try again if empty).
 * True when it is stopped holding some; bounded at 30 s. */
static inline bool ips_stop_holding(pid_t pid, redisContext *c, const char *key,
                                    const char *name) {
    double end = redis__now() + 30;
    while (redis__now() < end) {
        kill(pid, SIGSTOP);
        if (ips_pending(c, key, name) > 0)
            return true;
        kill(pid, SIGCONT);
        redis__pause_ms(3);
    }
    return false;
}

/* Fail the test (at line) unless nothing is pending in key's group and the
 * committed totals equal an independent count of the file at path. */
static inline void ips_check_totals(const redis_server *rs, const char *key, const char *path,
                                    int line) {
    char why[256];
    redisContext *c = redis_connect(rs);
    long long pending = c ? ips_pending(c, key, NULL) : -1;
    if (c)
        redisFree(c);
    if (pending != 0)
        rill_test__failf(__FILE__, line, "%lld entries still pending in '%s'", pending, key);
    else if (!ips_totals_match(rs, key, path, why, sizeof why))
        rill_test__failf(__FILE__, line, "totals differ from the file: %s", why);
}

#endif
