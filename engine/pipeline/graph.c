/* Building a pipeline: stages, names, connections, cycle rejection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

RILL_API int rill_pipeline_new(const char *name, rill_pipeline **out) {
    if (!out)
        return RILL_EINVAL;
    *out = NULL;
    rill_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return RILL_ENOMEM;
    p->name = rill__strdup(name ? name : "pipeline");
    if (!p->name || pthread_mutex_init(&p->errlock, NULL) != 0) {
        free(p->name);
        free(p);
        return RILL_ENOMEM;
    }
    if (pthread_mutex_init(&p->statlock, NULL) != 0) {
        pthread_mutex_destroy(&p->errlock);
        free(p->name);
        free(p);
        return RILL_ENOMEM;
    }
    if (pthread_mutex_init(&p->sampler.lock, NULL) != 0) {
        pthread_mutex_destroy(&p->statlock);
        pthread_mutex_destroy(&p->errlock);
        free(p->name);
        free(p);
        return RILL_ENOMEM;
    }
    *out = p;
    return 0;
}

RILL_API rill_stage *rill_pipeline_find(const rill_pipeline *p, const char *name) {
    if (!p || !name)
        return NULL;
    return rill__names_get(&p->names, name);
}

int rill__stages_reserve(rill_pipeline *p, unsigned extra) {
    if (p->n + extra > p->cap) {
        unsigned cap = p->cap ? p->cap : 8;
        while (cap < p->n + extra)
            cap *= 2;
        rill_stage **s = realloc(p->stages, cap * sizeof *s);
        if (!s)
            return RILL_ENOMEM;
        p->stages = s;
        p->cap = cap;
    }
    return rill__names_reserve(&p->names, extra);
}

rill_stage *rill__stage_alloc(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                              void *state, const rill_stage_opts *opts) {
    rill_stage *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->name = rill__strdup(name);
    if (!st->name) {
        free(st);
        return NULL;
    }
    st->p = p;
    st->dom = &p->main;
    st->ops = ops;
    st->state = state;
    if (opts)
        st->opts = *opts;
    return st;
}

void rill__stage_commit(rill_pipeline *p, rill_stage *st) {
    (void)rill__names_put(&p->names, st->name, st); /* reserved: cannot fail */
    p->stages[p->n++] = st;
}

RILL_API int rill_stage_add(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                            void *state, const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    rill__setup_begin(p);
    const char *what = name ? name : "(unnamed)";
    if (!ops)
        return rill__setup_error(p, RILL_EINVAL, "rill_stage_add '%s': ops is NULL", what);
    if (ops->send && ops->produce)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_stage_add '%s': ops has both send and produce (a stage "
                                 "is a source, with produce, or receives items, with send)", what);
    if (ops->send_items && !ops->send)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_stage_add '%s': ops has send_items without send (send "
                                 "still gets single items)", what);
    if (!ops->send && !ops->produce)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_stage_add '%s': ops has neither send nor produce", what);
    if (p->phase != RILL__NEW)
        return rill__setup_error(p, RILL_ESTATE,
                                 "rill_stage_add '%s': the pipeline has started", what);
    if (opts && (opts->flags & ~(unsigned)RILL_STAGE_THREADED))
        return rill__setup_error(p, RILL_EINVAL, "rill_stage_add '%s': unknown flags 0x%x in opts",
                                 what, opts->flags & ~(unsigned)RILL_STAGE_THREADED);
    if (opts && opts->replicas > RILL_MAX_REPLICAS)
        return rill__setup_error(p, RILL_EINVAL, "rill_stage_add '%s': %u replicas in opts (at "
                                 "most %d)", what, opts->replicas, RILL_MAX_REPLICAS);
    if (opts && opts->replicas > 1 && !ops->clone)
        return rill__setup_error(p, RILL_EINVAL, "rill_stage_add '%s': replicas need ops->clone "
                                 "(it makes each replica's state)", what);
    if (opts && opts->overflow > RILL_OVERFLOW_DROP_OLDEST)
        return rill__setup_error(p, RILL_EINVAL,
                                 "rill_stage_add '%s': unknown overflow policy %u in opts", what,
                                 opts->overflow);
    if (opts && opts->capacity) { /* at most 2^20 batches per queue */
        unsigned b = opts->batch ? opts->batch : RILL__DEFAULT_BATCH;
        b = b < opts->capacity ? b : opts->capacity;
        if ((opts->capacity + (uint64_t)b - 1) / b > (1u << 20))
            return rill__setup_error(p, RILL_EINVAL,
                                     "rill_stage_add '%s': capacity %u in batches of %u is more "
                                     "than 2^20 batches", what, opts->capacity, b);
    }
    char auto_name[32];
    /* "stage-<n>", or the next number free if the caller took that name. */
    for (unsigned k = p->n + 1; !name; k++) {
        snprintf(auto_name, sizeof auto_name, "stage-%u", k);
        if (!rill_pipeline_find(p, auto_name))
            name = auto_name;
    }
    if (rill_pipeline_find(p, name))
        return rill__setup_error(p, RILL_EEXIST, "rill_stage_add '%s'", name);
    if (opts && opts->replicas > 1)
        return rill__replicas_add(p, name, ops, state, opts, out);
    if (rill__stages_reserve(p, 1))
        return RILL_ENOMEM;
    rill_stage *st = rill__stage_alloc(p, name, ops, state, opts);
    if (!st)
        return RILL_ENOMEM;
    rill__stage_commit(p, st);
    if (out)
        *out = st;
    return 0;
}

/* Does a path of connections lead from `from` to `to`? 1 yes, 0 no, or
 * RILL_ENOMEM. Each stage is visited once per search (following every path
 * instead is exponential in the number of diamonds, fan-out joined again),
 * from a stack of its own rather than the C stack, which a long chain would
 * overflow. A stage nothing feeds is reached only from itself: that makes
 * connecting a chain in either order constant time per connection. */
static int rill__reaches(rill_stage *from, const rill_stage *to, unsigned search) {
    if (from == to)
        return 1;
    if (to->nin == 0)
        return 0;
    rill_stage *small[64], **stack = small;
    size_t n = 0, cap = sizeof small / sizeof small[0];
    int found = 0;
    from->mark = search;
    stack[n++] = from;
    while (n && !found) {
        rill_stage *st = stack[--n];
        for (unsigned i = 0; i < st->nout && !found; i++) {
            rill_stage *t = st->out[i].to;
            if (t == to) {
                found = 1;
            } else if (t->mark != search) {
                t->mark = search;
                if (n == cap) { /* each stage is pushed once: n < p->n */
                    rill_stage **s = rill__stack_grow(stack, small, &cap, n, sizeof *s);
                    if (!s) {
                        found = RILL_ENOMEM;
                        break;
                    }
                    stack = s;
                }
                stack[n++] = t;
            }
        }
    }
    if (stack != small)
        free(stack);
    return found;
}

int rill__port_add(rill_stage *from, rill_stage *to, rill__deal *dl, bool extra) {
    if (from->nout == from->capout) {
        unsigned cap = from->capout ? 2 * from->capout : 4;
        rill__port *o = realloc(from->out, cap * sizeof *o);
        if (!o)
            return RILL_ENOMEM;
        from->out = o;
        from->capout = cap;
    }
    rill__port port = {to, NULL, dl};
    if (extra) {
        from->out[from->nout++] = port;
    } else {
        /* Emitted ports come first: the first extra one moves to the end. */
        if (from->nemit < from->nout)
            from->out[from->nout] = from->out[from->nemit];
        from->nout++;
        from->out[from->nemit++] = port;
    }
    to->nin++;
    return 0;
}

RILL_API int rill_connect_chain(rill_stage *first, ...) {
    va_list ap;
    va_start(ap, first);
    rill_stage *second = va_arg(ap, rill_stage *);
    int rc = 0;
    /* A NULL ends the list, so a stage whose add failed unchecked would end
     * it early, silently: a chain must at least connect two stages. */
    if (!first || !second)
        rc = rill__setup_error(first ? first->p : second ? second->p : NULL, RILL_EINVAL,
                               "rill_connect_chain: %s (a NULL ends the list: check each "
                               "stage's add)", first ? "only one stage before the NULL"
                                                    : "the first stage is NULL");
    for (rill_stage *from = first, *to = second; !rc && to; from = to, to = va_arg(ap, rill_stage *))
        rc = rill_connect(from, to);
    va_end(ap);
    return rc;
}

RILL_API int rill_connect(rill_stage *from, rill_stage *to) {
    if (!from || !to)
        return rill__setup_error(from ? from->p : to ? to->p : NULL, RILL_EINVAL,
                                 "rill_connect: %s stage is NULL", from ? "the 'to'" : "the 'from'");
    rill__setup_begin(from->p);
    if (from->p != to->p)
        return rill__setup_error(from->p, RILL_EINVAL,
                                 "rill_connect '%s' -> '%s': the stages are in different pipelines",
                                 from->name, to->name);
    if (to->ops->produce)
        return rill__setup_error(from->p, RILL_EINVAL,
                                 "rill_connect '%s' -> '%s': '%s' is a source (it has produce, "
                                 "no send): nothing can feed it", from->name, to->name, to->name);
    if (from->p->phase != RILL__NEW)
        return rill__setup_error(from->p, RILL_ESTATE,
                                 "rill_connect '%s' -> '%s': the pipeline has started", from->name,
                                 to->name);
    /* A group is connected through its replica 0, which every connection
     * of the group touches: a cycle among groups is one among them. */
    if (from->grp)
        from = from->grp->member[0];
    if (to->grp)
        to = to->grp->member[0];
    int cyc = rill__reaches(to, from, ++from->p->search);
    if (cyc)
        return rill__setup_error(from->p, cyc < 0 ? cyc : RILL_ECYCLE, "rill_connect '%s' -> '%s'",
                                 from->name, to->name);
    if (from->grp || to->grp)
        return rill__replicas_connect(from, to);
    return rill__port_add(from, to, NULL, false);
}

void rill__graph_free(rill_pipeline *p) {
    rill__barrier_free(p);
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (st->ops->free)
            st->ops->free(st->state);
        for (unsigned k = 0; k < st->nemit; k++)
            free(st->out[k].dl);
        if (st->grp && st->rindex == 0)
            rill__group_free(st->grp);
        free(st->out);
        free(st->name);
        free(st);
    }
    free(p->stages);
    rill__names_free(&p->names);
    pthread_mutex_destroy(&p->errlock);
    pthread_mutex_destroy(&p->statlock);
    pthread_mutex_destroy(&p->sampler.lock);
    free(p->sampler.buf);
    free(p->queue_stats);
    free(p->name);
    free(p);
}

/* ---- accessors ----------------------------------------------------------- */

RILL_API int rill_pipeline_status(const rill_pipeline *p) {
    return p ? atomic_load_explicit(&p->err, memory_order_acquire) : RILL_EINVAL;
}
RILL_API const char *rill_pipeline_name(const rill_pipeline *p) { return p ? p->name : NULL; }
RILL_API unsigned rill_stage_outputs(const rill_stage *st) { return st ? st->nemit : 0; }
RILL_API const char *rill_stage_name(const rill_stage *st) { return st ? st->name : NULL; }
RILL_API void *rill_stage_state(const rill_stage *st) { return st ? st->state : NULL; }
RILL_API const rill_stage_ops *rill_stage_ops_of(const rill_stage *st) { return st ? st->ops : NULL; }
RILL_API rill_pipeline *rill_stage_pipeline(const rill_stage *st) { return st ? st->p : NULL; }
RILL_API bool rill_stage_threaded(const rill_stage *st) {
    /* From the plan, not p->workers: those are freed at close, and handles
     * are still asked after close. The atomic load keeps the compiler from
     * fusing it with `closed`, next to it, which the stage's thread writes. */
    return st && st->p->phase != RILL__NEW && st->domain != 0 &&
           (rill__own_thread(st) ||
            atomic_load_explicit(&st->promoted, memory_order_relaxed));
}
