/* fd waits on epoll.
 *
 * Each fd number has an entry with its waiting tasks. The fd is registered
 * EPOLLONESHOT for the union of what its waiters want: when it fires the
 * kernel disarms it, so an fd nobody waits for any more (its waiter was
 * killed or timed out) reports at most once and costs nothing after, and no
 * deregistration is ever needed. A new wait on an fd that has no waiters
 * always re-arms with EPOLL_CTL_MOD (ADD if the kernel does not know the fd,
 * e.g. because it was closed and its number reused): one epoll_ctl per wait,
 * and a closed fd can never leave a registration we believe in.
 *
 * Events carry the fd number, not a pointer, so a stale event for an fd whose
 * waiters are gone finds an empty entry and does nothing. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sched_int.h"

#define RILL__FD_WANT (RILL_FD_READABLE | RILL_FD_WRITABLE)

int rill__sched_io_init(rill_sched *s) {
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer intercepts epoll_wait but not epoll_pwait2, and it
     * runs signal handlers only at an intercepted call: a handler that stops
     * the loop (a server's SIGTERM) would never run while it sleeps. */
    s->no_pwait2 = 1;
#endif
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    return s->epfd < 0 ? -errno : 0;
}

void rill__sched_io_free(rill_sched *s) {
    if (s->epfd >= 0)
        close(s->epfd);
    s->epfd = -1;
    free(s->fds);
    s->fds = NULL;
    s->fds_cap = 0;
}

static int rill__fds_reserve(rill_sched *s, int fd) {
    size_t need = (size_t)fd + 1;
    if (need <= s->fds_cap)
        return 0;
    size_t cap = s->fds_cap ? s->fds_cap : 64;
    while (cap < need)
        cap *= 2;
    rill__fdent *fds = malloc(cap * sizeof *fds);
    if (!fds)
        return RILL_ENOMEM;
    if (s->fds_cap)
        memcpy(fds, s->fds, s->fds_cap * sizeof *fds);
    for (size_t i = 0; i < s->fds_cap; i++) /* the lists' heads moved */
        rill__list_moved(&fds[i].waiters, &s->fds[i].waiters);
    for (size_t i = s->fds_cap; i < cap; i++) {
        rill__list_init(&fds[i].waiters);
        fds[i].armed = 0;
    }
    free(s->fds);
    s->fds = fds;
    s->fds_cap = cap;
    return 0;
}

static unsigned rill__want(const rill__fdent *e) {
    unsigned want = 0;
    const rill__list *l;
    RILL__LIST_EACH(l, &e->waiters)
        want |= RILL__LIST_ENTRY(l, const rill__task, link)->call->events;
    return want;
}

/* Register fd for want, one-shot. Returns 0 or -errno. */
static int rill__arm(rill_sched *s, int fd, unsigned want) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLONESHOT | (want & RILL_FD_READABLE ? (uint32_t)EPOLLIN : 0u) |
                (want & RILL_FD_WRITABLE ? (uint32_t)EPOLLOUT : 0u);
    ev.data.fd = fd;
    int rc = epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev);
    if (rc < 0 && errno == ENOENT)
        rc = epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
    if (rc < 0)
        return -errno;
    s->fds[fd].armed = want;
    return 0;
}

static void rill__wake(rill_sched *s, rill__task *t, int result) {
    rill__sched_fd_cancel(s, t);
    rill__sched_heap_remove(s, t);
    t->call->result = result;
    rill__sched_ready(s, t);
}

/* Returns 1 if t now waits, 0 if c is answered already (c->result). */
int rill__sched_fd_wait(rill_sched *s, rill__task *t, rill_syscall *c) {
    if (c->fd < 0 || !(c->events & RILL__FD_WANT) || (c->events & ~RILL__FD_WANT)) {
        c->result = RILL_EINVAL;
        return 0;
    }
    int rc = rill__fds_reserve(s, c->fd);
    if (rc < 0) {
        c->result = rc;
        return 0;
    }
    rill__fdent *e = &s->fds[c->fd];
    if (rill__list_empty(&e->waiters) || (e->armed & c->events) != c->events) {
        rc = rill__arm(s, c->fd, rill__want(e) | c->events);
        if (rc == -EPERM) { /* a regular file or directory: always ready */
            c->result = (int)c->events;
            return 0;
        }
        if (rc < 0) {
            c->result = rc;
            return 0;
        }
    }
    if (c->ns >= 0 && (rc = rill__sched_heap_push(s, t, c->ns)) < 0) {
        c->result = rc;
        return 0;
    }
    rill__list_push(&e->waiters, &t->link);
    t->state = RILL__T_WAIT_FD;
    s->nfdwait++;
    return 1;
}

/* t leaves its fd's waiters; the registration stays armed (see above). */
void rill__sched_fd_cancel(rill_sched *s, rill__task *t) {
    rill__list_unlink(&t->link);
    s->nfdwait--;
}

static void rill__dispatch(rill_sched *s, const struct epoll_event *ev) {
    int fd = ev->data.fd;
    if (fd < 0 || (size_t)fd >= s->fds_cap)
        return;
    rill__fdent *e = &s->fds[fd];
    e->armed = 0; /* one-shot: the kernel disarmed it */
    unsigned got = (ev->events & EPOLLIN ? RILL_FD_READABLE : 0u) |
                   (ev->events & EPOLLOUT ? RILL_FD_WRITABLE : 0u) |
                   (ev->events & EPOLLERR ? RILL_FD_ERROR : 0u) |
                   (ev->events & (EPOLLHUP | EPOLLRDHUP) ? RILL_FD_HANGUP : 0u);
    unsigned ends_all = got & (RILL_FD_ERROR | RILL_FD_HANGUP);
    rill__list *l, *next;
    RILL__LIST_EACH_SAFE(l, next, &e->waiters) {
        rill__task *t = RILL__LIST_ENTRY(l, rill__task, link);
        unsigned mine = got & (t->call->events | ends_all);
        if (mine & RILL__FD_WANT || ends_all)
            rill__wake(s, t, (int)mine);
    }
    if (!rill__list_empty(&e->waiters)) {
        int rc = rill__arm(s, fd, rill__want(e));
        while (rc < 0 && !rill__list_empty(&e->waiters))
            rill__wake(s, RILL__LIST_ENTRY(rill__list_first(&e->waiters), rill__task, link), rc);
    }
}

/* Wait up to timeout_ns (< 0: no limit) for fd events and make their
 * waiters ready. Returns 0 (also when a signal interrupted the wait) or a
 * negative errno from epoll. */
int rill__sched_poll(rill_sched *s, int64_t timeout_ns) {
    int n;
    s->polls++;
    if (!s->no_pwait2) {
        struct timespec ts, *tp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = (time_t)(timeout_ns / 1000000000);
            ts.tv_nsec = (long)(timeout_ns % 1000000000);
            tp = &ts;
        }
        n = epoll_pwait2(s->epfd, s->events, RILL__SCHED_EVENTS, tp, NULL);
        if (n < 0 && errno == ENOSYS)
            s->no_pwait2 = 1;
    }
    if (s->no_pwait2) {
        /* Round up: a timer must never fire early. */
        int ms = timeout_ns < 0 ? -1
                 : timeout_ns > (int64_t)INT32_MAX * 1000000 ? INT32_MAX
                 : (int)((timeout_ns + 999999) / 1000000);
        n = epoll_wait(s->epfd, s->events, RILL__SCHED_EVENTS, ms);
    }
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++)
        rill__dispatch(s, &s->events[i]);
    return 0;
}
