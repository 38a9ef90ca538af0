/* examples/hello_server end to end: the built program on --port 0, real
 * clients (this file's own, nc and socat) on 127.0.0.1. The protocol, its
 * framing across reads, big replies to slow readers, binary data, clients
 * that leave early, the command line, and the stop by signal. The limits
 * are in tests/test_hello_limits.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hello_child.h"
#include "../examples/hello_proto.h"
#include "net_util.h"
#include "rill_test.h"
#include "run_cmd.h"

RILL_TEST(hello_server, replies_hello_and_the_request_then_exits_after_count) {
    hello_child c;
    const char *args[] = {"--count", "2", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    char buf[256];
    CHECK_EQ(cli_exchange(c.port, "world\n\n", buf, sizeof buf), 11);
    CHECK_STREQ(buf, "Hello world");
    /* The blank line anywhere (not only at the end of a read, unlike the
     * seed's server); what follows it is ignored. */
    CHECK_EQ(cli_exchange(c.port, "a\nb\n\nignored\n\n", buf, sizeof buf), 9);
    CHECK_STREQ(buf, "Hello a\nb");
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "accepted"), 2);
    CHECK_EQ(hello_stat(&c, "replied"), 2);
    CHECK_EQ(hello_stat(&c, "active"), 0);
}

RILL_TEST(hello_server, a_request_in_one_byte_writes) {
    hello_child c;
    const char *args[] = {"--count", "2", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    const char *reqs[] = {"split over many reads, one byte each\n\n", "\n\n"};
    const char *want[] = {"Hello split over many reads, one byte each", "Hello "};
    for (int r = 0; r < 2; r++) {
        int fd = cli_connect(c.port);
        CHECK(fd >= 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        for (const char *p = reqs[r]; *p; p++) {
            CHECK_EQ(cli_send(fd, p, 1), 0);
            usleep(1000); /* separate segments, separate reads */
        }
        char buf[256];
        CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), (ssize_t)strlen(want[r]));
        CHECK_STREQ(buf, want[r]);
        close(fd);
    }
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "replied"), 2);
}

RILL_TEST(hello_server, a_binary_request_comes_back_byte_for_byte) {
    hello_child c;
    const char *args[] = {"--count", "1", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    unsigned char req[600];
    size_t n = 0;
    for (int i = 0; i < 512; i++) {
        unsigned char b = (unsigned char)(i * 131 + 7);
        if (b == '\n' && n > 0 && req[n - 1] == '\n')
            b = 0; /* no blank line inside */
        req[n++] = b;
    }
    if (req[n - 1] == '\n')
        req[n - 1] = 0;
    memcpy(req + n, "\n\n\xff\x00", 4);
    int fd = cli_connect(c.port);
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, req, n + 4), 0);
    char buf[1024];
    CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), (ssize_t)(6 + n));
    CHECK(memcmp(buf, "Hello ", 6) == 0);
    CHECK(memcmp(buf + 6, req, n) == 0);
    close(fd);
    CHECK_EQ(hello_wait(&c), 0);
}

RILL_TEST(hello_server, a_reply_larger_than_the_socket_buffers_to_a_slow_reader) {
    enum { N = 6 << 20 }; /* more than the kernel's largest send buffer (4 MiB) */
    hello_child c;
    const char *args[] = {"--count", "1", "--max-message", "8388608", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    char *req = malloc(N + 2), *got = malloc(N + 16);
    CHECK(req && got);
    for (size_t i = 0; i < N; i++)
        req[i] = (char)('A' + i % 23);
    memcpy(req + N, "\n\n", 2);
    int fd = cli_connect_buf(c.port, 8192);
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, req, N + 2), 0);
    size_t len = 0;
    ssize_t r;
    while ((r = recv(fd, got + len, 4096, 0)) > 0) {
        len += (size_t)r;
        if (len % (256 * 1024) < (size_t)r)
            usleep(2000); /* the server meets a full buffer: EAGAIN, partial sends */
    }
    int same = r == 0 && len == 6 + (size_t)N && memcmp(got, "Hello ", 6) == 0 &&
               memcmp(got + 6, req, N) == 0;
    free(req);
    free(got);
    close(fd);
    CHECK(same);
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "replied"), 1);
}

RILL_TEST(hello_server, clients_that_leave_early_cost_nothing) {
    hello_child c;
    const char *args[] = {"--count", "5", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    char buf[256];
    int fd = cli_connect(c.port); /* a reset in the middle of a request */
    CHECK(fd >= 0);
    CHECK_EQ(cli_sends(fd, "half a requ"), 0);
    cli_reset(fd);
    fd = cli_connect(c.port); /* connects and closes at once */
    CHECK(fd >= 0);
    close(fd);
    fd = cli_connect(c.port); /* binary garbage, then EOF: no reply */
    CHECK(fd >= 0);
    CHECK_EQ(cli_send(fd, "\x00\x01\xfe\xff\n\r\n\x00garbage", 15), 0);
    shutdown(fd, SHUT_WR);
    CHECK_EQ(cli_recv_all(fd, buf, sizeof buf), 0);
    close(fd);
    fd = cli_connect(c.port); /* a reset after a whole request */
    CHECK(fd >= 0);
    CHECK_EQ(cli_sends(fd, "x\n\n"), 0);
    cli_reset(fd);
    CHECK_EQ(cli_exchange(c.port, "next\n\n", buf, sizeof buf), 10);
    CHECK_STREQ(buf, "Hello next");
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "accepted"), 5);
    CHECK_EQ(hello_stat(&c, "active"), 0);
    CHECK(hello_stat(&c, "eof") + hello_stat(&c, "resets") >= 3);
}

static int have(const char *tool) {
    char cmd[128], out[64];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1 && echo yes", tool);
    return run(cmd, out, sizeof out) == 0 && strcmp(out, "yes\n") == 0;
}

RILL_TEST(hello_server, nc_and_socat_as_clients) {
    if (!have("nc") || !have("socat")) {
        rill_test__fail(__FILE__, __LINE__,
                        "nc or socat missing: install netcat-openbsd and socat "
                        "(scripts/deps.sh test)");
        return;
    }
    hello_child c;
    const char *args[] = {"--count", "2", NULL};
    CHECK_EQ(hello_start(&c, args, 0), 0);
    char cmd[256], out[256];
    /* -N: half-close after stdin's end, as the protocol needs nothing else */
    snprintf(cmd, sizeof cmd, "printf 'from nc\\n\\n' | nc -N -w 30 127.0.0.1 %u", c.port);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, "Hello from nc");
    snprintf(cmd, sizeof cmd, "printf 'via socat\\n\\nrest' | socat -t 30 - TCP:127.0.0.1:%u",
             c.port);
    CHECK_EQ(run(cmd, out, sizeof out), 0);
    CHECK_STREQ(out, "Hello via socat");
    CHECK_EQ(hello_wait(&c), 0);
    CHECK_EQ(hello_stat(&c, "replied"), 2);
}

RILL_TEST(hello_server, sigterm_stops_accepting_and_drains) {
    hello_child c;
    CHECK_EQ(hello_start(&c, NULL, 0), 0);
    int a = cli_connect(c.port);
    CHECK(a >= 0);
    CHECK_EQ(cli_sends(a, "draining"), 0);
    /* Connections are accepted in order: once b is answered, a has been
     * accepted and waits for the rest of its request. */
    char buf[256];
    CHECK_EQ(cli_exchange(c.port, "b\n\n", buf, sizeof buf), 7);
    CHECK_EQ(kill(c.pid, SIGTERM), 0);
    CHECK(cli_until_refused(c.port, 5000));
    CHECK_EQ(cli_sends(a, " done\n\n"), 0);
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 19);
    CHECK_STREQ(buf, "Hello draining done");
    close(a);
    CHECK_EQ(hello_wait(&c), 0);
    CHECK(hello_stat(&c, "replied") >= 2);
    CHECK_EQ(hello_stat(&c, "active"), 0);
}

RILL_TEST(hello_server, sigint_with_no_clients_exits_zero) {
    hello_child c;
    CHECK_EQ(hello_start(&c, NULL, 0), 0);
    CHECK_EQ(hello_stop(&c, SIGINT), 0);
    CHECK_EQ(hello_stat(&c, "accepted"), 0);
}

RILL_TEST(hello_server, bad_arguments_and_a_port_in_use) {
    char out[256];
    CHECK_EQ(run("'" HELLO_BIN "' --port 70000 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run("'" HELLO_BIN "' --max-message 1 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run("'" HELLO_BIN "' --idle-ms 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run("'" HELLO_BIN "' --what 2>/dev/null", out, sizeof out), 2);
    CHECK_EQ(run("'" HELLO_BIN "' --host nowhere --port 0 2>/dev/null", out, sizeof out), 1);
    hello_child c;
    CHECK_EQ(hello_start(&c, NULL, 0), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "'" HELLO_BIN "' --port=%u 2>&1", c.port);
    CHECK_EQ(run(cmd, out, sizeof out), 1);
    CHECK(strstr(out, "in use") != NULL);
    CHECK_EQ(hello_stop(&c, SIGTERM), 0);
}

RILL_TEST(hello_server, the_framer_agrees_with_the_server_on_the_limit) {
    /* The pure framer (hello_proto.h, fuzzed in tests/fuzz/fuzz_hello.c):
     * the blank line must end within max bytes. */
    hello_framer f;
    hello_framer_init(&f, 5);
    CHECK_EQ(hello_framer_feed(&f, "abc\n", 4), HELLO_NEED_MORE);
    CHECK_EQ(hello_framer_feed(&f, "\nxyz", 4), HELLO_COMPLETE);
    CHECK_EQ(f.req_len, 3);
    hello_framer_init(&f, 5);
    CHECK_EQ(hello_framer_feed(&f, "abcd\n\n", 6), HELLO_TOO_LARGE);
    hello_framer_init(&f, 5);
    CHECK_EQ(hello_framer_feed(&f, "abcd", 4), HELLO_NEED_MORE);
    CHECK_EQ(hello_framer_feed(&f, "e", 1), HELLO_TOO_LARGE);
}
