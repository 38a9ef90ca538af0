/* A load client for the hello protocol (examples/hello_server): request =
 * bytes up to the first "\n\n", reply = "Hello " + those bytes, then the
 * server closes. Shared by bench/hello.c and tests/test_hello_load.c so the
 * benchmark and the load test drive servers with the same code.
 *
 * hc_run keeps opts->concurrency connections in flight on one epoll until
 * opts->total have ended. Each connection writes its request (in one write,
 * or in several pieces on separate loop turns with TCP_NODELAY so they leave
 * as separate segments), reads until EOF and compares the reply byte for
 * byte with what it sent, without storing it. The client closes after the
 * server, so the client side holds no TIME_WAIT state and 20,000 connections
 * do not use up ephemeral ports. Every failure is counted, the first few are
 * described; nothing is retried.
 *
 * It brings bench/hello_child.h (the server as a child process) along, so
 * a program includes this one header. Not thread-safe; each function static
 * inline, for the one program that includes it. */
#ifndef RILL_BENCH_HELLO_CLIENT_H
#define RILL_BENCH_HELLO_CLIENT_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hello_child.h"

/* Request i of a run: write it into buf (at most cap bytes) and return its
 * length; *pieces is the number of writes it is sent in (1 when untouched).
 * With pieces > 1 the last write is the last byte alone, so the blank line's
 * two newlines arrive in different writes; the bytes before it are split
 * evenly over the other pieces-1 writes. */
typedef size_t (*hc_request_fn)(void *arg, uint64_t i, char *buf, size_t cap, unsigned *pieces);

typedef struct hc_opts {
    const char *host;     /* numeric IPv4 address of the server */
    uint16_t port;
    unsigned concurrency; /* connections in flight */
    uint64_t total;       /* connections in all */
    size_t req_cap;       /* largest request hc_request_fn may write */
    hc_request_fn request;
    void *arg;
    int stall_ms;         /* give up when nothing happens this long; 0: 10 s */
} hc_opts;

typedef struct hc_result {
    uint64_t ok;          /* replies that matched, then EOF */
    uint64_t errors;      /* connections that did not end with ok */
    uint64_t mismatches;  /* ... of them, a wrong, short or long reply */
    uint64_t addr_unavail; /* ... of them, EADDRNOTAVAIL at connect */
    uint64_t peak;        /* most connections in flight at once */
    double seconds;       /* first connect to last close */
    char first[3][200];   /* the first failures, described */
} hc_result;

/* Raise the soft RLIMIT_NOFILE towards want (the hard limit caps it): 500
 * connections take 500 fds here and 500 in a server started afterwards,
 * which inherits the limit (Debian's default soft limit is 1024). Returns
 * the soft limit now in force. */
static inline long hc_raise_nofile(long want) {
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) != 0)
        return -errno;
    if (r.rlim_cur < (rlim_t)want) {
        r.rlim_cur = r.rlim_max < (rlim_t)want ? r.rlim_max : (rlim_t)want;
        setrlimit(RLIMIT_NOFILE, &r);
        getrlimit(RLIMIT_NOFILE, &r);
    }
    return (long)r.rlim_cur;
}

struct hc_slot {
    int fd;
    int writing;       /* request not fully sent yet */
    int want_out;      /* a send hit EAGAIN, or connect is in progress */
    unsigned pieces, piece;
    uint64_t idx;
    size_t len, sent, plen; /* request length, bytes sent, payload length */
    size_t got;        /* reply bytes received and matched so far */
    char *req;
};

struct hc_run {
    const hc_opts *o;
    hc_result *r;
    int ep;
    struct sockaddr_in sa;
    struct hc_slot *slot;
    unsigned *defer, *defer_next, ndefer, ndefer_next;
    char *rbuf;
    uint64_t started, ended, active;
};

#define HC_RBUF 65536

static inline void hc_note(hc_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void hc_note(hc_result *r, const char *fmt, ...) {
    for (int i = 0; i < 3; i++)
        if (!r->first[i][0]) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(r->first[i], sizeof r->first[i], fmt, ap);
            va_end(ap);
            return;
        }
}

static inline void hc_end(struct hc_run *h, struct hc_slot *s, int ok) {
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    h->ended++;
    h->active--;
    if (ok)
        h->r->ok++;
    else
        h->r->errors++;
}

static inline void hc_fail(struct hc_run *h, struct hc_slot *s, const char *what, int err) {
    hc_note(h->r, "connection %llu: %s: %s", (unsigned long long)s->idx, what, strerror(err));
    hc_end(h, s, 0);
}

static inline void hc_mismatch(struct hc_run *h, struct hc_slot *s, const char *what) {
    h->r->mismatches++;
    hc_note(h->r, "connection %llu: %s after %zu of %zu reply bytes", (unsigned long long)s->idx,
            what, s->got, s->plen + 6);
    hc_end(h, s, 0);
}

/* Open connection number h->started in slot k. */
static inline void hc_start(struct hc_run *h, unsigned k) {
    struct hc_slot *s = &h->slot[k];
    s->idx = h->started++;
    s->pieces = 1;
    s->len = h->o->request(h->o->arg, s->idx, s->req, h->o->req_cap, &s->pieces);
    if (s->pieces < 1)
        s->pieces = 1;
    char *end = memmem(s->req, s->len, "\n\n", 2);
    s->plen = end ? (size_t)(end - s->req) : s->len;
    s->piece = 0;
    s->sent = s->got = 0;
    s->writing = s->want_out = 1;
    h->active++;
    if (h->active > h->r->peak)
        h->r->peak = h->active;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        hc_fail(h, s, "socket", errno);
        return;
    }
    if (!end) {
        hc_note(h->r, "connection %llu: request has no blank line", (unsigned long long)s->idx);
        hc_end(h, s, 0);
        return;
    }
    if (s->pieces > 1) {
        int one = 1;
        setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(s->fd, (struct sockaddr *)&h->sa, sizeof h->sa) != 0 && errno != EINPROGRESS) {
        if (errno == EADDRNOTAVAIL)
            h->r->addr_unavail++;
        hc_fail(h, s, "connect", errno);
        return;
    }
    /* Edge-triggered for both directions: one epoll_ctl per connection. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.u32 = k};
    if (epoll_ctl(h->ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
        hc_fail(h, s, "epoll_ctl", errno);
}

/* Send the current piece; a further piece waits for the next loop turn. */
static inline void hc_write(struct hc_run *h, unsigned k) {
    struct hc_slot *s = &h->slot[k];
    size_t end = s->piece + 1 >= s->pieces ? s->len
                                           : (s->len - 1) * (s->piece + 1) / (s->pieces - 1);
    while (s->sent < end) {
        ssize_t n = send(s->fd, s->req + s->sent, end - s->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            s->want_out = 1;
            return;
        }
        if (n <= 0) {
            hc_fail(h, s, "send", n < 0 ? errno : EPIPE);
            return;
        }
        s->sent += (size_t)n;
    }
    s->want_out = 0;
    if (++s->piece < s->pieces)
        h->defer_next[h->ndefer_next++] = k;
    else
        s->writing = 0;
}

/* Read what is there; compare it with "Hello " + payload as it arrives. */
static inline void hc_read(struct hc_run *h, unsigned k) {
    struct hc_slot *s = &h->slot[k];
    size_t want = s->plen + 6;
    for (;;) {
        ssize_t n = recv(s->fd, h->rbuf, HC_RBUF, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0) {
            hc_fail(h, s, "recv", errno);
            return;
        }
        if (n == 0) {
            if (s->got != want)
                hc_mismatch(h, s, "short reply");
            else if (s->writing)
                hc_mismatch(h, s, "reply before the whole request was sent");
            else
                hc_end(h, s, 1);
            return;
        }
        const char *p = h->rbuf;
        size_t m = (size_t)n;
        if (s->got + m > want) {
            hc_mismatch(h, s, "reply too long");
            return;
        }
        if (s->got < 6) {
            size_t a = m < 6 - s->got ? m : 6 - s->got;
            if (memcmp(p, &"Hello "[s->got], a) != 0) {
                hc_mismatch(h, s, "wrong reply prefix");
                return;
            }
            s->got += a, p += a, m -= a;
        }
        if (m && memcmp(p, s->req + (s->got - 6), m) != 0) {
            hc_mismatch(h, s, "reply differs");
            return;
        }
        s->got += m;
    }
}

static inline void hc_free_run(struct hc_run *h) {
    if (h->slot)
        for (unsigned k = 0; k < h->o->concurrency; k++) {
            if (h->slot[k].fd >= 0)
                close(h->slot[k].fd);
            free(h->slot[k].req);
        }
    free(h->slot);
    free(h->defer);
    free(h->defer_next);
    free(h->rbuf);
    if (h->ep >= 0)
        close(h->ep);
}

/* Run the load; *r is filled. Returns 0 when every connection got its
 * reply, -1 otherwise (r says why). */
static inline int hc_run(const hc_opts *o, hc_result *r) {
    memset(r, 0, sizeof *r);
    struct hc_run h = {.o = o, .r = r, .ep = -1};
    unsigned c = o->concurrency ? o->concurrency : 1;
    if ((uint64_t)c > o->total)
        c = (unsigned)(o->total ? o->total : 1);
    hc_opts oc = *o;
    oc.concurrency = c;
    h.o = &oc;
    h.sa.sin_family = AF_INET;
    h.sa.sin_port = htons(o->port);
    if (inet_pton(AF_INET, o->host, &h.sa.sin_addr) != 1) {
        hc_note(r, "host %s is not a numeric IPv4 address", o->host);
        r->errors = o->total;
        return -1;
    }
    h.ep = epoll_create1(EPOLL_CLOEXEC);
    h.slot = calloc(c, sizeof *h.slot);
    h.defer = calloc(c, sizeof *h.defer);
    h.defer_next = calloc(c, sizeof *h.defer_next);
    h.rbuf = malloc(HC_RBUF);
    int bad = h.ep < 0 || !h.slot || !h.defer || !h.defer_next || !h.rbuf;
    for (unsigned k = 0; !bad && k < c; k++) {
        h.slot[k].fd = -1;
        bad = !(h.slot[k].req = malloc(o->req_cap));
    }
    if (bad) {
        hc_note(r, "out of memory or fds for the client");
        r->errors = o->total;
        hc_free_run(&h);
        return -1;
    }
    int stall_ms = o->stall_ms > 0 ? o->stall_ms : 10000;
    struct epoll_event ev[256];
    double t0 = hc_now(), last = t0;
    for (unsigned k = 0; k < c && h.started < o->total; k++)
        hc_start(&h, k);
    while (h.ended < o->total) {
        unsigned *d = h.defer_next;
        unsigned nd = h.ndefer_next;
        h.defer_next = h.defer, h.defer = d;
        h.ndefer = nd, h.ndefer_next = 0;
        int n = epoll_wait(h.ep, ev, 256, nd ? 0 : 200);
        if (n < 0 && errno != EINTR) {
            hc_note(r, "epoll_wait: %s", strerror(errno));
            break;
        }
        double now = hc_now();
        if (n > 0 || nd)
            last = now;
        else if ((now - last) * 1000 > stall_ms) {
            hc_note(r, "no progress for %d ms with %llu connections open", stall_ms,
                    (unsigned long long)h.active);
            break;
        }
        for (unsigned i = 0; i < nd; i++) { /* the next pieces, one turn later */
            struct hc_slot *s = &h.slot[h.defer[i]];
            if (s->fd >= 0 && s->writing && !s->want_out)
                hc_write(&h, h.defer[i]);
        }
        for (int i = 0; i < n; i++) {
            unsigned k = ev[i].data.u32;
            struct hc_slot *s = &h.slot[k];
            if (s->fd >= 0 && s->writing && s->want_out && (ev[i].events & (EPOLLOUT | EPOLLERR)))
                hc_write(&h, k);
            if (s->fd >= 0 && (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                hc_read(&h, k);
        }
        /* Refill freed slots after the batch: a slot's events above all
         * belong to the connection that had it when epoll_wait returned. */
        for (unsigned k = 0; k < c && h.started < o->total; k++)
            if (h.slot[k].fd < 0)
                hc_start(&h, k);
    }
    r->seconds = hc_now() - t0;
    r->errors += o->total - h.ended; /* abandoned: stalled or epoll failed */
    hc_free_run(&h);
    return r->ok == o->total && r->errors == 0 ? 0 : -1;
}

#endif
