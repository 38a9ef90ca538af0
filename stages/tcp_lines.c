/* TCP line source (rill/tcp_lines.h): a scheduler, a TCP server on it, and
 * per connection a task (tcp_lines_conn.c) that cuts lines with the shared
 * splitter (line_split.c) and emits them with rill_try_emit. Here: the
 * stage, the watch and the gate, stopping, counters.
 *
 * Waiting for room. The room eventfd may be drained only before a retry,
 * never between a refusal and the wait, or that refusal's wake-up is lost.
 * With many connections refused at once, whichever drained would eat the
 * others' wake-up. So one task, the watch, is the only reader of the fd,
 * and refused connections wait for the gate, a task that only sleeps:
 * the watch drains the fd and kills the gate, and everyone who waited for
 * it retries (a refused retry spawns a new gate). A refusal before a drain
 * is woken by that drain's kill; one after it is owed a new signal.
 *
 * The watch waits on a private epoll set holding the room fd and the
 * stage's own eventfd, the kick, which rill_tcp_lines_stop and ending
 * connections write: so it also sees the pipeline stop (the room fd fires
 * then) and the moment nothing is left, when it ends, letting
 * rill_sched_run return. */
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tcp_lines_int.h"

void rill__tcpl_kick(rill__tcpl *s) {
    uint64_t one = 1;
    ssize_t w = write(s->kick, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is full, the watch wakes anyway */
}

/* Read an eventfd's count: whether it had been written (EAGAIN: not). */
static bool rill__tcpl_drain(int fd) {
    uint64_t v;
    return read(fd, &v, sizeof v) == (ssize_t)sizeof v;
}

/* ---- the gate and the watch --------------------------------------------- */

void rill__tcpl_halt(rill__tcpl *s) {
    if (!s->halted) {
        s->halted = true;
        rill_tcp_server_stop(s->srv, RILL_TCP_STOP_NOW);
    }
}

/* The server accepts no more and every connection has been released. */
static bool rill__tcpl_done(rill__tcpl *s) {
    if (s->live)
        return false;
    if (atomic_load(&s->stop_req) || s->halted)
        return true;
    struct rill_tcp_server_stats ts;
    rill_tcp_server_stats(s->srv, &ts);
    return s->max_accepts && ts.accepted >= s->max_accepts;
}

static int rill__tcpl_watch_body(rill_gen *g) {
    rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
    rill__tcpl *s = RILL_CONTAINER_OF(t, rill__tcpl, watch);
    RILL_GEN_BEGIN(g);
    while (!rill__tcpl_done(s)) {
        RILL_SYSCALL(g, rill_sys_wait_fd(&t->call, s->wfd, RILL_FD_READABLE, RILL_SCHED_FOREVER));
        /* Cannot wait on the fds (epoll_ctl failed, e.g. ENOMEM): poll
         * them. Ending here would leave the gate up and its waiters, and so
         * rill_sched_run, waiting forever. */
        if (t->call.result < 0)
            RILL_SYSCALL(g, rill_sys_sleep(&t->call, RILL__TCPL_POLL_NS));
        rill__tcpl_drain(s->kick);
        /* Only a room signal (also sent when the pipeline stops) opens the
         * gate: a kick alone would make every waiter retry for nothing. */
        if (rill__tcpl_drain(s->room_fd)) {
            if (rill_pipeline_stopped(rill_stage_pipeline(s->st)) != 0)
                rill__tcpl_halt(s);
            rill_sched_gate_open(s->sched, &s->gate);
        }
    }
    rill_sched_gate_open(s->sched, &s->gate);
    RILL_GEN_END(g);
}

int rill__tcpl_watch_up(rill__tcpl *s) {
    return rill_sched_owned_up(s->sched, &s->watch, rill__tcpl_watch_body, NULL);
}


/* ---- the stage ------------------------------------------------------------ */

static int rill__tcpl_produce(rill_stage *st, void *state) {
    rill__tcpl *s = state;
    int rc = 0;
    if (s->room_fd < 0) {
        if ((rc = rill_stage_room_fd(st, &s->room_fd)) < 0)
            return rill_stage_fail(st, rc, "cannot get the room signal");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->room_fd};
        if (epoll_ctl(s->wfd, EPOLL_CTL_ADD, s->room_fd, &ev) < 0)
            return rill_stage_fail(st, -errno, "cannot watch the room signal");
    }
    s->in_produce = true;
    rc = rill__tcpl_watch_up(s);
    if (rc == 0)
        rc = rill_sched_run(s->sched);
    s->in_produce = false;
    rill_stage_flush(st);
    if (rc < 0)
        return rill_stage_fail(st, rc, "TCP server on port %u", rill_tcp_server_port(s->srv));
    return RILL_EDONE;
}

static void rill__tcpl_free(rill__tcpl *s) {
    s->in_produce = false;
    rill_sched_free(s->sched); /* tasks left (never run): closed here */
    rill_tcp_server_free(s->srv);
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->kick >= 0)
        close(s->kick);
    free(s);
}

static void rill__tcpl_destroy(void *state) { rill__tcpl_free(state); }

static const rill_stage_ops rill__tcpl_ops = {
    .produce = rill__tcpl_produce,
    .free = rill__tcpl_destroy,
};

static rill__tcpl *rill__tcpl_of(const rill_stage *st) {
    return st && rill_stage_ops_of(st) == &rill__tcpl_ops ? rill_stage_state(st) : NULL;
}

RILL_API int rill_tcp_lines_add(rill_pipeline *p, const char *name, const rill_tcp_opts *topts,
                                const rill_lines_opts *lopts, const rill_stage_opts *opts,
                                rill_stage **out) {
    if (out)
        *out = NULL;
    rill_lines_opts lo = {0};
    if (lopts)
        lo = *lopts;
    if (!p)
        return RILL_EINVAL;
    const unsigned known = RILL_LINES_TRUNCATE | RILL_LINES_STRIP_CR;
    if (rill__lsplit_opts(&lo, RILL_TCP_LINES_DEFAULT_CHUNK, known))
        return rill__lsplit_opts_error(p, "rill_tcp_lines_add", name, lopts, known);
    rill_tcp_opts to = {0};
    if (topts)
        to = *topts;
    if (!to.idle_ns)
        to.idle_ns = RILL_SCHED_FOREVER;
    if (!to.deadline_ns)
        to.deadline_ns = RILL_SCHED_FOREVER;
    rill__tcpl *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    s->lo = lo;
    atomic_init(&s->stop_req, 0);
    s->max_accepts = to.max_accepts;
    s->room_fd = -1;
    s->kick = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->wfd = epoll_create1(EPOLL_CLOEXEC);
    int rc = s->kick < 0 || s->wfd < 0 ? -errno : rill_sched_new(&s->sched);
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = s->kick};
        rc = epoll_ctl(s->wfd, EPOLL_CTL_ADD, s->kick, &ev) < 0 ? -errno : 0;
    }
    if (rc == 0)
        rc = rill_tcp_server_new(s->sched, &to, rill__tcpl_accept, s, &s->srv);
    if (rc == 0)
        rc = rill_stage_add(p, name, &rill__tcpl_ops, s, opts, &s->st);
    if (rc < 0) {
        rill__tcpl_free(s);
        return rc;
    }
    if (out)
        *out = s->st;
    return 0;
}

RILL_API uint16_t rill_tcp_lines_port(const rill_stage *st) {
    rill__tcpl *s = rill__tcpl_of(st);
    return s ? rill_tcp_server_port(s->srv) : 0;
}

RILL_API void rill_tcp_lines_stop(rill_stage *st, int how) {
    rill__tcpl *s = rill__tcpl_of(st);
    if (!s)
        return;
    int saved = errno; /* a signal handler must leave errno as it found it */
    atomic_fetch_or(&s->stop_req,
                    how == RILL_TCP_STOP_NOW ? RILL_TCP_STOP_NOW : RILL_TCP_STOP_DRAIN);
    rill_tcp_server_stop(s->srv, how);
    rill__tcpl_kick(s);
    errno = saved;
}

const struct rill_lines_stats *rill__tcp_lines_counters(const rill_stage *st) {
    rill__tcpl *s = rill__tcpl_of(st);
    return s ? &s->lstats : NULL;
}

RILL_API int rill_tcp_lines_stats(const rill_stage *st, struct rill_tcp_lines_stats *out) {
    rill__tcpl *s = rill__tcpl_of(st);
    if (!s || !out)
        return RILL_EINVAL;
    const uint64_t *in = (const uint64_t *)&s->stats;
    uint64_t *o = (uint64_t *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        o[i] = __atomic_load_n(&in[i], __ATOMIC_RELAXED);
    out->lines = __atomic_load_n(&s->lstats.lines, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&s->lstats.bytes, __ATOMIC_RELAXED);
    out->truncated = __atomic_load_n(&s->lstats.truncated, __ATOMIC_RELAXED);
    return 0;
}
