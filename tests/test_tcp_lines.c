/* The TCP line source with real sockets on 127.0.0.1 and the test's own
 * clients: lines arrive, each once, whole and in order: many connections
 * in odd-sized writes (the sink inline or RILL_STAGE_THREADED), the file
 * source's line rules, partial last lines, short reads sharing buffers,
 * over-long lines per connection, the idle timeout and the deadline,
 * arguments. Backpressure and stops: test_tcp_lines_flow.c. */
#include "line_split.h"
#include "tcp_lines_util.h"

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
    struct rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.lines, NCONN * LINES);
    CHECK_EQ(ts.bytes, total);
    CHECK_EQ(ts.connections, NCONN);
    CHECK_EQ(ts.active, 0);
    CHECK_EQ(ts.partial + ts.dropped + ts.too_long + ts.errors + ts.killed, 0);
    struct rill_lines_stats ls;
    CHECK_OK(rill_lines_stats(r.src, &ls));
    CHECK_EQ(ls.lines, ts.lines);
    CHECK_EQ(ls.bytes, ts.bytes);
    rill_pipeline_free(r.p);
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

/* The file source's rules, byte for byte (tests/util/line_split.h is the
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
        struct rill_tcp_lines_stats ts = stats(&r);
        CHECK_EQ(got, k);
        for (size_t i = 0; i < k; i++)
            CHECK(rill_item_eq(&items[i], d + exp[i].off, exp[i].len));
        CHECK_EQ(ts.truncated, ntrunc);
        CHECK_EQ(ts.too_long, toolong);
        CHECK_EQ(ts.lines, k);
        CHECK(toolong ? ts.bytes <= n : ts.bytes == n && sent == 0);
        free(exp);
        free(d);
        rill_pipeline_free(r.p);
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
    struct rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.partial, 3);
    CHECK_EQ(ts.connections, 4);
    CHECK(ts.errors <= 1); /* the reset, if it came before the end of stream */
    rill_pipeline_free(r.p);
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
    rill_pipeline_free(r.p);
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
        struct rill_tcp_lines_stats ts = stats(&r);
        if (truncate) {
            CHECK_STREQ(collected(&r, buf, sizeof buf), "aaaaaaaaaaaaaaaa|after|ok1|ok2|short");
            CHECK_EQ(ts.truncated, 1);
            CHECK_EQ(ts.too_long, 0);
        } else {
            CHECK_STREQ(collected(&r, buf, sizeof buf), "ok1|ok2|short");
            CHECK_EQ(ts.too_long, 1);
        }
        rill_pipeline_free(r.p);
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
        struct rill_tcp_lines_stats ts = stats(&r);
        CHECK(strncmp(got, "a|b|par", 7) == 0);
        CHECK_EQ(ts.lines, 3);
        CHECK_EQ(ts.partial, 1);
        CHECK_EQ(ts.dropped, 0);
        CHECK_EQ(ts.killed, (uint64_t)deadline);
        CHECK_EQ(ts.timed_out, (uint64_t)!deadline);
        close(fd);
        rill_pipeline_free(r.p);
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
    rill_pipeline_free(r.p);
    CHECK_OK(build(&r, SRC_THREADED, NULL, NULL, NULL, NULL));
    a = cli_connect(rill_tcp_lines_port(r.src));
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "never read\n"), 0);
    rill_pipeline_free(r.p);
    char tmp[16];
    CHECK(cli_recv_all(a, tmp, sizeof tmp) <= 0);
    close(a);
}

RILL_TEST(tcp_lines, bad_arguments_and_ports_in_use) {
    rill_pipeline *p;
    rill_stage *st = NULL, *file = NULL;
    CHECK_OK(rill_pipeline_new("args", &p));
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
    struct rill_tcp_lines_stats ts;
    CHECK_EQ(rill_tcp_lines_stats(file, &ts), RILL_EINVAL);
    CHECK_EQ(rill_tcp_lines_port(file), 0);
    rill_tcp_lines_stop(file, RILL_TCP_STOP_NOW); /* not one: a no-op */
    rill_tcp_lines_stop(NULL, RILL_TCP_STOP_NOW);
    struct rill_lines_stats ls;
    CHECK_OK(rill_lines_stats(st, &ls));
    CHECK_OK(rill_tcp_lines_stats(st, &ts));
    CHECK_EQ(ts.connections + ts.lines + ls.lines, 0);
    rill_pipeline_free(p);
}
