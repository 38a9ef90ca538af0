/* The TCP server's limits in-process, on real sockets on 127.0.0.1, port 0:
 * max_conns, the deadline enforced by the supervisor, idle timeouts, partial
 * writes to a slow reader, resets and early closes, and running out of fds
 * (EMFILE). The server runs on a thread (pthread_create in
 * tests/util/net_harness.h), so this file also runs under ThreadSanitizer. No
 * assertion depends on timing: timeouts are short so the tests are quick,
 * and the client's bounds are generous. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "net_harness.h"
#include "rill_test.h"

RILL_TEST(net_limits, max_conns_makes_the_rest_wait_in_the_listen_queue) {
    struct srv v;
    memset(&v, 0, sizeof v);
    rill_tcp_opts o = {.max_conns = 2, .max_accepts = 5};
    CHECK_OK(srv_start(&v, &o));
    int c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = cli_connect(v.port); /* the kernel completes them all */
        CHECK(c[i] >= 0);
    }
    /* The last three send first; only the first two hold slots, so none of
     * them can be answered until one of those ends. */
    for (int i = 4; i >= 2; i--)
        CHECK_EQ(cli_sends(c[i], "late\n"), 0);
    CHECK(!cli_readable(c[2], 200));
    char buf[64];
    for (int i = 0; i < 5; i++) {
        if (i < 2)
            CHECK_EQ(cli_sends(c[i], "early\n"), 0);
        CHECK(cli_recv_all(c[i], buf, sizeof buf) > 0);
        CHECK_STREQ(buf, i < 2 ? "echo:early\n" : "echo:late\n");
        close(c[i]);
    }
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.accepted, 5);
    CHECK_EQ(v.st.peak, 2);
    CHECK(v.st.at_limit >= 1);
    CHECK_EQ(v.st.active, 0);
}

RILL_TEST(net_limits, the_supervisor_kills_a_task_at_its_deadline) {
    struct srv v;
    memset(&v, 0, sizeof v);
    v.x.mode = H_SLEEP; /* waits on a timer, not the socket: only the
                           supervisor can cut it */
    rill_tcp_opts o = {.max_accepts = 2, .deadline_ns = 100 * MS};
    CHECK_OK(srv_start(&v, &o));
    /* t0 before connecting: the server may accept (and start the deadline)
     * before connect returns here. */
    uint64_t t0 = rill_sched_now_ns();
    int a = cli_connect(v.port), b = cli_connect(v.port);
    CHECK(a >= 0 && b >= 0);
    char buf[16];
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0); /* closed by the server */
    CHECK(rill_sched_now_ns() - t0 >= 100 * MS);   /* never before the deadline */
    CHECK_EQ(cli_recv_all(b, buf, sizeof buf), 0);
    close(a);
    close(b);
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.timed_out, 2);
    CHECK_EQ(v.x.closed, 2); /* their on_close ran */
    CHECK_EQ(v.x.ended, 0);
    CHECK_EQ(v.st.active, 0);
}

RILL_TEST(net_limits, an_idle_client_times_out_its_wait) {
    struct srv v;
    memset(&v, 0, sizeof v);
    v.x.mode = H_WAIT;
    rill_tcp_opts o = {.max_accepts = 1, .idle_ns = 50 * MS, .deadline_ns = RILL_SCHED_FOREVER};
    CHECK_OK(srv_start(&v, &o));
    int a = cli_connect(v.port);
    CHECK(a >= 0);
    char buf[16];
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0);
    close(a);
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.x.wait_result, -ETIMEDOUT);
    CHECK_EQ(v.x.ended, 1);        /* the task saw the timeout itself */
    CHECK_EQ(v.st.timed_out, 0);   /* no deadline: the supervisor never acted */
}

RILL_TEST(net_limits, the_deadline_shortens_the_idle_timeout_of_a_trickling_client) {
    struct srv v;
    memset(&v, 0, sizeof v);
    rill_tcp_opts o = {.max_accepts = 1, .idle_ns = 3600 * INT64_C(1000000000),
                       .deadline_ns = 300 * MS};
    CHECK_OK(srv_start(&v, &o));
    uint64_t t0 = rill_sched_now_ns(); /* before the accept that starts the deadline */
    int a = cli_connect(v.port);
    CHECK(a >= 0);
    char buf[16];
    /* One byte every 20 ms, never a newline: each byte resets no timer
     * that matters, the deadline cuts it. */
    int sent = 0;
    while (!cli_readable(a, 20) && sent < 10000) {
        if (cli_sends(a, "z") < 0)
            break;
        sent++;
    }
    CHECK(cli_recv_all(a, buf, sizeof buf) <= 0); /* EOF (or a reset: unread bytes) */
    CHECK(rill_sched_now_ns() - t0 >= 300 * MS);
    close(a);
    CHECK_OK(srv_join(&v));
    /* The task's own wait (bounded by the deadline) or the supervisor, but
     * exactly one of them ended it. */
    CHECK_EQ(v.x.timeouts + v.x.closed, 1);
    CHECK_EQ(v.st.timed_out, (uint64_t)v.x.closed);
}

RILL_TEST(net_limits, partial_writes_to_a_slow_reader) {
    struct srv v;
    memset(&v, 0, sizeof v);
    v.x.mode = H_BIG;
    v.x.big = 8u << 20;
    rill_tcp_opts o = {.max_accepts = 1};
    CHECK_OK(srv_start(&v, &o));
    int a = cli_connect_buf(v.port, 4096);
    CHECK(a >= 0);
    char *got = malloc(v.x.big + 1);
    CHECK(got);
    size_t len = 0;
    int bad = 0;
    for (;;) {
        ssize_t r = recv(a, got + len, 4096, 0);
        if (r <= 0) {
            bad = r < 0;
            break;
        }
        len += (size_t)r;
        if (len % (256 * 1024) < (size_t)r)
            usleep(2000); /* slow: the server's socket buffer fills up */
    }
    for (size_t i = 0; i < len && !bad; i++)
        bad = got[i] != (char)('a' + i % 26);
    free(got);
    close(a);
    CHECK_OK(srv_join(&v));
    CHECK(!bad);
    CHECK_EQ(len, v.x.big);
    CHECK(v.x.eagain > 0); /* 8 MiB cannot fit any socket buffer */
    CHECK_EQ(v.x.ended, 1);
}

RILL_TEST(net_limits, resets_and_early_closes_cost_nothing) {
    struct srv v;
    memset(&v, 0, sizeof v);
    rill_tcp_opts o = {.max_accepts = 4};
    CHECK_OK(srv_start(&v, &o));
    char buf[64];
    int a = cli_connect(v.port);
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "half a li"), 0);
    cli_reset(a); /* RST */
    a = cli_connect(v.port);
    CHECK(a >= 0);
    close(a); /* FIN, nothing sent */
    a = cli_connect(v.port);
    CHECK(a >= 0);
    CHECK_EQ(cli_send(a, "\0\xff\x80garbage", 10), 0);
    shutdown(a, SHUT_WR); /* EOF before a newline */
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0);
    close(a);
    CHECK_EQ(cli_exchange(v.port, "still here\n", buf, sizeof buf), 16);
    CHECK_STREQ(buf, "echo:still here\n");
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.accepted, 4);
    CHECK_EQ(v.st.active, 0);
    CHECK_EQ(v.x.eof + v.x.resets, 3);
    CHECK_EQ(v.x.ended, 1);
}

/* The fds below limit that are free. */
static int free_fds_below(int limit) {
    int n = 0;
    for (int fd = 0; fd < limit; fd++)
        n += fcntl(fd, F_GETFD) < 0;
    return n;
}

RILL_TEST(net_limits, out_of_fds_accept_backs_off_and_every_client_is_served) {
    enum { K = 40 };
    struct srv v;
    memset(&v, 0, sizeof v);
    rill_tcp_opts o = {.max_accepts = K};
    CHECK_OK(srv_new(&v, &o));
    /* Before the server runs, all clients connect (the kernel completes
     * them into the listen queue) and send; then the process is left 4
     * free fds, fewer than the clients: accept must hit EMFILE. */
    int c[K], top = 0;
    for (int i = 0; i < K; i++) {
        c[i] = cli_connect(v.port);
        CHECK(c[i] >= 0);
        CHECK_EQ(cli_sends(c[i], "fd\n"), 0);
        if (c[i] > top)
            top = c[i];
    }
    struct rlimit rl, low;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    low = rl;
    low.rlim_cur = (rlim_t)top + 5;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    int room = free_fds_below(top + 5);
    CHECK_OK(srv_go(&v));
    char buf[64];
    int ok = 0;
    for (int i = 0; i < K; i++) {
        ok += cli_recv_all(c[i], buf, sizeof buf) == 8 && strcmp(buf, "echo:fd\n") == 0;
        close(c[i]);
    }
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    CHECK_OK(srv_join(&v));
    CHECK(room < K);
    CHECK_EQ(ok, K);
    CHECK_EQ(v.st.accepted, K);
    CHECK(v.st.accept_errors > 0);
    CHECK_EQ(v.st.refused, 0);
    CHECK_EQ(v.st.active, 0);
}
