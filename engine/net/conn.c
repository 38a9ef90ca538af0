/* Connections: the slot, the caller's task and its supervisor; the socket
 * helpers connection tasks use; the fd limit.
 *
 * The supervisor is the only one that closes a connection's fd, and it does
 * so when nobody can wait on the fd any more: after the caller's task has
 * ended (by itself, or killed by the supervisor at the deadline, or by a
 * STOP_NOW). A task that waits on a closed fd would never be woken (epoll
 * forgets closed fds), and a reused fd number would confuse two clients. */
#include <limits.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net_int.h"

rill__tcp_slot *rill__tcp_slot_get(rill_tcp_server *srv) {
    if (!rill__list_empty(&srv->free_slots)) {
        rill__list *n = rill__list_first(&srv->free_slots);
        rill__list_unlink(n);
        return RILL__LIST_ENTRY(n, rill__tcp_slot, link);
    }
    rill__tcp_slot *sl = calloc(1, sizeof *sl);
    if (sl)
        rill__list_init(&sl->link);
    return sl;
}

/* sl is on no list (fresh from rill__tcp_slot_get, or unlinked). */
void rill__tcp_slot_put(rill_tcp_server *srv, rill__tcp_slot *sl) {
    rill__list_push_front(&srv->free_slots, &sl->link);
}

/* Timeout of a wait that must end by deadline (UINT64_MAX: none). */
static int64_t rill__until(uint64_t deadline) {
    if (deadline == UINT64_MAX)
        return RILL_SCHED_FOREVER;
    uint64_t now = rill_sched_now_ns();
    if (now >= deadline)
        return 0;
    return deadline - now > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(deadline - now);
}

/* Wait for the caller's task, at most until the deadline; then make sure it
 * has ended. The kill after the wait is unconditional: ids are never
 * reused, so it cannot hit another task, and it also covers a wait that
 * failed (no memory for the timer) with the task still running. */
static int rill__supervise(rill_gen *g) {
    rill__tcp_slot *sl = RILL_CONTAINER_OF(g, rill__tcp_slot, gen);
    rill_tcp_server *srv = sl->conn.server;
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_wait(&sl->call, sl->task_id, rill__until(sl->conn.deadline)));
    if (rill_sched_kill(srv->s, sl->task_id) == 1 && sl->call.result == -ETIMEDOUT)
        srv->st.timed_out++;
    sl->task_alive = 0;
    RILL_GEN_END(g);
}

/* The supervisor's free_fn: the connection is over. If the caller's task
 * may still exist (rill_sched_free releases tasks in any order), the slot
 * stays open for rill_tcp_server_free to close. */
static void rill__supervisor_end(rill_gen *g) {
    rill__tcp_slot *sl = RILL_CONTAINER_OF(g, rill__tcp_slot, gen);
    rill_tcp_server *srv = sl->conn.server;
    if (sl->task_alive)
        return;
    close(sl->conn.fd);
    sl->conn.fd = -1;
    rill__list_unlink(&sl->link);
    rill__tcp_slot_put(srv, sl);
    srv->st.active--;
    rill_sched_gate_open(srv->s, &srv->gate);
    rill__tcp_maybe_done(srv);
}

/* fd was just accepted into sl: make the caller's task and its supervisor.
 * The caller's task is spawned first, so the supervisor knows its id and
 * the task takes its first step (often the whole exchange) first. */
void rill__tcp_conn_start(rill_tcp_server *srv, rill__tcp_slot *sl, int fd) {
    srv->st.accepted++;
    rill_tcp_conn *c = &sl->conn;
    c->fd = fd;
    c->id = srv->st.accepted;
    c->idle_ns = srv->idle_ns;
    c->server = srv;
    c->deadline = UINT64_MAX;
    if (srv->deadline_ns >= 0) {
        uint64_t now = rill_sched_now_ns();
        c->deadline = (uint64_t)srv->deadline_ns > UINT64_MAX - 1 - now
                          ? UINT64_MAX - 1
                          : now + (uint64_t)srv->deadline_ns;
    }
    rill_gen *task = NULL;
    rill_task_free_fn free_fn = NULL;
    int rc = srv->fn(srv->arg, c, &task, &free_fn);
    if (rc == 0 && !task)
        rc = RILL_EINVAL;
    if (rc == 0) {
        rc = rill_sched_spawn(srv->s, task, free_fn, &sl->task_id);
        if (rc < 0 && free_fn)
            free_fn(task); /* the server owned it: nobody else can release it */
    }
    if (rc == 0) {
        rill_gen_init(&sl->gen, rill__supervise, NULL);
        rc = rill_sched_spawn(srv->s, &sl->gen, rill__supervisor_end, NULL);
        if (rc < 0) /* never ran: no on_close, its free_fn releases it */
            rill_sched_kill(srv->s, sl->task_id);
    }
    if (rc < 0) {
        srv->st.refused++;
        close(fd);
        rill__tcp_slot_put(srv, sl);
        return;
    }
    sl->task_alive = 1;
    rill__list_push(&srv->open, &sl->link);
    if (++srv->st.active > srv->st.peak)
        srv->st.peak = srv->st.active;
}

void rill__tcp_slots_free(rill_tcp_server *srv) {
    rill__list *n, *next;
    RILL__LIST_EACH_SAFE(n, next, &srv->open) {
        rill__tcp_slot *sl = RILL__LIST_ENTRY(n, rill__tcp_slot, link);
        if (sl->conn.fd >= 0)
            close(sl->conn.fd);
        free(sl);
    }
    rill__list_init(&srv->open);
    RILL__LIST_EACH_SAFE(n, next, &srv->free_slots)
        free(RILL__LIST_ENTRY(n, rill__tcp_slot, link));
    rill__list_init(&srv->free_slots);
}

/* ---- for connection tasks ------------------------------------------------ */

RILL_API int64_t rill_tcp_wait_ns(const rill_tcp_conn *c) {
    int64_t left = rill__until(c->deadline);
    if (left == RILL_SCHED_FOREVER)
        return c->idle_ns;
    return c->idle_ns >= 0 && c->idle_ns < left ? c->idle_ns : left;
}

RILL_API ssize_t rill_tcp_read(rill_tcp_conn *c, void *buf, size_t len) {
    if (len == 0)
        return RILL_EINVAL; /* 0 would read as the end of the stream */
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

RILL_API ssize_t rill_tcp_write(rill_tcp_conn *c, const void *buf, size_t len) {
    if (len == 0)
        return 0;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0)
            return n;
        if (errno != EINTR)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    }
}

RILL_API long rill_raise_fd_limit(long want) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -errno;
    if (want > 0 && rl.rlim_cur != RLIM_INFINITY && (rlim_t)want > rl.rlim_cur) {
        struct rlimit nl = rl;
        nl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < (rlim_t)want ? rl.rlim_max
                                                                                 : (rlim_t)want;
        /* The kernel may refuse more than fs.nr_open even below the hard
         * limit: then the old limit stays, and is what we report. */
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl = nl;
    }
    return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX
                                                                          : (long)rl.rlim_cur;
}
