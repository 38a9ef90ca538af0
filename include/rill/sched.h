/* rill — a scheduler of coroutine tasks that make system calls, as an
 * operating system schedules processes, on epoll.
 *
 * A task is a rill_gen generator (rill/coro.h). It runs until it yields;
 * what it yields is its request to the scheduler:
 *
 *   RILL_YIELD(g, NULL)   a bare `yield`: go to the back of the
 *                         ready queue and be resumed with NULL.
 *   RILL_YIELD(g, call)   a system call: call points at a rill_syscall the
 *                         task owns (a field of its state struct). The task
 *                         is resumed with call itself (RILL_SENT(g) == call)
 *                         once the call has its answer in call->result (and
 *                         call->id / call->value where the call says so).
 *
 * The RILL_SYS_* macros below fill the struct and yield; they are yields, so
 * the coroutine rules apply (no yield inside a `switch` of the body, state in
 * the struct). A task has at most one call in flight; the struct must stay
 * valid until the task is resumed or has ended.
 *
 *     struct foo { rill_gen gen; rill_syscall call; uint64_t tid; int i; };
 *
 *     static int foo_body(rill_gen *g) {
 *         struct foo *f = RILL_CONTAINER_OF(g, struct foo, gen);
 *         RILL_GEN_BEGIN(g);
 *         RILL_SYS_GETTID(g, &f->call);          // tid = yield GetTid()
 *         f->tid = f->call.id;
 *         for (f->i = 0; f->i < 5; f->i++)
 *             RILL_SYS_YIELD(g);                 // yield
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

/* Kill task id from outside a task (tasks use RILL_SYS_KILL): as the KILL
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

/* A gate: a condition variable for tasks, made of a task that only sleeps.
 * Tasks wait for it with RILL_SYS_WAIT(g, call, gate->id) (or
 * RILL_SYS_WAIT_TIMEOUT) and resume, with result RILL_ECLOSED, when it is
 * opened; opening wakes every waiter at once and costs no fd and no system
 * call of the OS. The struct is the caller's (e.g. a field of a server) and
 * must stay valid while the gate is up; id is 0 while it is down. Both
 * functions run on the scheduler's thread. */
typedef struct rill_sched_gate {
    rill_gen gen;     /* private */
    rill_syscall call; /* private */
    uint64_t id;      /* the task to wait for; 0: the gate is down */
} rill_sched_gate;

/* Put gate up on s if it is down (spawn its task); the id to wait for is
 * then gate->id. Returns 0, or an error of rill_sched_spawn (RILL_ENOMEM):
 * the gate stays down, so a waiter has to poll instead. */
int rill_sched_gate_up(rill_sched *s, rill_sched_gate *gate);

/* Open gate: every task waiting for it resumes, and it is down until the
 * next rill_sched_gate_up. Nothing if it is down. */
void rill_sched_gate_open(rill_sched *s, rill_sched_gate *gate);

/* ---- system call macros (for task bodies) --------------------------------- */

/* The seed's bare `yield`. */
#define RILL_SYS_YIELD(g) RILL_YIELD(g, NULL)

/* Fill *call and yield it. call (a rill_syscall *, e.g. &state->call) is
 * evaluated more than once. The fill sits in a block of its own so that the
 * yield's resume label does not jump past an initialization (valid C++ too). */
#define RILL__SYS(g, call, op_, id_, ns_, task_, free_, fd_, ev_)       \
    do {                                                                \
        {                                                               \
            rill_syscall *rill__c = (call);                             \
            rill__c->op = (op_);                                        \
            rill__c->id = (id_);                                        \
            rill__c->ns = (ns_);                                        \
            rill__c->task = (task_);                                    \
            rill__c->free_fn = (free_);                                 \
            rill__c->fd = (fd_);                                        \
            rill__c->events = (ev_);                                    \
            rill__c->result = 0;                                        \
            rill__c->value = NULL;                                      \
        }                                                               \
        RILL_YIELD(g, (call));                                          \
    } while (0)

#define RILL_SYS_GETTID(g, call) \
    RILL__SYS(g, call, RILL_SYS_OP_GETTID, 0, 0, NULL, NULL, -1, 0u)
#define RILL_SYS_SPAWN(g, call, task, free_fn) \
    RILL__SYS(g, call, RILL_SYS_OP_SPAWN, 0, 0, task, free_fn, -1, 0u)
#define RILL_SYS_SPAWN_WAIT(g, call, task, free_fn) \
    RILL__SYS(g, call, RILL_SYS_OP_SPAWN_WAIT, 0, RILL_SCHED_FOREVER, task, free_fn, -1, 0u)
#define RILL_SYS_KILL(g, call, tid) \
    RILL__SYS(g, call, RILL_SYS_OP_KILL, tid, 0, NULL, NULL, -1, 0u)
#define RILL_SYS_WAIT(g, call, tid) \
    RILL__SYS(g, call, RILL_SYS_OP_WAIT, tid, RILL_SCHED_FOREVER, NULL, NULL, -1, 0u)
#define RILL_SYS_WAIT_TIMEOUT(g, call, tid, timeout_ns) \
    RILL__SYS(g, call, RILL_SYS_OP_WAIT, tid, timeout_ns, NULL, NULL, -1, 0u)
#define RILL_SYS_SLEEP(g, call, duration_ns) \
    RILL__SYS(g, call, RILL_SYS_OP_SLEEP, 0, duration_ns, NULL, NULL, -1, 0u)
#define RILL_SYS_WAIT_FD(g, call, fd_, events_, timeout_ns) \
    RILL__SYS(g, call, RILL_SYS_OP_WAIT_FD, 0, timeout_ns, NULL, NULL, fd_, events_)
#define RILL_SYS_READABLE(g, call, fd_) \
    RILL_SYS_WAIT_FD(g, call, fd_, RILL_FD_READABLE, RILL_SCHED_FOREVER)
#define RILL_SYS_WRITABLE(g, call, fd_) \
    RILL_SYS_WAIT_FD(g, call, fd_, RILL_FD_WRITABLE, RILL_SCHED_FOREVER)

#ifdef __cplusplus
}
#endif
#endif
