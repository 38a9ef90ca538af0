/* Internals of the task scheduler, shared by the files of engine/sched/:
 * sched.c (tasks, run loop), call.c (system calls), timer.c (deadline
 * heap), io.c (epoll), map.c (id map, task records); gate.c (owned tasks,
 * gates) uses only the public API. */
#ifndef RILL_SCHED_INT_H
#define RILL_SCHED_INT_H

#include <stdint.h>
#include <sys/epoll.h>

#include "core/list.h"
#include "core/rill_int.h"

enum {
    RILL__T_READY = 0, /* in the ready queue */
    RILL__T_RUNNING,   /* its body executes */
    RILL__T_CALL,      /* its system call is being answered */
    RILL__T_WAIT_TASK, /* in a task's waiters (and the heap if it has a timeout) */
    RILL__T_WAIT_FD,   /* in an fd's waiters (and the heap if it has a timeout) */
    RILL__T_SLEEP,     /* in the heap only */
    RILL__T_ENDING     /* out of the id map, being closed and reported */
};

#define RILL__NO_HEAP UINT32_MAX

/* The engine's record of one task: the whole per-task overhead besides its
 * id map slot. link is the task's place in exactly one of: the ready queue, a
 * task's waiters, an fd's waiters, the free list of records. */
typedef struct rill__task {
    rill__list link;
    rill__list waiters;        /* tasks waiting for this one to end */
    rill_gen *gen;
    rill_task_free_fn free_fn;
    rill_syscall *call;        /* the call being answered; NULL after a bare yield */
    uint64_t id;
    uint64_t deadline;         /* ns, CLOCK_MONOTONIC, while in the heap */
    uint64_t seq;              /* heap tie-break: equal deadlines in call order */
    uint32_t heap_idx;         /* RILL__NO_HEAP when not in the heap */
    int state;                 /* RILL__T_* */
} rill__task;

typedef struct rill__fdent {
    rill__list waiters;        /* tasks waiting on this fd, in call order */
    unsigned armed;            /* RILL_FD_* the one-shot registration waits for */
} rill__fdent;

#define RILL__SCHED_EVENTS 64

struct rill_sched {
    rill__list ready;
    size_t nready;
    size_t live;
    uint64_t next_id;
    rill__task *current;       /* whose body executes, or NULL */
    int running, freeing, first_err;
    rill_sched_exit_fn exit_fn;
    void *exit_arg;

    /* id -> task: open addressing, Fibonacci hashing, linear probing. */
    rill__task **map;
    size_t map_cap, map_count;
    unsigned map_bits;

    /* Task records come from chunks, recycled through a free list. */
    void *chunks;              /* each chunk starts with the next chunk's address */
    rill__list free_tasks;     /* records not in use, last released first */
    size_t chunk_bytes, next_chunk_len;

    /* Deadlines: binary min-heap of tasks on (deadline, seq). */
    rill__task **heap;
    size_t heap_len, heap_cap;
    uint64_t heap_seq;

    /* fds: an entry per fd number, and the epoll instance. */
    int epfd;
    int no_pwait2;             /* epoll_pwait2 is not available: ms timeouts */
    rill__fdent *fds;
    size_t fds_cap, nfdwait;
    struct epoll_event events[RILL__SCHED_EVENTS];

    uint64_t spawned, ended, switches, syscalls, polls;
};

/* sched.c */
void rill__sched_ready(rill_sched *s, rill__task *t);
void rill__sched_end(rill_sched *s, rill__task *t, int status, void *value);
void rill__sched_detach(rill_sched *s, rill__task *t);
int rill__sched_close_task(rill_sched *s, rill__task *t);

/* sched_call.c: answer t's call c; t is RILL__T_CALL and in no list. */
void rill__sched_call(rill_sched *s, rill__task *t, rill_syscall *c);

/* sched_timer.c */
int rill__sched_heap_push(rill_sched *s, rill__task *t, int64_t ns);
void rill__sched_heap_remove(rill_sched *s, rill__task *t);
void rill__sched_expire(rill_sched *s, uint64_t now);
void rill__sched_heap_free(rill_sched *s);

/* sched_io.c */
int rill__sched_io_init(rill_sched *s);
void rill__sched_io_free(rill_sched *s);
int rill__sched_fd_wait(rill_sched *s, rill__task *t, rill_syscall *c);
void rill__sched_fd_cancel(rill_sched *s, rill__task *t);
int rill__sched_poll(rill_sched *s, int64_t timeout_ns);

/* sched_map.c */
int rill__sched_map_put(rill_sched *s, rill__task *t);
rill__task *rill__sched_map_get(const rill_sched *s, uint64_t id);
void rill__sched_map_del(rill_sched *s, uint64_t id);
void rill__sched_map_free(rill_sched *s);
rill__task *rill__sched_task_alloc(rill_sched *s);
void rill__sched_task_release(rill_sched *s, rill__task *t);
void rill__sched_tasks_free(rill_sched *s);

#endif
