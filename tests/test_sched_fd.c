/* fd waits on real pipes, socketpairs and eventfds: a task waiting on an fd
 * resumes only after another task or thread made it ready; kills and
 * timeouts cancel a wait for good; several waiters share an fd; an fd number
 * closed and reused works; bad fds have their defined results. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"

#define MS INT64_C(1000000)

static int nonblocking_pipe(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

/* Waits for events on fd (with timeout), logs what it got, reads one byte
 * if readable; repeats `times` times. */
struct fdtask {
    rill_gen gen;
    rill_syscall call;
    int fd;
    unsigned events;
    int64_t timeout;
    int times, i;
    int result[8];
    int flag_seen[8]; /* *flag when it resumed */
    atomic_int *flag;
    char got[8];
    int closed, resumes;
};

static int fdtask_body(rill_gen *g) {
    struct fdtask *t = RILL_CONTAINER_OF(g, struct fdtask, gen);
    RILL_GEN_BEGIN(g);
    for (t->i = 0; t->i < t->times; t->i++) {
        RILL_SYSCALL(g, rill_sys_wait_fd(&t->call, t->fd, t->events, t->timeout));
        t->resumes++;
        t->result[t->i] = t->call.result;
        t->flag_seen[t->i] = t->flag ? atomic_load(t->flag) : 0;
        if (t->call.result > 0 && (t->call.result & RILL_FD_READABLE) &&
            (t->events & RILL_FD_READABLE) && read(t->fd, &t->got[t->i], 1) != 1)
            t->got[t->i] = '?';
    }
    RILL_GEN_END(g);
}

static int fdtask_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct fdtask, gen)->closed++;
    return 0;
}

static void fdtask_init(struct fdtask *t, int fd, unsigned events, int times) {
    memset(t, 0, sizeof *t);
    t->fd = fd;
    t->events = events;
    t->timeout = RILL_SCHED_FOREVER;
    t->times = times;
    rill_gen_init(&t->gen, fdtask_body, fdtask_close);
}

/* Yields `yields` times (or sleeps ns if > 0), sets *flag, writes byte to
 * fd (if fd >= 0), then does the same again `rounds` times. */
struct writer {
    rill_gen gen;
    rill_syscall call;
    int fd, yields, i, rounds, r;
    int64_t ns;
    char byte;
    atomic_int *flag;
};

static int writer_body(rill_gen *g) {
    struct writer *w = RILL_CONTAINER_OF(g, struct writer, gen);
    RILL_GEN_BEGIN(g);
    for (w->r = 0; w->r < w->rounds; w->r++) {
        if (w->ns > 0) {
            RILL_SYSCALL(g, rill_sys_sleep(&w->call, w->ns));
        }
        for (w->i = 0; w->i < w->yields; w->i++)
            RILL_YIELD(g, NULL);
        if (w->flag)
            atomic_fetch_add(w->flag, 1);
        if (w->fd >= 0 && write(w->fd, &w->byte, 1) != 1)
            return -errno;
    }
    RILL_GEN_END(g);
}

static void writer_init(struct writer *w, int fd, int yields, char byte, atomic_int *flag) {
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->yields = yields;
    w->byte = byte;
    w->flag = flag;
    w->rounds = 1;
    rill_gen_init(&w->gen, writer_body, NULL);
}

RILL_TEST(sched_fd, readable_only_after_another_task_writes) {
    int p[2];
    atomic_int written = 0;
    struct fdtask r;
    struct writer w;
    rill_sched *s;
    CHECK_EQ(nonblocking_pipe(p), 0);
    CHECK_OK(rill_sched_new(&s));
    fdtask_init(&r, p[0], RILL_FD_READABLE, 2);
    r.flag = &written;
    writer_init(&w, p[1], 5, 'x', &written);
    w.rounds = 2;
    w.ns = 2 * MS; /* the second write comes after a sleep */
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    for (int i = 0; i < 2; i++) {
        CHECK(r.result[i] & RILL_FD_READABLE);
        CHECK_EQ(r.flag_seen[i], i + 1); /* resumed only after write i */
        CHECK_EQ(r.got[i], 'x');
    }
    rill_sched_free(s);
    close(p[0]);
    close(p[1]);
}

struct thread_writer {
    int fd, times;
    int64_t delay_ns;
    atomic_int *flag;
    uint64_t value; /* for an eventfd: 8 bytes */
};

static void *thread_write(void *arg) {
    struct thread_writer *tw = arg;
    for (int i = 0; i < tw->times; i++) {
        struct timespec ts = {0, (long)tw->delay_ns};
        nanosleep(&ts, NULL);
        atomic_fetch_add(tw->flag, 1);
        if (write(tw->fd, &tw->value, sizeof tw->value) != (ssize_t)sizeof tw->value)
            return (void *)1;
    }
    return NULL;
}

RILL_TEST(sched_fd, readable_after_a_thread_writes_a_pipe) {
    int p[2];
    atomic_int written = 0;
    struct fdtask r;
    rill_sched *s;
    pthread_t th;
    CHECK_EQ(nonblocking_pipe(p), 0);
    CHECK_OK(rill_sched_new(&s));
    fdtask_init(&r, p[0], RILL_FD_READABLE, 1);
    r.flag = &written;
    struct thread_writer tw = {p[1], 1, 20 * MS, &written, 0};
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_EQ(pthread_create(&th, NULL, thread_write, &tw), 0);
    int rc = rill_sched_run(s);
    void *tr;
    pthread_join(th, &tr);
    CHECK_OK(rc);
    CHECK(tr == NULL);
    CHECK(r.result[0] & RILL_FD_READABLE);
    CHECK_EQ(r.flag_seen[0], 1);
    rill_sched_free(s);
    close(p[0]);
    close(p[1]);
}

/* The loop's wake-up from a worker thread: waits on an eventfd until the
 * thread has signalled `want` times (counts may coalesce). */
struct evwaiter {
    rill_gen gen;
    rill_syscall call;
    int fd;
    uint64_t total, want;
    int waits;
};

static int evwaiter_body(rill_gen *g) {
    struct evwaiter *e = RILL_CONTAINER_OF(g, struct evwaiter, gen);
    RILL_GEN_BEGIN(g);
    while (e->total < e->want) {
        RILL_SYSCALL(g, rill_sys_wait_fd(&e->call, e->fd, RILL_FD_READABLE, RILL_SCHED_FOREVER));
        e->waits++;
        if (e->call.result < 0)
            return e->call.result;
        uint64_t v;
        if (read(e->fd, &v, sizeof v) == (ssize_t)sizeof v)
            e->total += v;
        else if (errno != EAGAIN)
            return -errno;
    }
    RILL_GEN_END(g);
}

RILL_TEST(sched_fd, an_eventfd_wakes_the_loop_from_a_thread) {
    atomic_int sent = 0;
    struct evwaiter e;
    rill_sched *s;
    pthread_t th;
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK(efd >= 0);
    CHECK_OK(rill_sched_new(&s));
    memset(&e, 0, sizeof e);
    e.fd = efd;
    e.want = 50;
    rill_gen_init(&e.gen, evwaiter_body, NULL);
    struct thread_writer tw = {efd, 50, 200000, &sent, 1};
    CHECK_OK(rill_sched_spawn(s, &e.gen, NULL, NULL));
    CHECK_EQ(pthread_create(&th, NULL, thread_write, &tw), 0);
    int rc = rill_sched_run(s);
    void *tr;
    pthread_join(th, &tr);
    CHECK_OK(rc);
    CHECK(tr == NULL);
    CHECK_EQ(e.total, 50);
    CHECK(e.waits >= 1);
    rill_sched_free(s);
    close(efd);
}

/* Fills a socket until EAGAIN, waits writable, records whether the drainer
 * had run. */
struct filler {
    rill_gen gen;
    rill_syscall call;
    int fd, result, drained_seen;
    atomic_int *drained;
    size_t filled;
};

static int filler_body(rill_gen *g) {
    struct filler *f = RILL_CONTAINER_OF(g, struct filler, gen);
    RILL_GEN_BEGIN(g);
    for (;;) {
        char buf[4096] = {0};
        ssize_t n = write(f->fd, buf, sizeof buf);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < 0)
            return -errno;
        f->filled += (size_t)n;
    }
    RILL_SYSCALL(g, rill_sys_wait_fd(&f->call, f->fd, RILL_FD_WRITABLE, RILL_SCHED_FOREVER));
    f->result = f->call.result;
    f->drained_seen = atomic_load(f->drained);
    RILL_GEN_END(g);
}

/* Yields a few times, then reads everything from fd. */
struct drainer {
    rill_gen gen;
    int fd, i;
    atomic_int *drained;
};

static int drainer_body(rill_gen *g) {
    struct drainer *d = RILL_CONTAINER_OF(g, struct drainer, gen);
    RILL_GEN_BEGIN(g);
    for (d->i = 0; d->i < 5; d->i++)
        RILL_YIELD(g, NULL);
    atomic_store(d->drained, 1);
    for (;;) {
        char buf[65536];
        if (read(d->fd, buf, sizeof buf) <= 0)
            break;
    }
    RILL_GEN_END(g);
}

RILL_TEST(sched_fd, writable_only_after_the_peer_makes_room) {
    int sv[2];
    atomic_int drained = 0;
    struct filler f;
    struct drainer d;
    rill_sched *s;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(rill_sched_new(&s));
    memset(&f, 0, sizeof f);
    f.fd = sv[0];
    f.drained = &drained;
    rill_gen_init(&f.gen, filler_body, NULL);
    memset(&d, 0, sizeof d);
    d.fd = sv[1];
    d.drained = &drained;
    rill_gen_init(&d.gen, drainer_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &f.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &d.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK(f.filled > 0);
    CHECK(f.result & RILL_FD_WRITABLE);
    CHECK_EQ(f.drained_seen, 1);
    rill_sched_free(s);
    close(sv[0]);
    close(sv[1]);
}
