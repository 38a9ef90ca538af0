/* The task scheduler: tasks, their end, and the run loop.
 *
 * A task is a rill_gen plus a record (rill__task). The loop resumes the task
 * at the front of the FIFO ready queue; what it yields decides where it goes
 * next: NULL to the back of the queue, a system call to sched_call.c, which
 * answers it at once (back of the queue) or parks the task on a task's
 * waiters, an fd's waiters and/or the deadline heap. Timers and fds are
 * checked when the queue runs dry and every RILL__SCHED_BATCH steps, so a
 * long queue cannot starve I/O, and the seed's FIFO order is untouched. */
#include <stdlib.h>

#include "core/clock.h"
#include "sched_int.h"

#define RILL__SCHED_BATCH 256

RILL_API uint64_t rill_sched_now_ns(void) { return rill__now_ns(); }

RILL_API int rill_sched_new(rill_sched **out) {
    if (!out)
        return RILL_EINVAL;
    *out = NULL;
    rill_sched *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    rill__list_init(&s->ready);
    rill__list_init(&s->free_tasks);
    s->next_id = 1;
    int rc = rill__sched_io_init(s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

RILL_API void rill_sched_free(rill_sched *s) {
    if (!s)
        return;
    s->freeing = 1;
    /* A task's on_close may look others up (a kill during free returns 0),
     * so each leaves the map before its callbacks run. */
    for (size_t i = 0; i < s->map_cap; i++) {
        rill__task *t = s->map[i];
        if (!t)
            continue;
        s->map[i] = NULL;
        rill_gen_close(t->gen);
        if (t->free_fn)
            t->free_fn(t->gen);
    }
    rill__sched_map_free(s);
    rill__sched_heap_free(s);
    rill__sched_io_free(s);
    rill__sched_tasks_free(s);
    free(s);
}

RILL_API void rill_sched_on_exit(rill_sched *s, rill_sched_exit_fn fn, void *arg) {
    s->exit_fn = fn;
    s->exit_arg = arg;
}

RILL_API size_t rill_sched_count(const rill_sched *s) { return s->live; }

RILL_API int rill_sched_stats(const rill_sched *s, struct rill_sched_stats *out) {
    out->spawned = s->spawned;
    out->ended = s->ended;
    out->switches = s->switches;
    out->syscalls = s->syscalls;
    out->polls = s->polls;
    out->live = s->live;
    out->task_bytes = sizeof(rill__task);
    out->engine_bytes = sizeof *s + s->chunk_bytes + s->map_cap * sizeof *s->map +
                        s->heap_cap * sizeof *s->heap + s->fds_cap * sizeof *s->fds;
    return 0;
}

void rill__sched_ready(rill_sched *s, rill__task *t) {
    t->state = RILL__T_READY;
    rill__list_push(&s->ready, &t->link);
    s->nready++;
}

RILL_API int rill_sched_spawn(rill_sched *s, rill_gen *task, rill_task_free_fn free_fn,
                              uint64_t *id) {
    if (!s || !task)
        return RILL_EINVAL;
    rill_gen_status st = rill_gen_status_of(task);
    if (st == RILL_GEN_DONE)
        return RILL_EINVAL;
    if (st == RILL_GEN_RUNNING || s->freeing)
        return RILL_ESTATE;
    rill__task *t = rill__sched_task_alloc(s);
    if (!t)
        return RILL_ENOMEM;
    t->gen = task;
    t->free_fn = free_fn;
    t->call = NULL;
    t->id = s->next_id;
    t->heap_idx = RILL__NO_HEAP;
    rill__list_init(&t->waiters);
    int rc = rill__sched_map_put(s, t);
    if (rc < 0) {
        rill__sched_task_release(s, t);
        return rc;
    }
    s->next_id++;
    s->live++;
    s->spawned++;
    rill__sched_ready(s, t);
    if (id)
        *id = t->id;
    return 0;
}

/* Take t out of whatever holds it: the ready queue, a wait list, the heap. */
void rill__sched_detach(rill_sched *s, rill__task *t) {
    if (t->state == RILL__T_READY)
        s->nready--;
    if (t->state == RILL__T_WAIT_FD)
        rill__sched_fd_cancel(s, t);
    else
        rill__list_unlink(&t->link);
    rill__sched_heap_remove(s, t);
}

/* t has ended: report it, resume its waiters, release it. t is detached. */
void rill__sched_end(rill_sched *s, rill__task *t, int status, void *value) {
    t->state = RILL__T_ENDING;
    rill__sched_map_del(s, t->id);
    s->live--;
    s->ended++;
    if (status < 0 && status != RILL_ECLOSED && s->first_err == 0)
        s->first_err = status;
    if (s->exit_fn)
        s->exit_fn(s->exit_arg, t->id, status);
    while (!rill__list_empty(&t->waiters)) {
        rill__task *w = RILL__LIST_ENTRY(rill__list_first(&t->waiters), rill__task, link);
        rill__list_unlink(&w->link);
        rill__sched_heap_remove(s, w);
        w->call->result = status;
        w->call->value = value;
        rill__sched_ready(s, w);
    }
    if (t->free_fn)
        t->free_fn(t->gen);
    rill__sched_task_release(s, t);
}

/* Kill t (detached or not): close its generator, then end it. t leaves the
 * map first so that its on_close sees it as gone. Returns 1. */
int rill__sched_close_task(rill_sched *s, rill__task *t) {
    rill__sched_detach(s, t);
    t->state = RILL__T_ENDING;
    rill__sched_map_del(s, t->id);
    int rc = rill_gen_close(t->gen);
    rill__sched_end(s, t, rc < 0 ? rc : RILL_ECLOSED, NULL);
    return 1;
}

RILL_API int rill_sched_kill(rill_sched *s, uint64_t id) {
    if (s->freeing)
        return 0;
    rill__task *t = rill__sched_map_get(s, id);
    if (!t)
        return 0;
    if (t->state == RILL__T_RUNNING || t->state == RILL__T_CALL)
        return RILL_ESTATE;
    return rill__sched_close_task(s, t);
}

/* Resume the task at the front of the ready queue once. */
static void rill__step(rill_sched *s) {
    rill__task *t = RILL__LIST_ENTRY(rill__list_first(&s->ready), rill__task, link);
    rill__list_unlink(&t->link);
    s->nready--;
    t->state = RILL__T_RUNNING;
    s->current = t;
    s->switches++;
    void *out;
    int rc = rill__gen_resume(t->gen, t->call, &out);
    s->current = NULL;
    if (RILL__LIKELY(rc == 0)) {
        t->call = out;
        if (!out) {
            rill__sched_ready(s, t);
        } else {
            t->state = RILL__T_CALL;
            s->syscalls++;
            rill__sched_call(s, t, out);
        }
        return;
    }
    rill__sched_end(s, t, rc == RILL_EDONE ? 0 : rc, rc == RILL_EDONE ? out : NULL);
}

/* Fds and timers: block for them when nothing is ready. */
static int rill__sched_check(rill_sched *s) {
    if (s->nready == 0 && s->heap_len == 0 && s->nfdwait == 0)
        return -EDEADLK; /* tasks are left, and all wait for tasks */
    if (s->nfdwait > 0 || s->nready == 0) {
        int64_t timeout = -1;
        if (s->nready > 0) {
            timeout = 0;
        } else if (s->heap_len > 0) {
            uint64_t now = rill_sched_now_ns(), d = s->heap[0]->deadline;
            timeout = d <= now ? 0 : d - now > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(d - now);
        }
        int rc = rill__sched_poll(s, timeout);
        if (rc < 0)
            return rc;
    }
    if (s->heap_len > 0)
        rill__sched_expire(s, rill_sched_now_ns());
    return 0;
}

RILL_API int rill_sched_run(rill_sched *s) {
    if (!s)
        return RILL_EINVAL;
    if (s->running || s->freeing)
        return RILL_ESTATE;
    s->running = 1;
    s->first_err = 0;
    int rc = 0;
    while (s->live > 0) {
        if (s->nready == 0 || s->nfdwait > 0 || s->heap_len > 0) {
            rc = rill__sched_check(s);
            if (rc < 0)
                break;
        }
        for (int k = 0; k < RILL__SCHED_BATCH && s->nready > 0; k++)
            rill__step(s);
    }
    s->running = 0;
    return rc < 0 ? rc : s->first_err;
}
