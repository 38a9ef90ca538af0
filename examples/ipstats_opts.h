/* ip_stats' command line: the usage text and the option parser, apart from
 * the program so that the fuzz target (tests/fuzz/fuzz_opts.c) can call it
 * without running anything; and how --top prints a key. */
#ifndef IPSTATS_OPTS_H
#define IPSTATS_OPTS_H

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "ipstats.h"

#define IPSTATS_MAX_SLOW 16
#define IPSTATS_MAX_CAPACITY (1u << 24)
#define IPSTATS_MAX_PARALLEL RILL_MAX_REPLICAS

typedef struct ipstats_opts {
    ipstats_config cfg;  /* log and ips are left for the caller to set */
    size_t top;          /* --top (default 10) */
    bool top_given, stats, quiet;
    const char *json, *svg;          /* --stats-json, --stats-svg files */
    const char *metrics;             /* --metrics HOST:PORT, or NULL */
    const char *slow[IPSTATS_MAX_SLOW];
    size_t nslow;
    /* Redis Streams modes (examples/ipstats_redis.h): redis and stream
     * together; then publish, worker, or neither (read the totals). */
    const char *redis, *stream, *worker, *group;
    bool publish;
    size_t claim_idle, idle_exit;    /* ms, ms; 0 = not given (--parallel: cfg.parallel) */
    const char *inl[IPSTATS_MAX_SLOW];  /* --inline stages (cfg.inline_stages) */
    int first_arg;       /* argv index of the first operand */
} ipstats_opts;

static inline void ipstats_usage(FILE *to) {
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
            "  --top N         how many addresses without IPs (default 10). Each is\n"
            "                  printed as its bytes, except that a backslash is\n"
            "                  printed as \\\\, tab, CR and LF as \\t, \\r, \\n, and every\n"
            "                  other byte below 0x20, 0x7f and every byte from 0x80\n"
            "                  as \\xHH (two hex digits): distinct keys print distinct\n"
            "  --threaded      run every stage in a thread of its own\n"
            "  --parallel N    run N copies of the pipeline on N threads, each\n"
            "                  reading a part of LOG, and add up their counts\n"
            "                  (a pipe or --listen: one reader deals the lines\n"
            "                  out); 0 (the default) or 1: one copy. At most %u\n"
            "  --capacity N    queue capacity in items per producer (default 4096)\n"
            "  --slow STAGE:US make STAGE spend at least US microseconds per item\n"
            "                  (stages: source, broadcast, filter-1..N, reduce)\n"
            "  --inline STAGE  with --threaded: STAGE stays on its producer's thread\n"
            "  --stats         print queue and stage statistics on stderr\n"
            "  --stats-json F  write them as JSON to file F (docs/stats.md)\n"
            "  --stats-svg F   plot every queue's fill over time as SVG to file F\n"
            "                  (both files are created before the log is read)\n"
            "  --metrics HOST:PORT  serve GET /metrics (Prometheus) while it runs\n"
            "  --quiet         no progress line, even on a terminal\n"
            "Redis Streams (docs/redis.md; password from RILL_REDIS_PASSWORD or the file\n"
            "named by RILL_REDIS_PASSWORD_FILE):\n"
            "  --redis HOST:PORT --stream KEY --publish [LOG]\n"
            "                  add every line of LOG (default the shipped log, '-'\n"
            "                  stdin) to stream KEY; prints the entries added on stderr\n"
            "  --redis HOST:PORT --stream KEY --worker NAME [--group G] [--claim-idle MS]\n"
            "                  [--idle-exit MS] [--threaded] [--parallel N]\n"
            "                  count the client addresses of KEY's entries as consumer\n"
            "                  NAME of group G (default ip_stats) into hash KEY:counts,\n"
            "                  exactly once even if workers die; claims entries others\n"
            "                  left pending over --claim-idle ms (default 30000); with\n"
            "                  --idle-exit, ends once nothing new came for MS ms and\n"
            "                  nothing is pending in the group; SIGINT/SIGTERM end it\n"
            "                  after the current batch. --parallel N: N consumers\n"
            "                  NAME.1..NAME.N, one thread each\n"
            "  --redis HOST:PORT --stream KEY [--top N | IP...]\n"
            "                  print the committed totals\n"
            "  -h, --help      this text\n",
            IPSTATS_MAX_PARALLEL);
}

/* A key as --top prints it (see the usage): an injective escape, so keys
 * that differ in a NUL, a CR or any other invisible byte print differently. */
static inline void ipstats_print_key(FILE *to, const void *key, size_t len) {
    const unsigned char *k = (const unsigned char *)key;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = k[i];
        if (b == '\\')
            fputs("\\\\", to);
        else if (b == '\t')
            fputs("\\t", to);
        else if (b == '\r')
            fputs("\\r", to);
        else if (b == '\n')
            fputs("\\n", to);
        else if (b < 0x20 || b >= 0x7f)
            fprintf(to, "\\x%02x", b);
        else
            fputc(b, to);
    }
}

/* A whole decimal number from 1 to 10^9 (no sign, no spaces). */
static inline int ipstats_parse_count(const char *s, size_t *out) {
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > 1000000000ull)
        return -1;
    *out = (size_t)v;
    return 0;
}

/* Parse argv into o. Returns 0 to run, 1 if --help was asked, 2 on bad
 * usage after a message naming the option, the value and what is allowed
 * on err. Uses getopt_long, whose state is global: not thread-safe; each
 * call starts afresh (optind = 0). */
static inline int ipstats_parse(int argc, char **argv, ipstats_opts *o, FILE *err) {
    static const struct option longopts[] = {
        {"prefix", no_argument, NULL, 'p'},
        {"top", required_argument, NULL, 't'},
        {"threaded", no_argument, NULL, 'T'},
        {"capacity", required_argument, NULL, 'c'},
        {"parallel", required_argument, NULL, 'n'},
        {"slow", required_argument, NULL, 's'},
        {"inline", required_argument, NULL, 'i'},
        {"stats", no_argument, NULL, 'S'},
        {"stats-json", required_argument, NULL, 'J'},
        {"stats-svg", required_argument, NULL, 'G'},
        {"metrics", required_argument, NULL, 'M'},
        {"quiet", no_argument, NULL, 'q'},
        {"listen", required_argument, NULL, 'L'},
        {"connections", required_argument, NULL, 'N'},
        {"redis", required_argument, NULL, 'R'},
        {"stream", required_argument, NULL, 'K'},
        {"publish", no_argument, NULL, 'P'},
        {"worker", required_argument, NULL, 'W'},
        {"group", required_argument, NULL, 'g'},
        {"claim-idle", required_argument, NULL, 'C'},
        {"idle-exit", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->top = 10;
    optind = 0;
    int c;
    size_t n;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': o->cfg.prefix = true; break;
        case 't':
            if (ipstats_parse_count(optarg, &o->top)) {
                fprintf(err, "ip_stats: --top needs a number from 1 to 1000000000, not '%s'\n",
                        optarg);
                return 2;
            }
            o->top_given = true;
            break;
        case 'T': o->cfg.stage.flags |= RILL_STAGE_THREADED; break;
        case 'c':
            if (ipstats_parse_count(optarg, &n) || n > IPSTATS_MAX_CAPACITY) {
                fprintf(err, "ip_stats: --capacity needs a number from 1 to %u, not '%s'\n",
                        IPSTATS_MAX_CAPACITY, optarg);
                return 2;
            }
            o->cfg.stage.capacity = (unsigned)n;
            break;
        case 'n': {
            char *end;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v > IPSTATS_MAX_PARALLEL || optarg[0] < '0' ||
                optarg[0] > '9') {
                fprintf(err, "ip_stats: --parallel needs a number from 0 to %u, not '%s'\n",
                        IPSTATS_MAX_PARALLEL, optarg);
                return 2;
            }
            o->cfg.parallel = (unsigned)v;
            break;
        }
        case 's':
            if (o->nslow == IPSTATS_MAX_SLOW) {
                fprintf(err, "ip_stats: too many --slow options (at most %d)\n",
                        IPSTATS_MAX_SLOW);
                return 2;
            }
            o->slow[o->nslow++] = optarg;
            break;
        case 'i':
            if (o->cfg.ninline == IPSTATS_MAX_SLOW) {
                fprintf(err, "ip_stats: too many --inline options (at most %d)\n",
                        IPSTATS_MAX_SLOW);
                return 2;
            }
            o->inl[o->cfg.ninline++] = optarg;
            o->cfg.inline_stages = o->inl;
            break;
        case 'S': o->stats = true; break;
        case 'J': o->json = optarg; break;
        case 'G': o->svg = optarg; break;
        case 'M': o->metrics = optarg; break;
        case 'q': o->quiet = true; break;
        case 'L': {
            char *end;
            errno = 0;
            unsigned long port = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || port > 65535 || optarg[0] < '0' ||
                optarg[0] > '9') {
                fprintf(err, "ip_stats: --listen needs a port from 0 to 65535, not '%s'\n",
                        optarg);
                return 2;
            }
            o->cfg.listen = true;
            o->cfg.port = (uint16_t)port;
            break;
        }
        case 'N':
            if (ipstats_parse_count(optarg, &n)) {
                fprintf(err,
                        "ip_stats: --connections needs a number from 1 to 1000000000, not '%s'\n",
                        optarg);
                return 2;
            }
            o->cfg.connections = n;
            break;
        case 'R': o->redis = optarg; break;
        case 'K':
            if (!*optarg) {
                fprintf(err, "ip_stats: --stream needs a key, not ''\n");
                return 2;
            }
            o->stream = optarg;
            break;
        case 'P': o->publish = true; break;
        case 'W':
            if (!*optarg) {
                fprintf(err, "ip_stats: --worker needs a consumer name, not ''\n");
                return 2;
            }
            o->worker = optarg;
            break;
        case 'g':
            if (!*optarg) {
                fprintf(err, "ip_stats: --group needs a name, not ''\n");
                return 2;
            }
            o->group = optarg;
            break;
        case 'C':
        case 'I':
            if (ipstats_parse_count(optarg, c == 'C' ? &o->claim_idle : &o->idle_exit)) {
                fprintf(err, "ip_stats: %s needs milliseconds from 1 to 1000000000, not '%s'\n",
                        c == 'C' ? "--claim-idle" : "--idle-exit", optarg);
                return 2;
            }
            break;
        case 'h': return 1;
        default: ipstats_usage(err); return 2;
        }
    }
    if (o->cfg.connections && !o->cfg.listen) {
        fprintf(err, "ip_stats: --connections needs --listen\n");
        return 2;
    }
    if (!o->redis != !o->stream) {
        fprintf(err, "ip_stats: --redis and --stream go together\n");
        return 2;
    }
    if (o->publish && o->worker) {
        fprintf(err, "ip_stats: --publish and --worker exclude each other\n");
        return 2;
    }
    if ((o->publish || o->worker) && !o->redis) {
        fprintf(err, "ip_stats: %s needs --redis HOST:PORT --stream KEY\n",
                o->publish ? "--publish" : "--worker");
        return 2;
    }
    if ((o->group || o->claim_idle || o->idle_exit) && !o->worker) {
        fprintf(err, "ip_stats: --group, --claim-idle and --idle-exit need --worker\n");
        return 2;
    }
    if (o->redis && !o->worker && o->cfg.parallel) {
        fprintf(err, "ip_stats: with --redis, --parallel needs --worker\n");
        return 2;
    }
    if (o->redis && o->cfg.listen) {
        fprintf(err, "ip_stats: --listen and --redis exclude each other\n");
        return 2;
    }
    if (o->worker && optind < argc) {
        fprintf(err, "ip_stats: --worker takes no operands ('%s')\n", argv[optind]);
        return 2;
    }
    if (o->publish && argc - optind > 1) {
        fprintf(err, "ip_stats: --publish takes at most one LOG ('%s')\n", argv[optind + 1]);
        return 2;
    }
    o->first_arg = optind;
    return 0;
}

#endif
