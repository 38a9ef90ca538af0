/* An in-process TCP server for the tests (tests/test_net*.c): a scheduler
 * with a server runs on a thread of its own (pthread_create), the test
 * thread is the client. The handler is a small line echo with modes that
 * exercise the limits; its counters are written on the scheduler's thread
 * and read after the join. */
#ifndef RILL_TESTS_NET_HARNESS_H
#define RILL_TESTS_NET_HARNESS_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_util.h"
#include "rill.h"

#define MS INT64_C(1000000)

enum { H_ECHO, H_SLEEP, H_BIG, H_WAIT };

struct hctx {
    int mode;
    size_t big;       /* H_BIG: bytes to send */
    int refuse_odd;   /* conn_fn refuses connections with odd ids */
    /* counters (scheduler thread) */
    int made, closed, ended, eof, resets, timeouts, eagain, wait_result, peer_ok;
    uint64_t last_id;
};

struct htask {
    rill_gen gen;
    rill_syscall call;
    rill_tcp_conn *c;
    struct hctx *x;
    char buf[512];
    size_t len, off, out_len;
    char *out;
};

/* H_ECHO: read a line (up to '\n'), reply "echo:" + it. H_SLEEP: sleep
 * for an hour (only the supervisor can end it). H_WAIT: one wait for
 * readability, its result recorded. H_BIG: send x->big bytes of a-z. */
static inline int htask_body(rill_gen *g) {
    struct htask *t = RILL_CONTAINER_OF(g, struct htask, gen);
    struct hctx *x = t->x;
    ssize_t n;
    RILL_GEN_BEGIN(g);
    if (x->mode == H_SLEEP) {
        RILL_SYSCALL(g, rill_sys_sleep(&t->call, 3600 * INT64_C(1000000000)));
    } else if (x->mode == H_WAIT) {
        RILL_SYSCALL(g, rill_tcp_readable(&t->call, t->c));
        x->wait_result = t->call.result;
        x->timeouts += t->call.result == -ETIMEDOUT;
    } else {
        if (x->mode == H_BIG) {
            t->out = malloc(x->big);
            if (!t->out)
                return RILL_ENOMEM;
            for (size_t i = 0; i < x->big; i++)
                t->out[i] = (char)('a' + i % 26);
            t->out_len = x->big;
        } else {
            memcpy(t->buf, "echo:", 5);
            t->len = 5;
            while (!memchr(t->buf + 5, '\n', t->len - 5) && t->len < sizeof t->buf) {
                n = rill_tcp_read(t->c, t->buf + t->len, sizeof t->buf - t->len);
                if (n == -EAGAIN) {
                    RILL_SYSCALL(g, rill_tcp_readable(&t->call, t->c));
                    if (t->call.result == -ETIMEDOUT) {
                        x->timeouts++;
                        return 0;
                    }
                } else if (n == 0) {
                    x->eof++;
                    return 0;
                } else if (n < 0) {
                    x->resets++;
                    return 0;
                } else {
                    t->len += (size_t)n;
                }
            }
            char *nl = memchr(t->buf + 5, '\n', t->len - 5);
            t->out = t->buf;
            t->out_len = nl ? (size_t)(nl - t->buf) + 1 : t->len;
        }
        while (t->off < t->out_len) {
            n = rill_tcp_write(t->c, t->out + t->off, t->out_len - t->off);
            if (n == -EAGAIN) {
                x->eagain++;
                RILL_SYSCALL(g, rill_tcp_writable(&t->call, t->c));
                if (t->call.result == -ETIMEDOUT)
                    return 0;
            } else if (n < 0) {
                x->resets++;
                return 0;
            } else {
                t->off += (size_t)n;
            }
        }
    }
    x->ended++;
    RILL_GEN_END(g);
}

static inline int htask_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct htask, gen)->x->closed++;
    return 0;
}

static inline void htask_free(rill_gen *g) {
    struct htask *t = RILL_CONTAINER_OF(g, struct htask, gen);
    if (t->out != t->buf)
        free(t->out);
    free(t);
}

static inline int hconn(void *arg, rill_tcp_conn *c, rill_gen **task,
                        rill_task_free_fn *free_fn) {
    struct hctx *x = arg;
    const struct sockaddr_in *a = (const struct sockaddr_in *)&c->peer;
    x->peer_ok += a->sin_family == AF_INET && a->sin_addr.s_addr == htonl(INADDR_LOOPBACK);
    x->last_id = c->id;
    if (x->refuse_odd && c->id % 2)
        return -EPERM;
    struct htask *t = calloc(1, sizeof *t);
    if (!t)
        return RILL_ENOMEM;
    t->c = c;
    t->x = x;
    rill_gen_init(&t->gen, htask_body, htask_close);
    *task = &t->gen;
    *free_fn = htask_free;
    x->made++;
    return 0;
}

/* A scheduler and a server running on a thread. */
struct srv {
    rill_sched *s;
    rill_tcp_server *srv;
    struct hctx x;
    uint16_t port;
    pthread_t th;
    int run_rc;
    struct rill_tcp_server_stats st;
};

static inline void *srv_main(void *arg) {
    struct srv *v = arg;
    v->run_rc = rill_sched_run(v->s);
    return NULL;
}

/* Make the scheduler and the server (listening, not running yet). */
static inline int srv_new(struct srv *v, const rill_tcp_opts *o) {
    int rc = rill_sched_new(&v->s);
    if (rc == 0)
        rc = rill_tcp_server_new(v->s, o, hconn, &v->x, &v->srv);
    if (rc == 0)
        v->port = rill_tcp_server_port(v->srv);
    return rc;
}

/* Run it on a thread. */
static inline int srv_go(struct srv *v) {
    return pthread_create(&v->th, NULL, srv_main, v) ? -EAGAIN : 0;
}

static inline int srv_start(struct srv *v, const rill_tcp_opts *o) {
    int rc = srv_new(v, o);
    return rc < 0 ? rc : srv_go(v);
}

/* Join the run (the server must be ending by itself or stopped), take the
 * stats, free everything. Returns the run's result. */
static inline int srv_join(struct srv *v) {
    pthread_join(v->th, NULL);
    rill_tcp_server_stats(v->srv, &v->st);
    rill_sched_free(v->s);
    rill_tcp_server_free(v->srv);
    return v->run_rc;
}

/* The only fd of this process (below limit) that is an anon inode of kind
 * ("eventpoll", "eventfd"), or -1 if there is none or more than one. */
static inline int find_anon_fd(const char *kind, int limit) {
    char want[64];
    snprintf(want, sizeof want, "anon_inode:[%s]", kind);
    int found = -1;
    for (int fd = 0; fd < limit; fd++) {
        char path[64], target[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n <= 0)
            continue;
        target[n] = '\0';
        if (strcmp(target, want) == 0) {
            if (found >= 0)
                return -1;
            found = fd;
        }
    }
    return found;
}

#endif
