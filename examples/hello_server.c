/* The seed's selector server on rill's scheduler: each connection is a task
 * that reads until a blank line ("\n\n"), replies "Hello " + the bytes
 * before it, and closes.
 *
 *   hello_server [--host A] [--port N] [--backlog N] [--max-conns N]
 *                [--max-message BYTES] [--idle-ms MS] [--deadline-ms MS]
 *                [--count N]
 *
 * Once listening it prints "listening on HOST:PORT" (--port 0: a free
 * port). Limits (see rill/net.h): no blank line within --max-message bytes
 * gets "ERROR message too large\n"; a client silent for --idle-ms, or not
 * done within --deadline-ms, gets "ERROR timeout\n" (best effort); a client
 * that closes or resets early gets nothing. SIGINT/SIGTERM stop accepting
 * and let the connections finish; --count N stops after N connections.
 * At exit a one-line summary of the counters goes to stderr. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hello_opts.h"
#include "hello_proto.h"
#include "rill.h"

#define MS INT64_C(1000000)
#define HELLO "Hello "
#define HELLO_LEN 6
#define DRAIN_MAX (1u << 20) /* bytes a lingering close reads at most */

struct app {
    size_t max_message;
    uint64_t replied, too_large, timeouts, eof, resets;
};

/* One connection. buf starts with "Hello ", the request is read after it,
 * so the reply is buf[0 .. 6 + request length): one send, no copy. */
struct hello {
    rill_gen gen;
    rill_syscall call;
    rill_tcp_conn *c;
    struct app *app;
    hello_framer fr;
    char *buf;
    size_t len, cap, off, out_len, drained;
    const char *out;
    int started; /* a reply byte may have gone out: no error line after */
    char small[512];
};

static void hello_timeout(struct hello *h) {
    static const char msg[] = "ERROR timeout\n";
    h->app->timeouts++;
    if (!h->started) /* one non-blocking try: the client may be gone */
        (void)!send(h->c->fd, msg, sizeof msg - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* Room for the next read; the buffer never holds more than the framer
 * looks at. Returns 0 or RILL_ENOMEM. */
static int hello_room(struct hello *h) {
    if (h->len < h->cap)
        return 0;
    size_t cap = 2 * h->cap, most = HELLO_LEN + h->app->max_message;
    if (cap > most)
        cap = most;
    char *b = h->buf == h->small ? malloc(cap) : realloc(h->buf, cap);
    if (!b)
        return RILL_ENOMEM;
    if (h->buf == h->small)
        memcpy(b, h->small, h->len);
    h->buf = b;
    h->cap = cap;
    return 0;
}

static int hello_body(rill_gen *g) {
    struct hello *h = RILL_CONTAINER_OF(g, struct hello, gen);
    ssize_t n;
    RILL_GEN_BEGIN(g);
    while (h->fr.state == HELLO_NEED_MORE) {
        if (hello_room(h) < 0)
            return RILL_ENOMEM;
        n = rill_tcp_read(h->c, h->buf + h->len, h->cap - h->len);
        if (n > 0) {
            hello_framer_feed(&h->fr, h->buf + h->len, (size_t)n);
            h->len += (size_t)n;
        } else if (n == -EAGAIN) {
            RILL_SYSCALL(g, rill_tcp_readable(&h->call, h->c));
            if (h->call.result < 0) { /* -ETIMEDOUT, or the wait failed */
                if (h->call.result == -ETIMEDOUT)
                    hello_timeout(h);
                return 0;
            }
        } else { /* end of stream or a reset before the blank line */
            if (n == 0)
                h->app->eof++;
            else
                h->app->resets++;
            return 0;
        }
    }
    if (h->fr.state == HELLO_COMPLETE) {
        h->out = h->buf;
        h->out_len = HELLO_LEN + h->fr.req_len;
    } else {
        h->out = "ERROR message too large\n";
        h->out_len = strlen(h->out);
        h->app->too_large++;
    }
    h->started = 1;
    while (h->off < h->out_len) {
        n = rill_tcp_write(h->c, h->out + h->off, h->out_len - h->off);
        if (n == -EAGAIN) {
            RILL_SYSCALL(g, rill_tcp_writable(&h->call, h->c));
            if (h->call.result < 0) {
                if (h->call.result == -ETIMEDOUT)
                    hello_timeout(h);
                return 0;
            }
        } else if (n < 0) {
            h->app->resets++;
            return 0;
        } else {
            h->off += (size_t)n;
        }
    }
    if (h->fr.state == HELLO_COMPLETE)
        h->app->replied++;
    /* Closing a socket with unread bytes resets it, and a reset can destroy
     * the reply in flight. If the client sent more than we read (it is
     * still sending an oversized message, or sent bytes after the blank
     * line), close gracefully: end our side, read to its end, then close. */
    if (h->fr.state == HELLO_TOO_LARGE || h->len > HELLO_LEN + h->fr.seen) {
        shutdown(h->c->fd, SHUT_WR);
        while (h->drained < DRAIN_MAX) {
            n = rill_tcp_read(h->c, h->buf, h->cap);
            if (n == -EAGAIN) {
                RILL_SYSCALL(g, rill_tcp_readable(&h->call, h->c));
                if (h->call.result < 0)
                    break;
            } else if (n <= 0) {
                break;
            } else {
                h->drained += (size_t)n;
            }
        }
    }
    RILL_GEN_END(g);
}

/* Killed: at the deadline (by the server's supervisor). */
static int hello_close(rill_gen *g) {
    hello_timeout(RILL_CONTAINER_OF(g, struct hello, gen));
    return 0;
}

static void hello_free(rill_gen *g) {
    struct hello *h = RILL_CONTAINER_OF(g, struct hello, gen);
    if (h->buf != h->small)
        free(h->buf);
    free(h);
}

static int hello_conn(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn) {
    struct app *app = arg;
    struct hello *h = malloc(sizeof *h);
    if (!h)
        return RILL_ENOMEM;
    h->c = c;
    h->app = app;
    hello_framer_init(&h->fr, app->max_message);
    h->buf = h->small;
    h->cap = sizeof h->small;
    memcpy(h->buf, HELLO, HELLO_LEN);
    h->len = HELLO_LEN;
    h->off = h->out_len = h->drained = 0;
    h->out = NULL;
    h->started = 0;
    rill_gen_init(&h->gen, hello_body, hello_close);
    *task = &h->gen;
    *free_fn = hello_free;
    return 0;
}

static rill_tcp_server *g_srv;

static void on_stop_signal(int sig) {
    (void)sig;
    rill_tcp_server_stop(g_srv, RILL_TCP_STOP_DRAIN);
}

static int usage(const char *why) {
    fprintf(stderr,
            "hello_server: %s\n"
            "usage: hello_server [--host A] [--port N] [--backlog N] [--max-conns N]\n"
            "                    [--max-message BYTES] [--idle-ms MS] [--deadline-ms MS]\n"
            "                    [--count N]\n"
            "  defaults: --host 127.0.0.1 --port 5000 --max-message 65536 --idle-ms 10000\n"
            "            --deadline-ms 30000; --idle-ms 0 / --deadline-ms 0: no limit\n",
            why);
    return 2;
}

int main(int argc, char **argv) {
    hello_opts opt;
    char why[512];
    hello_opts_defaults(&opt);
    if (hello_parse(argc, argv, &opt, why, sizeof why) < 0)
        return usage(why);
    rill_tcp_opts o;
    memset(&o, 0, sizeof o);
    o.host = opt.host;
    uint64_t port = opt.port, idle = opt.idle_ms, deadline = opt.deadline_ms;
    struct app app;
    memset(&app, 0, sizeof app);
    app.max_message = (size_t)opt.max_message;
    o.port = (uint16_t)port;
    o.backlog = (int)opt.backlog;
    o.max_conns = (unsigned)opt.max_conns;
    o.max_accepts = opt.count;
    o.idle_ns = idle ? (int64_t)idle * MS : RILL_SCHED_FOREVER;
    o.deadline_ns = deadline ? (int64_t)deadline * MS : RILL_SCHED_FOREVER;

    signal(SIGPIPE, SIG_IGN);
    rill_raise_fd_limit(1 << 20);
    rill_sched *s;
    int rc = rill_sched_new(&s);
    if (rc == 0)
        rc = rill_tcp_server_new(s, &o, hello_conn, &app, &g_srv);
    if (rc < 0) {
        fprintf(stderr, "hello_server: %s:%" PRIu64 ": %s\n", o.host, port, rill_strerror(rc));
        rill_sched_free(s);
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    printf("listening on %s:%u\n", o.host, (unsigned)rill_tcp_server_port(g_srv));
    fflush(stdout);

    rc = rill_sched_run(s);
    struct rill_tcp_server_stats st;
    rill_tcp_server_stats(g_srv, &st);
    fprintf(stderr,
            "hello_server: accepted=%" PRIu64 " replied=%" PRIu64 " too_large=%" PRIu64
            " timeouts=%" PRIu64 " eof=%" PRIu64 " resets=%" PRIu64 " refused=%" PRIu64
            " timed_out=%" PRIu64 " peak=%" PRIu64 " at_limit=%" PRIu64
            " accept_errors=%" PRIu64 " active=%" PRIu64 "\n",
            st.accepted, app.replied, app.too_large, app.timeouts, app.eof, app.resets,
            st.refused, st.timed_out, st.peak, st.at_limit, st.accept_errors, st.active);
    /* Signals may still arrive: they must not reach a freed server. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    rill_sched_free(s);
    rill_tcp_server_free(g_srv);
    if (rc < 0) {
        fprintf(stderr, "hello_server: %s\n", rill_strerror(rc));
        return 1;
    }
    return 0;
}
