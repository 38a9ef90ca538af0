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

#include "pipeline_int.h"

void rill__group_free(rill__group *g) { free(g); }

static rill__group *rill__group_new(unsigned n) {
    rill__group *g = calloc(1, sizeof *g + n * sizeof g->member[0]);
    if (g)
        g->n = n;
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
            rc = rill__setup_error(p, RILL_EEXIST, "rill_stage_add '%s': replica %u's name "
                                   "'%s' is taken", name, k, rname);
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

/* A deal over the replicas of group g, for one producer's port. */
static rill__deal *rill__deal_new(rill__group *g) {
    rill__deal *d = calloc(1, sizeof *d + g->n * sizeof d->q[0]);
    if (!d)
        return NULL;
    rill_stage *to = g->member[0];
    d->n = g->n;
    d->batch = to->opts.batch ? to->opts.batch : RILL__DEFAULT_BATCH;
    unsigned cap = to->opts.capacity ? to->opts.capacity : RILL__DEFAULT_CAPACITY;
    d->batch = d->batch < cap ? d->batch : cap;
    d->hash = to->ops->hash;
    d->hstate = to->state;
    return d;
}

int rill__replicas_connect(rill_stage *from, rill_stage *to) {
    rill__group *fg = from->grp, *tg = to->grp;
    unsigned nf = fg ? fg->n : 1;
    /* Pairing keeps a key on one replica only if the feeder's replica
     * did: a stage that deals by key is always dealt to. */
    bool paired = fg && tg && fg->n == tg->n && !to->ops->hash;
    bool dealt = tg && !paired;
    /* Everything that can fail comes first, so that a failure leaves the
     * graph as it was: room for every replica's ports (ports are only ever
     * appended; room left unused is harmless), then every deal. */
    rill__deal **dl = dealt ? calloc(nf, sizeof *dl) : NULL;
    int rc = dealt && !dl ? RILL_ENOMEM : 0;
    for (unsigned k = 0; k < nf && !rc; k++) {
        rill_stage *f = fg ? fg->member[k] : from;
        unsigned need = f->nout + (dealt ? tg->n : 1);
        if (f->capout < need) {
            rill__port *o = realloc(f->out, need * sizeof *o);
            if (!o) {
                rc = RILL_ENOMEM;
                break;
            }
            f->out = o;
            f->capout = need;
        }
        if (dealt && !(dl[k] = rill__deal_new(tg)))
            rc = RILL_ENOMEM;
    }
    if (rc) {
        for (unsigned k = 0; dl && k < nf; k++)
            free(dl[k]);
        free(dl);
        return rill__setup_error(from->p, rc, "rill_connect '%s' -> '%s'", from->name, to->name);
    }
    /* With the room made, rill__port_add cannot fail from here on. */
    for (unsigned k = 0; k < nf; k++) {
        rill_stage *f = fg ? fg->member[k] : from;
        if (paired) {
            (void)rill__port_add(f, tg->member[k], NULL, false);
            tg->member[k]->paired = true;
        } else if (dealt) { /* one port emitted to, the others extra */
            for (unsigned r = 0; r < tg->n; r++)
                (void)rill__port_add(f, tg->member[r], dl[k], r > 0);
        } else {
            (void)rill__port_add(f, to, NULL, false);
        }
    }
    free(dl);
    return 0;
}

int rill__replicas_plan(rill_pipeline *p) {
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        for (unsigned k = 0; k < st->nout; k++) {
            rill__port *o = &st->out[k];
            if (!o->dl)
                continue;
            /* A replica dealt to heads a thread, or is paired to a replica
             * of another group and so on another thread than any stage
             * that deals to it: a deal without a queue would be a planning
             * bug, refused rather than followed. */
            if (!o->queue)
                return rill_stage_fail(st, RILL_EINVAL, "internal: replica '%s' is dealt to on "
                                       "its dealer's thread", o->to->name);
            o->dl->q[o->to->rindex] = o->queue;
        }
    }
    return 0;
}

bool rill__replica_closing(rill_stage *st) {
    rill__group *g = st->grp;
    rill_pipeline *p = st->p;
    /* Replica 0 waits on the park of the thread it closes on, which a stop
     * wakes (rill__wake_all wakes every worker's), and every other replica
     * wakes it as it ends. The count and the wake are seq_cst, as is the
     * epoch read before the count in the wait (park.h's protocol). */
    rill__park *k = &g->member[0]->dom->data;
    if (st->rindex) {
        atomic_fetch_add_explicit(&g->done, 1, memory_order_seq_cst);
        rill__park_wake(k);
        return false;
    }
    /* A replica whose thread never started never ends: a stop ends the wait
     * (its thread failing to start is one), and no merge is made then. A
     * stop does not wake the caller's thread's park: replica 0 closes there
     * only when the plan failed, stopped already, but the wait would still
     * see a stop within a millisecond. */
    uint64_t timeout = st->dom == &p->main ? 1000000 : 0;
    for (;;) {
        uint32_t seen = rill__park_epoch(k);
        if (atomic_load_explicit(&g->done, memory_order_seq_cst) == g->n - 1 ||
            atomic_load_explicit(&p->stop, memory_order_seq_cst))
            break;
        rill__park_wait(k, seen, timeout);
    }
    if (rill__stopped(p))
        return true;
    for (unsigned r = 1; r < g->n; r++) {
        int rc = st->ops->merge(st->state, g->member[r]->state);
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
