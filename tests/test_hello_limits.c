/* examples/hello_server's limits end to end (the built program on --port 0,
 * real sockets on 127.0.0.1): message size, idle timeout, the deadline
 * against a slowloris client while others are served, max_conns, and
 * running out of fds. No assertion depends on timing except "never before
 * the limit"; every wait has a generous bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello_child.h"
#include "net_util.h"
#include "rill.h"
#include "rill_test.h"

#define TOO_LARGE "ERROR message too large\n"
#define TIMEOUT "ERROR timeout\n"

RILL_TEST(hello_limits, max_message_counts_the_blank_line_and_errors_past_it) {
    hello_child c;
    const char *args[] = {"--count", "3", "--max-message", "1000", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    static char req[8192], buf[2048];
    memset(req, 'm', sizeof req);
    /* 998 bytes + "\n\n" = 1000: fits exactly */
    memcpy(req + 998, "\n\n", 2);
    int fd = cli_connect(c.port);
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, req, 1000), 0);
    CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), 6 + 998);
    close(fd);
    /* 999 + "\n\n": one byte too many */
    memset(req, 'm', sizeof req);
    memcpy(req + 999, "\n\n", 2);
    fd = cli_connect(c.port);
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, req, 1001), 0);
    CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), (ssize_t)strlen(TOO_LARGE));
    CHECK_STREQ(buf, TOO_LARGE);
    close(fd);
    /* 8 KiB with no blank line: the server reads what it needs, answers,
     * and closes gracefully, so the error line is not lost to a reset */
    memset(req, 'm', sizeof req);
    fd = cli_connect(c.port);
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, req, sizeof req), 0);
    CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), (ssize_t)strlen(TOO_LARGE));
    CHECK_STREQ(buf, TOO_LARGE);
    close(fd);
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "replied"), 1);
    CHECK_EQ(hello_stat(&c, "too_large"), 2);
}

RILL_TEST(hello_limits, an_idle_client_gets_a_timeout_line) {
    hello_child c;
    const char *args[] = {"--count", "2", "--idle-ms", "200", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    char buf[256];
    for (int i = 0; i < 2; i++) {
        uint64_t t0 = rill_sched_now_ns(); /* before the server can start waiting */
        int fd = cli_connect(c.port);
        CHECK(fd >= 0);
        if (i == 1)
            CHECK_EQ(cli_sends(fd, "then nothing\n"), 0);
        CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), (ssize_t)strlen(TIMEOUT));
        CHECK_STREQ(buf, TIMEOUT);
        CHECK(rill_sched_now_ns() - t0 >= 200 * UINT64_C(1000000)); /* never early */
        close(fd);
    }
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "timeouts"), 2);
}

RILL_TEST(hello_limits, slowloris_is_cut_at_the_deadline_while_others_are_served) {
    hello_child c;
    const char *args[] = {"--deadline-ms", "2500", "--idle-ms", "10000", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    uint64_t t0 = rill_sched_now_ns(); /* before the accept that starts the deadline */
    int slow = cli_connect(c.port);
    CHECK(slow >= 0);
    int served_meanwhile = 0, sent = 0;
    char buf[256];
    /* One byte a second; between bytes, other clients come and go. */
    while (!cli_readable(slow, 0) && sent < 60) {
        CHECK_EQ(cli_sends(slow, "s"), 0);
        sent++;
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(cli_exchange(c.port, "quick\n\n", buf, sizeof buf), 11);
            CHECK_STREQ(buf, "Hello quick");
            served_meanwhile += !cli_readable(slow, 0);
        }
        cli_readable(slow, 1000);
    }
    CHECK_EQ(cli_recv_all(slow, buf, sizeof buf), (ssize_t)strlen(TIMEOUT));
    CHECK_STREQ(buf, TIMEOUT);
    CHECK(rill_sched_now_ns() - t0 >= 2500 * UINT64_C(1000000)); /* never early */
    close(slow);
    /* It sent bytes all along, so only the deadline could cut it, and the
     * server was not blocked by it. */
    CHECK(sent >= 2);
    CHECK(served_meanwhile >= 3);
    CHECK_EQ(kill(c.pid, SIGTERM), 0);
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "timeouts"), 1);
    CHECK_EQ(hello_stat(&c, "replied"), 3 * sent);
}

RILL_TEST(hello_limits, clients_beyond_max_conns_wait_then_are_served) {
    hello_child c;
    const char *args[] = {"--count", "4", "--max-conns", "2", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    int fd[4];
    for (int i = 0; i < 4; i++) {
        fd[i] = cli_connect(c.port);
        CHECK(fd[i] >= 0);
    }
    /* 2 and 3 wait in the listen queue: their requests cannot be answered
     * while 0 and 1 hold both slots. */
    CHECK_EQ(cli_sends(fd[3], "three\n\n"), 0);
    CHECK_EQ(cli_sends(fd[2], "two\n\n"), 0);
    CHECK(!cli_readable(fd[2], 300));
    CHECK(!cli_readable(fd[3], 0));
    const char *want[] = {"Hello zero", "Hello one", "Hello two", "Hello three"};
    CHECK_EQ(cli_sends(fd[0], "zero\n\n"), 0);
    CHECK_EQ(cli_sends(fd[1], "one\n\n"), 0);
    char buf[64];
    for (int i = 0; i < 4; i++) {
        CHECK(cli_recv_all(fd[i], buf, sizeof buf) > 0);
        CHECK_STREQ(buf, want[i]);
        close(fd[i]);
    }
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "peak"), 2);
    CHECK(hello_stat(&c, "at_limit") >= 1);
    CHECK_EQ(hello_stat(&c, "replied"), 4);
}

RILL_TEST(hello_limits, out_of_fds_nothing_crashes_and_all_are_served) {
    enum { K = 40 };
    hello_child c;
    const char *args[] = {"--count", "40", NULL};
    /* 16 fds: stdio, epoll, listener, eventfd leave about 10 for clients */
    CHECK_EQ(hello_start(&c, args, 16), 0);
    int fd[K];
    /* All connect first and send only then: the server cannot finish one
     * before it has tried to accept more than its fds allow. */
    for (int i = 0; i < K; i++) {
        fd[i] = cli_connect(c.port);
        CHECK(fd[i] >= 0);
    }
    char req[32], want[32], buf[64];
    for (int i = 0; i < K; i++) {
        snprintf(req, sizeof req, "client %d\n\n", i);
        CHECK_EQ(cli_sends(fd[i], req), 0);
    }
    int ok = 0;
    for (int i = 0; i < K; i++) {
        snprintf(want, sizeof want, "Hello client %d", i);
        ok += cli_recv_all(fd[i], buf, sizeof buf) > 0 && strcmp(buf, want) == 0;
        close(fd[i]);
    }
    CHECK_EQ(ok, K);
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "replied"), K);
    CHECK(hello_stat(&c, "accept_errors") > 0);
    CHECK(hello_stat(&c, "peak") < K);
}
