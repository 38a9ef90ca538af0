/* The TCP server in-process, on real sockets on 127.0.0.1, port 0: serving,
 * max_accepts, stopping (drain, now, from a signal handler), refusals, bad
 * arguments, freeing. The server runs on a thread (pthread_create in
 * tests/util/net_harness.h), so this file also runs under ThreadSanitizer. */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "net_harness.h"
#include "rill_test.h"

RILL_TEST(net, serves_clients_on_an_ephemeral_port_then_ends_at_max_accepts) {
    struct srv v;
    memset(&v, 0, sizeof v);
    rill_tcp_opts o = {.max_accepts = 3};
    CHECK_OK(srv_start(&v, &o));
    CHECK(v.port != 0);
    char buf[256];
    CHECK_EQ(cli_exchange(v.port, "one\n", buf, sizeof buf), 9);
    CHECK_STREQ(buf, "echo:one\n");
    CHECK_EQ(cli_exchange(v.port, "two\nignored", buf, sizeof buf), 9);
    CHECK_STREQ(buf, "echo:two\n");
    CHECK(cli_exchange(v.port, "three\n", buf, sizeof buf) > 0);
    CHECK_STREQ(buf, "echo:three\n");
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.accepted, 3);
    CHECK_EQ(v.st.active, 0);
    CHECK_EQ(v.st.peak, 1);
    CHECK_EQ(v.st.refused + v.st.timed_out + v.st.killed + v.st.accept_errors, 0);
    CHECK_EQ(v.x.made, 3);
    CHECK_EQ(v.x.ended, 3);
    CHECK_EQ(v.x.closed, 0);
    CHECK_EQ(v.x.peer_ok, 3);
    CHECK_EQ(v.x.last_id, 3);
    /* max_accepts closed the listener */
    CHECK_EQ(cli_connect(v.port), -ECONNREFUSED);
}

RILL_TEST(net, stop_drain_from_another_thread_lets_connections_finish) {
    struct srv v;
    memset(&v, 0, sizeof v);
    CHECK_OK(srv_start(&v, NULL));
    int a = cli_connect(v.port);
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "par"), 0);
    /* The kernel hands out connections in order: once b is served, a has
     * been accepted and its task waits for the rest of its line. */
    char buf[256];
    CHECK_EQ(cli_exchange(v.port, "b\n", buf, sizeof buf), 7);
    rill_tcp_server_stop(v.srv, RILL_TCP_STOP_DRAIN);
    rill_tcp_server_stop(v.srv, RILL_TCP_STOP_DRAIN); /* twice is harmless */
    /* Soon the listener is closed: a new client is refused. */
    CHECK(cli_until_refused(v.port, 5000));
    CHECK_EQ(cli_sends(a, "tial\n"), 0);
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 13);
    CHECK_STREQ(buf, "echo:partial\n");
    close(a);
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.active, 0);
    CHECK_EQ(v.st.killed, 0);
    CHECK_EQ(v.x.closed, 0);
}

RILL_TEST(net, stop_now_kills_the_connection_tasks_and_their_on_close_runs) {
    struct srv v;
    memset(&v, 0, sizeof v);
    CHECK_OK(srv_start(&v, NULL));
    int a = cli_connect(v.port), b = cli_connect(v.port);
    CHECK(a >= 0 && b >= 0);
    CHECK_EQ(cli_sends(a, "never ends"), 0);
    char buf[256];
    CHECK_EQ(cli_exchange(v.port, "c\n", buf, sizeof buf), 7); /* a and b accepted */
    rill_tcp_server_stop(v.srv, RILL_TCP_STOP_NOW);
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0); /* closed, no reply */
    CHECK_EQ(cli_recv_all(b, buf, sizeof buf), 0);
    close(a);
    close(b);
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.accepted, 3);
    CHECK_EQ(v.st.killed, 2);
    CHECK_EQ(v.st.active, 0);
    CHECK_EQ(v.x.closed, 2);
    CHECK_EQ(v.x.ended, 1);
}

RILL_TEST(net, drain_then_now_kills_what_is_left) {
    struct srv v;
    memset(&v, 0, sizeof v);
    CHECK_OK(srv_start(&v, NULL));
    int a = cli_connect(v.port);
    CHECK(a >= 0);
    char buf[256];
    CHECK_EQ(cli_exchange(v.port, "b\n", buf, sizeof buf), 7);
    rill_tcp_server_stop(v.srv, RILL_TCP_STOP_DRAIN);
    CHECK(cli_until_refused(v.port, 5000)); /* the listener closes */
    CHECK(!cli_readable(a, 0)); /* a still waits for its line */
    rill_tcp_server_stop(v.srv, RILL_TCP_STOP_NOW);
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0);
    close(a);
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.killed, 1);
    CHECK_EQ(v.x.closed, 1);
}

static rill_tcp_server *g_sig_srv;
static void on_usr1(int sig) {
    (void)sig;
    rill_tcp_server_stop(g_sig_srv, RILL_TCP_STOP_DRAIN);
}

RILL_TEST(net, stop_from_a_signal_handler) {
    struct srv v;
    memset(&v, 0, sizeof v);
    CHECK_OK(srv_start(&v, NULL));
    g_sig_srv = v.srv;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    char buf[256];
    CHECK_EQ(cli_exchange(v.port, "x\n", buf, sizeof buf), 7);
    errno = 1234;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(errno, 1234); /* the handler left errno alone */
    CHECK_OK(srv_join(&v)); /* the run ends: nothing else would end it */
    CHECK_EQ(v.st.accepted, 1);
    signal(SIGUSR1, SIG_DFL);
}

/* The doorbell's write fails (its counter is full: EAGAIN), and errno is
 * still what the interrupted code had; the stop is carried out all the same
 * (the flag is set, and a full counter is readable). */
RILL_TEST(net, stop_from_a_signal_handler_keeps_errno_when_its_write_fails) {
    struct srv v;
    memset(&v, 0, sizeof v);
    CHECK_OK(srv_new(&v, NULL)); /* not running: nobody drains the doorbell */
    g_sig_srv = v.srv;
    int efd = find_anon_fd("eventfd", 4096);
    CHECK(efd >= 0);
    uint64_t most = UINT64_MAX - 1;
    CHECK_EQ(write(efd, &most, sizeof most), (ssize_t)sizeof most);
    uint64_t one = 1;
    CHECK(write(efd, &one, sizeof one) < 0 && errno == EAGAIN); /* what stop will meet */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
    errno = 1234;
    CHECK_EQ(raise(SIGUSR1), 0);
    CHECK_EQ(errno, 1234);
    signal(SIGUSR1, SIG_DFL);
    CHECK_OK(srv_go(&v));
    CHECK_OK(srv_join(&v)); /* stopped before the first accept */
    CHECK_EQ(v.st.accepted, 0);
}

RILL_TEST(net, stop_before_the_run_ends_it_without_accepting) {
    rill_sched *s;
    rill_tcp_server *srv;
    struct hctx x;
    memset(&x, 0, sizeof x);
    CHECK_OK(rill_sched_new(&s));
    CHECK_OK(rill_tcp_server_new(s, NULL, hconn, &x, &srv));
    int c = cli_connect(rill_tcp_server_port(srv)); /* waits in the listen queue */
    CHECK(c >= 0);
    rill_tcp_server_stop(srv, RILL_TCP_STOP_DRAIN);
    CHECK_OK(rill_sched_run(s));
    struct rill_tcp_server_stats st;
    CHECK_OK(rill_tcp_server_stats(srv, &st));
    CHECK_EQ(st.accepted, 0);
    CHECK_EQ(rill_sched_count(s), 0);
    char buf[16];
    CHECK(cli_recv_all(c, buf, sizeof buf) <= 0); /* reset with the listener */
    close(c);
    rill_sched_free(s);
    rill_tcp_server_free(srv);
}

RILL_TEST(net, free_without_a_run_releases_everything) {
    rill_sched *s;
    rill_tcp_server *srv;
    struct hctx x;
    memset(&x, 0, sizeof x);
    CHECK_OK(rill_sched_new(&s));
    CHECK_OK(rill_tcp_server_new(s, NULL, hconn, &x, &srv));
    CHECK_EQ(rill_sched_count(s), 2); /* the accept task and the stop task */
    int c = cli_connect(rill_tcp_server_port(srv));
    CHECK(c >= 0);
    rill_sched_free(s);
    rill_tcp_server_free(srv); /* the sanitizer build checks for leaks */
    rill_tcp_server_free(NULL);
    close(c);
}

RILL_TEST(net, refused_connections_are_closed_and_counted) {
    struct srv v;
    memset(&v, 0, sizeof v);
    v.x.refuse_odd = 1;
    rill_tcp_opts o = {.max_accepts = 4};
    CHECK_OK(srv_start(&v, &o));
    char buf[256];
    for (int i = 1; i <= 4; i++) {
        ssize_t n = cli_exchange(v.port, "r\n", buf, sizeof buf);
        if (i % 2) {
            CHECK(n <= 0); /* closed (or reset): no reply */
        } else {
            CHECK_EQ(n, 7);
            CHECK_STREQ(buf, "echo:r\n");
        }
    }
    CHECK_OK(srv_join(&v));
    CHECK_EQ(v.st.accepted, 4);
    CHECK_EQ(v.st.refused, 2);
    CHECK_EQ(v.st.peak, 1);
    CHECK_EQ(v.x.made, 2);
}

static int never(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn) {
    (void)arg, (void)c, (void)task, (void)free_fn;
    return -EPERM;
}

RILL_TEST(net, new_rejects_bad_arguments_and_a_port_in_use) {
    rill_sched *s;
    rill_tcp_server *srv = NULL, *srv2 = (rill_tcp_server *)&srv;
    CHECK_OK(rill_sched_new(&s));
    rill_tcp_opts o = {.host = "localhost"}; /* not numeric */
    CHECK_EQ(rill_tcp_server_new(s, &o, never, NULL, &srv2), RILL_EINVAL);
    CHECK(srv2 == NULL);
    o.host = "127.0.0.1";
    CHECK_EQ(rill_tcp_server_new(s, &o, NULL, NULL, &srv), RILL_EINVAL);
    CHECK_EQ(rill_tcp_server_new(s, &o, never, NULL, NULL), RILL_EINVAL);
    CHECK_EQ(rill_tcp_server_new(NULL, &o, never, NULL, &srv), RILL_EINVAL);
    o.idle_ns = -5;
    CHECK_EQ(rill_tcp_server_new(s, &o, never, NULL, &srv), RILL_EINVAL);
    o.idle_ns = RILL_SCHED_FOREVER;
    o.backlog = -1;
    CHECK_EQ(rill_tcp_server_new(s, &o, never, NULL, &srv), RILL_EINVAL);
    o.backlog = 0;
    CHECK_EQ(rill_sched_count(s), 0);
    CHECK_OK(rill_tcp_server_new(s, &o, never, NULL, &srv));
    o.port = rill_tcp_server_port(srv);
    CHECK_EQ(rill_tcp_server_new(s, &o, never, NULL, &srv2), -EADDRINUSE);
    CHECK_EQ(rill_sched_count(s), 2); /* the failed one left no task */
    o.host = "::1";
    o.port = 0;
    int rc = rill_tcp_server_new(s, &o, never, NULL, &srv2);
    CHECK(rc == 0 || rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT); /* no IPv6 here */
    if (rc == 0)
        CHECK(rill_tcp_server_port(srv2) != 0);
    rill_sched_free(s);
    rill_tcp_server_free(srv);
    if (rc == 0)
        rill_tcp_server_free(srv2);
}

RILL_TEST(net, wait_ns_is_the_idle_timeout_shortened_to_the_deadline) {
    rill_tcp_conn c;
    memset(&c, 0, sizeof c);
    c.deadline = UINT64_MAX;
    c.idle_ns = 5 * MS;
    CHECK_EQ(rill_tcp_wait_ns(&c), 5 * MS);
    c.idle_ns = RILL_SCHED_FOREVER;
    CHECK_EQ(rill_tcp_wait_ns(&c), RILL_SCHED_FOREVER);
    c.deadline = rill_sched_now_ns() + 3600 * UINT64_C(1000000000);
    int64_t w = rill_tcp_wait_ns(&c);
    CHECK(w > 3599 * INT64_C(1000000000) && w <= 3600 * INT64_C(1000000000));
    c.idle_ns = 5 * MS;
    CHECK_EQ(rill_tcp_wait_ns(&c), 5 * MS);
    c.deadline = rill_sched_now_ns() - 1;
    CHECK_EQ(rill_tcp_wait_ns(&c), 0);
}

RILL_TEST(net, raise_fd_limit_goes_up_to_the_hard_limit) {
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 128)
        return; /* too little room to test */
    struct rlimit low = {64, rl.rlim_max};
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    CHECK_EQ(rill_raise_fd_limit(32), 64); /* never lowers */
    CHECK_EQ(rill_raise_fd_limit(100), 100);
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &low), 0);
    CHECK_EQ(low.rlim_cur, 100);
    long got = rill_raise_fd_limit(LONG_MAX);
    CHECK(got >= 100);
    if (rl.rlim_max != RLIM_INFINITY)
        CHECK(got <= (long)rl.rlim_max);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
}
