/* The task scheduler: the seed's demo, ids, FIFO order, and every system
 * call's results and edge cases except time and fds (test_sched_time.c,
 * test_sched_fd.c). Tasks keep what they saw in a per-test context. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "rill.h"
#include "rill_test.h"

/* ---- the seed's demo ------------------------------------------------------- */

RILL_TEST(sched, os_sched_prints_the_seed_output) {
    /* The 19 lines the article prints for its foo/bar program. */
    static const char expected[] =
        "I'm foo and I am living in 1 process\n"
        "Foo 1 is in 0 step\n"
        "I'm bar and I'm living in 2 process\n"
        "Foo 1 is in 1 step\n"
        "Bar 2 is in 0 step\n"
        "Foo 1 is in 2 step\n"
        "I'm foo and I am living in 3 process\n"
        "Foo 3 is in 0 step\n"
        "Bar 2 is in 1 step\n"
        "Foo 1 is in 3 step\n"
        "Foo 3 is in 1 step\n"
        "Bar 2 is in 2 step\n"
        "Foo 1 is in 4 step\n"
        "Foo 3 is in 2 step\n"
        "Task 1 terminated\n"
        "Foo 3 is in 3 step\n"
        "Task 2 terminated\n"
        "Foo 3 is in 4 step\n"
        "Task 3 terminated\n";
    char out[2048];
    FILE *p = popen("'" RILL_BIN_DIR "/os_sched'", "r");
    CHECK(p != NULL);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    CHECK(WIFEXITED(st));
    CHECK_EQ(WEXITSTATUS(st), 0);
    CHECK_STREQ(out, expected);
}

/* ---- a configurable task ---------------------------------------------------- */

#define LOG_MAX 256

struct ctx {
    rill_sched *s;
    int log[LOG_MAX]; /* what tasks did, in order (see the tasks) */
    int nlog;
    int exits;
    uint64_t exit_id[LOG_MAX];
    int exit_status[LOG_MAX];
};

static void ctx_log(struct ctx *c, int v) {
    if (c->nlog < LOG_MAX)
        c->log[c->nlog++] = v;
}

static void on_exit_cb(void *arg, uint64_t id, int status) {
    struct ctx *c = arg;
    if (c->exits < LOG_MAX) {
        c->exit_id[c->exits] = id;
        c->exit_status[c->exits++] = status;
    }
}

static int status_of(const struct ctx *c, uint64_t id) {
    for (int i = 0; i < c->exits; i++)
        if (c->exit_id[i] == id)
            return c->exit_status[i];
    return 1; /* not reported */
}

static int reported(const struct ctx *c, uint64_t id) {
    int n = 0;
    for (int i = 0; i < c->exits; i++)
        n += c->exit_id[i] == id;
    return n;
}

/* Gets its id, yields steps times (logging tag*100 + step at each), then
 * makes the call op (if op != 0; arg is its id argument, child/child_free
 * its spawn arguments), keeps the answer, logs tag*100 + 99 and ends with
 * err (0: returns &ret). Counts its on_close and free_fn calls. */
struct task {
    rill_gen gen;
    rill_syscall call;
    struct ctx *c;
    int tag, steps, i, err, ret;
    int op;
    uint64_t arg;
    rill_gen *child;
    rill_task_free_fn child_free;
    int closed, freed, close_rc;
    int answered, sent_ok;
    rill_syscall answer; /* the call as it was answered */
    uint64_t tid;
};

static int task_body(rill_gen *g) {
    struct task *t = RILL_CONTAINER_OF(g, struct task, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, rill_sys_gettid(&t->call));
    t->tid = t->call.id;
    for (t->i = 0; t->i < t->steps; t->i++) {
        ctx_log(t->c, t->tag * 100 + t->i);
        RILL_YIELD(g, NULL);
    }
    if (t->op != 0) {
        /* Any op, valid or not: filled by hand, as a builder would. */
        rill_sys_wait(&t->call, t->arg, RILL_SCHED_FOREVER);
        t->call.op = t->op;
        t->call.task = t->child;
        t->call.free_fn = t->child_free;
        RILL_SYSCALL(g, &t->call);
        t->sent_ok = RILL_SENT(g) == &t->call;
        t->answer = t->call;
        t->answered = 1;
    }
    ctx_log(t->c, t->tag * 100 + 99);
    if (t->err)
        return t->err;
    RILL_RETURN(g, &t->ret);
    RILL_GEN_END(g);
}

static int task_close(rill_gen *g) {
    struct task *t = RILL_CONTAINER_OF(g, struct task, gen);
    t->closed++;
    return t->close_rc;
}

static void task_free(rill_gen *g) { RILL_CONTAINER_OF(g, struct task, gen)->freed++; }

static void task_init(struct task *t, struct ctx *c, int tag, int steps) {
    memset(t, 0, sizeof *t);
    t->c = c;
    t->tag = tag;
    t->steps = steps;
    rill_gen_init(&t->gen, task_body, task_close);
}

static void task_call(struct task *t, int op, uint64_t arg) {
    t->op = op;
    t->arg = arg;
}

static int ctx_open(struct ctx *c) {
    memset(c, 0, sizeof *c);
    int rc = rill_sched_new(&c->s);
    if (rc == 0)
        rill_sched_on_exit(c->s, on_exit_cb, c);
    return rc;
}

static int spawn(struct ctx *c, struct task *t, uint64_t *id) {
    return rill_sched_spawn(c->s, &t->gen, task_free, id);
}

/* The index of v in the log, or -1. */
static int log_at(const struct ctx *c, int v) {
    for (int i = 0; i < c->nlog; i++)
        if (c->log[i] == v)
            return i;
    return -1;
}

/* ---- ids, order, spawn ---------------------------------------------------- */

RILL_TEST(sched, ids_start_at_one_in_spawn_order) {
    struct ctx c;
    struct task t[3], child;
    uint64_t id[3];
    CHECK_OK(ctx_open(&c));
    for (int i = 0; i < 3; i++) {
        task_init(&t[i], &c, i + 1, 0);
        CHECK_OK(spawn(&c, &t[i], &id[i]));
        CHECK_EQ(id[i], (uint64_t)i + 1);
    }
    task_init(&child, &c, 9, 0);
    t[2].child = &child.gen;
    t[2].child_free = task_free;
    task_call(&t[2], RILL_SYS_OP_SPAWN, 0);
    CHECK_EQ(rill_sched_count(c.s), 3);
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(rill_sched_count(c.s), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(t[i].tid, id[i]);
        CHECK_EQ(t[i].freed, 1);
        CHECK_EQ(t[i].closed, 0);
        CHECK_EQ(status_of(&c, id[i]), 0);
    }
    CHECK_EQ(t[2].answer.result, 0);
    CHECK_EQ(t[2].answer.id, 4);
    CHECK(t[2].sent_ok);
    CHECK_EQ(child.tid, 4);
    CHECK_EQ(child.freed, 1);
    CHECK_EQ(c.exits, 4);
    rill_sched_free(c.s);
}

RILL_TEST(sched, ready_queue_is_fifo) {
    struct ctx c;
    struct task t[3];
    CHECK_OK(ctx_open(&c));
    for (int i = 0; i < 3; i++) {
        task_init(&t[i], &c, i + 1, 3);
        CHECK_OK(spawn(&c, &t[i], NULL));
    }
    CHECK_OK(rill_sched_run(c.s));
    /* After each one's gettid, the three take turns, step by step. */
    static const int want[] = {100, 200, 300, 101, 201, 301, 102, 202, 302, 199, 299, 399};
    CHECK_EQ(c.nlog, 12);
    for (int i = 0; i < 12; i++)
        CHECK_EQ(c.log[i], want[i]);
    CHECK_EQ(c.exit_id[0], 1);
    CHECK_EQ(c.exit_id[1], 2);
    CHECK_EQ(c.exit_id[2], 3);
    rill_sched_free(c.s);
}

RILL_TEST(sched, spawned_task_steps_before_its_spawner_resumes) {
    struct ctx c;
    struct task parent, child;
    CHECK_OK(ctx_open(&c));
    task_init(&parent, &c, 1, 0);
    task_init(&child, &c, 2, 2);
    parent.child = &child.gen;
    parent.child_free = task_free;
    task_call(&parent, RILL_SYS_OP_SPAWN, 0);
    CHECK_OK(spawn(&c, &parent, NULL));
    CHECK_OK(rill_sched_run(c.s));
    /* The child's gettid goes before the parent's resumption; the child's
     * first logged step comes after, as in the seed's queue. */
    CHECK(log_at(&c, 199) >= 0 && log_at(&c, 200) >= 0);
    CHECK(log_at(&c, 199) < log_at(&c, 200));
    CHECK_EQ(parent.answer.id, child.tid);
    rill_sched_free(c.s);
}

RILL_TEST(sched, spawn_rejects_null_self_and_finished_tasks) {
    struct ctx c;
    struct task a, b, done;
    CHECK_OK(ctx_open(&c));
    CHECK_EQ(rill_sched_spawn(c.s, NULL, NULL, NULL), RILL_EINVAL);
    task_init(&done, &c, 3, 0);
    rill_gen_close(&done.gen);
    CHECK_EQ(rill_sched_spawn(c.s, &done.gen, NULL, NULL), RILL_EINVAL);
    task_init(&a, &c, 1, 0);
    task_call(&a, RILL_SYS_OP_SPAWN, 0); /* child NULL */
    task_init(&b, &c, 2, 0);
    task_call(&b, RILL_SYS_OP_SPAWN, 0);
    b.child = &b.gen; /* itself */
    CHECK_OK(spawn(&c, &a, NULL));
    CHECK_OK(spawn(&c, &b, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(a.answer.result, RILL_EINVAL);
    CHECK_EQ(b.answer.result, RILL_EINVAL);
    CHECK_EQ(c.exits, 2);
    CHECK_EQ(b.freed, 1);
    rill_sched_free(c.s);
}

RILL_TEST(sched, unknown_op_is_einval_and_the_task_goes_on) {
    struct ctx c;
    struct task a, b;
    CHECK_OK(ctx_open(&c));
    task_init(&a, &c, 1, 0);
    task_call(&a, 777, 0);
    task_init(&b, &c, 2, 0);
    task_call(&b, RILL_SYS_OP_MAX_, 0);
    CHECK_OK(spawn(&c, &a, NULL));
    CHECK_OK(spawn(&c, &b, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(a.answer.result, RILL_EINVAL);
    CHECK_EQ(b.answer.result, RILL_EINVAL);
    CHECK(log_at(&c, 199) >= 0 && log_at(&c, 299) >= 0);
    rill_sched_free(c.s);
}

/* ---- kill ------------------------------------------------------------------ */

RILL_TEST(sched, kill_closes_reports_and_releases_the_target_once) {
    struct ctx c;
    struct task victim, killer;
    CHECK_OK(ctx_open(&c));
    task_init(&victim, &c, 1, 50);
    task_init(&killer, &c, 2, 3);
    task_call(&killer, RILL_SYS_OP_KILL, 1);
    CHECK_OK(spawn(&c, &victim, NULL));
    CHECK_OK(spawn(&c, &killer, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(killer.answer.result, 1);
    CHECK_EQ(victim.closed, 1);
    CHECK_EQ(victim.freed, 1);
    CHECK_EQ(reported(&c, 1), 1);
    CHECK_EQ(status_of(&c, 1), RILL_ECLOSED);
    CHECK_EQ(status_of(&c, 2), 0);
    /* The victim took no step after the kill, and never reached its end. */
    CHECK_EQ(log_at(&c, 199), -1);
    for (int i = log_at(&c, 299); i < c.nlog; i++)
        CHECK(c.log[i] / 100 != 1);
    CHECK(victim.i < 50);
    rill_sched_free(c.s);
}

RILL_TEST(sched, kill_of_unknown_zero_or_finished_id_is_false) {
    struct ctx c;
    struct task quick, k1, k2, k3;
    CHECK_OK(ctx_open(&c));
    task_init(&quick, &c, 1, 0);
    task_init(&k1, &c, 2, 0);
    task_call(&k1, RILL_SYS_OP_KILL, 999);
    task_init(&k2, &c, 3, 0);
    task_call(&k2, RILL_SYS_OP_KILL, 0);
    task_init(&k3, &c, 4, 5);
    task_call(&k3, RILL_SYS_OP_KILL, 1);
    CHECK_OK(spawn(&c, &quick, NULL));
    CHECK_OK(spawn(&c, &k1, NULL));
    CHECK_OK(spawn(&c, &k2, NULL));
    CHECK_OK(spawn(&c, &k3, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(k1.answer.result, 0);
    CHECK_EQ(k2.answer.result, 0);
    CHECK_EQ(k3.answer.result, 0);
    CHECK_EQ(quick.closed, 0);
    CHECK_EQ(reported(&c, 1), 1);
    CHECK_EQ(status_of(&c, 1), 0);
    rill_sched_free(c.s);
}

RILL_TEST(sched, killing_oneself_ends_the_caller) {
    struct ctx c;
    struct task t, other;
    CHECK_OK(ctx_open(&c));
    task_init(&t, &c, 1, 2);
    task_call(&t, RILL_SYS_OP_KILL, 1);
    task_init(&other, &c, 2, 5);
    CHECK_OK(spawn(&c, &t, NULL));
    CHECK_OK(spawn(&c, &other, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(t.answered, 0); /* never resumed after its kill */
    CHECK_EQ(log_at(&c, 199), -1);
    CHECK_EQ(t.closed, 1);
    CHECK_EQ(t.freed, 1);
    CHECK_EQ(status_of(&c, 1), RILL_ECLOSED);
    CHECK(log_at(&c, 299) >= 0);
    rill_sched_free(c.s);
}

RILL_TEST(sched, kill_from_outside_of_a_task_never_started) {
    struct ctx c;
    struct task t;
    uint64_t id;
    CHECK_OK(ctx_open(&c));
    task_init(&t, &c, 1, 3);
    CHECK_OK(spawn(&c, &t, &id));
    CHECK_EQ(rill_sched_kill(c.s, 42), 0);
    CHECK_EQ(rill_sched_kill(c.s, id), 1);
    CHECK_EQ(rill_sched_kill(c.s, id), 0);
    CHECK_EQ(t.closed, 0); /* never started: nothing to clean up (coro.h) */
    CHECK_EQ(t.freed, 1);
    CHECK_EQ(status_of(&c, id), RILL_ECLOSED);
    CHECK_EQ(rill_sched_count(c.s), 0);
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(c.nlog, 0);
    rill_sched_free(c.s);
}

RILL_TEST(sched, failing_on_close_is_the_killed_tasks_status) {
    struct ctx c;
    struct task victim, killer;
    CHECK_OK(ctx_open(&c));
    task_init(&victim, &c, 1, 20);
    victim.close_rc = -EIO;
    task_init(&killer, &c, 2, 1);
    task_call(&killer, RILL_SYS_OP_KILL, 1);
    CHECK_OK(spawn(&c, &victim, NULL));
    CHECK_OK(spawn(&c, &killer, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EIO);
    CHECK_EQ(killer.answer.result, 1);
    CHECK_EQ(status_of(&c, 1), -EIO);
    CHECK_EQ(victim.closed, 1);
    rill_sched_free(c.s);
}

/* ---- wait ------------------------------------------------------------------ */

RILL_TEST(sched, waiters_get_the_status_and_return_value) {
    struct ctx c;
    struct task target, w[3];
    CHECK_OK(ctx_open(&c));
    task_init(&target, &c, 1, 5);
    CHECK_OK(spawn(&c, &target, NULL));
    for (int i = 0; i < 3; i++) {
        task_init(&w[i], &c, 2 + i, 0);
        task_call(&w[i], RILL_SYS_OP_WAIT, 1);
        CHECK_OK(spawn(&c, &w[i], NULL));
    }
    CHECK_OK(rill_sched_run(c.s));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(w[i].answer.result, 0);
        CHECK(w[i].answer.value == &target.ret);
        CHECK(log_at(&c, (2 + i) * 100 + 99) > log_at(&c, 199));
    }
    rill_sched_free(c.s);
}

RILL_TEST(sched, wait_gets_the_error_of_a_failing_task) {
    struct ctx c;
    struct task target, w;
    CHECK_OK(ctx_open(&c));
    task_init(&target, &c, 1, 3);
    target.err = -EIO;
    task_init(&w, &c, 2, 0);
    task_call(&w, RILL_SYS_OP_WAIT, 1);
    CHECK_OK(spawn(&c, &target, NULL));
    CHECK_OK(spawn(&c, &w, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EIO);
    CHECK_EQ(w.answer.result, -EIO);
    CHECK(w.answer.value == NULL);
    CHECK_EQ(status_of(&c, 1), -EIO);
    CHECK_EQ(status_of(&c, 2), 0);
    rill_sched_free(c.s);
}

RILL_TEST(sched, wait_on_self_unknown_and_finished_ids) {
    struct ctx c;
    struct task self, zero, unknown, quick, late;
    CHECK_OK(ctx_open(&c));
    task_init(&self, &c, 1, 0);
    task_call(&self, RILL_SYS_OP_WAIT, 1);
    task_init(&zero, &c, 2, 0);
    task_call(&zero, RILL_SYS_OP_WAIT, 0);
    task_init(&unknown, &c, 3, 0);
    task_call(&unknown, RILL_SYS_OP_WAIT, 1000);
    task_init(&quick, &c, 4, 0);
    task_init(&late, &c, 5, 5);
    task_call(&late, RILL_SYS_OP_WAIT, 4);
    CHECK_OK(spawn(&c, &self, NULL));
    CHECK_OK(spawn(&c, &zero, NULL));
    CHECK_OK(spawn(&c, &unknown, NULL));
    CHECK_OK(spawn(&c, &quick, NULL));
    CHECK_OK(spawn(&c, &late, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(self.answer.result, -EDEADLK);
    CHECK_EQ(zero.answer.result, -ENOENT);
    CHECK_EQ(unknown.answer.result, -ENOENT);
    CHECK_EQ(late.answer.result, RILL_EDONE);
    rill_sched_free(c.s);
}

RILL_TEST(sched, wait_on_a_task_killed_by_another) {
    struct ctx c;
    struct task waiter, target, killer;
    CHECK_OK(ctx_open(&c));
    task_init(&waiter, &c, 1, 0);
    task_call(&waiter, RILL_SYS_OP_WAIT, 2);
    task_init(&target, &c, 2, 30);
    task_init(&killer, &c, 3, 3);
    task_call(&killer, RILL_SYS_OP_KILL, 2);
    CHECK_OK(spawn(&c, &waiter, NULL));
    CHECK_OK(spawn(&c, &target, NULL));
    CHECK_OK(spawn(&c, &killer, NULL));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(killer.answer.result, 1);
    CHECK_EQ(waiter.answer.result, RILL_ECLOSED);
    CHECK(waiter.answer.value == NULL);
    CHECK_EQ(target.closed, 1);
    CHECK_EQ(log_at(&c, 299), -1);
    rill_sched_free(c.s);
}

RILL_TEST(sched, spawn_wait_sees_a_child_that_ends_at_once) {
    struct ctx c;
    struct task parent, child, parent2, child2;
    CHECK_OK(ctx_open(&c));
    task_init(&child, &c, 2, 0);
    child.err = -EIO;
    task_init(&parent, &c, 1, 0);
    parent.child = &child.gen;
    parent.child_free = task_free;
    task_call(&parent, RILL_SYS_OP_SPAWN_WAIT, 0);
    task_init(&child2, &c, 4, 1);
    task_init(&parent2, &c, 3, 0);
    parent2.child = &child2.gen;
    task_call(&parent2, RILL_SYS_OP_SPAWN_WAIT, 0);
    CHECK_OK(spawn(&c, &parent, NULL));
    CHECK_OK(spawn(&c, &parent2, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EIO);
    CHECK_EQ(parent.answer.result, -EIO);
    CHECK_EQ(parent.answer.id, child.tid);
    CHECK_EQ(child.freed, 1);
    CHECK_EQ(parent2.answer.result, 0);
    CHECK_EQ(parent2.answer.id, child2.tid);
    CHECK(parent2.answer.value == &child2.ret);
    CHECK_EQ(child2.freed, 0); /* spawned with no free_fn */
    rill_sched_free(c.s);
}

/* ---- errors, deadlock, free, re-entry ---------------------------------------- */

RILL_TEST(sched, task_errors_are_reported_and_run_returns_the_first) {
    struct ctx c;
    struct task a, b, ok;
    CHECK_OK(ctx_open(&c));
    task_init(&a, &c, 1, 2);
    a.err = -EIO;
    task_init(&b, &c, 2, 4);
    b.err = -EPIPE;
    task_init(&ok, &c, 3, 6);
    CHECK_OK(spawn(&c, &a, NULL));
    CHECK_OK(spawn(&c, &b, NULL));
    CHECK_OK(spawn(&c, &ok, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EIO);
    CHECK_EQ(status_of(&c, 1), -EIO);
    CHECK_EQ(status_of(&c, 2), -EPIPE);
    CHECK_EQ(status_of(&c, 3), 0);
    CHECK(log_at(&c, 399) >= 0); /* the others ran to their end */
    CHECK_EQ(a.closed + b.closed + ok.closed, 0);
    CHECK_EQ(a.freed + b.freed + ok.freed, 3);
    rill_sched_free(c.s);
}

RILL_TEST(sched, tasks_waiting_for_each_other_are_a_deadlock) {
    struct ctx c;
    struct task a, b;
    CHECK_OK(ctx_open(&c));
    task_init(&a, &c, 1, 0);
    task_call(&a, RILL_SYS_OP_WAIT, 2);
    task_init(&b, &c, 2, 0);
    task_call(&b, RILL_SYS_OP_WAIT, 1);
    CHECK_OK(spawn(&c, &a, NULL));
    CHECK_OK(spawn(&c, &b, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EDEADLK);
    CHECK_EQ(rill_sched_count(c.s), 2);
    /* A kill from outside breaks it: b resumes with a's end, run goes on. */
    CHECK_EQ(rill_sched_kill(c.s, 1), 1);
    CHECK_EQ(a.closed, 1);
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(b.answer.result, RILL_ECLOSED);
    CHECK_EQ(rill_sched_count(c.s), 0);
    rill_sched_free(c.s);
}

RILL_TEST(sched, free_closes_and_releases_every_task_left) {
    struct ctx c;
    struct task a, b, fresh;
    CHECK_OK(ctx_open(&c));
    task_init(&a, &c, 1, 0);
    task_call(&a, RILL_SYS_OP_WAIT, 2);
    task_init(&b, &c, 2, 0);
    task_call(&b, RILL_SYS_OP_WAIT, 1);
    task_init(&fresh, &c, 3, 0);
    CHECK_OK(spawn(&c, &a, NULL));
    CHECK_OK(spawn(&c, &b, NULL));
    CHECK_EQ(rill_sched_run(c.s), -EDEADLK);
    CHECK_OK(spawn(&c, &fresh, NULL));
    int exits = c.exits;
    rill_sched_free(c.s);
    CHECK_EQ(a.closed, 1);
    CHECK_EQ(b.closed, 1);
    CHECK_EQ(fresh.closed, 0); /* never started */
    CHECK_EQ(a.freed + b.freed + fresh.freed, 3);
    CHECK_EQ(c.exits, exits); /* free does not report */
}

/* A task that calls the scheduler's functions directly from its body. */
struct meddler {
    rill_gen gen;
    rill_sched *s;
    uint64_t self;
    int run_rc, kill_rc, spawn_rc;
    struct task *extra;
};

static int meddler_body(rill_gen *g) {
    struct meddler *m = RILL_CONTAINER_OF(g, struct meddler, gen);
    RILL_GEN_BEGIN(g);
    m->run_rc = rill_sched_run(m->s);
    m->kill_rc = rill_sched_kill(m->s, m->self);
    m->spawn_rc = rill_sched_spawn(m->s, &m->extra->gen, task_free, NULL);
    RILL_YIELD(g, NULL);
    RILL_GEN_END(g);
}

RILL_TEST(sched, a_task_cannot_run_or_kill_itself_directly_but_can_spawn) {
    struct ctx c;
    struct meddler m;
    struct task extra;
    CHECK_OK(ctx_open(&c));
    memset(&m, 0, sizeof m);
    task_init(&extra, &c, 5, 1);
    m.s = c.s;
    m.extra = &extra;
    rill_gen_init(&m.gen, meddler_body, NULL);
    CHECK_OK(rill_sched_spawn(c.s, &m.gen, NULL, &m.self));
    CHECK_OK(rill_sched_run(c.s));
    CHECK_EQ(m.run_rc, RILL_ESTATE);
    CHECK_EQ(m.kill_rc, RILL_ESTATE);
    CHECK_EQ(m.spawn_rc, 0);
    CHECK(log_at(&c, 599) >= 0);
    CHECK_EQ(extra.freed, 1);
    rill_sched_free(c.s);
}

struct respawn {
    struct ctx c;
    struct task next;
    int spawned;
};

static void respawn_on_exit(void *arg, uint64_t id, int status) {
    struct respawn *r = arg;
    on_exit_cb(&r->c, id, status);
    if (!r->spawned++)
        rill_sched_spawn(r->c.s, &r->next.gen, task_free, NULL);
}

RILL_TEST(sched, on_exit_may_spawn) {
    struct respawn r;
    struct task first;
    CHECK_OK(ctx_open(&r.c));
    r.spawned = 0;
    rill_sched_on_exit(r.c.s, respawn_on_exit, &r);
    task_init(&first, &r.c, 1, 1);
    task_init(&r.next, &r.c, 2, 1);
    CHECK_OK(spawn(&r.c, &first, NULL));
    CHECK_OK(rill_sched_run(r.c.s));
    CHECK_EQ(r.c.exits, 2);
    CHECK_EQ(r.c.exit_id[1], 2);
    CHECK(log_at(&r.c, 299) > log_at(&r.c, 199));
    rill_sched_free(r.c.s);
}

/* ---- many tasks, memory ---------------------------------------------------- */

struct turn {
    rill_gen gen;
    uint64_t *clock; /* steps taken by all tasks so far */
    uint64_t *wrong;
    uint32_t k, n, j;
};

static int turn_body(rill_gen *g) {
    struct turn *t = RILL_CONTAINER_OF(g, struct turn, gen);
    RILL_GEN_BEGIN(g);
    for (t->j = 0; t->j < 10; t->j++) {
        /* Round robin: task k's j-th step is the (j*n + k)-th of all. */
        if (*t->clock != (uint64_t)t->j * t->n + t->k)
            (*t->wrong)++;
        (*t->clock)++;
        RILL_YIELD(g, NULL);
    }
    RILL_GEN_END(g);
}

RILL_TEST(sched, hundred_thousand_tasks_take_turns) {
    enum { N = 100000 };
    rill_sched *s;
    struct turn *t = calloc(N, sizeof *t);
    uint64_t clock = 0, wrong = 0;
    CHECK(t != NULL);
    CHECK_OK(rill_sched_new(&s));
    for (uint32_t k = 0; k < N; k++) {
        t[k] = (struct turn){.clock = &clock, .wrong = &wrong, .k = k, .n = N};
        rill_gen_init(&t[k].gen, turn_body, NULL);
        CHECK_OK(rill_sched_spawn(s, &t[k].gen, NULL, NULL));
    }
    struct rill_sched_stats st;
    CHECK_OK(rill_sched_stats(s, &st));
    CHECK_EQ(st.live, N);
    CHECK(st.task_bytes <= 256);
    CHECK(st.engine_bytes / N <= 256);
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(clock, 10u * N);
    CHECK_EQ(wrong, 0);
    CHECK_OK(rill_sched_stats(s, &st));
    CHECK_EQ(st.switches, 11u * N);
    CHECK_EQ(st.ended, N);
    CHECK_EQ(st.live, 0);
    for (uint32_t k = 0; k < N; k++)
        CHECK_EQ(rill_gen_status_of(&t[k].gen), RILL_GEN_DONE);
    rill_sched_free(s);
    free(t);
}

RILL_TEST(sched, steady_state_allocates_nothing_more) {
    struct ctx c;
    static struct task t[200];
    size_t bytes[3];
    CHECK_OK(ctx_open(&c));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 200; i++) {
            task_init(&t[i], &c, 0, 1);
            /* Each waits for the one before it, which has ended or not. */
            task_call(&t[i], i % 2 ? RILL_SYS_OP_WAIT : RILL_SYS_OP_GETTID,
                      (uint64_t)round * 200 + (uint64_t)i);
            CHECK_OK(spawn(&c, &t[i], NULL));
        }
        CHECK_OK(rill_sched_run(c.s));
        struct rill_sched_stats st;
        CHECK_OK(rill_sched_stats(c.s, &st));
        bytes[round] = st.engine_bytes;
        c.nlog = 0;
    }
    CHECK_EQ(bytes[1], bytes[0]);
    CHECK_EQ(bytes[2], bytes[0]);
    rill_sched_free(c.s);
}

/* RILL_SYSCALL names its argument once in the macro text; a call built with
 * a side effect must make it once, and the call still be answered. */
struct once {
    rill_gen gen;
    rill_syscall call;
    int built;
    uint64_t tid;
    int sent_ok;
};

static rill_syscall *once_build(struct once *o) {
    o->built++;
    return rill_sys_gettid(&o->call);
}

static int once_body(rill_gen *g) {
    struct once *o = RILL_CONTAINER_OF(g, struct once, gen);
    RILL_GEN_BEGIN(g);
    RILL_SYSCALL(g, once_build(o));
    o->sent_ok = RILL_SENT(g) == &o->call;
    o->tid = o->call.id;
    RILL_GEN_END(g);
}

RILL_TEST(sched, a_system_call_builds_its_request_once) {
    rill_sched *s;
    struct once o;
    uint64_t id = 0;
    memset(&o, 0, sizeof o);
    CHECK_OK(rill_sched_new(&s));
    rill_gen_init(&o.gen, once_body, NULL);
    CHECK_OK(rill_sched_spawn(s, &o.gen, NULL, &id));
    CHECK_OK(rill_sched_run(s));
    CHECK_EQ(o.built, 1);
    CHECK(o.sent_ok);
    CHECK_EQ(o.tid, id);
    rill_sched_free(s);
}
