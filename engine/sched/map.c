/* The scheduler's id map and task records.
 *
 * Ids are sequential and live tasks mostly hold a window of recent ids, so
 * the slot is the id's low bits, xor-ed with the next bits: ids in a window
 * smaller than the table never collide, consecutive ids sit in neighbouring
 * slots (spawning and ending a million tasks walks the table in order; a
 * scattering hash missed the cache on every task and cost a third of the
 * whole benchmark), and survivors one table size apart (id, id + cap, ...)
 * still land apart. A slot is only a task pointer (8 bytes; the key is the
 * record's id).
 *
 * Robin Hood linear probing: an entry never sits farther from its home
 * than the entries after it, so a lookup stops at the first entry nearer
 * its home than the probe is, and a delete shifts back only the entries
 * that are displaced. Plain linear probing would have to scan a whole run
 * on every delete, and sequential ids make one run of all live tasks.
 * No tombstones: a server that spawns and ends tasks forever keeps short
 * probes. Load <= 3/4.
 *
 * Records are carved out of chunks and recycled through a free list: after
 * warm-up, spawning and ending tasks allocates nothing, and there is no
 * malloc header per task. */
#include <stdlib.h>

#include "sched_int.h"

#define RILL__MAP_MIN_BITS 6
#define RILL__CHUNK_MIN 64
#define RILL__CHUNK_MAX 4096

static size_t rill__slot(uint64_t id, unsigned bits) {
    return (size_t)((id ^ (id >> bits)) & ((UINT64_C(1) << bits) - 1));
}

/* How far the entry in slot i sits from its home slot. */
static size_t rill__dist(rill__task *const *map, size_t i, size_t mask, unsigned bits) {
    return (i - rill__slot(map[i]->id, bits)) & mask;
}

static void rill__map_insert(rill__task **map, size_t mask, unsigned bits, rill__task *t) {
    size_t i = rill__slot(t->id, bits), d = 0;
    while (map[i]) { /* ids are unique: no key comparison needed */
        size_t di = rill__dist(map, i, mask, bits);
        if (di < d) { /* take the slot of an entry nearer home; carry it on */
            rill__task *displaced = map[i];
            map[i] = t;
            t = displaced;
            d = di;
        }
        i = (i + 1) & mask;
        d++;
    }
    map[i] = t;
}

static int rill__map_grow(rill_sched *s) {
    unsigned bits = s->map ? s->map_bits + 1 : RILL__MAP_MIN_BITS;
    size_t cap = (size_t)1 << bits;
    rill__task **map = calloc(cap, sizeof *map);
    if (!map)
        return RILL_ENOMEM;
    for (size_t i = 0; i < s->map_cap; i++)
        if (s->map[i])
            rill__map_insert(map, cap - 1, bits, s->map[i]);
    free(s->map);
    s->map = map;
    s->map_cap = cap;
    s->map_bits = bits;
    return 0;
}

int rill__sched_map_put(rill_sched *s, rill__task *t) {
    if ((s->map_count + 1) * 4 > s->map_cap * 3) {
        int rc = rill__map_grow(s);
        if (rc < 0)
            return rc;
    }
    rill__map_insert(s->map, s->map_cap - 1, s->map_bits, t);
    s->map_count++;
    return 0;
}

static size_t rill__map_find(const rill_sched *s, uint64_t id) {
    if (!s->map)
        return SIZE_MAX;
    size_t mask = s->map_cap - 1;
    for (size_t i = rill__slot(id, s->map_bits), d = 0; s->map[i]; i = (i + 1) & mask, d++) {
        if (s->map[i]->id == id)
            return i;
        if (rill__dist(s->map, i, mask, s->map_bits) < d)
            break; /* id would sit here or before */
    }
    return SIZE_MAX;
}

rill__task *rill__sched_map_get(const rill_sched *s, uint64_t id) {
    size_t i = rill__map_find(s, id);
    return i == SIZE_MAX ? NULL : s->map[i];
}

void rill__sched_map_del(rill_sched *s, uint64_t id) {
    size_t i = rill__map_find(s, id);
    if (i == SIZE_MAX)
        return;
    size_t mask = s->map_cap - 1;
    for (size_t j = (i + 1) & mask; s->map[j] && rill__dist(s->map, j, mask, s->map_bits) > 0;
         j = (j + 1) & mask) {
        s->map[i] = s->map[j];
        i = j;
    }
    s->map[i] = NULL;
    s->map_count--;
}

void rill__sched_map_free(rill_sched *s) {
    free(s->map);
    s->map = NULL;
    s->map_cap = s->map_count = 0;
}

/* A chunk: the next chunk's address, then records. */
typedef struct rill__chunk {
    struct rill__chunk *next;
    rill__task tasks[];
} rill__chunk;

rill__task *rill__sched_task_alloc(rill_sched *s) {
    if (rill__list_empty(&s->free_tasks)) {
        size_t n = s->next_chunk_len ? s->next_chunk_len : RILL__CHUNK_MIN;
        size_t bytes = sizeof(rill__chunk) + n * sizeof(rill__task);
        rill__chunk *c = malloc(bytes);
        if (!c)
            return NULL;
        c->next = s->chunks;
        s->chunks = c;
        s->chunk_bytes += bytes;
        s->next_chunk_len = n < RILL__CHUNK_MAX ? 2 * n : n;
        for (size_t i = n; i-- > 0;)
            rill__list_push_front(&s->free_tasks, &c->tasks[i].link);
    }
    rill__list *n = rill__list_first(&s->free_tasks);
    rill__list_unlink(n);
    return RILL__LIST_ENTRY(n, rill__task, link);
}

void rill__sched_task_release(rill_sched *s, rill__task *t) {
    t->gen = NULL;
    rill__list_push_front(&s->free_tasks, &t->link);
}

void rill__sched_tasks_free(rill_sched *s) {
    for (rill__chunk *c = s->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    s->chunks = NULL;
    rill__list_init(&s->free_tasks);
    s->chunk_bytes = 0;
}
