/* What the replica tests (tests/test_thread_replicas*.c) build with: ids
 * that items point at, a source whose replicas each emit a slice of
 * [0, n), and a stage that sums what it sees (counts, sums, key classes)
 * with an optional failure, abort, merge or key hash. Static, so each test
 * binary takes what it uses. */
#ifndef RILL_TESTS_REPLICA_UTIL_H
#define RILL_TESTS_REPLICA_UTIL_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "thread_util.h"

enum { MAXIDS = 20000 };

static uint64_t ids[MAXIDS]; /* items point here: valid for every pipeline */

__attribute__((constructor)) static void ids_init(void) {
    for (unsigned i = 0; i < MAXIDS; i++)
        ids[i] = i;
}

/* ---- a source whose replicas each emit a slice of [0, n) ------------------ */

typedef struct src_state {
    unsigned n, next, end;
    bool placed;
    uint64_t emitted_ok; /* emits that returned 0 */
} src_state;

static inline int src_produce(rill_stage *st, void *state) {
    src_state *s = state;
    if (!s->placed) {
        unsigned k, r = rill_stage_replicas(st, &k);
        s->next = (unsigned)((uint64_t)s->n * k / r);
        s->end = (unsigned)((uint64_t)s->n * (k + 1) / r);
        s->placed = true;
    }
    for (unsigned i = 0; i < 64 && s->next < s->end; i++) {
        rill_item it = rill_item_static(&ids[s->next], sizeof ids[0]);
        s->next++;
        int rc = rill_emit(st, &it);
        if (rc)
            return rc;
        s->emitted_ok++;
    }
    return s->next < s->end ? 0 : RILL_EDONE;
}

static inline int src_clone(const void *state, void **out) {
    src_state *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ENOMEM;
    c->n = ((const src_state *)state)->n;
    *out = c;
    return 0;
}

__attribute__((unused)) static const rill_stage_ops src_ops = {.produce = src_produce, .free = free, .clone = src_clone};

/* ---- a pass/filter stage that sums what it sees, with an optional merge ---- */

typedef struct sum_state {
    unsigned modulus;        /* drop ids with id % modulus == 0 (0: keep all) */
    unsigned fail_at;        /* fail at this item (1-based; 0: never) */
    rill_pipeline *abort_p;  /* abort p at item abort_at */
    unsigned abort_at;
    uint64_t n, sum;         /* received */
    uint64_t emitted_ok;
    uint64_t keys_seen;      /* bit per key seen (the key is id % 64) */
} sum_state;

static inline int sum_send(rill_stage *st, void *state, const rill_item *item) {
    sum_state *s = state;
    uint64_t id;
    memcpy(&id, item->data, sizeof id);
    s->n++;
    s->sum += id;
    s->keys_seen |= 1ull << (id % 64);
    if (s->fail_at && s->n == s->fail_at)
        return rill_stage_fail(st, RILL_ESTAGE, "replica fails at item %u", s->fail_at);
    if (s->abort_p && s->n == s->abort_at)
        rill_pipeline_abort(s->abort_p);
    if (s->modulus && id % s->modulus == 0)
        return 0;
    int rc = rill_emit(st, item);
    if (rc == 0)
        s->emitted_ok++;
    return rc;
}

static inline int sum_clone(const void *state, void **out) {
    const sum_state *s = state;
    sum_state *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ENOMEM;
    c->modulus = s->modulus;
    *out = c;
    return 0;
}

static inline int sum_merge(void *into, const void *from) {
    sum_state *a = into;
    const sum_state *b = from;
    a->n += b->n;
    a->sum += b->sum;
    return 0;
}

static inline uint64_t sum_hash(const void *state, const rill_item *item) {
    (void)state;
    uint64_t id;
    memcpy(&id, item->data, sizeof id);
    return rng_next(&(uint64_t){id % 64 + 1}); /* the key is id % 64 */
}

__attribute__((unused)) static const rill_stage_ops pass_ops = {.send = sum_send, .free = free, .clone = sum_clone};
__attribute__((unused)) static const rill_stage_ops merged_ops = {
    .send = sum_send, .free = free, .clone = sum_clone, .merge = sum_merge};
__attribute__((unused)) static const rill_stage_ops keyed_ops = {
    .send = sum_send, .free = free, .clone = sum_clone, .hash = sum_hash};

/* Count and sum over every replica of st. */
static inline void group_totals(rill_stage *st, uint64_t *n, uint64_t *sum) {
    *n = *sum = 0;
    rill_stage *r;
    for (unsigned k = 0; (r = rill_stage_replica(st, k)) != NULL; k++) {
        const sum_state *s = rill_stage_state(r);
        *n += s->n;
        *sum += s->sum;
    }
}

__attribute__((unused)) static const rill_stage_ops keyed_merged_ops = {
    .send = sum_send, .free = free, .clone = sum_clone, .merge = sum_merge, .hash = sum_hash};

#endif
