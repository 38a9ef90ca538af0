/* The TCP line source under backpressure and stops, with real sockets on
 * 127.0.0.1 and the test's own clients against a RILL_STAGE_THREADED sink:
 * a full queue reaches the TCP window, fills to its capacity first, stops
 * every socket read; drain, now (with the queue full too) and pipeline
 * stops deliver or count every line. */
#include "tcp_lines_util.h"

/* Backpressure reaches the sockets. The consumer stalls on its first line;
 * clients write far more than fits. Once every connection waits for room,
 * the stage has read at most capacity lines plus, per connection, one chunk
 * and a carried partial line: the rest stays in the kernel, whose buffers
 * fill until the clients' writes fail with EAGAIN. Then the consumer goes
 * on and every line arrives exactly once, in order. */
RILL_TEST(tcp_lines_flow, backpressure_reaches_the_tcp_window) {
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
    struct rill_tcp_lines_stats ts = stats(&r);
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
    rill_pipeline_free(r.p);
    gate_fini(&stall);
}

/* A client whose lines are all there to read (sent before the run) fills
 * the queue to its capacity before it is refused: lines go on in full
 * batches while there is more to read, and partial batches are handed on
 * only before a wait. Handing on a partial batch after every read (here a
 * 113-byte chunk: two or three lines) used up the queue's batches long
 * before its capacity in items. */
RILL_TEST(tcp_lines_flow, full_batches_while_there_is_more_to_read) {
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
    rill_pipeline_free(r.p);
    gate_fini(&stall);
}

/* While the queue is known to be full (a connection waits for room), no
 * socket is read: a connection that comes later, or has read all its
 * lines so far, waits for room before its next read instead of taking one
 * more chunk off its socket. */
RILL_TEST(tcp_lines_flow, no_read_while_the_queue_is_full) {
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
    rill_pipeline_free(r.p);
    gate_fini(&stall);
}

/* DRAIN: no new connections; open ones finish, partial line included. */
RILL_TEST(tcp_lines_flow, stop_drain_lets_connections_finish) {
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
    struct rill_tcp_lines_stats ts = stats(&r);
    CHECK_EQ(ts.killed, 0);
    CHECK_EQ(ts.partial, 1);
    rill_pipeline_free(r.p);
}

/* NOW: open connections are killed; what they sent, partial line included,
 * is delivered; the client sees its connection closed. */
RILL_TEST(tcp_lines_flow, stop_now_delivers_the_partial_line) {
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
        struct rill_tcp_lines_stats ts = stats(&r);
        CHECK_EQ(ts.killed, 2);
        CHECK_EQ(ts.partial, 1);
        CHECK_EQ(ts.dropped, 0);
        CHECK_EQ(ts.active, 0);
        close(a);
        close(idle);
        rill_pipeline_free(r.p);
    }
}

/* NOW while the queue is full: what cannot be handed on is dropped and
 * counted, never silently: delivered + dropped = the lines read. The same
 * when the pipeline is aborted while the connection waits for room: the
 * watch sees the stop, the connection is killed, and the lines the queue
 * held are the pipeline's discarded ones. */
RILL_TEST(tcp_lines_flow, stop_now_with_a_full_queue_counts_drops) {
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
        struct rill_tcp_lines_stats ts = stats(&r);
        CHECK(ts.dropped > 0);
        CHECK_EQ(ck.next[0] + rill_pipeline_discarded(r.p), ts.lines);
        CHECK(abort || rill_pipeline_discarded(r.p) == 0);
        CHECK_EQ(ts.lines + ts.dropped, (ts.bytes + L - 1) / L);
        CHECK_EQ(ts.waiting + ts.active, 0);
        CHECK(abort || ts.killed == 1);
        close(s.fd);
        rill_pipeline_free(r.p);
        gate_fini(&stall);
    }
}

/* The pipeline stops while every connection idles (an abort; a stage
 * failing elsewhere): the server stops at once, nothing hangs. */
RILL_TEST(tcp_lines_flow, pipeline_stop_ends_the_server) {
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
            rill_pipeline_free(r.p);
        }
    }
}
