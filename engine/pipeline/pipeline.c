/* Running a pipeline: start, close ordering, first error, abort, flushes.
 * The item's own path (emit, deliver, the loops that drive stages) is
 * flow.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

/* ---- errors ---------------------------------------------------------------- */

static void rill__record(rill_pipeline *p, rill_stage *st, int code, const char *detail) {
    pthread_mutex_lock(&p->errlock);
    /* After an abort nothing more is recorded: close reports the abort. */
    if (!atomic_load_explicit(&p->err, memory_order_relaxed) &&
        !atomic_load_explicit(&p->aborted, memory_order_acquire)) {
        p->errstage = st;
        if (detail && *detail)
            snprintf(p->errmsg, sizeof p->errmsg, "stage '%s': %s: %s", st->name, detail,
                     rill_strerror(code));
        else
            snprintf(p->errmsg, sizeof p->errmsg, "stage '%s': %s", st->name,
                     rill_strerror(code));
        p->msgcode = code;
        atomic_store_explicit(&p->err, code, memory_order_release);
    }
    pthread_mutex_unlock(&p->errlock);
    atomic_store_explicit(&p->stop, 1, memory_order_seq_cst); /* vs rill_stage_room_fd */
    rill__wake_all(p);
}

RILL_API int rill_stage_fail(rill_stage *st, int code, const char *fmt, ...) {
    if (code >= 0)
        code = RILL_ESTAGE;
    if (!st)
        return code;
    char detail[400] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof detail, fmt, ap);
        va_end(ap);
    }
    rill__record(st->p, st, code, detail);
    return code;
}

static int rill__setup_verror(rill_pipeline *p, int code, const char *fmt, va_list ap) {
    if (!p)
        return code;
    char detail[400] = "";
    if (fmt)
        vsnprintf(detail, sizeof detail, fmt, ap);
    pthread_mutex_lock(&p->errlock);
    if (!atomic_load_explicit(&p->err, memory_order_relaxed)) {
        snprintf(p->errmsg, sizeof p->errmsg, "%s: %s", detail, rill_strerror(code));
        p->msgcode = code;
    }
    pthread_mutex_unlock(&p->errlock);
    return code;
}

int rill__setup_error(rill_pipeline *p, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    rill__setup_verror(p, code, fmt, ap);
    va_end(ap);
    return code;
}

RILL_API int rill_pipeline_setup_error(rill_pipeline *p, int code, const char *fmt, ...) {
    if (code >= 0)
        code = RILL_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    rill__setup_verror(p, code, fmt, ap);
    va_end(ap);
    return code;
}

void rill__setup_begin(rill_pipeline *p) {
    pthread_mutex_lock(&p->errlock);
    if (!atomic_load_explicit(&p->err, memory_order_relaxed))
        p->msgcode = 0;
    pthread_mutex_unlock(&p->errlock);
}

/* st's callback returned rc < 0: keep it unless an earlier error is known.
 * RILL_EABORTED passed up after an abort is the abort, not st's failure.
 * -1 is C's habit for "failed", not -EPERM: it is reported as the stage
 * failing (a real EPERM comes through rill_stage_fail, recorded already). */
int rill__failed_in(rill_stage *st, int rc, const char *cb) {
    if (rc == RILL_EABORTED && atomic_load_explicit(&st->p->aborted, memory_order_acquire))
        return rc;
    if (rc == -1) {
        if (atomic_load_explicit(&st->p->err, memory_order_acquire))
            return rill__stop_code(st->p);
        char why[160];
        snprintf(why, sizeof why, "its %s callback returned -1 (return a negative RILL_E* code "
                 "or -errno, or rill_stage_fail's result)", cb);
        rill__record(st->p, st, RILL_ESTAGE, why);
        return RILL_ESTAGE;
    }
    rill__record(st->p, st, rc, NULL);
    return rc;
}

/* What a stopped pipeline answers: its error, or RILL_EABORTED. */
int rill__stop_code(const rill_pipeline *p) {
    (void)atomic_load_explicit(&p->stop, memory_order_acquire);
    int err = atomic_load_explicit(&p->err, memory_order_acquire);
    return err ? err : RILL_EABORTED;
}

RILL_API const char *rill_pipeline_errmsg(const rill_pipeline *p) {
    return p ? p->errmsg : "no pipeline (rill_pipeline_new failed)";
}

RILL_API const char *rill_pipeline_error(const rill_pipeline *p, int rc) {
    if (!p)
        return rill_strerror(rc);
    pthread_mutex_lock((pthread_mutex_t *)&p->errlock);
    bool about_rc = p->errmsg[0] && p->msgcode == rc;
    pthread_mutex_unlock((pthread_mutex_t *)&p->errlock);
    return about_rc ? p->errmsg : rill_strerror(rc);
}

RILL_API const char *rill_pipeline_errstage(const rill_pipeline *p) {
    return p && p->errstage ? p->errstage->name : NULL;
}

RILL_API uint64_t rill_pipeline_discarded(const rill_pipeline *p) { return p ? p->discarded : 0; }

RILL_API int rill_pipeline_stopped(const rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    return rill__stopped(p) ? rill__stop_code(p) : 0;
}

/* ---- lifecycle ------------------------------------------------------------------ */

RILL_API int rill_pipeline_start(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase != RILL__NEW)
        return p->phase == RILL__CLOSED ? RILL_ECLOSED : 0;
    for (unsigned i = 0; i < p->n; i++)
        p->stages[i]->open_in = p->stages[i]->nin;
    /* A snapshot from another thread sees the pipeline new, or started with
     * its start time set and its queues built: not half-planned queues (it
     * would size its copy by one count of them and read another). */
    pthread_mutex_lock(&p->statlock);
    int rc = rill__threads_start(p); /* plans, then publishes the phase */
    pthread_mutex_unlock(&p->statlock);
    /* A stop before the start signalled no room eventfd (rill__wake_all
     * skips them while the pipeline is new): do it now. */
    if (atomic_load_explicit(&p->stop, memory_order_seq_cst))
        rill__wake_all(p);
    return rc;
}

/* End of stream for st: its close callback, then every stage after it whose
 * last producer this was; a threaded stage after it is sent end of stream
 * through its queue instead. Depth first in port order, as a recursion
 * would go, but on a stack of its own: the C stack could not hold a frame
 * per stage of a long chain. */
void rill__close_stage(rill_stage *st) {
    struct frame {
        rill_stage *st;
        unsigned port; /* next output port to pass end of stream to */
    } small[32], *stack = small;
    size_t n = 0, cap = sizeof small / sizeof small[0];
    for (;;) {
        bool open = st && !atomic_load_explicit(&st->closed, memory_order_relaxed);
        if (open && n == cap) {
            struct frame *s = rill__stack_grow(stack, small, &cap, n, sizeof *s);
            if (!s) { /* no memory for a deeper stack: a fresh one here */
                rill__close_stage(st);
                st = NULL;
                continue;
            }
            stack = s;
        }
        if (open) {
            /* Atomic: the watchdog, on the sampler thread, asks which sources are done. */
            atomic_store_explicit(&st->closed, true, memory_order_relaxed);
            if (st->refused_at)
                rill__room_waited(st);
            /* A replica of a stage with a merge: only replica 0 closes,
             * on the merged state (replica.c). */
            bool run = !(st->grp && st->ops->merge) || rill__replica_closing(st);
            if (run && st->ops->close) {
                int rc = st->ops->close(st, st->state);
                if (rc < 0)
                    rill__failed_in(st, rc, "close");
            }
            stack[n++] = (struct frame){st, 0};
        }
        st = NULL;
        if (n == 0)
            break;
        struct frame *f = &stack[n - 1];
        if (f->port == f->st->nout) {
            n--;
            continue;
        }
        rill__port *o = &f->st->out[f->port++];
        if (o->queue)
            rill__queue_close(o->queue, RILL_EABORTED);
        else if (rill__barrier_input_closed(o, f->st->out_slot ? f->st->out_slot[f->port - 1] : 0))
            st = o->to;
    }
    if (stack != small)
        free(stack);
}

RILL_API int rill_pipeline_close(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase == RILL__CLOSED)
        return atomic_load_explicit(&p->err, memory_order_acquire);
    if (p->phase == RILL__NEW)
        rill_pipeline_start(p); /* a failure is recorded; threads are joined below */
    for (unsigned i = 0; i < p->n; i++)
        if (p->stages[i]->nin == 0 && p->stages[i]->domain == 0)
            rill__close_stage(p->stages[i]);
    /* Threaded entries fed by rill_pipeline_push get end of stream too. */
    for (unsigned i = 0; i < p->main.nout; i++)
        rill__queue_close(p->main.out[i], RILL_EABORTED);
    rill__threads_join(p);
    rill__threads_free(p);
    if (rill__stopped(p) && !atomic_load_explicit(&p->err, memory_order_relaxed)) {
        atomic_store_explicit(&p->err, RILL_EABORTED, memory_order_release);
        snprintf(p->errmsg, sizeof p->errmsg, "%s", rill_strerror(RILL_EABORTED));
        p->msgcode = RILL_EABORTED;
    }
    /* The end of the run and the phase change together, under the lock that
     * snapshots take: a snapshot taken while running never reports more
     * elapsed time than the final one. */
    pthread_mutex_lock(&p->statlock);
    p->t_end = rill__now_ns();
    atomic_store_explicit(&p->phase, RILL__CLOSED, memory_order_release);
    pthread_mutex_unlock(&p->statlock);
    return atomic_load_explicit(&p->err, memory_order_relaxed);
}

RILL_API int rill_pipeline_run(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase == RILL__CLOSED)
        return RILL_ECLOSED;
    rill__tclock_begin(&p->main_clock, p->sampler.enabled); /* domain 0's busy time (snapshot.c) */
    if (rill_pipeline_start(p) == 0) {
        for (unsigned i = 0; i < p->n; i++) {
            rill_stage *st = p->stages[i];
            if (!st->ops->produce || st->domain != 0)
                continue;
            rill__run_source(st, &p->main);
        }
    }
    rill__tclock_end(&p->main_clock);
    return rill_pipeline_close(p);
}

RILL_API void rill_stage_flush(rill_stage *st) {
    if (st && st->p->phase == RILL__STARTED)
        rill__flush_outputs(st->domain ? &st->p->workers[st->domain - 1] : &st->p->main);
}

void rill__busy_wait(uint64_t ns) {
    uint64_t end = rill__now_ns() + ns;
    while (rill__now_ns() < end)
        rill__cpu_relax();
}

RILL_API int rill_stage_set_delay(rill_stage *st, unsigned delay_us) {
    if (!st)
        return RILL_EINVAL;
    if (st->p->phase != RILL__NEW)
        return RILL_ESTATE;
    /* A group of replicas is slowed as a whole. */
    for (unsigned k = 0; k < (st->grp ? st->grp->n : 1); k++)
        (st->grp ? st->grp->member[k] : st)->delay_ns = (uint64_t)delay_us * 1000u;
    return 0;
}

RILL_API int rill_pipeline_flush(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase != RILL__STARTED)
        return 0;
    rill__flush_outputs(&p->main);
    return 0;
}

RILL_API void rill_pipeline_abort(rill_pipeline *p) {
    if (!p || atomic_load_explicit(&p->phase, memory_order_acquire) == RILL__CLOSED)
        return;
    atomic_store_explicit(&p->aborted, 1, memory_order_release);
    atomic_store_explicit(&p->stop, 1, memory_order_seq_cst); /* vs rill_stage_room_fd */
    rill__wake_all(p);
}

RILL_API void rill_pipeline_free(rill_pipeline *p) {
    if (!p)
        return;
    if (p->phase == RILL__STARTED) {
        rill_pipeline_abort(p);
        rill_pipeline_close(p);
    }
    rill__room_fds_close(p);
    rill__graph_free(p);
}
