/* The seed's IP-statistics topology, shared by examples/ip_stats.c and
 * bench/ip_stats.c so the benchmark measures exactly what users run:
 *
 *   source -> broadcast -> filter-1..N -> reduce      (IPs given)
 *   source -> filter-1 -> reduce                       (no IPs: every client;
 *                                                       the filter drops lines
 *                                                       without an address)
 *
 * With parallel = N > 1 every stage runs as N replicas, replica k of each
 * fed by replica k of the one before (N such chains, one thread each), and
 * the N counts are added up into reduce at close. Only a source that cannot
 * be split (stdin, TCP) stays one stage, dealing its lines to the chains.
 *
 * Each filter matches one IP (first field equal, or --prefix: the seed's
 * startswith) and emits the IP itself, as the seed's map_ sends `ip`, so the
 * reducer counts per requested IP even when prefixes overlap. */
#ifndef IPSTATS_H
#define IPSTATS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"

/* A line names a client if its first field is not empty (blank lines, or a
 * line starting with a space, do not). */
static inline bool ipstats_has_client(const rill_item *item, void *arg) {
    (void)arg;
    return item->len > 0 && ((const char *)item->data)[0] != ' ';
}

typedef struct ipstats_config {
    const char *log;          /* path, or "-" for standard input (unless listen) */
    bool listen;              /* read lines from TCP clients instead of log */
    uint16_t port;            /* listen: the port (0: any free one) */
    uint64_t connections;     /* listen: end after this many (0: until stopped) */
    const char *const *ips;   /* distinct IPs (or prefixes) */
    size_t nips;
    bool prefix;              /* startswith instead of first-field equality */
    rill_stage_opts stage;    /* applied to every stage (e.g. threaded) */
    const char *const *inline_stages; /* ... but these stay inline, on the */
    size_t ninline;                   /* thread of their producer (--inline) */
    unsigned parallel;        /* replicas of every stage (0, 1: one); a LOG
                                 file is then read by that many threads, a
                                 pipe or TCP by one that deals its lines out */
} ipstats_config;

/* The options for stage `name`: base, less RILL_STAGE_THREADED if the
 * stage is to stay inline. *tmp holds the copy. */
static inline const rill_stage_opts *ipstats_stage_opts(const ipstats_config *cfg,
                                                        const rill_stage_opts *base,
                                                        const char *name, rill_stage_opts *tmp) {
    for (size_t i = 0; i < cfg->ninline; i++)
        if (strcmp(cfg->inline_stages[i], name) == 0) {
            *tmp = *base;
            tmp->flags &= ~(unsigned)RILL_STAGE_THREADED;
            return tmp;
        }
    return base;
}

/* Build the pipeline. On success *out is the caller's to destroy and
 * *reduce the counting stage. On failure returns a negative code and, where
 * it helps, a message in err (size errlen). */
static inline int ipstats_build(const ipstats_config *cfg, rill_pipeline **out,
                                rill_stage **reduce, char *err, size_t errlen) {
    rill_pipeline *p = NULL;
    rill_stage *src = NULL, *bcast = NULL, *red = NULL;
    rill_stage_opts tmp;
    int rc = rill_pipeline_new("ip_stats", &p);
    if (rc)
        return rc;
    rill_stage_opts one = cfg->stage, stage = cfg->stage;
    one.replicas = 0;
    stage.replicas = cfg->parallel > 1 ? cfg->parallel : 0;
    if (cfg->listen) {
        rill_tcp_opts topts = {.port = cfg->port, .max_accepts = cfg->connections};
        rc = rill_tcp_lines_add(p, "source", &topts, NULL,
                                ipstats_stage_opts(cfg, &one, "source", &tmp), &src);
        if (rc) {
            snprintf(err, errlen, "cannot listen on 127.0.0.1:%u: %s", (unsigned)cfg->port,
                     rill_strerror(rc));
            goto fail;
        }
    } else {
        if (strcmp(cfg->log, "-") == 0)
            rc = rill_lines_fd_add(p, "source", STDIN_FILENO, NULL,
                                   ipstats_stage_opts(cfg, &one, "source", &tmp), &src);
        else
            rc = rill_lines_file_add(p, "source", cfg->log, NULL,
                                     ipstats_stage_opts(cfg, &stage, "source", &tmp), &src);
        if (rc) {
            /* A long path is cut short (the result is looked at, so the
             * compiler does not warn about the cut). */
            if (snprintf(err, errlen, "cannot read '%s': %s", cfg->log, rill_strerror(rc)) < 0)
                err[0] = '\0';
            goto fail;
        }
    }
    if (cfg->nips == 0) {
        rill_filter_spec clients = {.match = RILL_MATCH_PRED, .pred = ipstats_has_client};
        rill_stage *f = NULL;
        if ((rc = rill_filter_add(p, "filter-1", &clients,
                                  ipstats_stage_opts(cfg, &stage, "filter-1", &tmp), &f)) ||
            (rc = rill_count_add(p, "reduce", rill_key_first_field, NULL,
                                 ipstats_stage_opts(cfg, &stage, "reduce", &tmp), &red)) ||
            (rc = rill_connect(src, f)) || (rc = rill_connect(f, red)))
            goto fail_generic;
    } else {
        if ((rc = rill_broadcast_add(p, "broadcast",
                                     ipstats_stage_opts(cfg, &stage, "broadcast", &tmp), &bcast)) ||
            (rc = rill_connect(src, bcast)) ||
            (rc = rill_count_add(p, "reduce", NULL, NULL,
                                 ipstats_stage_opts(cfg, &stage, "reduce", &tmp), &red)))
            goto fail_generic;
        for (size_t i = 0; i < cfg->nips; i++) {
            char name[32];
            snprintf(name, sizeof name, "filter-%zu", i + 1);
            rill_filter_spec spec = {
                .match = cfg->prefix ? RILL_MATCH_PREFIX : RILL_MATCH_FIRST_FIELD,
                .pattern = cfg->ips[i],
                .pattern_len = strlen(cfg->ips[i]),
                .emit_pattern = true,
            };
            rill_stage *f = NULL;
            if ((rc = rill_filter_add(p, name, &spec, ipstats_stage_opts(cfg, &stage, name, &tmp),
                                      &f)) ||
                (rc = rill_connect(bcast, f)) || (rc = rill_connect(f, red)))
                goto fail_generic;
        }
    }
    *out = p;
    *reduce = red;
    return 0;
fail_generic:
    snprintf(err, errlen, "cannot build the pipeline: %s", rill_strerror(rc));
fail:
    rill_pipeline_free(p);
    return rc;
}

/* Build and run cfg's pipeline (cfg->ips given), then counts[i] = the count
 * of cfg->ips[i]. 0, or the failure's code with why on stderr after "bench: "
 * (what the benchmarks comparing rill with their hand loops need). */
static inline int ipstats_run_counts(const ipstats_config *cfg, uint64_t *counts) {
    rill_pipeline *p;
    rill_stage *reduce;
    char err[256];
    if (ipstats_build(cfg, &p, &reduce, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return -1;
    }
    int rc = rill_pipeline_run(p);
    for (size_t i = 0; i < cfg->nips && !rc; i++)
        rc = rill_count_get(reduce, cfg->ips[i], strlen(cfg->ips[i]), &counts[i]);
    if (rc)
        fprintf(stderr, "bench: %s\n", rill_pipeline_error(p, rc));
    rill_pipeline_free(p);
    return rc;
}

#endif
