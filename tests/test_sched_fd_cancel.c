/* fd waits that end otherwise than by the awaited readiness: kills and
 * timeouts cancel them for good (no later resume), hang-ups and errors end
 * them, several tasks share an fd, an fd number reused after close works,
 * the fd table grows under waiting tasks, and bad arguments are refused. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"

#define MS INT64_C(1000000)

/* Makes up to 4 waits (fd[i], ev[i], timeout[i]); after each, records the
 * result and *flag, and reads a byte if it got READABLE. */
struct seq {
    rill_gen gen;
    rill_syscall call;
    int n, i;
    int fd[4];
    unsigned ev[4];
    int64_t timeout[4];
    int result[4], flag_seen[4];
    char got[4];
    const int *flag;
    int resumes, closed;
};

static int seq_body(rill_gen *g) {
    struct seq *q = RILL_CONTAINER_OF(g, struct seq, gen);
    RILL_GEN_BEGIN(g);
    for (q->i = 0; q->i < q->n; q->i++) {
        RILL_SYSCALL(g, rill_sys_wait_fd(&q->call, q->fd[q->i], q->ev[q->i], q->timeout[q->i]));
        q->resumes++;
        q->result[q->i] = q->call.result;
        q->flag_seen[q->i] = q->flag ? *q->flag : 0;
        if (q->call.result > 0 && (q->call.result & RILL_FD_READABLE) &&
            read(q->fd[q->i], &q->got[q->i], 1) != 1)
            q->got[q->i] = '?';
    }
    RILL_GEN_END(g);
}

static int seq_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct seq, gen)->closed++;
    return 0;
}

static void seq_init(struct seq *q, const int *flag) {
    memset(q, 0, sizeof *q);
    q->flag = flag;
    rill_gen_init(&q->gen, seq_body, seq_close);
}

static void seq_add(struct seq *q, int fd, unsigned ev, int64_t timeout) {
    q->fd[q->n] = fd;
    q->ev[q->n] = ev;
    q->timeout[q->n++] = timeout;
}

/* A script of actions between yields: sleep ns, set *flag = v, write a byte
 * to fd, close fd, kill a task. */
enum { A_YIELD, A_SLEEP, A_FLAG, A_WRITE, A_CLOSE, A_KILL };
struct act {
    int what;
    int64_t arg;
};
struct script {
    rill_gen gen;
    rill_syscall call;
    const struct act *acts;
    int n, i;
    int *flag;
    int kill_result;
};

static int script_body(rill_gen *g) {
    struct script *p = RILL_CONTAINER_OF(g, struct script, gen);
    RILL_GEN_BEGIN(g);
    for (p->i = 0; p->i < p->n; p->i++) {
        const struct act *a; /* set, not initialized: a local beside a yield (coro.h) */
        a = &p->acts[p->i];
        if (a->what == A_YIELD) {
            RILL_YIELD(g, NULL);
        } else if (a->what == A_SLEEP) {
            RILL_SYSCALL(g, rill_sys_sleep(&p->call, a->arg));
        } else if (a->what == A_FLAG) {
            *p->flag = (int)a->arg;
        } else if (a->what == A_WRITE) {
            if (write((int)a->arg, "x", 1) != 1)
                return -errno;
        } else if (a->what == A_CLOSE) {
            close((int)a->arg);
        } else if (a->what == A_KILL) {
            RILL_SYSCALL(g, rill_sys_kill(&p->call, (uint64_t)a->arg));
            p->kill_result = p->call.result;
        }
    }
    RILL_GEN_END(g);
}

static void script_init(struct script *p, const struct act *acts, int n, int *flag) {
    memset(p, 0, sizeof *p);
    p->acts = acts;
    p->n = n;
    p->flag = flag;
    rill_gen_init(&p->gen, script_body, NULL);
}

RILL_TEST(sched_fd_cancel, a_killed_waiter_is_never_resumed_and_the_fd_still_works) {
    int p[2], flag = 0;
    struct seq victim, later;
    struct script k;
    rill_sched *s;
    uint64_t vid;
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_OK(rill_sched_new(&s));
    seq_init(&victim, &flag);
    seq_add(&victim, p[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    CHECK_OK(rill_sched_spawn(s, &victim.gen, NULL, &vid));
    /* Kill it while it waits, then make the fd ready and let the loop see
     * the (now orphan) readiness. */
    const struct act acts[] = {{A_YIELD, 0},       {A_KILL, (int64_t)vid}, {A_WRITE, p[1]},
                               {A_SLEEP, 10 * MS}, {A_YIELD, 0},           {A_SLEEP, 1 * MS}};
    script_init(&k, acts, 6, &flag);
    CHECK_OK(rill_sched_spawn(s, &k.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(k.kill_result, 1);
    CHECK_EQ(victim.closed, 1);
    CHECK_EQ(victim.resumes, 0);
    /* The byte is still there for a new waiter. */
    seq_init(&later, &flag);
    seq_add(&later, p[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    CHECK_OK(rill_sched_spawn(s, &later.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK(later.result[0] & RILL_FD_READABLE);
    CHECK_EQ(later.got[0], 'x');
    CHECK_EQ(victim.closed, 1);
    rill_sched_free(s);
    close(p[0]);
    close(p[1]);
}

RILL_TEST(sched_fd_cancel, a_timed_out_wait_is_not_resumed_by_later_data) {
    int a[2], b[2], flag = 0;
    struct seq r;
    struct script w;
    rill_sched *s;
    CHECK_EQ(pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_OK(rill_sched_new(&s));
    seq_init(&r, &flag);
    seq_add(&r, a[0], RILL_FD_READABLE, 5 * MS);          /* times out */
    seq_add(&r, b[0], RILL_FD_READABLE, RILL_SCHED_FOREVER); /* then this */
    const struct act acts[] = {{A_SLEEP, 20 * MS}, {A_FLAG, 1}, {A_WRITE, a[1]},
                               {A_SLEEP, 20 * MS}, {A_FLAG, 2}, {A_WRITE, b[1]}};
    script_init(&w, acts, 6, &flag);
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(r.result[0], -ETIMEDOUT);
    CHECK_EQ(r.flag_seen[0], 0);
    CHECK(r.result[1] & RILL_FD_READABLE);
    CHECK_EQ(r.flag_seen[1], 2); /* b's data resumed it, not a's */
    CHECK_EQ(r.resumes, 2);
    rill_sched_free(s);
    for (int i = 0; i < 2; i++) {
        close(a[i]);
        close(b[i]);
    }
}

RILL_TEST(sched_fd_cancel, readers_and_a_writer_share_one_fd) {
    int sv[2], flag = 0;
    struct seq r1, r2, wr;
    struct script peer;
    rill_sched *s;
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(rill_sched_new(&s));
    seq_init(&r1, &flag);
    seq_add(&r1, sv[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    seq_init(&r2, &flag);
    seq_add(&r2, sv[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    seq_init(&wr, &flag);
    seq_add(&wr, sv[0], RILL_FD_WRITABLE, RILL_SCHED_FOREVER);
    const struct act acts[] = {{A_SLEEP, 5 * MS}, {A_FLAG, 1}, {A_WRITE, sv[1]}};
    script_init(&peer, acts, 3, &flag);
    CHECK_OK(rill_sched_spawn(s, &r1.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &r2.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &wr.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &peer.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(wr.result[0], RILL_FD_WRITABLE);
    CHECK_EQ(wr.flag_seen[0], 0); /* writable at once */
    CHECK_EQ(r1.result[0], RILL_FD_READABLE);
    CHECK_EQ(r2.result[0], RILL_FD_READABLE);
    CHECK_EQ(r1.flag_seen[0], 1);
    CHECK_EQ(r2.flag_seen[0], 1);
    /* One byte: the first reader got it, the second found EAGAIN. */
    CHECK_EQ(r1.got[0], 'x');
    CHECK_EQ(r2.got[0], '?');
    rill_sched_free(s);
    close(sv[0]);
    close(sv[1]);
}

RILL_TEST(sched_fd_cancel, hangup_and_error_end_waits) {
    int p[2], q[2], flag = 0;
    struct seq r, w;
    struct script closer;
    rill_sched *s;
    CHECK_EQ(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(pipe2(q, O_NONBLOCK | O_CLOEXEC), 0);
    while (write(q[1], "0123456789abcdef", 16) > 0) /* fill q */
        ;
    CHECK_OK(rill_sched_new(&s));
    seq_init(&r, &flag);
    seq_add(&r, p[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    seq_init(&w, &flag);
    seq_add(&w, q[1], RILL_FD_WRITABLE, RILL_SCHED_FOREVER);
    const struct act acts[] = {{A_YIELD, 0}, {A_FLAG, 1}, {A_CLOSE, p[1]}, {A_CLOSE, q[0]}};
    script_init(&closer, acts, 4, &flag);
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &closer.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK(r.result[0] & RILL_FD_HANGUP);    /* writer gone: EOF */
    CHECK(w.result[0] & RILL_FD_ERROR);     /* reader gone: EPIPE */
    CHECK_EQ(r.flag_seen[0], 1);
    CHECK_EQ(w.flag_seen[0], 1);
    rill_sched_free(s);
    close(p[0]);
    close(q[1]);
}

RILL_TEST(sched_fd_cancel, bad_arguments_closed_fds_and_regular_files) {
    int p[2], flag = 0;
    struct seq q;
    rill_sched *s;
    CHECK_OK(rill_sched_new(&s)); /* first: its epoll fd must not take p[0] */
    int file = open(RILL_TEST_TMP "/sched_regular_file", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(file >= 0);
    CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    close(p[1]); /* p[0] is now a closed fd number */
    seq_init(&q, &flag);
    seq_add(&q, -1, RILL_FD_READABLE, RILL_SCHED_FOREVER);
    seq_add(&q, file, 0, RILL_SCHED_FOREVER);
    seq_add(&q, file, RILL_FD_READABLE | RILL_FD_HANGUP, RILL_SCHED_FOREVER);
    seq_add(&q, p[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    CHECK_OK(rill_sched_spawn(s, &q.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(q.result[0], RILL_EINVAL);
    CHECK_EQ(q.result[1], RILL_EINVAL);
    CHECK_EQ(q.result[2], RILL_EINVAL);
    CHECK_EQ(q.result[3], -EBADF);
    /* A regular file epoll cannot watch is always ready. */
    seq_init(&q, &flag);
    seq_add(&q, file, RILL_FD_READABLE | RILL_FD_WRITABLE, RILL_SCHED_FOREVER);
    CHECK_OK(rill_sched_spawn(s, &q.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(q.result[0], RILL_FD_READABLE | RILL_FD_WRITABLE);
    rill_sched_free(s);
    close(file);
    unlink(RILL_TEST_TMP "/sched_regular_file");
}

RILL_TEST(sched_fd_cancel, an_fd_number_reused_after_close_is_waited_on_anew) {
    int a[2], b[2], flag = 0;
    struct seq r;
    struct script w;
    rill_sched *s;
    CHECK_EQ(pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_OK(rill_sched_new(&s));
    seq_init(&r, &flag);
    seq_add(&r, a[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    const struct act first[] = {{A_YIELD, 0}, {A_WRITE, a[1]}};
    script_init(&w, first, 2, &flag);
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(r.result[0], RILL_FD_READABLE);
    int old = a[0];
    close(a[0]);
    close(a[1]);
    CHECK_EQ(pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(b[0], old); /* the lowest free number comes back */
    seq_init(&r, &flag);
    seq_add(&r, b[0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
    const struct act second[] = {{A_SLEEP, 2 * MS}, {A_FLAG, 1}, {A_WRITE, b[1]}};
    script_init(&w, second, 3, &flag);
    CHECK_OK(rill_sched_spawn(s, &r.gen, NULL, NULL));
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(r.result[0], RILL_FD_READABLE);
    CHECK_EQ(r.flag_seen[0], 1);
    CHECK_EQ(r.got[0], 'x');
    rill_sched_free(s);
    close(b[0]);
    close(b[1]);
}

RILL_TEST(sched_fd_cancel, the_fd_table_grows_under_waiting_tasks) {
    enum { N = 300 };
    int (*p)[2] = calloc(N, sizeof *p), flag = 0;
    struct seq *r = calloc(N, sizeof *r);
    struct act *acts = calloc(N + 2, sizeof *acts);
    struct script w;
    rill_sched *s;
    CHECK(p && r && acts);
    CHECK_OK(rill_sched_new(&s));
    for (int i = 0; i < N; i++) {
        CHECK_EQ(pipe2(p[i], O_NONBLOCK | O_CLOEXEC), 0);
        seq_init(&r[i], &flag);
        seq_add(&r[i], p[i][0], RILL_FD_READABLE, RILL_SCHED_FOREVER);
        CHECK_OK(rill_sched_spawn(s, &r[i].gen, NULL, NULL));
    }
    acts[0] = (struct act){A_YIELD, 0};
    acts[1] = (struct act){A_FLAG, 1};
    for (int i = 0; i < N; i++) /* newest fds first */
        acts[2 + i] = (struct act){A_WRITE, p[N - 1 - i][1]};
    script_init(&w, acts, N + 2, &flag);
    CHECK_OK(rill_sched_spawn(s, &w.gen, NULL, NULL));
    CHECK_OK(rill_sched_run(s));
    for (int i = 0; i < N; i++) {
        CHECK_EQ(r[i].result[0], RILL_FD_READABLE);
        CHECK_EQ(r[i].flag_seen[0], 1);
        CHECK_EQ(r[i].got[0], 'x');
    }
    rill_sched_free(s);
    for (int i = 0; i < N; i++) {
        close(p[i][0]);
        close(p[i][1]);
    }
    free(p);
    free(r);
    free(acts);
}
