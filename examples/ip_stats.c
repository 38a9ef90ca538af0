/* ip_stats — the seed's IP statistics over a web access log, on rill.
 *
 *   ip_stats [options] [LOG [IP...]]
 *   ip_stats --listen PORT [options] [IP...]
 *   ip_stats --redis HOST:PORT --stream KEY --publish [LOG]
 *   ip_stats --redis HOST:PORT --stream KEY --worker NAME [...]
 *   ip_stats --redis HOST:PORT --stream KEY [--top N | IP...]
 *
 * With IPs: one line "<ip> <count>" per IP, in argument order. With a LOG and
 * no IPs: the --top N most frequent client addresses. With no arguments: the
 * shipped log and the seed's three IPs. With --listen the lines come from TCP
 * clients (`nc -N 127.0.0.1 PORT < access.log`) instead of a LOG. Results on
 * stdout, everything else on stderr; exit 1 on a runtime error, 2 on bad
 * usage. */
#include <limits.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipstats.h"
#include "ipstats_opts.h"
#include "ipstats_progress.h"
#include "ipstats_signals.h"
#include "metrics_http.h"
#ifdef RILL_HAVE_REDIS
#include "ipstats_redis.h"
#endif

static const char *const seed_ips[] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};

/* The shipped log, wherever the program runs from: $RILL_DATA_DIR, the
 * source tree it was built from, or data/ next to the installed binary. */
static int find_shipped_log(char *out, size_t len) {
    const char *dirs[3] = {getenv("RILL_DATA_DIR"), RILL_DATA_DIR, NULL};
    char exe[PATH_MAX], beside[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(beside, sizeof beside, "%s/../data", exe);
            dirs[2] = beside;
        }
    }
    for (size_t i = 0; i < 3; i++) {
        if (!dirs[i] || !*dirs[i])
            continue;
        snprintf(out, len, "%s/apache_logs", dirs[i]);
        if (access(out, R_OK) == 0)
            return 0;
    }
    return -1;
}

/* Apply one --slow STAGE:US. */
static int apply_slow(rill_pipeline *p, const char *arg) {
    const char *colon = strrchr(arg, ':');
    char name[128];
    char *end;
    if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof name)
        return -1;
    memcpy(name, arg, (size_t)(colon - arg));
    name[colon - arg] = '\0';
    errno = 0;
    unsigned long us = strtoul(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || us > 10000000ul || colon[1] == '-')
        return -1;
    rill_stage *st = rill_pipeline_find(p, name);
    if (!st) {
        fprintf(stderr, "ip_stats: --slow: no stage named '%s'\n", name);
        return -1;
    }
    return rill_stage_set_delay(st, (unsigned)us) ? -1 : 0;
}

/* Write the statistics with write() to f, the file at path opened before the
 * run (closed here), or to stderr (path NULL). */
static int write_report(rill_pipeline *p, const char *path, FILE *f,
                        int (*write)(const rill_stats *, FILE *)) {
    rill_stats *s = NULL;
    int rc = rill_pipeline_stats(p, &s);
    if (rc)
        fprintf(stderr, "ip_stats: cannot read the statistics\n");
    else if (path && (ftruncate(fileno(f), 0) != 0 || fseek(f, 0, SEEK_SET) != 0))
        rc = -errno; /* opened without truncating (open_report): empty it now */
    else
        rc = write(s, path ? f : stderr);
    if (path && fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc)
        fprintf(stderr, "ip_stats: cannot write %s: %s\n", path ? path : "the statistics",
                rill_strerror(rc));
    rill_stats_free(s);
    return rc ? -1 : 0;
}

/* --listen: SIGINT and SIGTERM stop the server at once; a second one aborts.
 * Any thread may take the signal, two at once: the count is a lock-free
 * atomic (async-signal-safe). The handler must never run once the pipeline
 * is destroyed: ipstats_stop_signals_over() blocks the signals in the main
 * thread when the run has returned; every other thread has ended by then
 * (the pipeline's at close, the progress thread before the destroy). */
static rill_pipeline *volatile listen_pipeline;
static rill_stage *volatile listen_source;
static atomic_int listen_signals;

static void on_stop_signal(int sig) {
    (void)sig;
    if (atomic_fetch_add(&listen_signals, 1) == 0)
        rill_tcp_lines_stop(listen_source, RILL_TCP_STOP_NOW);
    else
        rill_pipeline_abort(listen_pipeline);
}

static int listen_on(rill_pipeline *p, rill_stage *source) {
    listen_pipeline = p;
    listen_source = source;
    if (ipstats_catch_stop_signals(on_stop_signal))
        return -1;
    fprintf(stderr, "listening on 127.0.0.1:%u\n", (unsigned)rill_tcp_lines_port(source));
    fflush(stderr);
    return 0;
}

/* What the clients sent that did not count (never silently). */
static void report_listen(rill_stage *source) {
    struct rill_tcp_lines_stats ts;
    if (rill_tcp_lines_stats(source, &ts))
        return;
    if (ts.dropped)
        fprintf(stderr, "ip_stats: %llu received lines not counted: the server was stopped "
                        "while the pipeline was full\n", (unsigned long long)ts.dropped);
    if (ts.too_long || ts.errors)
        fprintf(stderr, "ip_stats: %llu connections closed at an over-long line, %llu by a "
                        "read error\n", (unsigned long long)ts.too_long,
                (unsigned long long)ts.errors);
}

/* Create a report file now, so that a bad path is found before the run. */
static int open_report(const char *opt, const char *path, FILE **out) {
    *out = NULL;
    if (!path)
        return 0;
    /* "a": created if missing, but an existing report keeps its contents
     * until this run writes it (write_report), whatever fails before. */
    *out = fopen(path, "a");
    if (*out)
        return 0;
    fprintf(stderr, "ip_stats: %s: cannot create '%s': %s\n", opt, path, strerror(errno));
    return -1;
}

int main(int argc, char **argv) {
    ipstats_opts o;
    int parsed = ipstats_parse(argc, argv, &o, stderr);
    if (parsed == 1) {
        ipstats_usage(stdout);
        return 0;
    }
    if (parsed)
        return parsed;
    if (o.redis) {
#ifdef RILL_HAVE_REDIS
        char log[PATH_MAX + 32];
        return ipstats_redis_main(&o, argc, argv,
                                  find_shipped_log(log, sizeof log) ? NULL : log);
#else
        fprintf(stderr, "ip_stats: --redis: this ip_stats was built without hiredis "
                        "(install libhiredis-dev and rebuild)\n");
        return 1;
#endif
    }
    ipstats_config cfg = o.cfg;
    size_t top = o.top;
    int first = o.first_arg;
    char shipped[PATH_MAX + 32];
    const char **ips = NULL;
    size_t nargs = (size_t)(argc - first);
    if (cfg.listen) {
        ips = (const char **)argv + first;
        nargs++; /* no LOG argument: every argument is an IP */
    } else if (nargs == 0) {
        if (find_shipped_log(shipped, sizeof shipped)) {
            fprintf(stderr, "ip_stats: cannot find the shipped log (set RILL_DATA_DIR or pass LOG)\n");
            return 1;
        }
        cfg.log = shipped;
        if (!o.top_given) {
            ips = (const char **)seed_ips;
            nargs = 1 + sizeof seed_ips / sizeof seed_ips[0];
        }
    } else {
        cfg.log = argv[first];
        ips = (const char **)argv + first + 1;
    }
    size_t nips = nargs ? nargs - 1 : 0;

    /* One filter per distinct IP: a repeated argument must not count twice. */
    const char **uniq = calloc(nips ? nips : 1, sizeof *uniq);
    if (!uniq) {
        fprintf(stderr, "ip_stats: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nips; i++) {
        if (!*ips[i]) {
            fprintf(stderr, "ip_stats: empty IP argument\n");
            free(uniq);
            return 2;
        }
        bool seen = false;
        for (size_t j = 0; j < cfg.nips && !seen; j++)
            seen = strcmp(uniq[j], ips[i]) == 0;
        if (!seen)
            uniq[cfg.nips++] = ips[i];
    }
    cfg.ips = uniq;
    rill_pipeline *p = NULL;
    rill_stage *reduce = NULL;
    char err[512] = "";
    int status = 0;
    if (ipstats_build(&cfg, &p, &reduce, err, sizeof err)) {
        fprintf(stderr, "ip_stats: %s\n", err);
        free(uniq);
        return 1;
    }
    for (size_t i = 0; i < cfg.ninline; i++)
        if (!rill_pipeline_find(p, cfg.inline_stages[i])) {
            fprintf(stderr, "ip_stats: --inline: no stage named '%s'\n", cfg.inline_stages[i]);
            rill_pipeline_free(p);
            free(uniq);
            return 2;
        }
    for (size_t i = 0; i < o.nslow; i++)
        if (apply_slow(p, o.slow[i])) {
            fprintf(stderr, "ip_stats: --slow needs STAGE:MICROSECONDS, not '%s'\n", o.slow[i]);
            rill_pipeline_free(p);
            free(uniq);
            return 2;
        }
    if ((o.stats || o.json || o.svg) && rill_pipeline_sampler(p, 0, 0)) {
        fprintf(stderr, "ip_stats: cannot start the statistics sampler\n");
        rill_pipeline_free(p);
        free(uniq);
        return 1;
    }
    rill_stage *source = rill_pipeline_find(p, "source");
    metrics_http *mh = NULL;
    int mrc = o.metrics ? metrics_http_start_at(&mh, p, o.metrics, err, sizeof err) : 0;
    if (mrc) {
        fprintf(stderr, "ip_stats: %s\n", err);
        rill_pipeline_free(p);
        free(uniq);
        return mrc == RILL_EINVAL ? 2 : 1;
    }
    if (cfg.listen && listen_on(p, source)) {
        metrics_http_stop(mh);
        rill_pipeline_free(p);
        free(uniq);
        return 1;
    }
    /* Report files are made last before the run: every option has been
     * checked by now, so a usage error never empties an existing file, and
     * a bad path is found before the log is read. */
    FILE *json = NULL, *svg = NULL;
    if (open_report("--stats-json", o.json, &json) || open_report("--stats-svg", o.svg, &svg)) {
        if (json)
            fclose(json);
        if (cfg.listen)
            ipstats_stop_signals_over();
        metrics_http_stop(mh);
        rill_pipeline_free(p);
        free(uniq);
        return 1;
    }
    progress pr = {.running = false};
    if (!o.quiet && isatty(STDERR_FILENO) && (cfg.listen || strcmp(cfg.log, "-") != 0)) {
        struct stat sb;
        bool sized = !cfg.listen && stat(cfg.log, &sb) == 0 && S_ISREG(sb.st_mode);
        progress_start(&pr, source, sized ? (uint64_t)sb.st_size : 0);
    }
    int run = rill_pipeline_run(p);
    metrics_http_stop(mh);
    if (cfg.listen) {
        ipstats_stop_signals_over();
        report_listen(source);
    }
    progress_stop(&pr);
    if (o.stats && write_report(p, NULL, NULL, rill_stats_print))
        status = 1;
    if (json && write_report(p, o.json, json, rill_stats_write_json))
        status = 1;
    if (svg && write_report(p, o.svg, svg, rill_stats_write_svg))
        status = 1;
    if (run) {
        fprintf(stderr, "ip_stats: %s\n", rill_pipeline_errmsg(p));
        status = 1;
    } else if (nips) {
        for (size_t i = 0; i < nips; i++) {
            uint64_t n = 0;
            rill_count_get(reduce, ips[i], strlen(ips[i]), &n);
            printf("%s %llu\n", ips[i], (unsigned long long)n);
        }
    } else {
        size_t keys = 0;
        rill_count_size(reduce, &keys, NULL);
        top = top < keys ? top : keys; /* --top 1000000000 must not allocate that */
        rill_count_entry *best = calloc(top ? top : 1, sizeof *best);
        size_t nbest = 0;
        if (!best || rill_count_top(reduce, top, best, &nbest)) {
            fprintf(stderr, "ip_stats: out of memory\n");
            status = 1;
        }
        for (size_t i = 0; i < nbest; i++)
        {
            ipstats_print_key(stdout, best[i].key, best[i].len);
            printf(" %llu\n", (unsigned long long)best[i].count);
        }
        free(best);
    }
    rill_pipeline_free(p);
    free(uniq);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("ip_stats: stdout");
        status = 1;
    }
    return status;
}
