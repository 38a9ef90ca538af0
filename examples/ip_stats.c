/* ip_stats — the seed's IP statistics over a web access log, on rill.
 *
 *   ip_stats [options] [LOG [IP...]]
 *   ip_stats --listen PORT [options] [IP...]
 *
 * With IPs: one line "<ip> <count>" per IP, in argument order. With a LOG and
 * no IPs: the --top N most frequent client addresses. With no arguments: the
 * shipped log and the seed's three IPs. With --listen the lines come from TCP
 * clients (`nc -N 127.0.0.1 PORT < access.log`) instead of a LOG. Results on
 * stdout, everything else on stderr; exit 1 on a runtime error, 2 on bad
 * usage. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipstats.h"
#include "ipstats_progress.h"

static const char *const seed_ips[] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};

static void usage(FILE *to) {
    fprintf(to,
            "usage: ip_stats [options] [LOG [IP...]]\n"
            "       ip_stats --listen PORT [options] [IP...]\n"
            "Count requests per client IP in a web access log (LOG '-' = stdin).\n"
            "  (no arguments)  the shipped sample log and the seed's three IPs\n"
            "  LOG IP...       one line '<ip> <count>' per IP, in argument order\n"
            "  LOG             the most frequent client addresses (see --top)\n"
            "options:\n"
            "  --listen PORT   read the log from TCP clients on 127.0.0.1:PORT instead\n"
            "                  of a file (0: any free port); every argument is an IP.\n"
            "                  Prints 'listening on 127.0.0.1:PORT' on stderr once\n"
            "                  clients can connect, e.g. nc -N 127.0.0.1 PORT < LOG.\n"
            "                  Runs until --connections N have ended, or until\n"
            "                  SIGINT/SIGTERM: that stops at once (connections are\n"
            "                  closed, the lines received so far are counted, and\n"
            "                  any that could not be handed on are reported); a\n"
            "                  second signal aborts without counts\n"
            "  --connections N with --listen: end after N connections have ended\n"
            "  --prefix        an IP matches lines that start with it (the seed's\n"
            "                  startswith: 10.0.0.1 also counts 10.0.0.12)\n"
            "  --top N         how many addresses without IPs (default 10)\n"
            "  --threaded      run every stage in a thread of its own\n"
            "  --capacity N    queue capacity in items per producer (default 4096)\n"
            "  --slow STAGE:US make STAGE spend at least US microseconds per item\n"
            "                  (stages: source, broadcast, filter-1..N, reduce)\n"
            "  --stats         print queue and stage statistics on stderr\n"
            "  --stats-json F  write them as JSON to file F (docs/stats.md)\n"
            "  --stats-svg F   plot every queue's fill over time as SVG to file F\n"
            "  --quiet         no progress line, even on a terminal\n"
            "  -h, --help      this text\n");
}

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

static int write_report(rill_pipeline *p, const char *path,
                        int (*write)(const rill_stats *, FILE *)) {
    rill_stats *s = NULL;
    if (rill_pipeline_stats(p, &s)) {
        fprintf(stderr, "ip_stats: cannot read the statistics\n");
        return -1;
    }
    FILE *f = path ? fopen(path, "w") : stderr;
    int rc = f ? write(s, f) : -errno;
    if (path && f && fclose(f) != 0 && rc == 0)
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
 * is destroyed: listen_over() blocks the signals in the main thread when the
 * run has returned; every other thread has ended by then (the pipeline's at
 * close, the progress thread before the destroy). */
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

/* The run is over: a late signal is left pending (and dropped at exit). */
static void listen_over(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int listen_on(rill_pipeline *p, rill_stage *source) {
    listen_pipeline = p;
    listen_source = source;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL)) {
        perror("ip_stats: sigaction");
        return -1;
    }
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

static int parse_count(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v == 0 || v > 1000000000ull || s[0] == '-')
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"prefix", no_argument, NULL, 'p'},
        {"top", required_argument, NULL, 't'},
        {"threaded", no_argument, NULL, 'T'},
        {"capacity", required_argument, NULL, 'c'},
        {"slow", required_argument, NULL, 's'},
        {"stats", no_argument, NULL, 'S'},
        {"stats-json", required_argument, NULL, 'J'},
        {"stats-svg", required_argument, NULL, 'G'},
        {"quiet", no_argument, NULL, 'q'},
        {"listen", required_argument, NULL, 'L'},
        {"connections", required_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ipstats_config cfg = {0};
    size_t top = 10;
    bool top_given = false, stats = false, quiet = false;
    const char *json = NULL, *svg = NULL;
    const char *slow[16];
    size_t nslow = 0;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': cfg.prefix = true; break;
        case 't':
            if (parse_count(optarg, &top)) {
                fprintf(stderr, "ip_stats: --top needs a positive number, not '%s'\n", optarg);
                return 2;
            }
            top_given = true;
            break;
        case 'T': cfg.stage.flags |= RILL_STAGE_THREADED; break;
        case 'c': {
            size_t cap;
            if (parse_count(optarg, &cap) || cap > 1u << 24) {
                fprintf(stderr, "ip_stats: --capacity needs a number from 1 to %u, not '%s'\n",
                        1u << 24, optarg);
                return 2;
            }
            cfg.stage.capacity = (unsigned)cap;
            break;
        }
        case 's':
            if (nslow == sizeof slow / sizeof slow[0]) {
                fprintf(stderr, "ip_stats: too many --slow options\n");
                return 2;
            }
            slow[nslow++] = optarg;
            break;
        case 'S': stats = true; break;
        case 'J': json = optarg; break;
        case 'G': svg = optarg; break;
        case 'q': quiet = true; break;
        case 'L': {
            char *end;
            errno = 0;
            unsigned long port = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || port > 65535 || optarg[0] == '-') {
                fprintf(stderr, "ip_stats: --listen needs a port from 0 to 65535, not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.listen = true;
            cfg.port = (uint16_t)port;
            break;
        }
        case 'N': {
            size_t n;
            if (parse_count(optarg, &n)) {
                fprintf(stderr, "ip_stats: --connections needs a positive number, not '%s'\n",
                        optarg);
                return 2;
            }
            cfg.connections = n;
            break;
        }
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    char shipped[PATH_MAX + 32];
    const char **ips = NULL;
    size_t nargs = (size_t)(argc - optind);
    if (cfg.connections && !cfg.listen) {
        fprintf(stderr, "ip_stats: --connections needs --listen\n");
        return 2;
    }
    if (cfg.listen) {
        ips = (const char **)argv + optind;
        nargs++; /* no LOG argument: every argument is an IP */
    } else if (nargs == 0) {
        if (find_shipped_log(shipped, sizeof shipped)) {
            fprintf(stderr, "ip_stats: cannot find the shipped log (set RILL_DATA_DIR or pass LOG)\n");
            return 1;
        }
        cfg.log = shipped;
        if (!top_given) {
            ips = (const char **)seed_ips;
            nargs = 1 + sizeof seed_ips / sizeof seed_ips[0];
        }
    } else {
        cfg.log = argv[optind];
        ips = (const char **)argv + optind + 1;
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
    for (size_t i = 0; i < nslow; i++)
        if (apply_slow(p, slow[i])) {
            fprintf(stderr, "ip_stats: --slow needs STAGE:MICROSECONDS, not '%s'\n", slow[i]);
            rill_pipeline_free(p);
            free(uniq);
            return 2;
        }
    if ((stats || json || svg) && rill_pipeline_sampler(p, 0, 0)) {
        fprintf(stderr, "ip_stats: cannot start the statistics sampler\n");
        rill_pipeline_free(p);
        free(uniq);
        return 1;
    }
    rill_stage *source = rill_pipeline_find(p, "source");
    if (cfg.listen && listen_on(p, source)) {
        rill_pipeline_free(p);
        free(uniq);
        return 1;
    }
    progress pr = {.running = false};
    if (!quiet && isatty(STDERR_FILENO) && (cfg.listen || strcmp(cfg.log, "-") != 0)) {
        struct stat sb;
        bool sized = !cfg.listen && stat(cfg.log, &sb) == 0 && S_ISREG(sb.st_mode);
        progress_start(&pr, source, sized ? (uint64_t)sb.st_size : 0);
    }
    int run = rill_pipeline_run(p);
    if (cfg.listen) {
        listen_over();
        report_listen(source);
    }
    progress_stop(&pr);
    if ((stats && write_report(p, NULL, rill_stats_print)) ||
        (json && write_report(p, json, rill_stats_write_json)) ||
        (svg && write_report(p, svg, rill_stats_write_svg)))
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
            printf("%.*s %llu\n", (int)best[i].len, (const char *)best[i].key,
                   (unsigned long long)best[i].count);
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
