/* A pipeline's live metrics over HTTP/1.1: `GET /metrics` answers
 * rill_pipeline_metrics_write() (Prometheus' text format 0.0.4), from rill's
 * own TCP server and scheduler on a thread of its own, so serving a scrape
 * never runs on a pipeline thread; the snapshot it takes never blocks them.
 *
 *     metrics_http *m;
 *     if (metrics_http_start(&m, p, "127.0.0.1", 9100, err, sizeof err) == 0) {
 *         rill_pipeline_run(p);      // scrapes are answered meanwhile
 *         metrics_http_stop(m);      // before rill_pipeline_free
 *     }
 *
 * One request per connection (the answer says `Connection: close`):
 *   GET or HEAD /metrics (a query string is ignored)  200, the metrics
 *   GET or HEAD of any other path                     404
 *   another method                                    405
 *   a request line or header that does not parse, or
 *   an HTTP/1.1 request without Host                  400
 *   no blank line within METRICS_HTTP_MAX_REQUEST      431
 *   a snapshot not to be had (RILL_EAGAIN twice)      503
 * A client that sends nothing for METRICS_HTTP_IDLE_NS, or has not finished
 * within METRICS_HTTP_DEADLINE_NS, is cut off by the server's limits
 * (rill/net.h); at most METRICS_HTTP_MAX_CONNS are served at once. */
#ifndef RILL_EXAMPLES_METRICS_HTTP_H
#define RILL_EXAMPLES_METRICS_HTTP_H

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "rill.h"

#define METRICS_HTTP_MAX_REQUEST 8192
#define METRICS_HTTP_IDLE_NS INT64_C(2000000000)
#define METRICS_HTTP_DEADLINE_NS INT64_C(5000000000)
#define METRICS_HTTP_MAX_CONNS 16

/* ---- the request: pure code ------------------------------------------------ */

/* Where the request in buf[0 .. len) ends (just past its blank line), or 0
 * if no blank line has come yet. Bare LF line ends are accepted too. */
static inline size_t metrics_http_request_end(const char *buf, size_t len) {
    for (size_t i = 1; i < len; i++)
        if (buf[i] == '\n' && (buf[i - 1] == '\n' || (i >= 2 && buf[i - 1] == '\r' &&
                                                      buf[i - 2] == '\n')))
            return i + 1;
    return 0;
}

static inline bool metrics_http_tchar(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The status for a complete request head (request line and header lines,
 * each ending in LF or CRLF, then an empty line). *head_only: HEAD. */
static inline int metrics_http_status(const char *req, size_t len, bool *head_only) {
    const char *end = req + len, *line = req;
    const char *nl = memchr(line, '\n', len);
    size_t n = (size_t)(nl - line);
    if (n && line[n - 1] == '\r')
        n--;
    /* method SP target SP HTTP/1.x: single spaces, nothing else. */
    const char *sp1 = memchr(line, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
    if (!sp1 || !sp2 || sp1 == line || sp2 == sp1 + 1)
        return 400;
    for (const char *c = line; c < sp1; c++)
        if (!metrics_http_tchar(*c))
            return 400;
    const char *target = sp1 + 1, *version = sp2 + 1;
    size_t tlen = (size_t)(sp2 - target), vlen = n - (size_t)(version - line);
    for (size_t i = 0; i < tlen; i++)
        if ((unsigned char)target[i] <= ' ' || target[i] == 0x7f)
            return 400;
    bool http11 = vlen == 8 && memcmp(version, "HTTP/1.1", 8) == 0;
    if (!http11 && !(vlen == 8 && memcmp(version, "HTTP/1.0", 8) == 0))
        return 400;
    if (target[0] != '/')
        return 400;
    /* Header lines: a name, a colon; no folding. HTTP/1.1 needs Host. */
    bool host = false;
    for (line = nl + 1; line < end; line = nl + 1) {
        nl = memchr(line, '\n', (size_t)(end - line));
        size_t m = (size_t)(nl - line);
        if (m && line[m - 1] == '\r')
            m--;
        if (m == 0)
            break; /* the blank line */
        const char *colon = memchr(line, ':', m);
        if (!colon || colon == line)
            return 400;
        for (const char *c = line; c < colon; c++)
            if (!metrics_http_tchar(*c))
                return 400;
        host = host || ((size_t)(colon - line) == 4 && strncasecmp(line, "host", 4) == 0);
    }
    if (http11 && !host)
        return 400;
    size_t plen = tlen;
    const char *q = memchr(target, '?', tlen);
    if (q)
        plen = (size_t)(q - target);
    *head_only = (size_t)(sp1 - req) == 4 && memcmp(req, "HEAD", 4) == 0;
    bool get = (size_t)(sp1 - req) == 3 && memcmp(req, "GET", 3) == 0;
    if (!get && !*head_only)
        return 405;
    return plen == 8 && memcmp(target, "/metrics", 8) == 0 ? 200 : 404;
}

/* ---- the server ---------------------------------------------------------------- */

typedef struct metrics_http {
    rill_pipeline *p;
    rill_sched *sched;
    rill_tcp_server *srv;
    pthread_t tid;
    int run_rc;
} metrics_http;

typedef struct metrics_http_conn {
    rill_gen gen;
    rill_syscall call;
    rill_tcp_conn *c;
    metrics_http *m;
    char *out;          /* the answer */
    size_t out_len, off, len, drained;
    char req[METRICS_HTTP_MAX_REQUEST];
} metrics_http_conn;

static inline const char *metrics_http_reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 431: return "Request Header Fields Too Large";
    default: return "Service Unavailable";
    }
}

/* The whole answer, head and body, in one malloc'd buffer (NULL: no memory). */
static inline char *metrics_http_answer(metrics_http *m, int status, bool head_only,
                                        size_t *len) {
    char *body = NULL;
    size_t blen = 0;
    if (status == 200) {
        int rc = RILL_EAGAIN;
        for (int tries = 0; tries < 2 && rc == RILL_EAGAIN; tries++) {
            free(body);
            body = NULL;
            FILE *f = open_memstream(&body, &blen);
            if (!f)
                return NULL;
            rc = rill_pipeline_metrics_write(m->p, f);
            if (fclose(f) != 0 && rc == 0)
                rc = RILL_ENOMEM;
        }
        if (rc) {
            free(body);
            body = NULL;
            status = 503;
        }
    }
    if (!body) {
        FILE *f = open_memstream(&body, &blen);
        if (!f)
            return NULL;
        fprintf(f, "%d %s\n", status, metrics_http_reason(status));
        fclose(f);
    }
    char *out = NULL;
    size_t olen = 0;
    FILE *f = open_memstream(&out, &olen);
    if (f) {
        fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                   "Connection: close\r\n\r\n",
                status, metrics_http_reason(status),
                status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
                              : "text/plain; charset=utf-8",
                blen, status == 405 ? "Allow: GET, HEAD\r\n" : "");
        if (!head_only)
            fwrite(body, 1, blen, f);
        if (fclose(f) != 0) {
            free(out);
            out = NULL;
        }
    }
    free(body);
    *len = olen;
    return out;
}

static inline int metrics_http_body(rill_gen *g) {
    metrics_http_conn *k = RILL_CONTAINER_OF(g, metrics_http_conn, gen);
    ssize_t n;
    size_t end = 0;
    int status;
    bool head_only = false;
    RILL_GEN_BEGIN(g);
    while ((end = metrics_http_request_end(k->req, k->len)) == 0 && k->len < sizeof k->req) {
        n = rill_tcp_read(k->c, k->req + k->len, sizeof k->req - k->len);
        if (n > 0) {
            k->len += (size_t)n;
        } else if (n == -EAGAIN) {
            RILL_SYSCALL(g, rill_tcp_readable(&k->call, k->c));
            if (k->call.result < 0)
                return 0; /* idle or past the deadline: cut off */
        } else {
            return 0; /* gone before asking */
        }
    }
    status = end ? metrics_http_status(k->req, end, &head_only) : 431;
    k->out = metrics_http_answer(k->m, status, head_only, &k->out_len);
    if (!k->out)
        return RILL_ENOMEM;
    while (k->off < k->out_len) {
        n = rill_tcp_write(k->c, k->out + k->off, k->out_len - k->off);
        if (n == -EAGAIN) {
            RILL_SYSCALL(g, rill_tcp_writable(&k->call, k->c));
            if (k->call.result < 0)
                return 0;
        } else if (n < 0) {
            return 0;
        } else {
            k->off += (size_t)n;
        }
    }
    /* Closing with unread bytes would reset the connection and could destroy
     * the answer in flight: end our side, read the client's to its end
     * (bounded by the deadline and by a byte count), then the server closes. */
    shutdown(k->c->fd, SHUT_WR);
    while (k->drained < (1u << 20)) {
        n = rill_tcp_read(k->c, k->req, sizeof k->req);
        if (n == -EAGAIN) {
            RILL_SYSCALL(g, rill_tcp_readable(&k->call, k->c));
            if (k->call.result < 0)
                break;
        } else if (n <= 0) {
            break;
        } else {
            k->drained += (size_t)n;
        }
    }
    RILL_GEN_END(g);
}

static inline void metrics_http_free_conn(rill_gen *g) {
    metrics_http_conn *k = RILL_CONTAINER_OF(g, metrics_http_conn, gen);
    free(k->out);
    free(k);
}

static inline int metrics_http_accept(void *arg, rill_tcp_conn *c, rill_gen **task,
                                      rill_task_free_fn *free_fn) {
    metrics_http_conn *k = (metrics_http_conn *)calloc(1, sizeof *k);
    if (!k)
        return RILL_ENOMEM;
    k->c = c;
    k->m = (metrics_http *)arg;
    rill_gen_init(&k->gen, metrics_http_body, NULL);
    *task = &k->gen;
    *free_fn = metrics_http_free_conn;
    return 0;
}

static inline void *metrics_http_main(void *arg) {
    metrics_http *m = (metrics_http *)arg;
    m->run_rc = rill_sched_run(m->sched);
    return NULL;
}

static inline void metrics_http_free(metrics_http *m) {
    rill_sched_free(m->sched);
    rill_tcp_server_free(m->srv);
    free(m);
}

/* Listen on host:port (port 0: any free one, see metrics_http_port) and
 * serve p's metrics on a new thread until metrics_http_stop; says
 * "metrics on http://HOST:PORT/metrics" on stderr once listening. p must outlive
 * the server. Returns 0 with *out set, or a negative code with a reason in
 * err (e.g. -EADDRINUSE). */
static inline int metrics_http_start(metrics_http **out, rill_pipeline *p, const char *host,
                                     uint16_t port, char *err, size_t errlen) {
    *out = NULL;
    metrics_http *m = (metrics_http *)calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return RILL_ENOMEM;
    }
    m->p = p;
    rill_tcp_opts o;
    memset(&o, 0, sizeof o);
    o.host = host;
    o.port = port;
    o.max_conns = METRICS_HTTP_MAX_CONNS;
    o.idle_ns = METRICS_HTTP_IDLE_NS;
    o.deadline_ns = METRICS_HTTP_DEADLINE_NS;
    int rc = rill_sched_new(&m->sched);
    if (rc == 0)
        rc = rill_tcp_server_new(m->sched, &o, metrics_http_accept, m, &m->srv);
    if (rc == 0) {
        rc = -pthread_create(&m->tid, NULL, metrics_http_main, m);
        if (rc)
            rill_tcp_server_stop(m->srv, RILL_TCP_STOP_NOW);
    }
    if (rc) {
        snprintf(err, errlen, "cannot serve metrics on %s:%u: %s", host, (unsigned)port,
                 rill_strerror(rc));
        metrics_http_free(m);
        return rc;
    }
    /* Said once clients can connect: a test or a script waits for it. */
    fprintf(stderr, strchr(host, ':') ? "metrics on http://[%s]:%u/metrics\n"
                                      : "metrics on http://%s:%u/metrics\n",
            host, (unsigned)rill_tcp_server_port(m->srv));
    *out = m;
    return 0;
}

/* metrics_http_start on "HOST:PORT" ("[V6]:PORT" for an IPv6 address). */
static inline int metrics_http_start_at(metrics_http **out, rill_pipeline *p, const char *addr,
                                        char *err, size_t errlen) {
    char host[64];
    const char *colon = strrchr(addr, ':');
    char *end;
    *out = NULL;
    size_t hlen = colon ? (size_t)(colon - addr) : 0;
    if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']')
        addr++, hlen -= 2;
    errno = 0;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || hlen == 0 || hlen >= sizeof host || errno || end == colon + 1 || *end ||
        port > 65535 || colon[1] == '-') {
        snprintf(err, errlen, "--metrics needs HOST:PORT (e.g. 127.0.0.1:9100), not '%s'", addr);
        return RILL_EINVAL;
    }
    memcpy(host, addr, hlen);
    host[hlen] = '\0';
    return metrics_http_start(out, p, host, (uint16_t)port, err, errlen);
}

static inline uint16_t metrics_http_port(const metrics_http *m) {
    return rill_tcp_server_port(m->srv);
}

/* Stop accepting, let the scrapes in progress finish (within their
 * deadline), join the thread and free m. NULL is a no-op. */
static inline void metrics_http_stop(metrics_http *m) {
    if (!m)
        return;
    rill_tcp_server_stop(m->srv, RILL_TCP_STOP_DRAIN);
    pthread_join(m->tid, NULL);
    metrics_http_free(m);
}

#endif
