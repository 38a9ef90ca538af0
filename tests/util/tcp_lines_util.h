/* Helpers of the TCP line source tests (tests/test_tcp_lines*.c): lines
 * the clients send and a checker stage that expects them, client streams,
 * and a pipeline (TCP line source -> sink) run on a thread of its own,
 * with the sink or the source RILL_STAGE_THREADED as asked. A test file
 * names RILL_STAGE_THREADED itself so it is labelled threaded (TSan). */
#ifndef RILL_TESTS_TCP_LINES_UTIL_H
#define RILL_TESTS_TCP_LINES_UTIL_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_util.h"
#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

#define LIMIT_S 60.0 /* generous bound on any wait: a hang fails, nothing is timed */

/* ---- lines the clients send and the checker expects ------------------------ */

/* Line i of connection c (without '\n'): "ccc:iiiiiii:" and a filler whose
 * length varies, or fixed so that every line has `fixed` bytes with '\n'. */
static inline size_t make_line(char *buf, unsigned c, uint64_t i, size_t fixed) {
    int n = snprintf(buf, 32, "%03u:%07llu:", c, (unsigned long long)i);
    size_t fill = fixed ? fixed - 1 - (size_t)n : (c * 31u + i * 17u) % 61u;
    for (size_t k = 0; k < fill; k++)
        buf[(size_t)n + k] = (char)('a' + (i + k) % 26);
    return (size_t)n + fill;
}

/* A sink that checks every line against make_line, per connection in order;
 * optionally stalls on its first line until the test opens `stall`, or
 * fails at line fail_at. Runs on any thread: it records, the test checks. */
typedef struct checker {
    unsigned nconn;
    size_t fixed;
    uint64_t next[64];
    atomic_ullong lines;
    atomic_int bad;
    gate *stall;
    uint64_t fail_at;
    int fail_code; /* what the failing line returns; 0: -EIO */
} checker;

static inline int checker_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    checker *k = state;
    if (k->stall && atomic_load(&k->lines) == 0)
        gate_pass(k->stall);
    unsigned long long n = atomic_fetch_add(&k->lines, 1) + 1;
    if (k->fail_at && n == k->fail_at)
        return k->fail_code ? k->fail_code : -EIO;
    const char *d = it->data;
    unsigned c = it->len >= 4 ? (unsigned)((d[0] - '0') * 100 + (d[1] - '0') * 10 + d[2] - '0')
                              : 999;
    char want[128];
    if (c >= k->nconn || c >= 64 || !rill_item_eq(it, want, make_line(want, c, k->next[c],
                                                                     k->fixed))) {
        atomic_fetch_add(&k->bad, 1);
        return 0;
    }
    k->next[c]++;
    return 0;
}

static const rill_stage_ops checker_ops = {.send = checker_send};

/* A checker of nconn connections' lines of `fixed` bytes that stalls on
 * its first line until the test opens stall. */
static inline void stalled_checker(checker *ck, gate *stall, unsigned nconn, size_t fixed) {
    memset(ck, 0, sizeof *ck);
    gate_init(stall);
    ck->nconn = nconn;
    ck->fixed = fixed;
    ck->stall = stall;
}

/* ---- clients ---------------------------------------------------------------------- */

/* The byte stream of one connection: lines make_line(conn, 0..target-1). */
typedef struct stream {
    int fd;
    unsigned conn;
    size_t fixed;
    uint64_t line, target; /* next line to queue; lines to send in all */
    char buf[16384];
    size_t off, len;       /* unsent bytes: buf[off..len) */
    uint64_t written;
    bool eagain;
} stream;

/* Queue more lines of the stream, if the buffer is empty. */
static inline void stream_fill(stream *s) {
    if (s->off < s->len)
        return;
    s->off = s->len = 0;
    while (s->line < s->target && s->len + 200 < sizeof s->buf) {
        s->len += make_line(s->buf + s->len, s->conn, s->line++, s->fixed);
        s->buf[s->len++] = '\n';
    }
}

/* Send up to max bytes (one send call). Returns bytes sent, 0 if the
 * stream is complete, -EAGAIN on a full non-blocking socket, or -errno. */
static inline ssize_t stream_send(stream *s, size_t max) {
    stream_fill(s);
    if (s->off == s->len)
        return 0;
    size_t n = s->len - s->off < max ? s->len - s->off : max;
    ssize_t w = send(s->fd, s->buf + s->off, n, MSG_NOSIGNAL);
    if (w < 0)
        return errno == EINTR ? -EAGAIN : -errno;
    s->off += (size_t)w;
    s->written += (uint64_t)w;
    return w;
}

static inline bool stream_done(stream *s) {
    stream_fill(s);
    return s->off == s->len;
}

/* Connect a stream of `target` lines of connection conn to port. Returns
 * the fd (also in s->fd) or -errno. */
static inline int stream_open(stream *s, uint16_t port, unsigned conn, size_t fixed,
                              uint64_t target) {
    memset(s, 0, sizeof *s);
    s->conn = conn;
    s->fixed = fixed;
    s->target = target;
    return s->fd = cli_connect(port);
}

/* ---- running the pipeline on a thread of its own ----------------------------- */

typedef struct runner {
    rill_pipeline *p;
    rill_stage *src, *sink;
    pthread_t t;
    int rc;
    atomic_int done;
} runner;

static inline void *runner_main(void *arg) {
    runner *r = arg;
    r->rc = rill_pipeline_run(r->p);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Flags for build(). */
enum { SRC_THREADED = 1, SINK_THREADED = 2 };

/* tcp source -> sink (the checker, or a collector when ck is NULL). */
static inline int build(runner *r, int threads, const rill_tcp_opts *to,
                        const rill_lines_opts *lo, const rill_stage_opts *sink_opts, checker *ck) {
    memset(r, 0, sizeof *r);
    int rc = rill_pipeline_new("tcp", &r->p);
    if (rc)
        return rc;
    rill_stage_opts so = {0}, ko = {0};
    if (sink_opts)
        ko = *sink_opts;
    if (threads & SRC_THREADED)
        so.flags = RILL_STAGE_THREADED;
    if (threads & SINK_THREADED)
        ko.flags = RILL_STAGE_THREADED;
    if ((rc = rill_tcp_lines_add(r->p, "tcp", to, lo, &so, &r->src)))
        return rc;
    rc = ck ? rill_stage_add(r->p, "sink", &checker_ops, ck, &ko, &r->sink)
            : rill_collect_add(r->p, "sink", &ko, &r->sink);
    return rc ? rc : rill_connect(r->src, r->sink);
}

static inline int start(runner *r) { return pthread_create(&r->t, NULL, runner_main, r); }

/* Join the run (it must end by itself within the limit). */
static inline bool finish(runner *r) {
    double end = now_s() + LIMIT_S;
    while (!atomic_load(&r->done) && now_s() < end)
        sleep_ms(1);
    if (!atomic_load(&r->done))
        return false;
    pthread_join(r->t, NULL);
    return true;
}

static inline struct rill_tcp_lines_stats stats(const runner *r) {
    struct rill_tcp_lines_stats s;
    memset(&s, 0, sizeof s);
    rill_tcp_lines_stats(r->src, &s);
    return s;
}

/* Wait until the stage's counter `field` reaches want. */
#define WAIT_STAT(r, field, want)                                                   \
    do {                                                                            \
        double end_ = now_s() + LIMIT_S;                                            \
        while (stats(r).field < (uint64_t)(want) && now_s() < end_)                 \
            sleep_ms(1);                                                            \
        CHECK(stats(r).field >= (uint64_t)(want));                                  \
    } while (0)

/* The collected items, sorted, joined by '|' into buf. */
static inline int cmp_items(const void *a, const void *b) {
    const rill_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static inline const char *collected(const runner *r, char *buf, size_t cap) {
    const rill_item *items;
    size_t n = 0, len = 0;
    rill_collect_items(r->sink, &items, &n);
    rill_item *copy = malloc((n ? n : 1) * sizeof *copy);
    memcpy(copy, items, n * sizeof *copy);
    qsort(copy, n, sizeof *copy, cmp_items);
    buf[0] = '\0';
    for (size_t i = 0; i < n && len + copy[i].len + 2 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%.*s", i ? "|" : "", (int)copy[i].len,
                                (const char *)copy[i].data);
    free(copy);
    return buf;
}

#endif
