/* The bottleneck of a snapshot, reasoned from causes (docs/stats.md, "The
 * bottleneck"). A pipeline moves no faster than its slowest thread, and the
 * slowest thread is the one that needs the most CPU for the run: its busy
 * time (CPU clock, less time spent waiting; busy.c). That holds on a loaded
 * machine too, where waits grow for everyone (a woken thread waits for a
 * CPU) and queue fills follow the scheduler more than the stages. It is
 * named when it stands out from the next thread by RILL__LEAD; within it,
 * the stage with the largest share of its busy time, if that one stands out
 * too (stats/prof.h). The evidence is the waits that follow from it: its
 * producers waiting for room, everything after it waiting for items. A
 * replicated stage is one candidate made of its replicas' threads: its
 * busy time is that of its busiest replica (the others share its load),
 * and it is named by its group's name (replica 0's), never "name#k". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats_int.h"
#include "pipeline/pipeline_int.h"

/* The slowest thread must need this many times the CPU of the next, and
 * the named stage this many times the time of the next on its thread. */
#define RILL__LEAD 1.25
/* Below this share of the run busy, with items pushed in by the caller (whose
 * time is not measured), no thread limited the pipeline: the pushes did. A
 * threaded source blocked in a read is busy (its time is its own), so a
 * slow input read by a source names the source. Not applied otherwise: on
 * a loaded machine every thread's busy share of the run can be that low. */
#define RILL__BUSY_MIN 0.05

/* A candidate: one thread, or the threads of a group of replicas (kept in
 * the slot of replica 0's thread; the others' slots are folded into it). */
typedef struct rill__thr {
    bool measured, up, down; /* its time is known; it is before / after the candidate */
    unsigned nthr;       /* threads folded in */
    uint64_t busy;       /* busy time (busy.c): its busiest thread's */
    uint64_t sum;        /* its threads' busy times added */
    double idle;         /* share of its life spent waiting: its least idle thread's */
} rill__thr;

/* The stage standing for st's group: replica 0 (replicas are added one
 * after the other, so it is st - rindex), or st itself. */
static unsigned rill__group_of(const rill_pipeline *p, unsigned st) {
    const rill_stage *x = p->stages[st];
    if (!x->grp || x->rindex > st || p->stages[st - x->rindex] != x->grp->member[0])
        return st;
    return st - x->rindex;
}

/* Thread of a stage: its head's index, or n for the caller's thread. */
static size_t rill__thread(const rill_stats *s, unsigned stage) {
    return stage < s->nstages && s->stages[stage].thread >= 0 ? (size_t)s->stages[stage].thread
                                                              : s->nstages;
}

/* Candidate key of a stage: its thread's, or, where that thread is headed
 * by a replica, the thread of its group's replica 0. */
static size_t rill__key(const rill_pipeline *p, const rill_stats *s, unsigned stage) {
    size_t k = rill__thread(s, stage);
    if (k == s->nstages)
        return k;
    size_t k0 = rill__thread(s, rill__group_of(p, (unsigned)k));
    return k0 < s->nstages ? k0 : k;
}

static double rill__pct(uint64_t part, uint64_t whole) {
    return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* Append to s->verdict at *len; cut off (never overrun) when it is full. */
__attribute__((format(printf, 3, 4))) static void rill__put(rill_stats *s, size_t *len,
                                                            const char *fmt, ...) {
    size_t cap = sizeof s->verdict;
    if (*len >= cap - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->verdict + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = n < 0 ? *len : *len + (size_t)n >= cap ? cap - 1 : *len + (size_t)n;
}

/* Mark every thread after thread b (reached through queues) as down, and
 * every thread before it (reaching it) as up. */
static void rill__mark(const rill_pipeline *p, const rill_stats *s, rill__thr *t, size_t b) {
    for (bool grew = true; grew;) {
        grew = false;
        for (size_t k = 0; k < s->nqueues; k++) {
            const rill__queue_stats *q = &p->queue_stats[k];
            if (q->producer == UINT32_MAX)
                continue;
            size_t from = rill__key(p, s, q->producer), to = rill__key(p, s, q->consumer);
            if ((from == b || t[from].down) && to != b && !t[to].down)
                t[to].down = grew = true;
            if ((to == b || t[to].up) && from != b && !t[from].up)
                t[from].up = grew = true;
        }
    }
}

/* The evidence after the stage's name: the wait for room before it (or
 * that it is a source), and how idle everything after it was. */
static void rill__evidence(const rill_pipeline *p, rill_stats *s, rill__thr *t, size_t b,
                           unsigned st, size_t *len) {
    uint64_t room = 0, before = 0;
    unsigned nprod = 0;
    int prod = -1;
    rill__mark(p, s, t, b);
    for (size_t k = 0; k < s->nqueues; k++) {
        const rill__queue_stats *q = &p->queue_stats[k];
        bool mine = rill__key(p, s, q->consumer) == b;
        if (mine) {
            room += s->queues[k].wait_full_ns;
            nprod++;
            prod = q->producer == UINT32_MAX ? -1 : (int)rill__group_of(p, q->producer);
        }
        if (mine || (q->producer != UINT32_MAX && t[rill__key(p, s, q->producer)].up &&
                     t[rill__key(p, s, q->consumer)].up))
            before += s->queues[k].wait_full_ns;
    }
    if (p->stages[st]->nin == 0)
        rill__put(s, len, "; it is a source");
    else if (nprod == 1 && prod >= 0)
        rill__put(s, len, "; producers before it waited %.1f ms for room (%s, its own, %.1f ms)",
                  (double)before / 1e6, s->stages[prod].name, (double)room / 1e6);
    else if (nprod)
        rill__put(s, len, "; producers before it waited %.1f ms for room (its %u own %.1f ms)",
                  (double)before / 1e6, nprod, (double)room / 1e6);
    double least = 2;
    for (size_t k = 0; k <= s->nstages; k++)
        if (t[k].down && t[k].measured && t[k].idle < least)
            least = t[k].idle;
    if (least <= 1)
        rill__put(s, len, "; everything after it idle %.0f%%", least * 100);
    else
        rill__put(s, len, "; nothing after it on another thread");
}

static const char *rill__thr_name(const rill_stats *s, size_t k) {
    return k == s->nstages ? "the caller" : s->stages[k].name;
}

void rill__bottleneck(const rill_pipeline *p, rill_stats *s) {
    s->bottleneck = -1;
    uint64_t E = s->elapsed_ns;
    size_t n = s->nstages, len = 0;
    rill__thr *t = calloc(n + 1, sizeof *t);
    if (!t || !E || !n) {
        rill__put(s, &len, "none: %s", !t ? "out of memory" : !n ? "no stages" : "not started");
        free(t);
        return;
    }
    bool caller = false; /* the caller's thread folded in (by its first stage) */
    for (unsigned i = 0; i < n; i++) {
        const rill_stage_stats *o = &s->stages[i];
        if (!o->measured || (o->thread >= 0 ? o->thread != (int)i : caller))
            continue; /* each thread once: by its head */
        caller |= o->thread < 0;
        size_t k = rill__key(p, s, i);
        double idle = o->thread_life_ns ? (double)o->thread_wait_ns / (double)o->thread_life_ns : 1;
        idle = idle > 1 ? 1 : idle;
        t[k].idle = !t[k].measured || idle < t[k].idle ? idle : t[k].idle;
        t[k].busy = o->thread_busy_ns > t[k].busy ? o->thread_busy_ns : t[k].busy;
        t[k].sum += o->thread_busy_ns;
        t[k].nthr++;
        t[k].measured = true;
    }
    bool pushed = false; /* items come from the caller's pushes */
    for (size_t k = 0; k < s->nqueues; k++)
        pushed |= p->queue_stats[k].producer == UINT32_MAX;
    for (unsigned i = 0; i < n; i++)
        pushed |= s->stages[i].thread < 0 && !s->stages[i].measured;
    size_t b = SIZE_MAX, b2 = SIZE_MAX; /* the busiest thread and the next */
    for (size_t k = 0; k <= n; k++) {
        if (!t[k].measured)
            continue;
        if (b == SIZE_MAX || t[k].busy > t[b].busy)
            b2 = b, b = k;
        else if (b2 == SIZE_MAX || t[k].busy > t[b2].busy)
            b2 = k;
    }
    if (b == SIZE_MAX) {
        rill__put(s, &len, "none: no thread's time is measured (stages on the caller's thread "
                           "outside rill_pipeline_run)");
    } else if (pushed && (double)t[b].busy < RILL__BUSY_MIN * (double)E) {
        rill__put(s, &len, "none: every thread was idle most of the run (the busiest, %s's, "
                           "busy %.0f%%): the caller's pushes are the limit, not a stage",
                  rill__thr_name(s, b), rill__pct(t[b].busy, E));
    } else if (b2 != SIZE_MAX && (double)t[b].busy < RILL__LEAD * (double)t[b2].busy) {
        rill__put(s, &len, "none: no thread stands out: %s's busy %.0f%% of the run, %s's "
                           "%.0f%%", rill__thr_name(s, b), rill__pct(t[b].busy, E),
                  rill__thr_name(s, b2), rill__pct(t[b2].busy, E));
    } else {
        /* The candidate's stages by busy time, a group's replicas added
         * up (gsum, by replica 0's index): the largest, and the next. */
        uint64_t *gsum = calloc(n, sizeof *gsum);
        if (!gsum) {
            rill__put(s, &len, "none: out of memory");
            free(t);
            return;
        }
        int top = -1, next = -1;
        unsigned nth = 0;
        for (unsigned i = 0; i < n; i++)
            if (rill__key(p, s, i) == b)
                gsum[rill__group_of(p, i)] += s->stages[i].busy_ns;
        for (unsigned i = 0; i < n; i++) {
            if (rill__key(p, s, i) != b || rill__group_of(p, i) != i)
                continue;
            nth++;
            if (top < 0 || gsum[i] > gsum[top])
                next = top, top = (int)i;
            else if (next < 0 || gsum[i] > gsum[next])
                next = (int)i;
        }
        const char *name = s->stages[top].name;
        double share = t[b].sum ? (double)gsum[top] / (double)t[b].sum : 0;
        share = share > 1 ? 1 : share;
        if (next >= 0 && (double)gsum[top] < RILL__LEAD * (double)gsum[next]) {
            rill__put(s, &len, "none: %s's thread is the slowest (busy %.0f%% of the run) but "
                               "no stage stands out on it: %s %.0f%%, %s %.0f%% of its busy time",
                      rill__thr_name(s, b), rill__pct(t[b].busy, E), name, share * 100,
                      s->stages[next].name, rill__pct(gsum[next], t[b].sum));
        } else {
            s->bottleneck = top;
            rill__put(s, &len, "%s: busy %.0f%% of the run", name,
                      rill__pct((uint64_t)(share * (double)t[b].busy), E));
            if (t[b].nthr > 1)
                rill__put(s, &len, " (the busiest of %u threads)", t[b].nthr);
            if (nth > 1)
                rill__put(s, &len, " (%.0f%% of its thread's)", share * 100);
            if (b2 != SIZE_MAX)
                rill__put(s, &len, ", %.1fx the next thread's (%s)",
                          t[b2].busy ? (double)t[b].busy / (double)t[b2].busy : 99.9,
                          rill__thr_name(s, b2));
            rill__evidence(p, s, t, b, (unsigned)top, &len);
        }
        free(gsum);
    }
    free(t);
}
