/* Pipeline graph: stages, connections, run, close ordering, first error.
 *
 * Single-threaded delivery is a direct call from the emitting stage into the
 * send callback of each stage after it: no queue, no allocation and no atomic
 * read-modify-write per item. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill_int.h"

enum { RILL__NEW, RILL__STARTED, RILL__CLOSED };

struct rill_stage {
    rill_pipeline *p;
    const rill_stage_ops *ops;
    void *state;
    rill_stage **out; /* output ports, in connect order */
    unsigned nout, capout;
    unsigned nin;     /* producers connected */
    unsigned open_in; /* producers not yet closed */
    unsigned mark;    /* cycle check: visited in search number mark */
    bool closed;
    rill_stage_opts opts;
    char *name;
};

struct rill_pipeline {
    int stop; /* atomic: nonzero once an error or an abort stops delivery */
    int err;
    int phase;
    rill_stage **stages;
    unsigned n, cap;
    unsigned search;  /* number of the last cycle check */
    rill_stage *errstage;
    char *name;
    char errmsg[512];
};

/* ---- errors ---------------------------------------------------------------- */

static void rill__record(rill_pipeline *p, rill_stage *st, int code, const char *detail) {
    if (p->err)
        return;
    p->err = code;
    p->errstage = st;
    if (detail && *detail)
        snprintf(p->errmsg, sizeof p->errmsg, "stage '%s': %s: %s", st->name, detail,
                 rill_strerror(code));
    else
        snprintf(p->errmsg, sizeof p->errmsg, "stage '%s': %s", st->name, rill_strerror(code));
    __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
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

/* st's callback returned rc < 0: keep it unless an earlier error is known.
 * RILL_EABORTED after an abort is rill_emit's answer passed back up, not a
 * failure of st: rill_pipeline_close reports the abort, naming no stage. */
static int rill__failed(rill_stage *st, int rc) {
    if (rc != RILL_EABORTED || !__atomic_load_n(&st->p->stop, __ATOMIC_RELAXED))
        rill__record(st->p, st, rc, NULL);
    return rc;
}

/* What a stopped pipeline answers: its error, or RILL_EABORTED. */
static int rill__stop_code(const rill_pipeline *p) { return p->err ? p->err : RILL_EABORTED; }

/* ---- building ------------------------------------------------------------ */

RILL_API int rill_pipeline_new(rill_pipeline **out, const char *name) {
    if (!out)
        return RILL_EINVAL;
    *out = NULL;
    rill_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return RILL_ENOMEM;
    p->name = rill__strdup(name ? name : "pipeline");
    if (!p->name) {
        free(p);
        return RILL_ENOMEM;
    }
    *out = p;
    return 0;
}

RILL_API rill_stage *rill_pipeline_find(const rill_pipeline *p, const char *name) {
    if (!p || !name)
        return NULL;
    for (unsigned i = 0; i < p->n; i++)
        if (strcmp(p->stages[i]->name, name) == 0)
            return p->stages[i];
    return NULL;
}

RILL_API int rill_stage_add(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                            void *state, const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p || !ops || !ops->send == !ops->produce)
        return RILL_EINVAL;
    if (p->phase != RILL__NEW)
        return RILL_ESTATE;
    if (opts && (opts->flags & RILL_STAGE_THREADED))
        return RILL_ENOTSUP;
    if (opts && (opts->flags & ~(unsigned)RILL_STAGE_THREADED))
        return RILL_EINVAL;
    char auto_name[32];
    /* "stage-<n>", or the next number free if the caller took that name. */
    for (unsigned k = p->n + 1; !name; k++) {
        snprintf(auto_name, sizeof auto_name, "stage-%u", k);
        if (!rill_pipeline_find(p, auto_name))
            name = auto_name;
    }
    if (rill_pipeline_find(p, name))
        return RILL_EEXIST;
    if (p->n == p->cap) {
        unsigned cap = p->cap ? 2 * p->cap : 8;
        rill_stage **s = realloc(p->stages, cap * sizeof *s);
        if (!s)
            return RILL_ENOMEM;
        p->stages = s;
        p->cap = cap;
    }
    rill_stage *st = calloc(1, sizeof *st);
    if (!st)
        return RILL_ENOMEM;
    st->name = rill__strdup(name);
    if (!st->name) {
        free(st);
        return RILL_ENOMEM;
    }
    st->p = p;
    st->ops = ops;
    st->state = state;
    if (opts)
        st->opts = *opts;
    p->stages[p->n++] = st;
    if (out)
        *out = st;
    return 0;
}

/* Does a path of connections lead from `from` to `to`? Depth-first, each
 * stage visited once per search: following every path instead is
 * exponential in the number of diamonds (fan-out joined again). */
static bool rill__reaches(rill_stage *from, const rill_stage *to, unsigned search) {
    if (from == to)
        return true;
    if (from->mark == search)
        return false;
    from->mark = search;
    for (unsigned i = 0; i < from->nout; i++)
        if (rill__reaches(from->out[i], to, search))
            return true;
    return false;
}

RILL_API int rill_connect(rill_stage *from, rill_stage *to) {
    if (!from || !to || from->p != to->p || to->ops->produce)
        return RILL_EINVAL;
    if (from->p->phase != RILL__NEW)
        return RILL_ESTATE;
    if (rill__reaches(to, from, ++from->p->search))
        return RILL_ECYCLE;
    if (from->nout == from->capout) {
        unsigned cap = from->capout ? 2 * from->capout : 4;
        rill_stage **o = realloc(from->out, cap * sizeof *o);
        if (!o)
            return RILL_ENOMEM;
        from->out = o;
        from->capout = cap;
    }
    from->out[from->nout++] = to;
    to->nin++;
    return 0;
}

/* ---- running --------------------------------------------------------------- */

RILL_API int rill_emit(rill_stage *st, const rill_item *item) {
    if (RILL__UNLIKELY(__atomic_load_n(&st->p->stop, __ATOMIC_RELAXED)))
        return rill__stop_code(st->p);
    rill_stage *const *o = st->out;
    for (unsigned i = 0, n = st->nout; i < n; i++) {
        rill_stage *t = o[i];
        int rc = t->ops->send(t, t->state, item);
        if (RILL__UNLIKELY(rc < 0))
            return rill__failed(t, rc);
    }
    return 0;
}

RILL_API int rill_emit_to(rill_stage *st, unsigned port, const rill_item *item) {
    if (RILL__UNLIKELY(__atomic_load_n(&st->p->stop, __ATOMIC_RELAXED)))
        return rill__stop_code(st->p);
    if (port >= st->nout)
        return RILL_EINVAL;
    rill_stage *t = st->out[port];
    int rc = t->ops->send(t, t->state, item);
    return rc < 0 ? rill__failed(t, rc) : 0;
}

RILL_API int rill_pipeline_start(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase != RILL__NEW)
        return p->phase == RILL__CLOSED ? RILL_ECLOSED : 0;
    for (unsigned i = 0; i < p->n; i++)
        p->stages[i]->open_in = p->stages[i]->nin;
    p->phase = RILL__STARTED;
    return 0;
}

/* End of stream for st: its close callback, then every stage after it whose
 * last producer this was. Depth of recursion = depth of the graph. */
static void rill__close_stage(rill_stage *st) {
    if (st->closed)
        return;
    st->closed = true;
    if (st->ops->close) {
        int rc = st->ops->close(st, st->state);
        if (rc < 0)
            rill__failed(st, rc);
    }
    for (unsigned i = 0; i < st->nout; i++)
        if (--st->out[i]->open_in == 0)
            rill__close_stage(st->out[i]);
}

RILL_API int rill_pipeline_close(rill_pipeline *p) {
    if (!p)
        return RILL_EINVAL;
    if (p->phase == RILL__CLOSED)
        return p->err;
    if (p->phase == RILL__NEW) {
        int rc = rill_pipeline_start(p);
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < p->n; i++)
        if (p->stages[i]->nin == 0)
            rill__close_stage(p->stages[i]);
    if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED) && !p->err) {
        p->err = RILL_EABORTED;
        snprintf(p->errmsg, sizeof p->errmsg, "%s", rill_strerror(RILL_EABORTED));
    }
    p->phase = RILL__CLOSED;
    return p->err;
}

RILL_API int rill_pipeline_run(rill_pipeline *p) {
    int rc = rill_pipeline_start(p);
    if (rc)
        return rc;
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (!st->ops->produce)
            continue;
        while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED)) {
            rc = st->ops->produce(st, st->state);
            if (rc == RILL_EDONE)
                break;
            if (rc < 0) {
                rill__failed(st, rc);
                break;
            }
        }
    }
    return rill_pipeline_close(p);
}

RILL_API int rill_pipeline_push(rill_pipeline *p, rill_stage *entry, const rill_item *item) {
    if (!p || !entry || !item || entry->p != p || entry->nin || !entry->ops->send)
        return RILL_EINVAL;
    if (p->phase == RILL__CLOSED)
        return RILL_ECLOSED;
    int rc = rill_pipeline_start(p);
    if (rc)
        return rc;
    if (__atomic_load_n(&p->stop, __ATOMIC_RELAXED))
        return rill__stop_code(p);
    rc = entry->ops->send(entry, entry->state, item);
    return rc < 0 ? rill__failed(entry, rc) : 0;
}

RILL_API void rill_pipeline_abort(rill_pipeline *p) {
    if (p)
        __atomic_store_n(&p->stop, 1, __ATOMIC_RELAXED);
}

RILL_API void rill_pipeline_destroy(rill_pipeline *p) {
    if (!p)
        return;
    if (p->phase == RILL__STARTED) {
        rill_pipeline_abort(p);
        rill_pipeline_close(p);
    }
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (st->ops->destroy)
            st->ops->destroy(st->state);
        free(st->out);
        free(st->name);
        free(st);
    }
    free(p->stages);
    free(p->name);
    free(p);
}

/* ---- accessors --------------------------------------------------------------- */

RILL_API int rill_pipeline_status(const rill_pipeline *p) { return p ? p->err : RILL_EINVAL; }
RILL_API const char *rill_pipeline_errmsg(const rill_pipeline *p) { return p ? p->errmsg : ""; }
RILL_API const char *rill_pipeline_errstage(const rill_pipeline *p) {
    return p && p->errstage ? p->errstage->name : NULL;
}
RILL_API const char *rill_pipeline_name(const rill_pipeline *p) { return p ? p->name : NULL; }
RILL_API unsigned rill_stage_outputs(const rill_stage *st) { return st ? st->nout : 0; }
RILL_API const char *rill_stage_name(const rill_stage *st) { return st ? st->name : NULL; }
RILL_API void *rill_stage_state(const rill_stage *st) { return st ? st->state : NULL; }
RILL_API const rill_stage_ops *rill_stage_ops_of(const rill_stage *st) { return st ? st->ops : NULL; }
RILL_API rill_pipeline *rill_stage_pipeline(const rill_stage *st) { return st ? st->p : NULL; }
