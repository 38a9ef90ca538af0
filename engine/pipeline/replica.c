/* Replicas: one stage run as N copies, each with a state of its own (the
 * caller's and N-1 ops->clone copies), as N rill_stage objects in a group.
 *
 * Everything else sees N ordinary stages: the plan gives each unpaired
 * replica a thread (rill__own_thread), the close walk and the statistics
 * visit each. What is particular to groups lives here:
 *   - adding: the N states and stages, all or nothing;
 *   - connecting: pairwise between groups of one width, one port per
 *     replica from a group into a single stage, and a dealing port into a
 *     group otherwise (its ports to replicas 1..N-1 are "extra": graph walks
 *     see them, emits do not; flow.c picks one queue per item);
 *   - the merge at close (ops->merge): replica 0 waits for every other
 *     replica's input to end, then folds their shares into its own.
 * Mechanism and costs: docs/threads.md, "Replicas". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline_int.h"

void rill__group_free(rill__group *g) {
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->lock);
    free(g);
}

static rill__group *rill__group_new(unsigned n) {
    rill__group *g = calloc(1, sizeof *g + n * sizeof g->member[0]);
    if (!g)
        return NULL;
    g->n = n;
    if (pthread_mutex_init(&g->lock, NULL)) {
        free(g);
        return NULL;
    }
    if (pthread_cond_init(&g->cv, NULL)) {
        pthread_mutex_destroy(&g->lock);
        free(g);
        return NULL;
    }
    return g;
}

int rill__replicas_add(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                       void *state, const rill_stage_opts *opts, rill_stage **out) {
    unsigned n = opts->replicas;
    size_t len = strlen(name) + 16;
    char *rname = malloc(len);
    void **states = calloc(n, sizeof *states);
    rill__group *g = rill__group_new(n);
    int rc = rname && states && g ? 0 : RILL_ENOMEM;
    for (unsigned k = 1; k < n && !rc; k++) {
        snprintf(rname, len, "%s#%u", name, k);
        if (rill_pipeline_find(p, rname))
            rc = rill__setup_error(p, RILL_EEXIST, "rill_stage_add '%s': its replica's name '%s'",
                                   name, rname);
    }
    if (!rc)
        rc = rill__stages_reserve(p, n);
    if (states)
        states[0] = state;
    for (unsigned k = 1; k < n && !rc; k++) {
        int c = ops->clone(state, &states[k]); /* NULL: a stateless stage */
        if (c < 0) /* -1 is C's habit for "failed", not -EPERM (as rill__failed) */
            rc = rill__setup_error(p, c == -1 ? RILL_ESTAGE : c,
                                   "rill_stage_add '%s': ops->clone failed for replica %u", name, k);
    }
    for (unsigned k = 0; k < n && !rc; k++) {
        if (k)
            snprintf(rname, len, "%s#%u", name, k);
        rill_stage *st = rill__stage_alloc(p, k ? rname : name, ops, states[k], opts);
        if (!st) {
            rc = RILL_ENOMEM;
            break;
        }
        st->grp = g;
        st->rindex = k;
        g->member[k] = st;
    }
    if (rc) {
        /* Nothing is kept: the clones are freed, state is the caller's. */
        for (unsigned k = 0; g && k < n; k++)
            if (g->member[k]) {
                free(g->member[k]->name);
                free(g->member[k]);
            }
        for (unsigned k = 1; states && k < n; k++)
            if (states[k] && ops->free)
                ops->free(states[k]);
        if (g)
            rill__group_free(g);
    } else {
        for (unsigned k = 0; k < n; k++)
            rill__stage_commit(p, g->member[k]);
        if (out)
            *out = g->member[0];
    }
    free(states);
    free(rname);
    return rc;
}

/* A port from `from` dealing over the replicas of group g. */
static int rill__deal_to(rill_stage *from, rill__group *g) {
    rill__deal *d = calloc(1, sizeof *d + g->n * sizeof d->q[0]);
    if (!d)
        return RILL_ENOMEM;
    rill_stage *to = g->member[0];
    d->n = g->n;
    d->batch = to->opts.batch ? to->opts.batch : RILL__DEFAULT_BATCH;
    unsigned cap = to->opts.capacity ? to->opts.capacity : RILL__DEFAULT_CAPACITY;
    d->batch = d->batch < cap ? d->batch : cap;
    d->hash = to->ops->hash;
    d->hstate = to->state;
    /* rill__replicas_connect made room for the ports. */
    for (unsigned k = 0; k < g->n; k++)
        (void)rill__port_add(from, g->member[k], d, k > 0);
    return 0;
}

int rill__replicas_connect(rill_stage *from, rill_stage *to) {
    rill__group *fg = from->grp, *tg = to->grp;
    unsigned nf = fg ? fg->n : 1;
    /* Every replica of from gets room for its ports first: a failure then
     * leaves the graph as it was (ports are only ever appended). */
    for (unsigned k = 0; k < nf; k++) {
        rill_stage *f = fg ? fg->member[k] : from;
        unsigned need = f->nout + (tg ? tg->n : 1);
        if (f->capout < need) {
            rill__port *o = realloc(f->out, need * sizeof *o);
            if (!o)
                return RILL_ENOMEM;
            f->out = o;
            f->capout = need;
        }
    }
    /* Pairing keeps a key on one replica only if the feeder's replica
     * did: a stage that deals by key is always dealt to. */
    if (fg && tg && fg->n == tg->n && !to->ops->hash) {
        for (unsigned k = 0; k < nf; k++) {
            (void)rill__port_add(fg->member[k], tg->member[k], NULL, false);
            tg->member[k]->paired = true;
        }
        return 0;
    }
    for (unsigned k = 0; k < nf; k++) {
        rill_stage *f = fg ? fg->member[k] : from;
        int rc = tg ? rill__deal_to(f, tg) : rill__port_add(f, to, NULL, false);
        if (rc)
            return rc; /* only a deal's own calloc can fail here */
    }
    return 0;
}

void rill__replicas_plan(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        for (unsigned k = 0; k < st->nout; k++) {
            rill__port *o = &st->out[k];
            if (o->dl)
                o->dl->q[o->to->rindex] = o->queue;
        }
    }
}

bool rill__replica_closing(rill_stage *st) {
    rill__group *g = st->grp;
    rill_pipeline *p = st->p;
    pthread_mutex_lock(&g->lock);
    if (st->rindex) {
        g->done++;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->lock);
        return false;
    }
    /* The others end on their own threads, also after a stop; a stop ends
     * the wait (a replica whose thread never started never ends), and no
     * merge is made then. rill__wake_all does not know this condition
     * variable: the wait looks at the stop every millisecond. */
    while (g->done < g->n - 1 && !rill__stopped(p)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&g->cv, &g->lock, &ts);
    }
    bool all = g->done == g->n - 1 && !rill__stopped(p);
    pthread_mutex_unlock(&g->lock);
    for (unsigned k = 1; all && k < g->n; k++) {
        int rc = st->ops->merge(st->state, g->member[k]->state);
        if (rc < 0) {
            rill__failed_in(st, rc, "merge");
            break;
        }
    }
    return true;
}

RILL_API unsigned rill_stage_replicas(const rill_stage *st, unsigned *index) {
    if (index)
        *index = st ? st->rindex : 0;
    return st && st->grp ? st->grp->n : 1;
}

RILL_API rill_stage *rill_stage_replica(const rill_stage *st, unsigned k) {
    if (!st)
        return NULL;
    if (!st->grp)
        return k == 0 ? (rill_stage *)st : NULL;
    return k < st->grp->n ? st->grp->member[k] : NULL;
}
