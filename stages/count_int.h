/* Internal to the count stage (count.c, count_top.c): its table, and the
 * state behind a count stage handle. */
#ifndef RILL_STAGES_COUNT_INT_H
#define RILL_STAGES_COUNT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "core/rill_int.h"

typedef struct rill__slot {
    uint64_t hash;
    const char *key;
    size_t len;
    uint64_t count;
} rill__slot;

typedef struct rill__chunk {
    struct rill__chunk *next;
    size_t used, cap;
    char bytes[];
} rill__chunk;

typedef struct rill__count {
    rill_key_fn key;
    struct rill__count *delta; /* delta mode: counts since the last barrier */
    void *key_arg;
    rill__slot *slots;
    size_t mask;   /* capacity - 1 */
    size_t nkeys;
    uint64_t total;
    rill__chunk *arena;
} rill__count;

/* The state of st if it is a count stage (any of its modes), else NULL. */
const rill__count *rill__count_of(const rill_stage *st);

#endif
