/* Open addressing with linear probing: names are only added, never removed,
 * so no tombstones are needed. */
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "rill_int.h"

static uint64_t rill__name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static rill__name_slot *rill__names_slot(rill__name_slot *slots, size_t cap, const char *key,
                                         uint64_t h) {
    size_t i = (size_t)h & (cap - 1);
    while (slots[i].key && (slots[i].hash != h || strcmp(slots[i].key, key) != 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

void *rill__names_get(const rill__names *t, const char *key) {
    if (!t->cap)
        return NULL;
    return rill__names_slot(t->slots, t->cap, key, rill__name_hash(key))->val;
}

static int rill__names_grow(rill__names *t) {
    size_t cap = t->cap ? 2 * t->cap : 16;
    rill__name_slot *s = calloc(cap, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].key)
            *rill__names_slot(s, cap, t->slots[i].key, t->slots[i].hash) = t->slots[i];
    free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 0;
}

int rill__names_put(rill__names *t, const char *key, void *val) {
    if (4 * (t->n + 1) > 3 * t->cap && rill__names_grow(t))
        return RILL_ENOMEM;
    uint64_t h = rill__name_hash(key);
    *rill__names_slot(t->slots, t->cap, key, h) = (rill__name_slot){key, val, h};
    t->n++;
    return 0;
}

int rill__names_reserve(rill__names *t, size_t extra) {
    while (4 * (t->n + extra) > 3 * t->cap)
        if (rill__names_grow(t))
            return RILL_ENOMEM;
    return 0;
}

void rill__names_free(rill__names *t) {
    free(t->slots);
    *t = (rill__names){0};
}
