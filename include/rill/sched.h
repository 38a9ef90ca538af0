/* rill — a scheduler of coroutine tasks that make system calls, as an
 * operating system schedules processes, on epoll.
 *
 * A task is a rill_gen generator (rill/coro.h). It runs until it yields;
 * what it yields is its request to the scheduler:
 *
 *   RILL_YIELD(g, NULL)     a bare `yield`: go to the back of the
 *                           ready queue and be resumed with NULL.
 *   RILL_SYSCALL(g, call)   a system call: call points at a rill_syscall the
 *                           task owns (a field of its state struct), filled
 *                           by one of the rill_sys_* builders below. The
 *                           task is resumed with call itself (RILL_SENT(g)
 *                           == call) once the call has its answer in
 *                           call->result (and call->id / call->value where
 *                           the call says so).
 *
 * Both are yields, so the coroutine rules apply (no yield inside a `switch`
 * of the body, state in the struct). A task has at most one call in flight;
 * the struct must stay valid until the task is resumed or has ended.
 *
 *     struct foo { rill_gen gen; rill_syscall call; uint64_t tid; int i; };
 *
 *     static int foo_body(rill_gen *g) {
 *         struct foo *f = RILL_CONTAINER_OF(g, struct foo, gen);
 *         RILL_GEN_BEGIN(g);
 *         RILL_SYSCALL(g, rill_sys_gettid(&f->call)); // tid = yield GetTid()
 *         f->tid = f->call.id;
 *         for (f->i = 0; f->i < 5; f->i++)
 *             RILL_YIELD(g, NULL);                     // yield
 *         RILL_GEN_END(g);
 *     }
 *
 * Scheduling: one ready queue in FIFO order. A task that yields NULL, or
 * makes a call that is answered at once, goes to the back of the queue (a
 * task that spawns another is resumed after the new task's first step).
 * Timers (sleep, timeouts) are a binary heap on
 * CLOCK_MONOTONIC; fds are waited on with epoll. Timers and fds are checked
 * whenever the ready queue is empty and at least every 256 task steps.
 * rill_sched_run returns when no task is left.
 *
 * Task ids are 1, 2, 3, ... in spawn order per scheduler and never reused.
 *
 * A task ends when its body finishes (status 0), when its body returns a
 * negative code (status = that code), or when it is killed (status
 * RILL_ECLOSED, or its on_close callback's negative result). At its end, in
 * this order: its on_close has run (killed only), on_exit reports it, every
 * task waiting for it is made ready with the status, its free_fn releases
 * its state. The engine keeps nothing about it afterwards.
 *
 * Thread-safety: a scheduler and its tasks belong to one thread: every
 * function here, and every task, runs on the thread that calls
 * rill_sched_run. Other threads reach a task through an fd it waits on
 * (e.g. an eventfd the thread writes to); see docs/scheduler.md.
 */
#ifndef RILL_SCHED_H
#define RILL_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "rill/coro.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_sched rill_sched;

/* Releases a task's state after the task has ended (e.g. free the struct
 * that embeds g). Called exactly once per task, by the scheduler thread; the
 * engine does not touch g afterwards. */
typedef void (*rill_task_free_fn)(rill_gen *g);

/* Reports that task id has ended with status (see above). */
typedef void (*rill_sched_exit_fn)(void *arg, uint64_t id, int status);

/* System call numbers (rill_syscall.op). */
enum {
    RILL_SYS_OP_GETTID = 1,  /* out: id = the caller's id; result 0 */
    RILL_SYS_OP_SPAWN,       /* in: task, free_fn. out: id = the new task's id,
                                result 0 or an error (then the caller still
                                owns task: nothing was kept) */
    RILL_SYS_OP_SPAWN_WAIT,  /* SPAWN, then WAIT for it: no window in which the
                                child can end unobserved. out: id, result and
                                value as for WAIT */
    RILL_SYS_OP_KILL,        /* in: id. result 1 if the task existed (it has
                                been closed and has ended when the caller
                                resumes), 0 if not (unknown, finished) */
    RILL_SYS_OP_WAIT,        /* in: id, ns (timeout). Suspends until task id
                                ends. result: its status; value: its body's
                                return value (RILL_RETURN; NULL if killed) */
    RILL_SYS_OP_SLEEP,       /* in: ns (duration; <= 0 just requeues after the
                                next timer check). result 0 */
    RILL_SYS_OP_WAIT_FD,     /* in: fd, events, ns (timeout). result: the
                                RILL_FD_* events that happened (> 0) */
    RILL_SYS_OP_MAX_         /* one past the last op; not an op */
};

/* Events of RILL_SYS_OP_WAIT_FD. Request READABLE and/or WRITABLE; the
 * result can add HANGUP and ERROR, which end every wait on the fd. */
enum {
    RILL_FD_READABLE = 1u << 0, /* EPOLLIN (also EOF, a pending accept) */
    RILL_FD_WRITABLE = 1u << 1, /* EPOLLOUT */
    RILL_FD_ERROR = 1u << 2,    /* EPOLLERR */
    RILL_FD_HANGUP = 1u << 3    /* EPOLLHUP or EPOLLRDHUP: the peer closed */
};

/* rill_syscall.ns: no timeout. */
#define RILL_SCHED_FOREVER ((int64_t)-1)

/* A system call, owned by the task that makes it. Fields not used by the op
 * are ignored; "out" fields are written before the task resumes.
 *
 * Results (call->result), by op:
 *   GETTID      0
 *   SPAWN       0; RILL_EINVAL (task NULL or finished), RILL_ESTATE (task
 *               running), RILL_ENOMEM
 *   KILL        1 existed and is now ended; 0 unknown id, id 0, or already
 *               ended. Killing oneself ends the caller like any kill (its
 *               on_close runs, status RILL_ECLOSED): it never resumes.
 *   WAIT        the awaited task's status (0, its error, RILL_ECLOSED if
 *               killed); RILL_EDONE if it had already ended (its status went
 *               to on_exit only); -ENOENT if no task ever had the id;
 *               -EDEADLK for the caller's own id; -ETIMEDOUT when ns >= 0
 *               elapsed first. Any number of tasks may wait for one task.
 *   SPAWN_WAIT  as SPAWN if the spawn fails, else as WAIT
 *   SLEEP       0. Never resumed before the duration has passed.
 *   WAIT_FD     the events seen (> 0): a hint, not a promise, so use
 *               non-blocking fds and wait again on EAGAIN. -ETIMEDOUT after
 *               ns >= 0; RILL_EINVAL (fd < 0, no or unknown events); -EBADF
 *               and other epoll_ctl errors. An fd epoll cannot watch (a
 *               regular file) is always ready: the requested events at once.
 *               Any number of tasks may wait on one fd; each readiness
 *               resumes every task whose events it matches. Each wait ends
 *               once (one-shot): wait again for more. Do not close an fd
 *               while a task waits on it (the wait would never end): kill or
 *               wake the waiter first.
 *   other op    RILL_EINVAL */
typedef struct rill_syscall {
    int op;                    /* in: RILL_SYS_OP_* */
    int fd;                    /* in: WAIT_FD */
    unsigned events;           /* in: WAIT_FD: RILL_FD_READABLE|WRITABLE */
    int result;                /* out */
    uint64_t id;               /* in: KILL, WAIT. out: GETTID, SPAWN(_WAIT) */
    int64_t ns;                /* in: SLEEP duration; WAIT, SPAWN_WAIT and
                                  WAIT_FD timeout (RILL_SCHED_FOREVER: none) */
    rill_gen *task;            /* in: SPAWN(_WAIT) */
    rill_task_free_fn free_fn; /* in: SPAWN(_WAIT) */
    void *value;               /* out: WAIT, SPAWN_WAIT */
} rill_syscall;

/* Create a scheduler (with its epoll instance). On success *out is the
 * caller's, to be freed with rill_sched_free(). Returns 0, RILL_ENOMEM or a
 * negative errno from epoll_create1. */
int rill_sched_new(rill_sched **out);

/* Free s: every task left (never run, suspended, or waiting — after a run
 * that stopped with -EDEADLK, or without a run) is closed with
 * rill_gen_close (its on_close runs if it was suspended) and released with
 * its free_fn; on_exit is not called. Not from inside rill_sched_run (nor
 * from a task or callback). NULL is a no-op. */
void rill_sched_free(rill_sched *s);

/* Add task to the back of the ready queue; it is first resumed (with NULL)
 * by rill_sched_run. task must be created or suspended and not already a
 * task of a live scheduler. On success the task belongs to s until it ends
 * (then free_fn, if not NULL, releases it) and *id (if id is not NULL) is
 * its id. On failure nothing is kept. Returns 0, RILL_EINVAL (task NULL or
 * done), RILL_ESTATE (task running) or RILL_ENOMEM. May be called before
 * run, or during run from a task body or a callback (same thread). */
int rill_sched_spawn(rill_sched *s, rill_gen *task, rill_task_free_fn free_fn, uint64_t *id);

/* Kill task id from outside a task (tasks use rill_sys_kill): as the KILL
 * call. Returns 1, 0, or RILL_ESTATE when called from a callback or body
 * for the task that is running or whose call is being answered. */
int rill_sched_kill(rill_sched *s, uint64_t id);

/* Run tasks until none is left. Returns 0 if every task that ended during
 * this run ended with status 0 or was killed; otherwise the first negative
 * status one ended with (the other tasks still run to their end); -EDEADLK if tasks are left that
 * can never resume (each waits for a task, none sleeps or waits on an fd:
 * they stay, for rill_sched_free or a later rill_sched_kill); RILL_ESTATE if
 * called from inside run; or a negative errno from epoll_wait. Can be called
 * again after it returns, e.g. after spawning more tasks. */
int rill_sched_run(rill_sched *s);

/* Call fn(arg, id, status) as each task ends (NULL: no report). Set it
 * before run. fn may spawn and kill tasks. */
void rill_sched_on_exit(rill_sched *s, rill_sched_exit_fn fn, void *arg);

/* Tasks spawned and not yet ended. */
size_t rill_sched_count(const rill_sched *s);

/* CLOCK_MONOTONIC in nanoseconds: the clock of sleeps and timeouts. */
uint64_t rill_sched_now_ns(void);

struct rill_sched_stats {
    uint64_t spawned;     /* tasks spawned */
    uint64_t ended;       /* tasks ended (finished, failed or killed) */
    uint64_t switches;    /* task resumes */
    uint64_t syscalls;    /* system calls answered */
    uint64_t polls;       /* epoll waits */
    size_t live;          /* tasks now */
    size_t task_bytes;    /* size of the engine's record per task */
    size_t engine_bytes;  /* memory the engine holds now: task records (and
                             its free list), id map, timer heap, fd table.
                             It does not shrink until rill_sched_free */
};

/* Snapshot of s's counters. Returns 0. */
int rill_sched_stats(const rill_sched *s, struct rill_sched_stats *out);

/* An owned task: a task whose state is a field of the struct that owns it
 * (a server, a stage), which starts it when needed and may find it gone.
 * id is its id while it lives and 0 otherwise: never started, failed to
 * spawn, or ended (the scheduler zeroes id when it releases the task, in
 * every way a task ends, rill_sched_free included). The body reaches its
 * owner by container-of twice:
 *
 *     rill_sched_owned *t = RILL_CONTAINER_OF(g, rill_sched_owned, gen);
 *     struct server *srv = RILL_CONTAINER_OF(t, struct server, acceptor);
 *
 * and makes its calls with t->call. The struct must stay valid, and must
 * not move, while id is not 0. Everything runs on the scheduler's thread. */
typedef struct rill_sched_owned {
    rill_gen gen;      /* private */
    rill_syscall call; /* the task's own system call */
    uint64_t id;       /* the live task; 0: none */
} rill_sched_owned;

/* Start t running body (with on_close, may be NULL) on s, unless it is
 * alive already (id not 0), in which case nothing changes. Returns 0, or an
 * error of rill_sched_spawn (RILL_ENOMEM) with id 0 and nothing started. */
int rill_sched_owned_up(rill_sched *s, rill_sched_owned *t, rill_gen_body_fn body,
                        rill_gen_close_fn on_close);

/* Kill t if it is alive, as rill_sched_kill (its on_close runs and id
 * becomes 0); nothing if it is not. Returns rill_sched_kill's answer, 0 when
 * it is not alive. */
int rill_sched_owned_kill(rill_sched *s, rill_sched_owned *t);

/* A gate: a condition variable for tasks, made of an owned task that only
 * sleeps. Tasks wait for it with RILL_SYSCALL(g, rill_sys_wait(call,
 * gate->id, timeout)) and resume, with result RILL_ECLOSED, when it is
 * opened; opening wakes every waiter at once and costs no fd and no system
 * call of the OS. The struct is the caller's (e.g. a field of a server) and
 * must stay valid while the gate is up; id is 0 while it is down. Both
 * functions run on the scheduler's thread. */
typedef rill_sched_owned rill_sched_gate;

/* Put gate up on s if it is down (spawn its task); the id to wait for is
 * then gate->id. Returns 0, or an error of rill_sched_spawn (RILL_ENOMEM):
 * the gate stays down, so a waiter has to poll instead. */
int rill_sched_gate_up(rill_sched *s, rill_sched_gate *gate);

/* Open gate: every task waiting for it resumes, and it is down until the
 * next rill_sched_gate_up. Nothing if it is down. */
void rill_sched_gate_open(rill_sched *s, rill_sched_gate *gate);

/* ---- system calls (for task bodies) ---------------------------------------- */

/* A task makes a call by filling its rill_syscall with one of the builders
 * below and yielding it with RILL_SYSCALL:
 *
 *     RILL_SYSCALL(g, rill_sys_sleep(&f->call, 5 * 1000000));
 *     if (f->call.result < 0) ...
 *
 * Each builder overwrites every field of *call (the "out" fields with 0,
 * NULL, and fd with -1), fills the "in" fields of its op from its typed
 * arguments, and returns call. It only fills: the call is made by the
 * yield. call must not be NULL. */

static inline rill_syscall *rill__sys_fill(rill_syscall *call, int op, uint64_t id, int64_t ns) {
    call->op = op;
    call->fd = -1;
    call->events = 0;
    call->result = 0;
    call->id = id;
    call->ns = ns;
    call->task = NULL;
    call->free_fn = NULL;
    call->value = NULL;
    return call;
}

/* GETTID: afterwards call->id is the caller's id. */
static inline rill_syscall *rill_sys_gettid(rill_syscall *call) {
    return rill__sys_fill(call, RILL_SYS_OP_GETTID, 0, 0);
}

/* SPAWN task (created or suspended) with free_fn (may be NULL): afterwards
 * call->id is its id, or call->result an error and task is still the
 * caller's. */
static inline rill_syscall *rill_sys_spawn(rill_syscall *call, rill_gen *task,
                                           rill_task_free_fn free_fn) {
    rill__sys_fill(call, RILL_SYS_OP_SPAWN, 0, 0);
    call->task = task;
    call->free_fn = free_fn;
    return call;
}

/* SPAWN_WAIT: spawn task as rill_sys_spawn, then wait for it to end without
 * a timeout, as rill_sys_wait. */
static inline rill_syscall *rill_sys_spawn_wait(rill_syscall *call, rill_gen *task,
                                                rill_task_free_fn free_fn) {
    rill__sys_fill(call, RILL_SYS_OP_SPAWN_WAIT, 0, RILL_SCHED_FOREVER);
    call->task = task;
    call->free_fn = free_fn;
    return call;
}

/* KILL task id. */
static inline rill_syscall *rill_sys_kill(rill_syscall *call, uint64_t id) {
    return rill__sys_fill(call, RILL_SYS_OP_KILL, id, 0);
}

/* WAIT for task id to end, at most timeout_ns (RILL_SCHED_FOREVER: no
 * limit). */
static inline rill_syscall *rill_sys_wait(rill_syscall *call, uint64_t id, int64_t timeout_ns) {
    return rill__sys_fill(call, RILL_SYS_OP_WAIT, id, timeout_ns);
}

/* SLEEP for ns. */
static inline rill_syscall *rill_sys_sleep(rill_syscall *call, int64_t ns) {
    return rill__sys_fill(call, RILL_SYS_OP_SLEEP, 0, ns);
}

/* WAIT_FD: wait until fd has one of events (RILL_FD_READABLE and/or
 * RILL_FD_WRITABLE), at most timeout_ns (RILL_SCHED_FOREVER: no limit). */
static inline rill_syscall *rill_sys_wait_fd(rill_syscall *call, int fd, unsigned events,
                                             int64_t timeout_ns) {
    rill__sys_fill(call, RILL_SYS_OP_WAIT_FD, 0, timeout_ns);
    call->fd = fd;
    call->events = events;
    return call;
}

/* Make the call call (a rill_syscall *, filled by a builder or by hand) and
 * suspend until it is answered: the task resumes with RILL_SENT(g) == call
 * and the answer in call->result (and id / value where the op says so).
 * call is evaluated once. This is a yield, so the coroutine rules apply (no
 * RILL_SYSCALL inside a `switch` of the body; state in the struct), and it
 * must stay a macro: its resume point is a label in the body. A bare
 * `yield` (to the back of the ready queue) is RILL_YIELD(g, NULL). */
#define RILL_SYSCALL(g, call) RILL_YIELD(g, rill__syscall_arg(call))

/* The type check of RILL_SYSCALL's argument. */
static inline rill_syscall *rill__syscall_arg(rill_syscall *call) { return call; }

#ifdef __cplusplus
}
#endif
#endif
