/* count: items counted by key in an open-addressing hash table.
 *
 * Linear probing over a power-of-two array of slots; each slot keeps the full
 * hash (cheap rejection and rehash without rehashing bytes), the key and its
 * count. count == 0 marks an empty slot. Keys are copied once into chunked
 * arena memory; an item whose key is already present costs one hash, one
 * probe sequence and no allocation. */
#include <stdlib.h>
#include <string.h>

#include "count_int.h"
#include "hash.h"

#define RILL__COUNT_CHUNK (64u << 10)
#define RILL__COUNT_MIN_CAP 64u


static const char *rill__arena_copy(rill__count *c, const void *key, size_t len) {
    if (len == 0)
        return "";
    rill__chunk *ch = c->arena;
    if (!ch || ch->cap - ch->used < len) {
        size_t cap = len > RILL__COUNT_CHUNK ? len : RILL__COUNT_CHUNK;
        if (cap > SIZE_MAX - sizeof *ch)
            return NULL;
        ch = malloc(sizeof *ch + cap);
        if (!ch)
            return NULL;
        ch->used = 0;
        ch->cap = cap;
        ch->next = c->arena;
        c->arena = ch;
    }
    char *dst = ch->bytes + ch->used;
    memcpy(dst, key, len);
    ch->used += len;
    return dst;
}

/* Double the table. Slots carry their hash, so no key bytes are read. */
static int rill__count_grow(rill__count *c) {
    size_t cap = (c->mask + 1) * 2;
    if (cap > SIZE_MAX / sizeof(rill__slot))
        return RILL_ENOMEM;
    rill__slot *s = calloc(cap, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; i <= c->mask; i++) {
        const rill__slot *o = &c->slots[i];
        if (!o->count)
            continue;
        size_t j = (size_t)o->hash & mask;
        while (s[j].count)
            j = (j + 1) & mask;
        s[j] = *o;
    }
    free(c->slots);
    c->slots = s;
    c->mask = mask;
    return 0;
}

/* The slot holding key, or the empty slot where it belongs. */
static inline rill__slot *rill__count_find(const rill__count *c, uint64_t h, const void *key,
                                           size_t len) {
    size_t i = (size_t)h & c->mask;
    for (;;) {
        rill__slot *s = &c->slots[i];
        if (!s->count ||
            (s->hash == h && s->len == len && (len == 0 || memcmp(s->key, key, len) == 0)))
            return s;
        i = (i + 1) & c->mask;
    }
}

/* Add n to key's count. */
static inline int rill__count_add_key(rill__count *c, rill_stage *st, const void *key, size_t len,
                                      uint64_t n) {
    uint64_t h = rill__hash_bytes(key, len);
    rill__slot *s = rill__count_find(c, h, key, len);
    if (RILL__LIKELY(s->count)) {
        s->count += n;
        c->total += n;
        return 0;
    }
    /* New key. Keep the load under 70 %: grow first, then find the new
     * empty slot (the key is known absent, so the probe compares nothing). */
    if ((c->nkeys + 1) * 10 > (c->mask + 1) * 7) {
        int rc = rill__count_grow(c);
        if (rc)
            return rill_stage_fail(st, rc, "cannot grow the table to %zu keys", c->nkeys + 1);
        size_t i = (size_t)h & c->mask;
        while (c->slots[i].count)
            i = (i + 1) & c->mask;
        s = &c->slots[i];
    }
    const char *copy = rill__arena_copy(c, key, len);
    if (!copy)
        return rill_stage_fail(st, RILL_ENOMEM, "cannot copy a key of %zu bytes", len);
    s->hash = h;
    s->key = copy;
    s->len = len;
    s->count = n;
    c->nkeys++;
    c->total += n;
    return 0;
}

static int rill__count_send(rill_stage *st, void *state, const rill_item *item) {
    rill__count *c = state;
    const void *key = item->data;
    size_t len = item->len;
    if (c->key)
        c->key(item, c->key_arg, &key, &len);
    return rill__count_add_key(c, st, key, len, 1);
}

static void rill__count_destroy(void *state) {
    rill__count *c = state;
    if (c->delta)
        rill__count_destroy(c->delta);
    while (c->arena) {
        rill__chunk *next = c->arena->next;
        free(c->arena);
        c->arena = next;
    }
    free(c->slots);
    free(c);
}

/* Replicas: each counts its share; the shares add up (key by key). */
static int rill__count_merge(void *into, const void *from) {
    const rill__count *f = from;
    for (size_t i = 0; i <= f->mask; i++) {
        const rill__slot *s = &f->slots[i];
        if (s->count) {
            int rc = rill__count_add_key(into, NULL, s->key, s->len, s->count);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* ---- deltas at checkpoint barriers (rill_count_add_deltas) ------------------- */

/* The state of a new, empty table, or NULL. */
static rill__count *rill__count_new(rill_key_fn key, void *key_arg) {
    rill__count *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->slots = calloc(RILL__COUNT_MIN_CAP, sizeof *c->slots);
    if (!c->slots) {
        free(c);
        return NULL;
    }
    c->mask = RILL__COUNT_MIN_CAP - 1;
    c->key = key;
    c->key_arg = key_arg;
    return c;
}

static int rill__count_clone(const void *state, void **out) {
    const rill__count *c = state;
    *out = rill__count_new(c->key, c->key_arg);
    return *out ? 0 : RILL_ENOMEM;
}

/* Dealing by key (with replicas), for a stage that asks for it. */
static uint64_t rill__count_key_hash(const void *state, const rill_item *item) {
    const rill__count *c = state;
    const void *key = item->data;
    size_t len = item->len;
    if (c->key)
        c->key(item, c->key_arg, &key, &len);
    return rill__hash_bytes(key, len);
}

/* In delta mode items are counted in the delta table only, and its counts
 * join the totals at each barrier and at close: the same cost per item. */
static int rill__count_send_delta(rill_stage *st, void *state, const rill_item *item) {
    rill__count *c = state;
    const void *key = item->data;
    size_t len = item->len;
    if (c->key)
        c->key(item, c->key_arg, &key, &len);
    return rill__count_add_key(c->delta, st, key, len, 1);
}

/* Add the delta's counts to the totals; *bytes gets the size of its items. */
static int rill__count_fold_delta(rill__count *c, rill_stage *st, size_t *bytes) {
    const rill__count *d = c->delta;
    *bytes = 0;
    for (size_t i = 0; i <= d->mask; i++) {
        const rill__slot *s = &d->slots[i];
        if (!s->count)
            continue;
        int rc = rill__count_add_key(c, st, s->key, s->len, s->count);
        if (rc)
            return rc;
        *bytes += sizeof(uint64_t) + s->len;
    }
    return 0;
}

/* Empty the delta table, keeping its size. */
static void rill__count_clear(rill__count *d) {
    while (d->arena) {
        rill__chunk *next = d->arena->next;
        free(d->arena);
        d->arena = next;
    }
    memset(d->slots, 0, (d->mask + 1) * sizeof *d->slots);
    d->nkeys = 0;
    d->total = 0;
}

/* One block per barrier holds every item of the delta: the items cross
 * threads by reference and the last one released frees it. */
typedef struct rill__delta_block {
    rill_ref ref;
    char bytes[];
} rill__delta_block;

static void rill__delta_release(rill_ref *ref) { free(ref); }

static int rill__count_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)id;
    rill__count *c = state, *d = c->delta;
    if (!d->nkeys)
        return 0;
    size_t bytes;
    int rc = rill__count_fold_delta(c, st, &bytes);
    rill__delta_block *b = rc ? NULL : malloc(sizeof *b + bytes);
    if (!b) {
        rill__count_clear(d);
        return rc ? rc
                  : rill_stage_fail(st, RILL_ENOMEM, "cannot make a delta of %zu keys", d->nkeys);
    }
    rill_ref_init(&b->ref, rill__delta_release);
    char *p = b->bytes;
    for (size_t i = 0; i <= d->mask && !rc; i++) {
        const rill__slot *s = &d->slots[i];
        if (!s->count)
            continue;
        memcpy(p, &s->count, sizeof s->count);
        if (s->len)
            memcpy(p + sizeof s->count, s->key, s->len);
        rill_item it = { p, sizeof s->count + s->len, &b->ref };
        rc = rill_emit(st, &it);
        p += it.len;
    }
    rill_ref_release(&b->ref);
    rill__count_clear(d);
    return rc;
}

/* What came after the last barrier joins the totals, as no delta. */
static int rill__count_close_delta(rill_stage *st, void *state) {
    rill__count *c = state;
    size_t bytes;
    int rc = rill__count_fold_delta(c, st, &bytes);
    rill__count_clear(c->delta);
    return rc;
}

/* A replica in delta mode: its own totals and delta table. */
static int rill__count_clone_delta(const void *state, void **out) {
    const rill__count *c = state;
    rill__count *n = rill__count_new(c->key, c->key_arg);
    if (n && !(n->delta = rill__count_new(NULL, NULL))) {
        rill__count_destroy(n);
        n = NULL;
    }
    *out = n;
    return n ? 0 : RILL_ENOMEM;
}

/* Only replica 0 closes: it takes the others' totals and their deltas not
 * yet emitted (the items after their last barrier). */
static int rill__count_merge_delta(void *into, const void *from) {
    const rill__count *f = from;
    rill__count *t = into;
    int rc = rill__count_merge(t, f);
    return rc ? rc : rill__count_merge(t->delta, f->delta);
}

static const rill_stage_ops rill__count_delta_ops = { .send = rill__count_send_delta,
                                                      .close = rill__count_close_delta,
                                                      .barrier = rill__count_barrier,
                                                      .free = rill__count_destroy,
                                                      .clone = rill__count_clone_delta,
                                                      .merge = rill__count_merge_delta };

static const rill_stage_ops rill__count_ops = { .send = rill__count_send,
                                                .free = rill__count_destroy,
                                                .clone = rill__count_clone,
                                                .merge = rill__count_merge };
/* The same counting, replicas dealt by key: each key in one share. */
static const rill_stage_ops rill__count_keyed_ops = { .send = rill__count_send,
                                                      .free = rill__count_destroy,
                                                      .clone = rill__count_clone,
                                                      .merge = rill__count_merge,
                                                      .hash = rill__count_key_hash };

static int rill__count_add(rill_pipeline *p, const char *name, rill_key_fn key, void *key_arg,
                           bool deltas, bool keyed, const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    rill__count *c = rill__count_new(key, key_arg);
    if (!c)
        return RILL_ENOMEM;
    if (deltas && !(c->delta = rill__count_new(NULL, NULL))) {
        rill__count_destroy(c);
        return RILL_ENOMEM;
    }
    int rc = rill_stage_add(p, name, deltas ? &rill__count_delta_ops : keyed ? &rill__count_keyed_ops : &rill__count_ops, c, opts,
                            out);
    if (rc)
        rill__count_destroy(c);
    return rc;
}

RILL_API int rill_count_add(rill_pipeline *p, const char *name, rill_key_fn key,
                            void *key_arg, const rill_stage_opts *opts, rill_stage **out) {
    return rill__count_add(p, name, key, key_arg, false, false, opts, out);
}

RILL_API int rill_count_add_deltas(rill_pipeline *p, const char *name, rill_key_fn key,
                                   void *key_arg, const rill_stage_opts *opts, rill_stage **out) {
    return rill__count_add(p, name, key, key_arg, true, false, opts, out);
}

RILL_API int rill_count_delta_parse(const rill_item *item, const void **key, size_t *len,
                                    uint64_t *count) {
    if (!item || !key || !len || !count || !item->data || item->len < sizeof *count)
        return RILL_EINVAL;
    memcpy(count, item->data, sizeof *count);
    *key = (const char *)item->data + sizeof *count;
    *len = item->len - sizeof *count;
    return 0;
}

RILL_API int rill_count_keyed_add(rill_pipeline *p, const char *name, rill_key_fn key,
                                  void *key_arg, const rill_stage_opts *opts, rill_stage **out) {
    return rill__count_add(p, name, key, key_arg, false, true, opts, out);
}

/* The state of st if it is a count stage. */
const rill__count *rill__count_of(const rill_stage *st) {
    const rill_stage_ops *ops = rill_stage_ops_of(st);
    return st && (ops == &rill__count_ops || ops == &rill__count_keyed_ops ||
                  ops == &rill__count_delta_ops)
               ? rill_stage_state(st)
               : NULL;
}

RILL_API int rill_count_get(const rill_stage *st, const void *key, size_t len,
                            uint64_t *count) {
    const rill__count *c = rill__count_of(st);
    if (!c || !count || (!key && len))
        return RILL_EINVAL;
    *count = rill__count_find(c, rill__hash_bytes(key, len), key, len)->count;
    return 0;
}

RILL_API int rill_count_size(const rill_stage *st, size_t *keys, uint64_t *total) {
    const rill__count *c = rill__count_of(st);
    if (!c)
        return RILL_EINVAL;
    if (keys)
        *keys = c->nkeys;
    if (total)
        *total = c->total;
    return 0;
}
