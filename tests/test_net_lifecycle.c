/* The TCP server's life when things go wrong, in-process on real sockets on
 * 127.0.0.1 (port 0), the scheduler on the test's own thread: a stop in
 * each state of the accept task (at the gate of max_conns), a connection
 * task that cannot be spawned, and a run that fails with a connection
 * open (freed scheduler first, then server). The sanitizer builds check
 * that nothing is used after it is freed, leaked or closed twice. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "net_harness.h"
#include "rill_test.h"

/* ---- stops in each state of the accept task, on the test's thread -------- */

/* A task of the test on the server's scheduler: sleeps 1 ms (the accept
 * task has taken its first step by then: it was queued first), then stops
 * the server as `how` says. */
struct stopper_task {
    rill_gen gen;
    rill_syscall call;
    rill_tcp_server *srv;
    int how;
};

static int stopper_body(rill_gen *g) {
    struct stopper_task *t = RILL_CONTAINER_OF(g, struct stopper_task, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_sleep(&t->call, MS));
    rill_tcp_server_stop(t->srv, t->how);
    RILL_GEN_END(g);
}

/* max_conns 1, two clients queued before the run: the first is accepted
 * and sleeps, the accept task waits on the gate for it, and then the stop
 * comes. NOW: the sleeper is killed and the run ends. DRAIN: the sleeper
 * runs to its deadline. Either way the second client is never accepted,
 * the gate and the listener are gone and nothing is left on s. */
static void stop_at_the_gate(int how) {
    rill_sched *s;
    rill_tcp_server *srv;
    struct hctx x;
    memset(&x, 0, sizeof x);
    x.mode = H_SLEEP;
    rill_tcp_opts o = {.max_conns = 1, .deadline_ns = 100 * MS};
    CHECK_OK(rill_sched_new(&s));
    CHECK_OK(rill_tcp_server_new(s, &o, hconn, &x, &srv));
    uint16_t port = rill_tcp_server_port(srv);
    int a = cli_connect(port), b = cli_connect(port);
    CHECK(a >= 0 && b >= 0);
    struct stopper_task t = {.srv = srv, .how = how};
    rill_gen_init(&t.gen, stopper_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &t.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(rill_sched_count(s), 0);
    struct rill_tcp_server_stats st;
    CHECK_OK(rill_tcp_server_stats(srv, &st));
    CHECK_EQ(st.accepted, 1);
    CHECK(st.at_limit >= 1); /* the accept task did wait on the gate */
    CHECK_EQ(st.active, 0);
    CHECK_EQ(st.killed, how == RILL_TCP_STOP_NOW ? 1u : 0u);
    CHECK_EQ(st.timed_out, how == RILL_TCP_STOP_NOW ? 0u : 1u);
    CHECK_EQ(x.closed, 1);
    char buf[16];
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0); /* closed by the server */
    CHECK(cli_recv_all(b, buf, sizeof buf) < 0);   /* reset: never accepted */
    CHECK_EQ(cli_connect(port), -ECONNREFUSED);
    /* A stop after the end, and twice, is harmless; a new run ends at once. */
    rill_tcp_server_stop(srv, RILL_TCP_STOP_NOW);
    rill_tcp_server_stop(srv, RILL_TCP_STOP_DRAIN);
    CHECK_OK(rill_sched_run(s));
    close(a);
    close(b);
    rill_sched_free(s);
    rill_tcp_server_free(srv);
}

RILL_TEST(net, stop_now_while_accept_waits_at_max_conns) { stop_at_the_gate(RILL_TCP_STOP_NOW); }

RILL_TEST(net, stop_drain_while_accept_waits_at_max_conns) {
    stop_at_the_gate(RILL_TCP_STOP_DRAIN);
}

/* ---- the conn_fn's task cannot be spawned -------------------------------- */

static int frees;
static void count_free(rill_gen *g) {
    (void)g;
    frees++;
}

/* id 1: a task that has already finished (spawn refuses it: RILL_EINVAL);
 * id 2: success without a task. Both are the server's to clean up. */
static int unspawnable(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn) {
    static rill_gen done;
    (void)arg;
    if (c->id == 2) {
        *task = NULL;
        return 0;
    }
    rill_gen_init(&done, stopper_body, NULL);
    rill_gen_close(&done);
    *task = &done;
    *free_fn = count_free;
    return 0;
}

RILL_TEST(net, a_task_that_cannot_be_spawned_is_released_and_its_socket_closed) {
    rill_sched *s;
    rill_tcp_server *srv;
    frees = 0;
    rill_tcp_opts o = {.max_accepts = 2};
    CHECK_OK(rill_sched_new(&s));
    CHECK_OK(rill_tcp_server_new(s, &o, unspawnable, NULL, &srv));
    uint16_t port = rill_tcp_server_port(srv);
    int a = cli_connect(port), b = cli_connect(port);
    CHECK(a >= 0 && b >= 0);
    CHECK_OK(rill_sched_run(s));
    struct rill_tcp_server_stats st;
    CHECK_OK(rill_tcp_server_stats(srv, &st));
    CHECK_EQ(st.accepted, 2);
    CHECK_EQ(st.refused, 2);
    CHECK_EQ(st.active, 0);
    CHECK_EQ(frees, 1); /* the finished task, released exactly once */
    char buf[16];
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0); /* closed */
    CHECK_EQ(cli_recv_all(b, buf, sizeof buf), 0);
    close(a);
    close(b);
    rill_sched_free(s);
    rill_tcp_server_free(srv);
}

/* ---- a run that fails with connections open ---------------------------- */

/* The connection's task breaks the scheduler's epoll fd (so the run fails
 * with tasks left, as after an epoll error) and sleeps. */
static int g_epfd = -1, g_sab_closed, g_sab_freed;

struct saboteur {
    rill_gen gen;
    rill_syscall call;
};

static int saboteur_body(rill_gen *g) {
    struct saboteur *t = RILL_CONTAINER_OF(g, struct saboteur, gen);
    RILL_GEN_BEGIN(g);
    {
        int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null < 0 || dup2(null, g_epfd) < 0)
            return -errno;
        close(null);
    }
    RILL_SYSCALL(g, rill_sys_sleep(&t->call, 3600 * INT64_C(1000000000)));
    RILL_GEN_END(g);
}

static int saboteur_close(rill_gen *g) {
    (void)g;
    g_sab_closed++;
    return 0;
}

static void saboteur_free(rill_gen *g) {
    g_sab_freed++;
    free(RILL_CONTAINER_OF(g, struct saboteur, gen));
}

static int saboteur_conn(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn) {
    (void)arg, (void)c;
    struct saboteur *t = calloc(1, sizeof *t);
    if (!t)
        return RILL_ENOMEM;
    rill_gen_init(&t->gen, saboteur_body, saboteur_close);
    *task = &t->gen;
    *free_fn = saboteur_free;
    return 0;
}

RILL_TEST(net, a_failed_run_with_a_connection_open_is_freed_scheduler_first) {
    rill_sched *s;
    rill_tcp_server *srv;
    g_sab_closed = g_sab_freed = 0;
    CHECK_OK(rill_sched_new(&s));
    g_epfd = find_anon_fd("eventpoll", 4096); /* s's: the only one in this process */
    CHECK(g_epfd >= 0);
    CHECK_OK(rill_tcp_server_new(s, NULL, saboteur_conn, NULL, &srv));
    int a = cli_connect(rill_tcp_server_port(srv));
    CHECK(a >= 0);
    CHECK(rill_sched_run(s) < 0);          /* epoll_wait on /dev/null */
    CHECK_EQ(rill_sched_count(s), 4);      /* stop, accept, the task, its supervisor */
    struct rill_tcp_server_stats st;
    CHECK_OK(rill_tcp_server_stats(srv, &st));
    CHECK_EQ(st.active, 1);
    rill_sched_free(s);                    /* closes every task: on_close runs */
    CHECK_EQ(g_sab_closed, 1);
    CHECK_EQ(g_sab_freed, 1);
    char buf[16];
    CHECK(!cli_readable(a, 0));            /* the server still holds the socket */
    rill_tcp_server_free(srv);             /* ... until now */
    CHECK_EQ(cli_recv_all(a, buf, sizeof buf), 0);
    close(a);
}
