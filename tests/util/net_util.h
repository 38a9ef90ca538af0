/* Blocking TCP clients on 127.0.0.1 for the server tests (tests/test_net.c,
 * tests/test_hello_server.c). Every socket has a receive and send timeout:
 * a generous bound so that a broken server fails a test instead of hanging
 * it, never a measurement. */
#ifndef RILL_TESTS_NET_UTIL_H
#define RILL_TESTS_NET_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define NET_BOUND_S 30 /* seconds any single client operation may take */

/* Connect to 127.0.0.1:port with a receive buffer of rcvbuf bytes (0: the
 * default; set before connecting, so the window is small from the start).
 * Returns the fd or -errno. */
static inline int cli_connect_buf(uint16_t port, int rcvbuf) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {NET_BOUND_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static inline int cli_connect(uint16_t port) { return cli_connect_buf(port, 0); }

/* Send all n bytes. Returns 0 or -errno. */
static inline int cli_send(int fd, const void *p, size_t n) {
    const char *c = (const char *)p;
    while (n > 0) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static inline int cli_sends(int fd, const char *s) { return cli_send(fd, s, strlen(s)); }

/* Read until the peer closes (or cap - 1 bytes); NUL-terminates. Returns the
 * byte count, or -errno if the stream did not end cleanly (a reset, the
 * timeout): what was read before is still in buf. */
static inline ssize_t cli_recv_all(int fd, char *buf, size_t cap) {
    size_t len = 0;
    ssize_t r = 0;
    while (len + 1 < cap) {
        r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r > 0) {
            len += (size_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        break;
    }
    buf[len] = '\0';
    return r < 0 ? -errno : (ssize_t)len;
}

/* One request, the whole reply: connect, send req, read until the server
 * closes. Returns the reply length or a negative errno. */
static inline ssize_t cli_exchange(uint16_t port, const char *req, char *buf, size_t cap) {
    int fd = cli_connect(port);
    if (fd < 0)
        return fd;
    int rc = cli_sends(fd, req);
    ssize_t n = rc < 0 ? rc : cli_recv_all(fd, buf, cap);
    close(fd);
    return n;
}

/* Close with a reset instead of a FIN (SO_LINGER 0). */
static inline void cli_reset(int fd) {
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* Whether fd has something to read (data or EOF) within ms. */
static inline int cli_readable(int fd, int ms) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, ms) == 1;
}

/* Connect until the server refuses (its listener has closed), closing any
 * connection that still gets in (it is served, or reset as the listener
 * closes); at most tries attempts about 1 ms apart. Returns 1 once
 * refused, 0 if it never was. */
static inline int cli_until_refused(uint16_t port, int tries) {
    for (int i = 0; i < tries; i++) {
        int c = cli_connect(port);
        if (c == -ECONNREFUSED)
            return 1;
        if (c >= 0)
            close(c);
        usleep(1000);
    }
    return 0;
}

#endif
