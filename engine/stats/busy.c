/* Busy time: each thread's (its CPU clock, and its time not waiting), and
 * each stage's share of its thread's (the windows of prof.h), for
 * snapshots. Docs: docs/stats.md, "Busy time". */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "prof.h"

static uint64_t rill__cpu_now(clockid_t clk, bool *ok) {
    struct timespec ts;
    *ok = clock_gettime(clk, &ts) == 0;
    return *ok ? (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec : 0;
}

/* The second figure of /proc/self/task/TID/schedstat: nanoseconds spent
 * runnable, waiting for a CPU. False if it cannot be read (no such kernel
 * feature, or the thread is gone). */
static bool rill__rq_now(int tid, uint64_t *out) {
    char path[64], buf[96];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    unsigned long long run, wait;
    if (n <= 0)
        return false;
    buf[n] = 0;
    if (sscanf(buf, "%llu %llu", &run, &wait) != 2)
        return false;
    *out = wait;
    return true;
}

/* The clock of the thread running here, and the CPU time at which its
 * current wait went past spinning (0: it has not). */
static _Thread_local rill__tclock *rill__tl_clock;
static _Thread_local uint64_t rill__tl_mark;

void rill__wait_cpu_mark(void) {
    bool ok;
    if (rill__tl_clock && !rill__tl_mark)
        rill__tl_mark = rill__cpu_now(CLOCK_THREAD_CPUTIME_ID, &ok);
}

void rill__wait_cpu_done(void) {
    bool ok;
    if (!rill__tl_mark)
        return;
    uint64_t now = rill__cpu_now(CLOCK_THREAD_CPUTIME_ID, &ok);
    if (ok && now > rill__tl_mark && rill__tl_clock)
        rill__counter_add(&rill__tl_clock->wait_cpu_ns, now - rill__tl_mark);
    rill__tl_mark = 0;
}

void rill__tclock_begin(rill__tclock *c, bool waits) {
    bool ok;
    if (pthread_getcpuclockid(pthread_self(), &c->clk) != 0)
        return; /* never begun: its busy time reads as not measured */
    c->tid = (int)syscall(SYS_gettid);
    c->rq_ok = waits && rill__rq_now(c->tid, &c->rq0); /* 19 us: only if asked for */
    c->cpu0 = rill__cpu_now(c->clk, &ok);
    c->t0 = rill__now_ns();
    c->waits = waits;
    if (ok) {
        rill__tl_clock = waits ? c : NULL;
        rill__tl_mark = 0;
        atomic_store_explicit(&c->state, 1, memory_order_release);
    }
}

void rill__tclock_end(rill__tclock *c) {
    bool ok;
    uint64_t rq;
    if (atomic_load_explicit(&c->state, memory_order_relaxed) != 1)
        return;
    rill__tl_clock = NULL;
    uint64_t cpu = rill__cpu_now(c->clk, &ok);
    atomic_store_explicit(&c->cpu_ns, ok && cpu > c->cpu0 ? cpu - c->cpu0 : 0,
                          memory_order_relaxed);
    /* rq_ok stays as begin left it (snapshots read it): a failed last read
     * (no fd left) stores UINT64_MAX, not known, rather than 0, which would
     * make all of its time awake busy. */
    rq = UINT64_MAX;
    if (c->rq_ok && rill__rq_now(c->tid, &rq))
        rq = rq > c->rq0 ? rq - c->rq0 : 0;
    atomic_store_explicit(&c->rq_ns, rq, memory_order_relaxed);
    atomic_store_explicit(&c->end_ns, rill__now_ns(), memory_order_relaxed);
    atomic_store_explicit(&c->state, 2, memory_order_release);
}

bool rill__tclock_read(rill__tclock *c, rill__tclock_now *out) {
    int state = atomic_load_explicit(&c->state, memory_order_acquire);
    if (state == 1) {
        bool ok;
        uint64_t cpu = rill__cpu_now(c->clk, &ok), rq = 0;
        bool rq_ok = c->rq_ok && rill__rq_now(c->tid, &rq);
        /* Read while it ran (else it ended meanwhile: its end is stored).
         * A run-queue read that failed while it runs (no fd left: EMFILE)
         * leaves that refinement out, not the thread's time. A tid reused
         * that fast is not a concern: Linux hands out thread ids in turn. */
        if (ok && atomic_load_explicit(&c->state, memory_order_acquire) == 1) {
            out->cpu_ns = cpu > c->cpu0 ? cpu - c->cpu0 : 0;
            out->rq_ns = rq > c->rq0 ? rq - c->rq0 : 0;
            out->rq_ok = rq_ok;
            out->waits = c->waits;
            out->begin_ns = c->t0;
            out->end_ns = 0;
            out->wait_cpu_ns = atomic_load_explicit(&c->wait_cpu_ns, memory_order_relaxed);
            return true;
        }
        state = atomic_load_explicit(&c->state, memory_order_acquire);
    }
    if (state != 2)
        return false;
    out->cpu_ns = atomic_load_explicit(&c->cpu_ns, memory_order_relaxed);
    out->rq_ns = atomic_load_explicit(&c->rq_ns, memory_order_relaxed);
    out->rq_ok = c->rq_ok && out->rq_ns != UINT64_MAX;
    out->rq_ns = out->rq_ok ? out->rq_ns : 0;
    out->waits = c->waits;
    out->begin_ns = c->t0;
    out->end_ns = atomic_load_explicit(&c->end_ns, memory_order_relaxed);
    out->wait_cpu_ns = atomic_load_explicit(&c->wait_cpu_ns, memory_order_relaxed);
    return true;
}

/* A transition inside a window, or the one that opens it. The next window
 * opens after 8 inline sends at first, the gap doubling every 16 windows up
 * to 1024 (so a short run gets enough windows and a long one pays little),
 * varied by up to half again by a multiplicative hash of the clock, so that
 * windows do not keep landing on one phase of a periodic pattern. */
void rill__prof_window(rill__worker *w, rill_stage *to) {
    uint64_t now = rill__now_ns();
    uint64_t waited = w->waited ? atomic_load_explicit(w->waited, memory_order_relaxed) : 0;
    if (w->prof_left) {
        uint64_t span = now - w->prof_mark, wt = waited - w->prof_wmark;
        if (w->cur && span > wt)
            rill__counter_add(&w->cur->prof_ns, span - wt);
        w->prof_left--;
    } else {
        w->prof_left = RILL__PROF_LEN;
        w->prof_windows++;
    }
    unsigned gap = 8u << (w->prof_windows / 16 < 7 ? w->prof_windows / 16 : 7);
    w->prof_tick = w->prof_left ? 1u : gap + (unsigned)(((now * UINT64_C(0x9E3779B97F4A7C15)) >> 40) % (gap / 2 + 1));
    w->prof_mark = now;
    w->prof_wmark = waited;
    w->cur = to;
}

/* Fill every stage's thread figures and busy time in s (stages, queues and
 * elapsed already read; `end` the snapshot's clock, or t_end once closed).
 * A thread's busy time: see below. Its stages share
 * it in proportion to their time in the windows; a stage alone on its
 * thread gets all of it. Domains index the threads (0: the caller's). */
int rill__busy_fill(rill_pipeline *p, rill_stats *s, uint64_t end) {
    unsigned nd = 1;
    for (unsigned i = 0; i < p->n; i++)
        nd = p->stages[i]->domain >= nd ? p->stages[i]->domain + 1 : nd;
    int *head = malloc(nd * sizeof *head);
    double *total = calloc(nd, sizeof *total);
    rill__tclock_now *tc = calloc(nd, sizeof *tc);
    bool *known = calloc(nd, sizeof *known);
    if (!head || !total || !tc || !known) {
        free(head), free(total), free(tc), free(known);
        return RILL_ENOMEM;
    }
    for (unsigned d = 0; d < nd; d++)
        head[d] = -1;
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        if (st->domain && rill_stage_threaded(st))
            head[st->domain] = (int)i;
        total[st->domain] += (double)atomic_load_explicit(&st->prof_ns, memory_order_relaxed);
    }
    /* One read of each thread's clock (a system call each). */
    for (unsigned d = 0; d < nd && s->elapsed_ns; d++)
        if (d == 0 || head[d] >= 0)
            known[d] = rill__tclock_read(d ? &p->stages[head[d]]->tclock : &p->main_clock, &tc[d]);
    for (unsigned i = 0; i < p->n; i++) {
        rill_stage *st = p->stages[i];
        rill_stage_stats *o = &s->stages[i];
        unsigned d = st->domain;
        int h = head[d];
        o->thread = h;
        _Atomic uint64_t *waited = h < 0 ? &p->main_waited : &p->stages[h]->waited_ns;
        if (!known[d])
            continue;
        uint64_t stop = tc[d].end_ns ? tc[d].end_ns : end;
        uint64_t life = stop > tc[d].begin_ns ? stop - tc[d].begin_ns : 0;
        uint64_t wait = atomic_load_explicit(waited, memory_order_relaxed);
        uint64_t awake = life > wait ? life - wait : 0;
        uint64_t busy = tc[d].cpu_ns > tc[d].wait_cpu_ns ? tc[d].cpu_ns - tc[d].wait_cpu_ns : 0;
        if (!tc[d].waits) /* its waits' CPU is not known: none past its time awake */
            busy = busy < awake ? busy : awake;
        /* Two lower bounds, the larger taken: its CPU time outside waits,
         * and its time not waiting less its time on a run queue, which
         * leaves out time ready but not running and keeps a stage's own
         * sleeps and blocking reads (the run-queue time also holds yields
         * inside its waits, so this one is low for a thread that waits). */
        if (tc[d].rq_ok && awake > tc[d].rq_ns && awake - tc[d].rq_ns > busy)
            busy = awake - tc[d].rq_ns;
        busy = busy < life ? busy : life;
        o->measured = true;
        o->thread_busy_ns = busy;
        o->thread_cpu_ns = tc[d].cpu_ns;
        o->thread_wait_ns = wait;
        o->thread_runq_ns = tc[d].rq_ok ? tc[d].rq_ns : 0;
        o->thread_life_ns = life;
        double mine = (double)atomic_load_explicit(&st->prof_ns, memory_order_relaxed);
        /* No window saw any of the thread's stages (no inline send on it):
         * all of it is the head's, or the caller's sources'. */
        if (total[d] > 0) /* read after total: may have grown since */
            o->busy_ns = mine < total[d] ? (uint64_t)((double)busy * mine / total[d]) : busy;
        else if (h == (int)i || (h < 0 && st->nin == 0))
            o->busy_ns = busy;
    }
    free(head), free(total), free(tc), free(known);
    return 0;
}
