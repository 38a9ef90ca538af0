/* The TCP line source with real sockets on 127.0.0.1 and the test's own
 * clients: many connections in odd-sized writes, the file source's line
 * rules, partial last lines, over-long lines per connection, backpressure
 * that reaches the TCP window, stops (drain, now, pipeline stop). */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "line_split.h"
#include "net_util.h"
#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

#define LIMIT_S 60.0 /* generous bound on any wait: a hang fails, nothing is timed */

/* ---- lines the clients send and the checker expects ------------------------ */

/* Line i of connection c (without '\n'): "ccc:iiiiiii:" and a filler whose
 * length varies, or fixed so that every line has `fixed` bytes with '\n'. */
static size_t make_line(char *buf, unsigned c, uint64_t i, size_t fixed) {
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

static int checker_send(rill_stage *st, void *state, const rill_item *it) {
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
static void stalled_checker(checker *ck, gate *stall, unsigned nconn, size_t fixed) {
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
static void stream_fill(stream *s) {
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
static ssize_t stream_send(stream *s, size_t max) {
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

static bool stream_done(stream *s) {
    stream_fill(s);
    return s->off == s->len;
}

/* Connect a stream of `target` lines of connection conn to port. Returns
 * the fd (also in s->fd) or -errno. */
static int stream_open(stream *s, uint16_t port, unsigned conn, size_t fixed, uint64_t target) {
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

static void *runner_main(void *arg) {
    runner *r = arg;
    r->rc = rill_pipeline_run(r->p);
    atomic_store(&r->done, 1);
    return NULL;
}

/* Flags for build(). */
enum { SRC_THREADED = 1, SINK_THREADED = 2 };

/* tcp source -> sink (the checker, or a collector when ck is NULL). */
static int build(runner *r, int threads, const rill_tcp_opts *to, const rill_lines_opts *lo,
                 const rill_stage_opts *sink_opts, checker *ck) {
    memset(r, 0, sizeof *r);
    int rc = rill_pipeline_new(&r->p, "tcp");
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

static int start(runner *r) { return pthread_create(&r->t, NULL, runner_main, r); }

/* Join the run (it must end by itself within the limit). */
static bool finish(runner *r) {
    double end = now_s() + LIMIT_S;
    while (!atomic_load(&r->done) && now_s() < end)
        sleep_ms(1);
    if (!atomic_load(&r->done))
        return false;
    pthread_join(r->t, NULL);
    return true;
}

static rill_tcp_lines_stats stats(const runner *r) {
    rill_tcp_lines_stats s;
    memset(&s, 0, sizeof s);
    rill_tcp_lines_stats_of(r->src, &s);
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
static int cmp_items(const void *a, const void *b) {
    const rill_item *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->data, y->data, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static const char *collected(const runner *r, char *buf, size_t cap) {
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

/* ---- tests ------------------------------------------------------------------------ */

/* 40 clients at once, each 300 lines in writes of 1..97 bytes, round robin:
 * every line arrives once, whole, in its connection's order. With a tiny
 * queue (capacity items, one per batch) connections keep waiting for room
 * while others end: no wake-up may be lost. */
static void many_connections(int threads, unsigned capacity) {
    enum { NCONN = 40, LINES = 300 };
    static checker ck;
    memset(&ck, 0, sizeof ck);
    ck.nconn = NCONN;
    runner r;
    rill_tcp_opts to = {.max_accepts = NCONN};
    rill_lines_opts lo = {.chunk = 113}; /* lines straddle reads all the time */
    rill_stage_opts ko = {.capacity = capacity, .batch = capacity ? 1 : 0};
    CHECK_OK(build(&r, threads, &to, &lo, &ko, &ck));
    CHECK_EQ(start(&r), 0);
    uint16_t port = rill_tcp_lines_port(r.src);
    CHECK(port != 0);
    static stream s[NCONN];
    uint64_t total = 0, seed = 42;
    for (unsigned c = 0; c < NCONN; c++)
        CHECK(stream_open(&s[c], port, c, 0, LINES) >= 0);
    for (bool more = true; more;) {
        more = false;
        for (unsigned c = 0; c < NCONN; c++) {
            ssize_t w = stream_send(&s[c], 1 + rng_next(&seed) % 97);
            CHECK(w >= 0);
            more |= w > 0;
        }
    }
    for (unsigned c = 0; c < NCONN; c++) {
        total += s[c].written;
        close(s[c].fd);
    }
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(atomic_load(&ck.bad), 0);
    for (unsigned c = 0; c < NCONN; c++)
        CHECK_EQ(ck.next[c], LINES);
    rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.lines, NCONN * LINES);
    CHECK_EQ(ts.bytes, total);
    CHECK_EQ(ts.connections, NCONN);
    CHECK_EQ(ts.active, 0);
    CHECK_EQ(ts.partial + ts.dropped + ts.too_long + ts.errors + ts.killed, 0);
    rill_lines_stats ls;
    CHECK_OK(rill_lines_stats_of(r.src, &ls));
    CHECK_EQ(ls.lines, ts.lines);
    CHECK_EQ(ls.bytes, ts.bytes);
    rill_pipeline_destroy(r.p);
}

RILL_TEST(tcp_lines, many_connections_inline) { many_connections(0, 0); }
RILL_TEST(tcp_lines, many_connections_threaded_sink) { many_connections(SINK_THREADED, 0); }
RILL_TEST(tcp_lines, many_connections_all_threaded) {
    many_connections(SRC_THREADED | SINK_THREADED, 0);
}
RILL_TEST(tcp_lines, many_connections_tiny_queue) {
    many_connections(SINK_THREADED, 3);
    many_connections(SRC_THREADED | SINK_THREADED, 1);
}

/* The file source's rules, byte for byte (tests/line_split.h is the
 * reference): random bytes with many '\n', '\r', NUL and long lines, sent in odd
 * writes, read in odd chunks, under each flag combination. */
RILL_TEST(tcp_lines, same_rules_as_the_file_source) {
    uint64_t seed = 7;
    for (int round = 0; round < 12; round++) {
        size_t n = 1 + rng_next(&seed) % 4000;
        char *d = malloc(n);
        for (size_t i = 0; i < n; i++) {
            uint64_t x = rng_next(&seed) % 16;
            d[i] = x < 3 ? '\n' : x < 5 ? '\r' : x < 6 ? '\0' : (char)('a' + x);
        }
        rill_lines_opts lo = {.max_line = 1 + rng_next(&seed) % 40,
                              .chunk = 1 + rng_next(&seed) % 50,
                              .flags = (unsigned)(round % 4)}; /* TRUNCATE, STRIP_CR */
        runner r;
        rill_tcp_opts to = {.max_accepts = 1};
        CHECK_OK(build(&r, round % 2 ? SINK_THREADED : 0, &to, &lo, NULL, NULL));
        CHECK_EQ(start(&r), 0);
        int fd = cli_connect(rill_tcp_lines_port(r.src));
        CHECK(fd >= 0);
        int sent = 0;
        for (size_t off = 0; off < n && sent == 0;) {
            size_t k = 1 + rng_next(&seed) % 300;
            k = k < n - off ? k : n - off;
            sent = cli_send(fd, d + off, k); /* fails once an over-long line closed it */
            off += k;
        }
        close(fd);
        CHECK(finish(&r));
        CHECK_EQ(r.rc, 0);
        span *exp = malloc((n + 1) * sizeof *exp);
        uint64_t ntrunc;
        bool toolong;
        size_t k = ref_split(d, n, lo.flags, lo.max_line, exp, &ntrunc, &toolong);
        const rill_item *items;
        size_t got = 0;
        rill_collect_items(r.sink, &items, &got);
        rill_tcp_lines_stats ts = stats(&r);
        CHECK_EQ(got, k);
        for (size_t i = 0; i < k; i++)
            CHECK(rill_item_eq(&items[i], d + exp[i].off, exp[i].len));
        CHECK_EQ(ts.truncated, ntrunc);
        CHECK_EQ(ts.too_long, toolong);
        CHECK_EQ(ts.lines, k);
        CHECK(toolong ? ts.bytes <= n : ts.bytes == n && sent == 0);
        free(exp);
        free(d);
        rill_pipeline_destroy(r.p);
    }
}

/* A client's unterminated last line is delivered when it closes (also after
 * a reset); a connection that sends nothing delivers nothing. */
RILL_TEST(tcp_lines, partial_last_line_delivered_on_close) {
    runner r;
    rill_tcp_opts to = {.max_accepts = 4};
    CHECK_OK(build(&r, SINK_THREADED, &to, NULL, NULL, NULL));
    CHECK_EQ(start(&r), 0);
    uint16_t port = rill_tcp_lines_port(r.src);
    int a = cli_connect(port), b = cli_connect(port), c = cli_connect(port), e = cli_connect(port);
    CHECK(a >= 0 && b >= 0 && c >= 0 && e >= 0);
    CHECK_EQ(cli_sends(a, "alpha\nbeta\ngam"), 0);
    CHECK_EQ(cli_sends(b, "no newline at all"), 0);
    CHECK_EQ(cli_sends(c, "reset\nafter rese"), 0);
    CHECK_EQ(cli_sends(a, "ma"), 0);
    WAIT_STAT(&r, bytes, 14 + 2 + 17 + 16);
    close(a);
    close(b);
    cli_reset(c);
    close(e);
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    char buf[512];
    CHECK_STREQ(collected(&r, buf, sizeof buf), "after rese|alpha|beta|gamma|no newline at all|reset");
    rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.partial, 3);
    CHECK_EQ(ts.connections, 4);
    CHECK(ts.errors <= 1); /* the reset, if it came before the end of stream */
    rill_pipeline_destroy(r.p);
}

/* A client that sends one short line at a time, each read on its own, to
 * a stage that keeps every line: the lines share read buffers instead of
 * pinning one buffer each (a 64 KiB chunk per 20-byte line would be a
 * 3000-fold amplification of what a queue or a collector holds). Kept
 * buffers are counted by their distinct owners; each was left behind only
 * once more than half a chunk had been read into it, so they number at
 * most one more than the bytes read over half a chunk. The over-long line
 * in the middle is truncated: its head is kept and must survive the appends
 * after it. */
RILL_TEST(tcp_lines, short_reads_share_buffers) {
    enum { LINES = 300, CHUNK = 4096 };
    runner r;
    rill_tcp_opts to = {.max_accepts = 1};
    rill_lines_opts lo = {.chunk = CHUNK, .max_line = 30, .flags = RILL_LINES_TRUNCATE};
    CHECK_OK(build(&r, 0, &to, &lo, NULL, NULL));
    CHECK_EQ(start(&r), 0);
    int fd = cli_connect(rill_tcp_lines_port(r.src));
    CHECK(fd >= 0);
    char line[128];
    uint64_t sent = 0;
    for (uint64_t i = 0; i < LINES; i++) {
        size_t n = make_line(line, 1, i, 0) % 25;
        if (i == LINES / 2) {
            memset(line, 'x', 100); /* over-long: truncated to 30 */
            n = 100;
        }
        line[n++] = '\n';
        CHECK_EQ(cli_send(fd, line, n), 0);
        sent += n;
        WAIT_STAT(&r, bytes, sent); /* one read per line */
        WAIT_STAT(&r, lines, i + 1);
    }
    close(fd);
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    const rill_item *items;
    size_t n = 0, owners = 0;
    CHECK_OK(rill_collect_items(r.sink, &items, &n));
    CHECK_EQ(n, LINES);
    for (size_t i = 0; i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = items[j].owner == items[i].owner;
        owners += !seen;
        char want[128];
        size_t len = make_line(want, 1, i, 0) % 25;
        if (i == LINES / 2) {
            memset(want, 'x', 30);
            len = 30;
        }
        CHECK(rill_item_eq(&items[i], want, len));
    }
    CHECK(owners * CHUNK <= 2 * sent + CHUNK);
    CHECK_EQ(stats(&r).truncated, 1);
    rill_pipeline_destroy(r.p);
}

/* An over-long line ends its own connection (counted), not the pipeline nor
 * the other connections; with TRUNCATE it is cut and counted instead. */
RILL_TEST(tcp_lines, overlong_line_closes_only_its_connection) {
    for (int truncate = 0; truncate < 2; truncate++) {
        runner r;
        rill_tcp_opts to = {.max_accepts = 2};
        rill_lines_opts lo = {.max_line = 16, .flags = truncate ? RILL_LINES_TRUNCATE : 0};
        CHECK_OK(build(&r, 0, &to, &lo, NULL, NULL));
        CHECK_EQ(start(&r), 0);
        uint16_t port = rill_tcp_lines_port(r.src);
        int bad = cli_connect(port), good = cli_connect(port);
        CHECK(bad >= 0 && good >= 0);
        CHECK_EQ(cli_sends(bad, "short\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nafter\n"), 0);
        CHECK_EQ(cli_sends(good, "ok1\nok2\n"), 0);
        if (!truncate) {
            char tmp[64];
            CHECK(cli_recv_all(bad, tmp, sizeof tmp) <= 0); /* the server closed it */
        }
        close(bad);
        close(good);
        CHECK(finish(&r));
        CHECK_EQ(r.rc, 0);
        char buf[512];
        rill_tcp_lines_stats ts = stats(&r);
        if (truncate) {
            CHECK_STREQ(collected(&r, buf, sizeof buf), "aaaaaaaaaaaaaaaa|after|ok1|ok2|short");
            CHECK_EQ(ts.truncated, 1);
            CHECK_EQ(ts.too_long, 0);
        } else {
            CHECK_STREQ(collected(&r, buf, sizeof buf), "ok1|ok2|short");
            CHECK_EQ(ts.too_long, 1);
        }
        rill_pipeline_destroy(r.p);
    }
}

/* Backpressure reaches the sockets. The consumer stalls on its first line;
 * clients write far more than fits. Once every connection waits for room,
 * the stage has read at most capacity lines plus, per connection, one chunk
 * and a carried partial line: the rest stays in the kernel, whose buffers
 * fill until the clients' writes fail with EAGAIN. Then the consumer goes
 * on and every line arrives exactly once, in order. */
RILL_TEST(tcp_lines, backpressure_reaches_the_tcp_window) {
    enum { NCONN = 4, CAP = 64, L = 100, CHUNK = 4096, MORE = 3000 };
    static checker ck;
    static gate stall;
    stalled_checker(&ck, &stall, NCONN, L);
    runner r;
    rill_tcp_opts to = {.max_accepts = NCONN};
    rill_lines_opts lo = {.chunk = CHUNK};
    rill_stage_opts ko = {.capacity = CAP, .batch = 16};
    CHECK_OK(build(&r, SINK_THREADED, &to, &lo, &ko, &ck));
    CHECK_EQ(start(&r), 0);
    uint16_t port = rill_tcp_lines_port(r.src);
    static stream s[NCONN];
    for (unsigned c = 0; c < NCONN; c++) {
        CHECK(stream_open(&s[c], port, c, L, UINT64_MAX) >= 0);
        CHECK_EQ(fcntl(s[c].fd, F_SETFL, O_NONBLOCK), 0);
    }
    /* Write until every connection waits for room and every socket is full. */
    double end = now_s() + LIMIT_S;
    for (;;) {
        bool all_full = true;
        for (unsigned c = 0; c < NCONN; c++) {
            ssize_t w;
            while ((w = stream_send(&s[c], SIZE_MAX)) > 0)
                ;
            CHECK_EQ(w, -EAGAIN);
            s[c].eagain = true;
        }
        if (stats(&r).waiting == NCONN) {
            /* Nothing is read any more: poll each socket once more for room. */
            for (unsigned c = 0; c < NCONN; c++) {
                struct pollfd pfd = {s[c].fd, POLLOUT, 0};
                all_full &= poll(&pfd, 1, 0) == 0;
            }
            if (all_full)
                break;
        }
        CHECK(now_s() < end);
        sleep_ms(1);
    }
    CHECK_EQ(atomic_load(&stall.entered), 1);
    rill_tcp_lines_stats ts = stats(&r);
    uint64_t bound = (uint64_t)CAP * L + (uint64_t)NCONN * (CHUNK + L);
    uint64_t written = 0;
    for (unsigned c = 0; c < NCONN; c++)
        written += s[c].written;
    CHECK(ts.bytes <= bound);
    CHECK(ts.lines <= CAP);
    CHECK(written > ts.bytes + 65536); /* the kernel holds what was not read */
    CHECK(ts.waits >= NCONN);
    /* Let the consumer go; finish each stream a little further on. */
    gate_open(&stall);
    for (unsigned c = 0; c < NCONN; c++)
        s[c].target = s[c].line + MORE;
    for (bool more = true; more;) {
        more = false;
        for (unsigned c = 0; c < NCONN; c++) {
            if (s[c].fd < 0)
                continue;
            ssize_t w;
            while ((w = stream_send(&s[c], SIZE_MAX)) > 0)
                ;
            CHECK(w == 0 || w == -EAGAIN);
            if (w == 0 && stream_done(&s[c])) {
                close(s[c].fd);
                s[c].fd = -1;
            } else {
                more = true;
            }
        }
        if (more) {
            CHECK(now_s() < end + LIMIT_S);
            sleep_ms(1);
        }
    }
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(atomic_load(&ck.bad), 0);
    uint64_t lines = 0;
    for (unsigned c = 0; c < NCONN; c++) {
        CHECK_EQ(ck.next[c], s[c].target);
        lines += s[c].target;
    }
    ts = stats(&r);
    CHECK_EQ(ts.lines, lines);
    CHECK_EQ(ts.bytes, lines * L);
    CHECK_EQ(ts.dropped, 0);
    rill_pipeline_destroy(r.p);
    gate_fini(&stall);
}

/* A client whose lines are all there to read (sent before the run) fills
 * the queue to its capacity before it is refused: lines go on in full
 * batches while there is more to read, and partial batches are handed on
 * only before a wait. Handing on a partial batch after every read (here a
 * 113-byte chunk: two or three lines) used up the queue's batches long
 * before its capacity in items. */
RILL_TEST(tcp_lines, full_batches_while_there_is_more_to_read) {
    enum { CAP = 512, L = 40, LINES = 1200 }; /* 48,000 bytes: a socket buffer */
    static checker ck;
    static gate stall;
    stalled_checker(&ck, &stall, 1, L);
    runner r;
    rill_tcp_opts to = {.max_accepts = 1};
    rill_lines_opts lo = {.chunk = 113};
    rill_stage_opts ko = {.capacity = CAP, .batch = 32};
    CHECK_OK(build(&r, SINK_THREADED, &to, &lo, &ko, &ck));
    static stream s;
    CHECK(stream_open(&s, rill_tcp_lines_port(r.src), 0, L, LINES) >= 0);
    while (stream_send(&s, SIZE_MAX) > 0)
        ;
    CHECK(stream_done(&s));
    CHECK_EQ(start(&r), 0);
    WAIT_STAT(&r, waiting, 1);
    CHECK_EQ(stats(&r).lines, CAP);
    gate_open(&stall);
    close(s.fd);
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(atomic_load(&ck.bad), 0);
    CHECK_EQ(ck.next[0], LINES);
    rill_pipeline_destroy(r.p);
    gate_fini(&stall);
}

/* While the queue is known to be full (a connection waits for room), no
 * socket is read: a connection that comes later, or has read all its
 * lines so far, waits for room before its next read instead of taking one
 * more chunk off its socket. */
RILL_TEST(tcp_lines, no_read_while_the_queue_is_full) {
    enum { CAP = 16, L = 40 };
    static checker ck;
    static gate stall;
    stalled_checker(&ck, &stall, 2, L);
    runner r;
    rill_tcp_opts to = {.max_accepts = 2};
    rill_stage_opts ko = {.capacity = CAP, .batch = 4};
    CHECK_OK(build(&r, SINK_THREADED, &to, NULL, &ko, &ck));
    CHECK_EQ(start(&r), 0);
    uint16_t port = rill_tcp_lines_port(r.src);
    static stream a, b;
    CHECK(stream_open(&a, port, 0, L, 4 * CAP) >= 0); /* more than the queue takes */
    while (stream_send(&a, SIZE_MAX) > 0)
        ;
    CHECK(stream_done(&a));
    WAIT_STAT(&r, waiting, 1);
    uint64_t before = stats(&r).bytes;
    CHECK(stream_open(&b, port, 1, L, 3) >= 0);
    while (stream_send(&b, SIZE_MAX) > 0)
        ;
    CHECK(stream_done(&b));
    WAIT_STAT(&r, waiting, 2);
    CHECK_EQ(stats(&r).bytes, before);
    gate_open(&stall);
    close(a.fd);
    close(b.fd);
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    CHECK_EQ(atomic_load(&ck.bad), 0);
    CHECK_EQ(ck.next[0], a.target);
    CHECK_EQ(ck.next[1], b.target);
    CHECK_EQ(stats(&r).bytes, (a.target + b.target) * L);
    rill_pipeline_destroy(r.p);
    gate_fini(&stall);
}

/* DRAIN: no new connections; open ones finish, partial line included. */
RILL_TEST(tcp_lines, stop_drain_lets_connections_finish) {
    runner r;
    CHECK_OK(build(&r, SINK_THREADED, NULL, NULL, NULL, NULL));
    CHECK_EQ(start(&r), 0);
    uint16_t port = rill_tcp_lines_port(r.src);
    int a = cli_connect(port);
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "a\nb\n"), 0);
    WAIT_STAT(&r, lines, 2);
    rill_tcp_lines_stop(r.src, RILL_TCP_STOP_DRAIN);
    double end = now_s() + LIMIT_S;
    int late = 0;
    while (late != -ECONNREFUSED && now_s() < end) {
        /* Until the stop takes effect: accepted, or queued and then reset. */
        if ((late = cli_connect(port)) >= 0)
            close(late);
        sleep_ms(1);
    }
    CHECK_EQ(late, -ECONNREFUSED);
    CHECK_EQ(cli_sends(a, "c\npartial"), 0);
    close(a);
    CHECK(finish(&r));
    CHECK_EQ(r.rc, 0);
    char buf[256];
    CHECK_STREQ(collected(&r, buf, sizeof buf), "a|b|c|partial");
    rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.killed, 0);
    CHECK_EQ(ts.partial, 1);
    rill_pipeline_destroy(r.p);
}

/* NOW: open connections are killed; what they sent, partial line included,
 * is delivered; the client sees its connection closed. */
RILL_TEST(tcp_lines, stop_now_delivers_the_partial_line) {
    for (int threads = 0; threads < 4; threads++) {
        runner r;
        CHECK_OK(build(&r, threads, NULL, NULL, NULL, NULL));
        CHECK_EQ(start(&r), 0);
        uint16_t port = rill_tcp_lines_port(r.src);
        int a = cli_connect(port), idle = cli_connect(port);
        CHECK(a >= 0 && idle >= 0);
        CHECK_EQ(cli_sends(a, "x\ny\npart"), 0);
        WAIT_STAT(&r, bytes, 8);
        WAIT_STAT(&r, connections, 2);
        rill_tcp_lines_stop(r.src, RILL_TCP_STOP_NOW);
        CHECK(finish(&r));
        CHECK_EQ(r.rc, 0);
        char buf[256], tmp[16];
        CHECK_STREQ(collected(&r, buf, sizeof buf), "part|x|y");
        CHECK(cli_recv_all(a, tmp, sizeof tmp) <= 0);
        rill_tcp_lines_stats ts = stats(&r);
        CHECK_EQ(ts.killed, 2);
        CHECK_EQ(ts.partial, 1);
        CHECK_EQ(ts.dropped, 0);
        CHECK_EQ(ts.active, 0);
        close(a);
        close(idle);
        rill_pipeline_destroy(r.p);
    }
}

/* The per-connection limits end a connection like a client would: past
 * the idle timeout (it sent nothing more) or the deadline (it kept
 * sending), what it sent is delivered, its unterminated last line too, and
 * the end is counted. The limits are short; nothing here is timed, the
 * test only waits for them to pass. */
RILL_TEST(tcp_lines, idle_timeout_and_deadline_deliver_what_arrived) {
    for (int deadline = 0; deadline < 2; deadline++) {
        runner r;
        rill_tcp_opts to = {.max_accepts = 1};
        if (deadline)
            to.deadline_ns = 50 * 1000000LL;
        else
            to.idle_ns = 50 * 1000000LL;
        CHECK_OK(build(&r, SINK_THREADED, &to, NULL, NULL, NULL));
        CHECK_EQ(start(&r), 0);
        int fd = cli_connect(rill_tcp_lines_port(r.src));
        CHECK(fd >= 0);
        CHECK_EQ(cli_sends(fd, "a\nb\npar"), 0);
        /* A client that keeps sending (a byte every few ms) is not idle,
         * and is cut at its deadline only. */
        double end = now_s() + LIMIT_S;
        while (deadline && stats(&r).killed == 0 && now_s() < end) {
            if (cli_sends(fd, "t") != 0)
                break;
            sleep_ms(5);
        }
        CHECK(finish(&r));
        CHECK_EQ(r.rc, 0);
        char buf[256];
        const char *got = collected(&r, buf, sizeof buf);
        rill_tcp_lines_stats ts = stats(&r);
        CHECK(strncmp(got, "a|b|par", 7) == 0);
        CHECK_EQ(ts.lines, 3);
        CHECK_EQ(ts.partial, 1);
        CHECK_EQ(ts.dropped, 0);
        CHECK_EQ(ts.killed, (uint64_t)deadline);
        CHECK_EQ(ts.timed_out, (uint64_t)!deadline);
        close(fd);
        rill_pipeline_destroy(r.p);
    }
}

/* NOW while the queue is full: what cannot be handed on is dropped and
 * counted, never silently: delivered + dropped = the lines read. The same
 * when the pipeline is aborted while the connection waits for room: the
 * watch sees the stop, the connection is killed, and the lines the queue
 * held are the pipeline's discarded ones. */
RILL_TEST(tcp_lines, stop_now_with_a_full_queue_counts_drops) {
    enum { CAP = 32, L = 50 };
    for (int abort = 0; abort < 2; abort++) {
        static checker ck;
        static gate stall;
        stalled_checker(&ck, &stall, 1, L);
        runner r;
        rill_lines_opts lo = {.chunk = 1000};
        rill_stage_opts ko = {.capacity = CAP, .batch = 8};
        CHECK_OK(build(&r, SINK_THREADED, NULL, &lo, &ko, &ck));
        CHECK_EQ(start(&r), 0);
        static stream s; /* 10,000 bytes: more than the queue and one chunk */
        CHECK(stream_open(&s, rill_tcp_lines_port(r.src), 0, L, 200) >= 0);
        while (stream_send(&s, SIZE_MAX) > 0)
            ;
        CHECK(stream_done(&s));
        WAIT_STAT(&r, waiting, 1);
        if (abort)
            rill_pipeline_abort(r.p);
        else
            rill_tcp_lines_stop(r.src, RILL_TCP_STOP_NOW);
        /* Killed; or, on an abort, maybe woken to find the pipeline
         * stopped first: either way its lines are dropped at once. */
        WAIT_STAT(&r, dropped, 1);
        gate_open(&stall);
        CHECK(finish(&r));
        CHECK_EQ(r.rc, abort ? RILL_EABORTED : 0);
        CHECK_EQ(atomic_load(&ck.bad), 0);
        rill_tcp_lines_stats ts = stats(&r);
        CHECK(ts.dropped > 0);
        CHECK_EQ(ck.next[0] + rill_pipeline_discarded(r.p), ts.lines);
        CHECK(abort || rill_pipeline_discarded(r.p) == 0);
        CHECK_EQ(ts.lines + ts.dropped, (ts.bytes + L - 1) / L);
        CHECK_EQ(ts.waiting + ts.active, 0);
        CHECK(abort || ts.killed == 1);
        close(s.fd);
        rill_pipeline_destroy(r.p);
        gate_fini(&stall);
    }
}

/* The pipeline stops while every connection idles (an abort; a stage
 * failing elsewhere): the server stops at once, nothing hangs. */
RILL_TEST(tcp_lines, pipeline_stop_ends_the_server) {
    for (int threads = 0; threads < 4; threads++) {
        for (int fail = 0; fail < 3; fail++) {
            static checker ck;
            memset(&ck, 0, sizeof ck);
            ck.nconn = 2;
            ck.fail_at = fail ? 3 : 0;
            /* Any code: also the one a missing port answers (RILL_EINVAL). */
            ck.fail_code = fail == 2 ? RILL_EINVAL : -EIO;
            runner r;
            CHECK_OK(build(&r, threads, NULL, NULL, NULL, &ck));
            CHECK_EQ(start(&r), 0);
            uint16_t port = rill_tcp_lines_port(r.src);
            int idle = cli_connect(port), a = cli_connect(port);
            CHECK(idle >= 0 && a >= 0);
            char lines[512];
            size_t n = 0;
            for (uint64_t i = 0; i < 5; i++) {
                n += make_line(lines + n, 1, i, 0);
                lines[n++] = '\n';
            }
            int sent = cli_send(a, lines, n); /* may find it closed by the failure */
            CHECK(sent == 0 || fail);
            WAIT_STAT(&r, connections, 2);
            if (!fail) {
                WAIT_STAT(&r, lines, 5);
                rill_pipeline_abort(r.p);
            }
            CHECK(finish(&r));
            CHECK_EQ(r.rc, fail ? ck.fail_code : RILL_EABORTED);
            CHECK_EQ(stats(&r).active, 0);
            close(idle);
            close(a);
            rill_pipeline_destroy(r.p);
        }
    }
}

/* Stopped before the run: the run ends at once. Never run: destroy closes
 * the listener and the connections waiting in its backlog. */
RILL_TEST(tcp_lines, stop_before_run_and_never_run) {
    runner r;
    CHECK_OK(build(&r, 0, NULL, NULL, NULL, NULL));
    int a = cli_connect(rill_tcp_lines_port(r.src)); /* waits in the backlog */
    CHECK(a >= 0);
    rill_tcp_lines_stop(r.src, RILL_TCP_STOP_DRAIN);
    CHECK_OK(rill_pipeline_run(r.p));
    close(a);
    rill_pipeline_destroy(r.p);
    CHECK_OK(build(&r, SRC_THREADED, NULL, NULL, NULL, NULL));
    a = cli_connect(rill_tcp_lines_port(r.src));
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "never read\n"), 0);
    rill_pipeline_destroy(r.p);
    char tmp[16];
    CHECK(cli_recv_all(a, tmp, sizeof tmp) <= 0);
    close(a);
}

RILL_TEST(tcp_lines, bad_arguments_and_ports_in_use) {
    rill_pipeline *p;
    rill_stage *st = NULL, *file = NULL;
    CHECK_OK(rill_pipeline_new(&p, "args"));
    CHECK_EQ(rill_tcp_lines_add(NULL, "t", NULL, NULL, NULL, &st), RILL_EINVAL);
    rill_lines_opts close_fd = {.flags = RILL_LINES_CLOSE_FD};
    CHECK_EQ(rill_tcp_lines_add(p, "t", NULL, &close_fd, NULL, &st), RILL_EINVAL);
    rill_tcp_opts bad_host = {.host = "localhost"};
    CHECK_EQ(rill_tcp_lines_add(p, "t", &bad_host, NULL, NULL, &st), RILL_EINVAL);
    CHECK(st == NULL);
    CHECK_OK(rill_tcp_lines_add(p, "t", NULL, NULL, NULL, &st));
    rill_tcp_opts same = {.port = rill_tcp_lines_port(st)};
    rill_stage *st2 = NULL;
    CHECK_EQ(rill_tcp_lines_add(p, "t2", &same, NULL, NULL, &st2), -EADDRINUSE);
    CHECK(st2 == NULL && rill_pipeline_find(p, "t2") == NULL);
    CHECK_EQ(rill_tcp_lines_add(p, "t", NULL, NULL, NULL, &st2), RILL_EEXIST);
    CHECK_OK(rill_lines_file_add(p, "file", RILL_DATA_DIR "/apache_logs", NULL, NULL, &file));
    rill_tcp_lines_stats ts;
    CHECK_EQ(rill_tcp_lines_stats_of(file, &ts), RILL_EINVAL);
    CHECK_EQ(rill_tcp_lines_port(file), 0);
    rill_tcp_lines_stop(file, RILL_TCP_STOP_NOW); /* not one: a no-op */
    rill_tcp_lines_stop(NULL, RILL_TCP_STOP_NOW);
    rill_lines_stats ls;
    CHECK_OK(rill_lines_stats_of(st, &ls));
    CHECK_OK(rill_tcp_lines_stats_of(st, &ts));
    CHECK_EQ(ts.connections + ts.lines + ls.lines, 0);
    rill_pipeline_destroy(p);
}
