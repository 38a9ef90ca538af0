/* The scheduler's timers: sleeps end in deadline order and never early,
 * timeouts of waits, kills of sleepers, and signals during the loop's wait.
 * The only timing assertions are "not early" (checked on CLOCK_MONOTONIC)
 * and orders between deadlines far apart. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"

#define MS INT64_C(1000000)

/* Deadlines closer than this may swap: a task measures its start just
 * before the engine does, and may be preempted in between. */
#define ORDER_SLACK (5 * MS)

struct sleeper {
    rill_gen gen;
    rill_syscall call;
    int64_t ns;
    uint64_t t0, woke;
    int result, closed, resumed;
    int *order, *norder, idx;
};

static int sleeper_body(rill_gen *g) {
    struct sleeper *z = RILL_CONTAINER_OF(g, struct sleeper, gen);
    RILL_GEN_BEGIN(g);
    z->t0 = rill_sched_now_ns();
    RILL_SYSCALL(g, rill_sys_sleep(&z->call, z->ns));
    z->woke = rill_sched_now_ns();
    z->resumed++;
    z->result = z->call.result;
    if (z->order)
        z->order[(*z->norder)++] = z->idx;
    RILL_GEN_END(g);
}

static int sleeper_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct sleeper, gen)->closed++;
    return 0;
}

static void sleeper_init(struct sleeper *z, int64_t ns, int *order, int *norder, int idx) {
    memset(z, 0, sizeof *z);
    z->ns = ns;
    z->order = order;
    z->norder = norder;
    z->idx = idx;
    rill_gen_init(&z->gen, sleeper_body, sleeper_close);
}

static uint64_t deadline_of(const struct sleeper *z) {
    return z->t0 + (uint64_t)(z->ns > 0 ? z->ns : 0);
}

RILL_TEST(sched_time, sleepers_wake_in_deadline_order_and_never_early) {
    static const int64_t ms[] = {40, 10, 30, 0, 20, 50, -5};
    enum { N = sizeof ms / sizeof ms[0] };
    struct sleeper z[N];
    int order[N], norder = 0;
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    for (int i = 0; i < N; i++) {
        sleeper_init(&z[i], ms[i] * MS, order, &norder, i);
        CHECK_OK(rill_sched_spawn(s, &z[i].gen, NULL, NULL));
    }
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(norder, N);
    for (int i = 0; i < N; i++) {
        CHECK_EQ(z[i].result, 0);
        CHECK(z[i].woke >= deadline_of(&z[i]));
    }
    for (int i = 1; i < N; i++)
        CHECK(deadline_of(&z[order[i]]) + ORDER_SLACK >= deadline_of(&z[order[i - 1]]));
    rill_sched_free(s);
}

RILL_TEST(sched_time, a_thousand_random_sleeps_keep_their_order) {
    enum { N = 1000 };
    struct sleeper *z = calloc(N, sizeof *z);
    int *order = calloc(N, sizeof *order), norder = 0;
    rill_sched *s;
    CHECK(z && order);
    CHECK_OK(rill_sched_new(&s));
    srand(7);
    for (int i = 0; i < N; i++) {
        sleeper_init(&z[i], (int64_t)(rand() % 50000) * 1000, order, &norder, i);
        CHECK_OK(rill_sched_spawn(s, &z[i].gen, NULL, NULL));
    }
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(norder, N);
    uint64_t latest = 0; /* latest deadline among those woken so far */
    for (int i = 0; i < N; i++) {
        const struct sleeper *w = &z[order[i]];
        CHECK(w->woke >= deadline_of(w));
        CHECK(deadline_of(w) + ORDER_SLACK >= latest);
        if (deadline_of(w) > latest)
            latest = deadline_of(w);
    }
    rill_sched_free(s);
    free(z);
    free(order);
}

/* Kills the task id after sleeping ns. */
struct killer {
    rill_gen gen;
    rill_syscall call;
    int64_t ns;
    uint64_t victim;
    int result;
};

static int killer_body(rill_gen *g) {
    struct killer *k = RILL_CONTAINER_OF(g, struct killer, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_sleep(&k->call, k->ns));
    RILL_SYSCALL(g, rill_sys_kill(&k->call, k->victim));
    k->result = k->call.result;
    RILL_GEN_END(g);
}

static void killer_init(struct killer *k, int64_t ns, uint64_t victim) {
    memset(k, 0, sizeof *k);
    k->ns = ns;
    k->victim = victim;
    rill_gen_init(&k->gen, killer_body, NULL);
}

RILL_TEST(sched_time, a_killed_sleeper_is_closed_once_and_never_wakes) {
    /* Sleepers of 5..45 ms around a 1-hour one in the heap's middle; the
     * long one is killed at 1 ms, the others still wake in order. */
    enum { N = 9 };
    struct sleeper z[N];
    struct killer k;
    int order[N], norder = 0;
    uint64_t id[N], tk;
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    for (int i = 0; i < N; i++) {
        int64_t ns = i == 4 ? 3600 * 1000 * MS : (int64_t)(N - i) * 5 * MS;
        sleeper_init(&z[i], ns, order, &norder, i);
        CHECK_OK(rill_sched_spawn(s, &z[i].gen, NULL, &id[i]));
    }
    killer_init(&k, 1 * MS, id[4]);
    CHECK_OK(rill_sched_spawn(s, &k.gen, NULL, &tk));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(k.result, 1);
    CHECK_EQ(z[4].closed, 1);
    CHECK_EQ(z[4].resumed, 0);
    CHECK_EQ(norder, N - 1);
    for (int i = 0; i < N; i++)
        if (i != 4)
            CHECK(z[i].woke >= deadline_of(&z[i]));
    for (int i = 1; i < norder; i++)
        CHECK(deadline_of(&z[order[i]]) + ORDER_SLACK >= deadline_of(&z[order[i - 1]]));
    rill_sched_free(s);
}

/* Waits for task target with a timeout, then without. */
struct waiter {
    rill_gen gen;
    rill_syscall call;
    uint64_t target;
    int64_t timeout;
    uint64_t t0, t1;
    int first, second, resumes;
};

static int waiter_body(rill_gen *g) {
    struct waiter *w = RILL_CONTAINER_OF(g, struct waiter, gen);
    RILL_GEN_BEGIN(g);
    w->t0 = rill_sched_now_ns();
    RILL_SYSCALL(g, rill_sys_wait(&w->call, w->target, w->timeout));
    w->t1 = rill_sched_now_ns();
    w->resumes++;
    w->first = w->call.result;
    RILL_SYSCALL(g, rill_sys_wait(&w->call, w->target, RILL_SCHED_FOREVER));
    w->resumes++;
    w->second = w->call.result;
    RILL_GEN_END(g);
}

RILL_TEST(sched_time, wait_times_out_and_can_wait_again) {
    struct sleeper target;
    struct waiter w;
    uint64_t tid;
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    sleeper_init(&target, 60 * MS, NULL, NULL, 0);
    CHECK_OK(rill_sched_spawn(s, &target.gen, NULL, &tid));
    memset(&w, 0, sizeof w);
    w.target = tid;
    w.timeout = 10 * MS;
    rill_gen_init(&w.gen, waiter_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(w.first, -ETIMEDOUT);
    CHECK(w.t1 - w.t0 >= (uint64_t)w.timeout);
    CHECK_EQ(w.second, 0);
    CHECK_EQ(w.resumes, 2);
    rill_sched_free(s);
}

RILL_TEST(sched_time, a_zero_timeout_wait_on_a_live_task_times_out) {
    struct sleeper target;
    struct waiter w;
    uint64_t tid;
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s));
    sleeper_init(&target, 20 * MS, NULL, NULL, 0);
    CHECK_OK(rill_sched_spawn(s, &target.gen, NULL, &tid));
    memset(&w, 0, sizeof w);
    w.target = tid;
    rill_gen_init(&w.gen, waiter_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(w.first, -ETIMEDOUT);
    CHECK_EQ(w.second, 0);
    rill_sched_free(s);
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig) {
    (void)sig;
    alarms++;
}

RILL_TEST(sched_time, signals_interrupting_the_wait_change_nothing) {
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: epoll waits fail with EINTR */
    sigemptyset(&sa.sa_mask);
    CHECK_EQ(sigaction(SIGALRM, &sa, &old), 0);
    struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
    alarms = 0;
    CHECK_EQ(setitimer(ITIMER_REAL, &it, NULL), 0);

    struct sleeper z[3];
    rill_sched *s;
    int rc = rill_sched_new(&s);
    for (int i = 0; rc == 0 && i < 3; i++) {
        sleeper_init(&z[i], (int64_t)(i + 1) * 30 * MS, NULL, NULL, i);
        rc = rill_sched_spawn(s, &z[i].gen, NULL, NULL);
    }
    if (rc == 0)
        rc = rill_sched_run(s);
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    CHECK_OK(rc);
    CHECK(alarms > 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(z[i].resumed, 1);
        CHECK(z[i].woke >= deadline_of(&z[i]));
    }
    rill_sched_free(s);
}

/* Waits until fd is readable, then kills task victim. */
struct alarm_killer {
    rill_gen gen;
    rill_syscall call;
    int fd, waited, killed;
    uint64_t victim;
};

static int alarm_killer_body(rill_gen *g) {
    struct alarm_killer *a = RILL_CONTAINER_OF(g, struct alarm_killer, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_wait_fd(&a->call, a->fd, RILL_FD_READABLE, RILL_SCHED_FOREVER));
    a->waited = a->call.result;
    RILL_SYSCALL(g, rill_sys_kill(&a->call, a->victim));
    a->killed = a->call.result;
    RILL_GEN_END(g);
}

RILL_TEST(sched_time, the_longest_sleep_is_a_valid_loop_timeout) {
    /* The only deadline is INT64_MAX ns away (saturated): the loop must
     * block on it without an error until a timerfd fires 5 ms later. */
    struct sleeper z;
    struct alarm_killer a;
    uint64_t zid;
    rill_sched *s;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(tfd >= 0);
    struct itimerspec its = {{0, 0}, {0, 5 * 1000 * 1000}};
    CHECK_OK(rill_sched_new(&s));
    sleeper_init(&z, INT64_MAX, NULL, NULL, 0);
    CHECK_OK(rill_sched_spawn(s, &z.gen, NULL, &zid));
    memset(&a, 0, sizeof a);
    a.fd = tfd;
    a.victim = zid;
    rill_gen_init(&a.gen, alarm_killer_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &a.gen, NULL, NULL));
    CHECK_EQ(timerfd_settime(tfd, 0, &its, NULL), 0);
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(a.waited, RILL_FD_READABLE);
    CHECK_EQ(a.killed, 1);
    CHECK_EQ(z.closed, 1);
    CHECK_EQ(z.resumed, 0);
    rill_sched_free(s);
    close(tfd);
}
