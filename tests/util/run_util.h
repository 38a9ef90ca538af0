/* What the run tests (tests/test_runs.c, tests/test_thread_runs.c) build
 * with: a source emitting the values 1..n as runs (rill_emit_items) of a
 * given length, optionally with a barrier every few runs; a pass-through
 * and a sink, each with send only or with send_items too, that count, sum
 * and check the order of what they see, and may fail or abort at an item.
 * Static, so each test binary takes what it uses. */
#ifndef RILL_TESTS_RUN_UTIL_H
#define RILL_TESTS_RUN_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"

enum { RUN_MAXV = 20000 };

static uint64_t run_vals[RUN_MAXV + 1]; /* run_vals[v] == v: static items point here */

__attribute__((constructor)) static void run_vals_init(void) {
    for (unsigned i = 0; i <= RUN_MAXV; i++)
        run_vals[i] = i;
}

static inline uint64_t run_value(const rill_item *it) {
    uint64_t v;
    memcpy(&v, it->data, sizeof v);
    return v;
}

/* ---- the source ------------------------------------------------------------ */

enum { RUN_STATIC, RUN_BORROWED, RUN_OWNED };

typedef struct run_src {
    uint64_t n, next;     /* emits 1..n; next: the first not emitted yet */
    unsigned len;         /* items per run (the last may be shorter) */
    unsigned kind;        /* RUN_*: how the items are owned */
    unsigned barrier_every; /* a barrier after every this many runs (0: none) */
    uint64_t runs, barriers;
    int rc;               /* the last emit's answer */
} run_src;

static inline int run_src_produce(rill_stage *st, void *state) {
    run_src *s = state;
    if (s->next == 0)
        s->next = 1;
    uint64_t left = s->n + 1 - s->next;
    size_t k = left < s->len ? (size_t)left : s->len;
    rill_item *items = calloc(k ? k : 1, sizeof *items);
    uint64_t *buf = calloc(k ? k : 1, sizeof *buf); /* borrowed bytes, reused below */
    if (!items || !buf) {
        free(items);
        free(buf);
        return RILL_ENOMEM;
    }
    for (size_t i = 0; i < k; i++) {
        uint64_t v = s->next + i;
        if (s->kind == RUN_BORROWED) {
            buf[i] = v;
            items[i] = rill_item_borrow(&buf[i], sizeof buf[i]);
        } else if (s->kind == RUN_OWNED) {
            if (rill_item_copy(&v, sizeof v, &items[i]) < 0)
                abort();
        } else {
            items[i] = rill_item_static(&run_vals[v], sizeof v);
        }
    }
    int rc = rill_emit_items(st, items, k);
    if (s->kind == RUN_OWNED)
        for (size_t i = 0; i < k; i++)
            rill_item_release(&items[i]);
    memset(buf, 0xff, k * sizeof *buf); /* a borrowed item kept past the call shows */
    free(items);
    free(buf);
    s->rc = rc;
    if (rc < 0)
        return rc;
    s->next += k;
    s->runs++;
    if (s->barrier_every && s->runs % s->barrier_every == 0) {
        if ((rc = rill_emit_barrier(st, ++s->barriers)) < 0)
            return rc;
    }
    return s->next > s->n ? RILL_EDONE : 0;
}

__attribute__((unused)) static const rill_stage_ops run_src_ops = {.produce = run_src_produce};

/* ---- pass-through and sink --------------------------------------------------- */

typedef struct run_sink {
    unsigned fail_at;        /* fail at this item (1-based; 0: never) */
    unsigned abort_at;       /* abort abort_p at this item */
    rill_pipeline *abort_p;
    uint64_t n, sum, last;   /* received; the last value seen */
    bool in_order;           /* every value above the one before */
    uint64_t calls_items;    /* send_items calls */
    uint64_t at_barrier[64]; /* n when barrier id (1..63) was aligned */
} run_sink;

/* One item into s: 0, or the failure asked for (after counting it). */
static inline int run_take(rill_stage *st, run_sink *s, const rill_item *it) {
    uint64_t v = run_value(it);
    if (s->n == 0)
        s->in_order = true;
    s->in_order = s->in_order && v > s->last;
    s->last = v;
    s->n++;
    s->sum += v;
    if (s->abort_at && s->n == s->abort_at)
        rill_pipeline_abort(s->abort_p);
    if (s->fail_at && s->n == s->fail_at)
        return rill_stage_fail(st, RILL_ESTAGE, "refusing item %llu", (unsigned long long)s->n);
    return 0;
}

static inline int run_sink_send(rill_stage *st, void *state, const rill_item *it) {
    return run_take(st, state, it);
}

static inline int run_sink_send_items(rill_stage *st, void *state, const rill_item *items,
                                      size_t n) {
    run_sink *s = state;
    s->calls_items++;
    for (size_t i = 0; i < n; i++) {
        int rc = run_take(st, s, &items[i]);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static inline int run_sink_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    run_sink *s = state;
    if (id < 64)
        s->at_barrier[id] = s->n;
    return 0;
}

/* A pass-through counts too, then emits what it got: per item, or the run. */
static inline int run_pass_send(rill_stage *st, void *state, const rill_item *it) {
    int rc = run_take(st, state, it);
    return rc < 0 ? rc : rill_emit(st, it);
}

static inline int run_pass_send_items(rill_stage *st, void *state, const rill_item *items,
                                      size_t n) {
    run_sink *s = state;
    s->calls_items++;
    for (size_t i = 0; i < n; i++)
        if (run_take(st, s, &items[i]) < 0)
            return RILL_ESTAGE;
    return rill_emit_items(st, items, n);
}

__attribute__((unused)) static const rill_stage_ops run_sink_ops = {
    .send = run_sink_send, .barrier = run_sink_barrier};
__attribute__((unused)) static const rill_stage_ops run_sink_items_ops = {
    .send = run_sink_send, .send_items = run_sink_send_items, .barrier = run_sink_barrier};
__attribute__((unused)) static const rill_stage_ops run_pass_ops = {
    .send = run_pass_send, .barrier = run_sink_barrier};
__attribute__((unused)) static const rill_stage_ops run_pass_items_ops = {
    .send = run_pass_send, .send_items = run_pass_send_items, .barrier = run_sink_barrier};

/* 1 + 2 + ... + n, by the loop a reader would write. */
static inline uint64_t run_sum_to(uint64_t n) {
    uint64_t s = 0;
    for (uint64_t v = 1; v <= n; v++)
        s += v;
    return s;
}

/* items_in / items_out of the stage named name, from a snapshot. */
static inline bool run_stage_counts(rill_pipeline *p, const char *name, uint64_t *in,
                                    uint64_t *out) {
    rill_stats *s;
    if (rill_pipeline_stats(p, &s) < 0)
        return false;
    bool found = false;
    for (size_t i = 0; i < s->nstages; i++)
        if (strcmp(s->stages[i].name, name) == 0) {
            *in = s->stages[i].items_in;
            *out = s->stages[i].items_out;
            found = true;
        }
    rill_stats_free(s);
    return found;
}

#endif
