/* hello_server's command line, apart from the program so that the fuzz
 * target (tests/fuzz/fuzz_opts.c) can call the parser without running a
 * server. Options are --NAME VALUE or --NAME=VALUE; every number is a whole
 * decimal within the option's range, and a rejected option is reported with
 * its name, the value given and the range allowed. */
#ifndef RILL_EXAMPLES_HELLO_OPTS_H
#define RILL_EXAMPLES_HELLO_OPTS_H

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Milliseconds must convert to int64 nanoseconds. */
#define HELLO_MS_MAX (INT64_MAX / 1000000)

typedef struct hello_opts {
    const char *host;
    uint64_t port, backlog, max_conns, max_message, idle_ms, deadline_ms, count;
} hello_opts;

/* One numeric option: where it goes, its range, what it counts. */
typedef struct hello_num_opt {
    const char *name;
    size_t off; /* of its uint64_t in hello_opts */
    uint64_t lo, hi;
    const char *unit;
    const char *lo_why; /* why lo is the least, or NULL */
} hello_num_opt;

static const hello_num_opt hello_num_opts[] = {
    {"--port", offsetof(hello_opts, port), 0, 65535, "", "0: any free port"},
    {"--backlog", offsetof(hello_opts, backlog), 1, INT32_MAX, " connections", NULL},
    {"--max-conns", offsetof(hello_opts, max_conns), 1, UINT32_MAX, " connections", NULL},
    {"--max-message", offsetof(hello_opts, max_message), 2, SIZE_MAX / 2, " bytes",
     "the blank line that ends a request takes 2"},
    {"--idle-ms", offsetof(hello_opts, idle_ms), 0, HELLO_MS_MAX, " ms", "0: no limit"},
    {"--deadline-ms", offsetof(hello_opts, deadline_ms), 0, HELLO_MS_MAX, " ms", "0: no limit"},
    {"--count", offsetof(hello_opts, count), 1, UINT64_MAX, " connections",
     "leave it out to serve until stopped"},
};

static inline void hello_opts_defaults(hello_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 5000;
    o->max_message = 65536;
    o->idle_ms = 10000;
    o->deadline_ms = 30000;
}

/* Parse one value of n into *out. Returns 0, or -1 with the reason in why. */
static inline int hello_parse_num(const hello_num_opt *n, const char *s, uint64_t *out,
                                  char *why, size_t whylen) {
    char range[160];
    snprintf(range, sizeof range, "allowed: %" PRIu64 " to %" PRIu64 "%s%s%s%s", n->lo, n->hi,
             n->unit, n->lo_why ? " (" : "", n->lo_why ? n->lo_why : "", n->lo_why ? ")" : "");
    if (!s) {
        snprintf(why, whylen, "%s needs a value; %s", n->name, range);
        return -1;
    }
    char *end;
    errno = 0;
    unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (*s < '0' || *s > '9' || *end) {
        snprintf(why, whylen, "%s '%.64s': not a whole decimal number; %s", n->name, s, range);
        return -1;
    }
    if (errno || v < n->lo || v > n->hi) {
        snprintf(why, whylen, "%s '%.64s': out of range; %s", n->name, s, range);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parse argv[1..argc-1] into o (start from hello_opts_defaults). Returns 0,
 * or -1 with a one-line reason naming the option and value in why. o->host
 * points into argv. */
static inline int hello_parse(int argc, char **argv, hello_opts *o, char *why, size_t whylen) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        const char *eq = strchr(a, '=');
        size_t klen = eq ? (size_t)(eq - a) : strlen(a);
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[i + 1];
        int found = 0;
        if (klen == 6 && strncmp(a, "--host", 6) == 0) {
            if (!val || !*val) {
                snprintf(why, whylen, "--host needs an address, e.g. 127.0.0.1");
                return -1;
            }
            o->host = val;
            found = 1;
        }
        for (size_t k = 0; !found && k < sizeof hello_num_opts / sizeof hello_num_opts[0]; k++) {
            const hello_num_opt *n = &hello_num_opts[k];
            if (strlen(n->name) != klen || strncmp(a, n->name, klen) != 0)
                continue;
            if (hello_parse_num(n, val, (uint64_t *)((char *)o + n->off), why, whylen) < 0)
                return -1;
            found = 1;
        }
        if (!found) {
            snprintf(why, whylen, "unknown option '%.64s'", a);
            return -1;
        }
        if (!eq)
            i++;
    }
    return 0;
}

#endif
