/* libFuzzer target for the option parsers of ip_stats (examples/
 * ipstats_opts.h) and hello_server (examples/hello_opts.h).
 *
 * Input: byte 0 picks the parser (bit 0: ip_stats, else hello_server), the
 * rest is split at NUL bytes into at most 30 arguments after argv[0]. Each
 * parser must return one of its documented results without touching memory
 * outside argv; a success must leave every value in its range, a failure
 * must say why; and for hello_server, a successful parse written back out as
 * --NAME=VALUE arguments must parse to the same options.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello_opts.h"
#include "ipstats_opts.h"

#define EXPECT(c)                                                              \
    do {                                                                       \
        if (!(c))                                                              \
            abort();                                                           \
    } while (0)

#define MAX_ARGS 30

static FILE *devnull(void) {
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    return f ? f : stderr;
}

/* p lies inside one of the argument strings. */
static int in_args(const char *p, char *const *argv, int argc) {
    for (int i = 0; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
            return 1;
    return 0;
}

static void fuzz_ipstats(int argc, char **argv) {
    char *orig[MAX_ARGS + 2];
    memcpy(orig, argv, (size_t)(argc + 1) * sizeof *argv);
    ipstats_opts o;
    opterr = 0; /* getopt's own messages would only fill the log */
    int rc = ipstats_parse(argc, argv, &o, devnull());
    EXPECT(rc == 0 || rc == 1 || rc == 2);
    if (rc != 0)
        return;
    EXPECT(o.top >= 1 && o.top <= 1000000000u);
    EXPECT(o.cfg.stage.capacity <= IPSTATS_MAX_CAPACITY);
    EXPECT(o.cfg.parallel <= IPSTATS_MAX_PARALLEL);
    EXPECT(o.nslow <= IPSTATS_MAX_SLOW);
    EXPECT(!o.cfg.connections || o.cfg.listen);
    EXPECT(o.first_arg >= 1 && o.first_arg <= argc);
    for (size_t i = 0; i < o.nslow; i++)
        EXPECT(in_args(o.slow[i], orig, argc));
    EXPECT(o.cfg.ninline <= IPSTATS_MAX_SLOW);
    EXPECT(!o.cfg.ninline || o.cfg.inline_stages == o.inl);
    for (size_t i = 0; i < o.cfg.ninline; i++)
        EXPECT(in_args(o.cfg.inline_stages[i], orig, argc));
    EXPECT(!o.json || in_args(o.json, orig, argc));
    EXPECT(!o.svg || in_args(o.svg, orig, argc));
    EXPECT(!o.redis == !o.stream);
    EXPECT(!o.redis || in_args(o.redis, orig, argc));
    EXPECT(!o.stream || (*o.stream && in_args(o.stream, orig, argc)));
    EXPECT(!(o.publish && o.worker));
    EXPECT(!o.worker || (*o.worker && o.redis && o.first_arg == argc));
    EXPECT(!(o.group || o.claim_idle || o.idle_exit) || o.worker);
    EXPECT(!(o.redis && o.cfg.parallel) || o.worker);
    EXPECT(o.claim_idle <= 1000000000u && o.idle_exit <= 1000000000u);
    /* getopt only reorders: operands stay the same strings. */
    for (int i = o.first_arg; i < argc; i++) {
        int found = 0;
        for (int j = 1; j < argc && !found; j++)
            found = argv[i] == orig[j];
        EXPECT(found);
    }
}

static void fuzz_hello(int argc, char **argv) {
    hello_opts o;
    char why[512] = "";
    hello_opts_defaults(&o);
    if (hello_parse(argc, argv, &o, why, sizeof why) < 0) {
        EXPECT(why[0] != '\0');
        EXPECT(strlen(why) < sizeof why);
        return;
    }
    enum { N = sizeof hello_num_opts / sizeof hello_num_opts[0] };
    hello_opts def;
    hello_opts_defaults(&def);
    for (size_t k = 0; k < N; k++) { /* given, or left at its default (0: none) */
        uint64_t v = *(const uint64_t *)((const char *)&o + hello_num_opts[k].off);
        uint64_t d = *(const uint64_t *)((const char *)&def + hello_num_opts[k].off);
        EXPECT(v == d || (v >= hello_num_opts[k].lo && v <= hello_num_opts[k].hi));
    }
    EXPECT(o.host && *o.host);
    /* Round trip through the canonical spelling. */
    static char text[N + 1][4200]; /* a host is at most one input long */
    char *again[N + 3]; /* program, --host, up to N options, NULL */
    int n = 0;
    again[n++] = "hello_server";
    snprintf(text[0], sizeof text[0], "--host=%s", o.host);
    again[n++] = text[0];
    for (size_t k = 0; k < N; k++) {
        uint64_t v = *(const uint64_t *)((const char *)&o + hello_num_opts[k].off);
        if (v == *(const uint64_t *)((const char *)&def + hello_num_opts[k].off))
            continue;
        snprintf(text[k + 1], sizeof text[k + 1], "%s=%" PRIu64, hello_num_opts[k].name, v);
        again[n++] = text[k + 1];
    }
    again[n] = NULL;
    hello_opts back;
    hello_opts_defaults(&back);
    EXPECT(hello_parse(n, again, &back, why, sizeof why) == 0);
    EXPECT(strcmp(back.host, o.host) == 0);
    for (size_t k = 0; k < N; k++)
        EXPECT(*(const uint64_t *)((const char *)&o + hello_num_opts[k].off) ==
               *(const uint64_t *)((const char *)&back + hello_num_opts[k].off));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    buf[size - 1] = '\0';
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = data[0] & 1 ? "ip_stats" : "hello_server";
    for (char *p = buf; p < buf + size - 1 && argc <= MAX_ARGS; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    if (data[0] & 1)
        fuzz_ipstats(argc, argv);
    else
        fuzz_hello(argc, argv);
    free(buf);
    return 0;
}
