/* System calls: the answer to what a task yielded (see rill/sched.h for the
 * results). A call answered at once sends the caller to the back of the
 * ready queue, as the seed's handlers do with sched.schedule(task); a spawned
 * task is queued before its spawner, so it takes its first step first. */
#include "sched_int.h"

/* Park t until task id ends (c->ns >= 0: or the timeout). Returns 1 if t
 * waits, 0 if c is answered. */
static int rill__wait_task(rill_sched *s, rill__task *t, rill_syscall *c) {
    if (c->id == t->id) {
        c->result = -EDEADLK;
        return 0;
    }
    rill__task *target = rill__sched_map_get(s, c->id);
    if (!target) {
        /* Ids are issued in order: one below next_id belonged to a task. */
        c->result = c->id == 0 || c->id >= s->next_id ? -ENOENT : RILL_EDONE;
        return 0;
    }
    int rc;
    if (c->ns >= 0 && (rc = rill__sched_heap_push(s, t, c->ns)) < 0) {
        c->result = rc;
        return 0;
    }
    rill__list_push(&target->waiters, &t->link);
    t->state = RILL__T_WAIT_TASK;
    return 1;
}

void rill__sched_call(rill_sched *s, rill__task *t, rill_syscall *c) {
    int op = c->op, rc;
    c->value = NULL;
    if (op == RILL_SYS_OP_GETTID) {
        c->id = t->id;
        c->result = 0;
    } else if (op == RILL_SYS_OP_SPAWN || op == RILL_SYS_OP_SPAWN_WAIT) {
        /* The caller's own generator is suspended, so spawn would take it. */
        c->result = rc = c->task == t->gen ? RILL_EINVAL
                                           : rill_sched_spawn(s, c->task, c->free_fn, &c->id);
        if (rc == 0 && op == RILL_SYS_OP_SPAWN_WAIT && rill__wait_task(s, t, c))
            return;
    } else if (op == RILL_SYS_OP_KILL) {
        rill__task *target = rill__sched_map_get(s, c->id);
        if (target == t) { /* as in the seed: the caller is closed and ends */
            rill__sched_close_task(s, t);
            return;
        }
        c->result = target ? rill__sched_close_task(s, target) : 0;
    } else if (op == RILL_SYS_OP_WAIT) {
        if (rill__wait_task(s, t, c))
            return;
    } else if (op == RILL_SYS_OP_SLEEP) {
        c->result = rc = rill__sched_heap_push(s, t, c->ns);
        if (rc == 0) {
            t->state = RILL__T_SLEEP;
            return;
        }
    } else if (op == RILL_SYS_OP_WAIT_FD) {
        if (rill__sched_fd_wait(s, t, c))
            return;
    } else {
        c->result = RILL_EINVAL;
    }
    rill__sched_ready(s, t);
}
