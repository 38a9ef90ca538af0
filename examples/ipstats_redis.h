/* ip_stats' Redis Streams modes (docs/redis.md), on librill_redis:
 *
 *   --publish [LOG]   lines source -> publish sink (XADD, pipelined)
 *   --worker NAME     Redis source -> filter (lines naming a client) ->
 *                     counting sink (HINCRBY KEY:counts + XACK per batch);
 *                     --threaded: source -> filter -> count reducer (deltas
 *                     at each barrier) -> sink, every stage in a thread
 *   (neither)         HSCAN KEY:counts, printed as top mode or per IP
 *
 * Runtime errors (unreachable server, wrong key type, bad address) print
 * one line naming what failed and return 1. */
#ifndef IPSTATS_REDIS_H
#define IPSTATS_REDIS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ipstats.h"
#include "ipstats_opts.h"
#include "ipstats_signals.h"
#include "rill/redis.h"

/* The password: $RILL_REDIS_PASSWORD, else the first line of the file named
 * by $RILL_REDIS_PASSWORD_FILE, else none. Never from argv, never printed. */
static int ipr_password(char *buf, size_t len, const char **out) {
    *out = NULL;
    const char *env = getenv("RILL_REDIS_PASSWORD");
    if (env && *env) {
        *out = env;
        return 0;
    }
    const char *path = getenv("RILL_REDIS_PASSWORD_FILE");
    if (!path || !*path)
        return 0;
    FILE *f = fopen(path, "r");
    if (!f || !fgets(buf, (int)len, f)) {
        fprintf(stderr, "ip_stats: cannot read the password file named by "
                        "RILL_REDIS_PASSWORD_FILE ('%s'): %s\n", path,
                f ? "empty" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = '\0';
    *out = buf;
    return 0;
}

static int ipr_conf(const ipstats_opts *o, rill_redis_conf *conf, char *host, size_t hostlen,
                    char *pw, size_t pwlen) {
    memset(conf, 0, sizeof *conf);
    if (rill_redis_parse_addr(o->redis, conf, host, hostlen)) {
        fprintf(stderr, "ip_stats: --redis needs HOST:PORT with a port from 1 to 65535, not "
                        "'%s'\n", o->redis);
        return -1;
    }
    return ipr_password(pw, pwlen, &conf->password);
}

static int ipr_publish(const ipstats_opts *o, const rill_redis_conf *conf, const char *log) {
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *pub = NULL;
    char err[512] = "";
    int rc = rill_pipeline_new("ip_stats-publish", &p);
    if (!rc) {
        rc = strcmp(log, "-") == 0 ? rill_lines_fd_add(p, "source", 0, NULL, NULL, &src)
                                   : rill_lines_file_add(p, "source", log, NULL, NULL, &src);
        if (rc)
            snprintf(err, sizeof err, "cannot read '%.400s': %s", log, rill_strerror(rc));
    }
    if (!rc && (rc = rill_redis_publish_add(p, "publish", conf, o->stream, NULL, NULL, &pub, err,
                                            sizeof err)))
        ;
    else if (!rc && !(rc = rill_connect(src, pub)) && (rc = rill_pipeline_run(p)))
        snprintf(err, sizeof err, "%s", rill_pipeline_errmsg(p));
    uint64_t n = 0;
    if (pub)
        rill_redis_published(pub, &n);
    if (rc)
        fprintf(stderr, "ip_stats: %s\n", *err ? err : rill_strerror(rc));
    fprintf(stderr, "%llu entries published to %s\n", (unsigned long long)n, o->stream);
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}

/* One worker: a pipeline with its consumer name, run in its own thread
 * when --parallel. */
typedef struct ipr_worker {
    const ipstats_opts *o;
    const rill_redis_conf *conf;
    char name[256];
    rill_pipeline *p;
    rill_stage *src;
    int status;
    char err[512];
} ipr_worker;

static int ipr_worker_build(ipr_worker *w) {
    const ipstats_opts *o = w->o;
    rill_stage_opts so = o->cfg.stage;
    rill_redis_source_opts ro = {.stream = o->stream, .group = o->group ? o->group : "ip_stats",
                                 .consumer = w->name, .claim_idle_ms = (unsigned)o->claim_idle,
                                 .idle_exit_ms = (unsigned)o->idle_exit};
    rill_filter_spec clients = {.match = RILL_MATCH_PRED, .pred = ipstats_has_client};
    rill_stage *f = NULL, *sink = NULL;
    int rc = rill_pipeline_new(w->name, &w->p);
    if (!rc && (rc = rill_redis_source_add(w->p, "source", w->conf, &ro, &so, &w->src, w->err,
                                           sizeof w->err)))
        return rc;
    if (!rc)
        rc = rill_filter_add(w->p, "filter-1", &clients, &so, &f);
    if (!rc && !(so.flags & RILL_STAGE_THREADED)) { /* the sink counts, inline */
        if (!(rc = rill_redis_sink_add(w->p, "commit", w->src, rill_key_first_field, NULL, &so,
                                       &sink)) &&
            !(rc = rill_connect(w->src, f)))
            rc = rill_connect(f, sink);
    } else if (!rc) { /* a reducer in a thread of its own hands its deltas on */
        rill_stage *red = NULL;
        if (!(rc = rill_count_add_deltas(w->p, "reduce", rill_key_first_field, NULL, &so, &red)) &&
            !(rc = rill_redis_sink_add_deltas(w->p, "commit", w->src, &so, &sink)) &&
            !(rc = rill_connect(w->src, f)) && !(rc = rill_connect(f, red)))
            rc = rill_connect(red, sink);
    }
    if (rc && !*w->err)
        snprintf(w->err, sizeof w->err, "cannot build the worker: %s", rill_strerror(rc));
    return rc;
}

static void *ipr_worker_run(void *arg) {
    ipr_worker *w = arg;
    if (rill_pipeline_run(w->p)) {
        snprintf(w->err, sizeof w->err, "%s", rill_pipeline_errmsg(w->p));
        w->status = 1;
    }
    return NULL;
}

static ipr_worker *volatile ipr_workers;
static volatile size_t ipr_nworkers;

static void ipr_on_signal(int sig) {
    (void)sig;
    for (size_t i = 0; i < ipr_nworkers; i++)
        rill_redis_source_stop(ipr_workers[i].src); /* one atomic store each */
}

static int ipr_work(const ipstats_opts *o, const rill_redis_conf *conf) {
    size_t n = o->cfg.parallel ? o->cfg.parallel : 1;
    ipr_worker *w = calloc(n, sizeof *w);
    pthread_t *t = calloc(n, sizeof *t);
    int status = 0;
    size_t built = 0, started = 0;
    if (!w || !t) {
        fprintf(stderr, "ip_stats: out of memory\n");
        free(w), free(t);
        return 1;
    }
    for (; built < n; built++) {
        w[built].o = o;
        w[built].conf = conf;
        if (o->cfg.parallel)
            snprintf(w[built].name, sizeof w[built].name, "%s.%zu", o->worker, built + 1);
        else
            snprintf(w[built].name, sizeof w[built].name, "%s", o->worker);
        if (ipr_worker_build(&w[built])) {
            fprintf(stderr, "ip_stats: %s\n", w[built].err);
            rill_pipeline_free(w[built].p);
            status = 1;
            break;
        }
    }
    if (!status) {
        ipr_workers = w;
        ipr_nworkers = n;
        ipstats_catch_stop_signals(ipr_on_signal); /* failing, it says so; the workers run */
        for (; started + 1 < n; started++)
            if (pthread_create(&t[started], NULL, ipr_worker_run, &w[started]))
                break;
        ipr_worker_run(&w[n - 1]);
        for (size_t i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        for (size_t i = started; i + 1 < n; i++) /* threads that did not start */
            ipr_worker_run(&w[i]);
        ipstats_stop_signals_over(); /* the handler must not run once the pipelines are gone */
    }
    for (size_t i = 0; i < built && !status; i++) {
        rill_redis_stats st;
        rill_redis_source_stats(w[i].src, &st);
        fprintf(stderr,
                "worker %s: %llu entries read (%llu own pending, %llu claimed), %llu to the "
                "dead-letter stream, %llu checkpoints committed, %llu refused, %llu reconnects\n",
                w[i].name, (unsigned long long)st.read, (unsigned long long)st.own_pending,
                (unsigned long long)st.claimed, (unsigned long long)st.dead,
                (unsigned long long)st.commits, (unsigned long long)st.refused,
                (unsigned long long)st.reconnects);
    }
    for (size_t i = 0; i < built; i++) {
        if (w[i].status) {
            fprintf(stderr, "ip_stats: %s\n", w[i].err);
            status = 1;
        }
        rill_pipeline_free(w[i].p);
    }
    free(w), free(t);
    return status;
}

/* The committed totals, gathered for top mode or looked up per IP. */
typedef struct ipr_totals {
    rill_count_entry *e;
    size_t n, cap;
} ipr_totals;

static int ipr_collect(void *arg, const char *key, size_t len, uint64_t count) {
    ipr_totals *t = arg;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        rill_count_entry *e = realloc(t->e, cap * sizeof *e);
        if (!e)
            return RILL_ENOMEM;
        t->e = e;
        t->cap = cap;
    }
    char *k = malloc(len ? len : 1);
    if (!k)
        return RILL_ENOMEM;
    memcpy(k, key, len);
    t->e[t->n++] = (rill_count_entry){.key = k, .len = len, .count = count};
    return 0;
}

static int ipr_by_count(const void *a, const void *b) {
    const rill_count_entry *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, m);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int ipr_query(const ipstats_opts *o, const rill_redis_conf *conf, int nips,
                     char **ips) {
    ipr_totals t = {0};
    char err[512] = "";
    int rc = rill_redis_counts_read(conf, o->stream, ipr_collect, &t, err, sizeof err);
    if (rc)
        fprintf(stderr, "ip_stats: %s\n", *err ? err : rill_strerror(rc));
    else if (nips) {
        for (int i = 0; i < nips; i++) {
            uint64_t n = 0;
            for (size_t j = 0; j < t.n; j++)
                if (t.e[j].len == strlen(ips[i]) && memcmp(t.e[j].key, ips[i], t.e[j].len) == 0)
                    n = t.e[j].count;
            printf("%s %llu\n", ips[i], (unsigned long long)n);
        }
    } else {
        qsort(t.e, t.n, sizeof *t.e, ipr_by_count);
        for (size_t i = 0; i < t.n && i < o->top; i++) {
            ipstats_print_key(stdout, t.e[i].key, t.e[i].len);
            printf(" %llu\n", (unsigned long long)t.e[i].count);
        }
    }
    for (size_t j = 0; j < t.n; j++)
        free((void *)t.e[j].key);
    free(t.e);
    return rc ? 1 : 0;
}

/* The --redis modes. shipped: the shipped log's path (NULL if not found). */
static int ipstats_redis_main(const ipstats_opts *o, int argc, char **argv,
                              const char *shipped) {
    rill_redis_conf conf;
    char host[256], pw[1024];
    if (ipr_conf(o, &conf, host, sizeof host, pw, sizeof pw))
        return 1;
    int status;
    if (o->publish) {
        const char *log = o->first_arg < argc ? argv[o->first_arg] : shipped;
        if (!log) {
            fprintf(stderr, "ip_stats: cannot find the shipped log (set RILL_DATA_DIR or pass "
                            "LOG)\n");
            return 1;
        }
        status = ipr_publish(o, &conf, log);
    } else if (o->worker)
        status = ipr_work(o, &conf);
    else
        status = ipr_query(o, &conf, argc - o->first_arg, argv + o->first_arg);
    memset(pw, 0, sizeof pw);
    return status;
}

#endif
