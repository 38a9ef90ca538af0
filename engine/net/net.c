/* TCP servers on the scheduler: the listener, the accept task, the stop
 * task and the gate (see net_int.h and docs/scheduler.md, "TCP servers").
 *
 * A server's tasks end in this order: the accept task (stopped, or
 * max_accepts reached: the listener is closed), then each connection, then
 * the stop task, which the last of them ends (rill__tcp_maybe_done), so that
 * rill_sched_run returns once nothing of the server is left. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_int.h"

/* Nothing of the server is left but the stop task: end it. (When the stop
 * task itself is running, the kill is refused and its loop sees it.) */
void rill__tcp_maybe_done(rill_tcp_server *srv) {
    if (srv->accept_done && srv->st.active == 0)
        rill_sched_owned_kill(srv->s, &srv->stopper);
}

/* No more accepts. Only once nobody waits on the listener may it close. */
static void rill__accept_finish(rill_tcp_server *srv) {
    if (srv->accept_done)
        return;
    srv->accept_done = 1;
    if (srv->lfd >= 0)
        close(srv->lfd);
    srv->lfd = -1;
    rill_sched_gate_open(srv->s, &srv->gate);
}

enum { RILL__ACC_WAIT = 0, RILL__ACC_MORE, RILL__ACC_BACKOFF };

/* Accept up to a batch. Returns RILL__ACC_* or the negative errno of a
 * listener that cannot work any more. */
static int rill__accept_batch(rill_tcp_server *srv) {
    for (int n = 0; n < RILL__TCP_BATCH; n++) {
        if (srv->st.active >= srv->max_conns ||
            (srv->max_accepts && srv->st.accepted >= srv->max_accepts))
            return RILL__ACC_MORE;
        rill__tcp_slot *sl = rill__tcp_slot_get(srv);
        if (!sl) {
            srv->st.accept_errors++;
            return RILL__ACC_BACKOFF;
        }
        sl->conn.peer_len = sizeof sl->conn.peer;
        int fd = accept4(srv->lfd, (struct sockaddr *)&sl->conn.peer, &sl->conn.peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            rill__tcp_conn_start(srv, sl, fd);
            continue;
        }
        int e = errno;
        rill__tcp_slot_put(srv, sl);
        if (e == EAGAIN || e == EWOULDBLOCK)
            return RILL__ACC_WAIT;
        if (e == EINTR)
            continue;
        if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EFAULT)
            return -e;
        srv->st.accept_errors++;
        /* Out of fds or memory: the connection waits in the listen queue.
         * Anything else (ECONNABORTED, EPROTO, network errors passed on by
         * Linux) concerns that one connection: go on with the next. */
        if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
            return RILL__ACC_BACKOFF;
    }
    return RILL__ACC_MORE;
}

static int rill__accept_body(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    rill_tcp_server *srv = RILL_CONTAINER_OF(t, rill_tcp_server, acceptor);
    int rc;
    RILL_GEN_BEGIN(g);
    while (!srv->max_accepts || srv->st.accepted < srv->max_accepts) {
        if (srv->st.active >= srv->max_conns) {
            srv->st.at_limit++;
            rc = RILL__ACC_BACKOFF; /* but without a timeout when there is a gate */
        } else {
            rc = rill__accept_batch(srv);
            if (rc < 0) {
                rill__accept_finish(srv);
                rill__tcp_maybe_done(srv);
                return rc;
            }
        }
        if (rc == RILL__ACC_WAIT) {
            RILL_SYSCALL(g, rill_sys_wait_fd(&t->call, srv->lfd, RILL_FD_READABLE,
                                             RILL_SCHED_FOREVER));
            if (t->call.result < 0) { /* epoll_ctl failed (e.g. ENOMEM): never spin */
                srv->st.accept_errors++;
                RILL_SYSCALL(g, rill_sys_sleep(&t->call, RILL__TCP_BACKOFF_NS));
            }
        } else if (rc == RILL__ACC_BACKOFF) {
            /* Wait for a connection to end (the gate is killed), and on an
             * accept error at most 100 ms. No gate (no memory): poll. */
            if (rill_sched_gate_up(srv->s, &srv->gate) < 0) {
                RILL_SYSCALL(g, rill_sys_sleep(&t->call, RILL__TCP_BACKOFF_NS));
            } else {
                RILL_SYSCALL(g, rill_sys_wait(&t->call, srv->gate.id,
                                              srv->st.active >= srv->max_conns
                                                  ? RILL_SCHED_FOREVER
                                                  : RILL__TCP_BACKOFF_NS));
            }
        } else if (srv->st.active < srv->max_conns) {
            RILL_YIELD(g, NULL); /* a full batch: let the connections run */
        }
    }
    rill__accept_finish(srv);
    rill__tcp_maybe_done(srv);
    RILL_GEN_END(g);
}

static int rill__accept_close(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    rill__accept_finish(RILL_CONTAINER_OF(t, rill_tcp_server, acceptor));
    return 0;
}

/* Carry out what rill_tcp_server_stop asked for (want, a RILL_TCP_STOP_*
 * level) and was not done yet. */
static void rill__stop_apply(rill_tcp_server *srv, int want) {
    int done = srv->stop_done;
    srv->stop_done |= want;
    if (want >= RILL_TCP_STOP_DRAIN && done < RILL_TCP_STOP_DRAIN) {
        rill_sched_owned_kill(srv->s, &srv->acceptor);
        rill__accept_finish(srv); /* also if it was killed before it ran */
    }
    if (want >= RILL_TCP_STOP_NOW && done < RILL_TCP_STOP_NOW) {
        rill__list *n, *next;
        RILL__LIST_EACH_SAFE(n, next, &srv->open) {
            rill__tcp_slot *sl = RILL__LIST_ENTRY(n, rill__tcp_slot, link);
            if (sl->task_alive && rill_sched_kill(srv->s, sl->task_id) == 1)
                srv->st.killed++;
        }
    }
}

static int rill__stop_body(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    rill_tcp_server *srv = RILL_CONTAINER_OF(t, rill_tcp_server, stopper);
    RILL_GEN_BEGIN(g);
    while (!srv->accept_done || srv->st.active > 0) {
        { /* a block: no local may share its scope with a yield (coro.h) */
            int want = atomic_load(&srv->stop);
            if (want > srv->stop_done) {
                rill__stop_apply(srv, want);
                continue;
            }
        }
        RILL_SYSCALL(g, rill_sys_wait_fd(&t->call, srv->efd, RILL_FD_READABLE, RILL_SCHED_FOREVER));
        if (t->call.result < 0) { /* cannot wait on the doorbell: poll the flag */
            RILL_SYSCALL(g, rill_sys_sleep(&t->call, RILL__TCP_BACKOFF_NS));
        } else {
            uint64_t v;
            (void)!read(srv->efd, &v, sizeof v); /* EAGAIN: someone read it */
        }
    }
    RILL_GEN_END(g);
}

RILL_API void rill_tcp_server_stop(rill_tcp_server *srv, int how) {
    if (!srv)
        return;
    int saved = errno; /* a signal handler must leave errno as it found it */
    atomic_fetch_or(&srv->stop, how == RILL_TCP_STOP_NOW ? RILL_TCP_STOP_NOW : RILL_TCP_STOP_DRAIN);
    uint64_t one = 1;
    ssize_t w = write(srv->efd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is full, so the stop task is awake */
    errno = saved;
}

static int rill__listen(rill_tcp_server *srv, const rill_tcp_opts *o) {
    struct sockaddr_storage ss;
    socklen_t len;
    const char *host = o->host ? o->host : "127.0.0.1";
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(o->port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(o->port);
        len = sizeof *a6;
    } else {
        return RILL_EINVAL;
    }
    srv->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (srv->lfd < 0)
        return -errno;
    int on = 1;
    if (setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
        bind(srv->lfd, (struct sockaddr *)&ss, len) < 0 ||
        listen(srv->lfd, o->backlog ? o->backlog : 1024) < 0 ||
        getsockname(srv->lfd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    srv->port = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    return 0;
}

static int rill__valid_ns(int64_t ns) { return ns >= 0 || ns == RILL_SCHED_FOREVER; }

static int64_t rill__ns_or(int64_t ns, int64_t dflt) { return ns == 0 ? dflt : ns; }

RILL_API int rill_tcp_server_new(rill_sched *s, const rill_tcp_opts *opts, rill_tcp_conn_fn fn,
                                 void *arg, rill_tcp_server **out) {
    if (!out)
        return RILL_EINVAL;
    *out = NULL;
    rill_tcp_opts o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    if (!s || !fn || o.backlog < 0 || !rill__valid_ns(o.idle_ns) ||
        !rill__valid_ns(o.deadline_ns))
        return RILL_EINVAL;
    rill_tcp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return RILL_ENOMEM;
    srv->s = s;
    srv->fn = fn;
    srv->arg = arg;
    srv->lfd = srv->efd = -1;
    srv->max_conns = o.max_conns ? o.max_conns : 1024;
    srv->max_accepts = o.max_accepts;
    srv->idle_ns = rill__ns_or(o.idle_ns, INT64_C(10000000000));
    srv->deadline_ns = rill__ns_or(o.deadline_ns, INT64_C(30000000000));
    atomic_init(&srv->stop, 0);
    rill__list_init(&srv->open);
    rill__list_init(&srv->free_slots);
    int rc = rill__listen(srv, &o);
    if (rc == 0) {
        srv->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (srv->efd < 0)
            rc = -errno;
    }
    /* The stop task first: a stop requested before the run is carried out
     * before the first accept. */
    if (rc == 0)
        rc = rill_sched_owned_up(s, &srv->stopper, rill__stop_body, NULL);
    if (rc == 0) {
        rc = rill_sched_owned_up(s, &srv->acceptor, rill__accept_body, rill__accept_close);
        if (rc < 0)
            rill_sched_owned_kill(s, &srv->stopper);
    }
    if (rc < 0) {
        rill_tcp_server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

RILL_API uint16_t rill_tcp_server_port(const rill_tcp_server *srv) { return srv->port; }

RILL_API void rill_tcp_server_free(rill_tcp_server *srv) {
    if (!srv)
        return;
    if (srv->lfd >= 0)
        close(srv->lfd);
    if (srv->efd >= 0)
        close(srv->efd);
    rill__tcp_slots_free(srv);
    free(srv);
}

RILL_API int rill_tcp_server_stats(const rill_tcp_server *srv, struct rill_tcp_server_stats *out) {
    *out = srv->st;
    return 0;
}
