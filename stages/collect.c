/* Collect stage: every item kept in memory, in arrival order.
 *
 * Items are borrowed from the emitting stage, so keeping one means keeping
 * its owner alive. Consecutive items usually share an owner (lines of one
 * read buffer), so a reference is taken only when the owner differs from the
 * last one retained: one atomic per buffer, not per line. The same owner may
 * be retained more than once if items of several owners interleave; each
 * retain is recorded and dropped at destroy. Borrowed items (owner NULL)
 * are copied into chunks the state owns, and kept as static items: they
 * live until the pipeline is freed.
 */
#include <stdlib.h>
#include <string.h>

#include "core/rill_int.h"

typedef struct rill__collect {
    rill_item *items;
    size_t n, cap;
    rill_ref **owners; /* one entry per reference held */
    size_t nown, capown;
    struct rill__chunk *chunks; /* copies of borrowed bytes, newest first */
} rill__collect;

typedef struct rill__chunk {
    struct rill__chunk *next;
    size_t used, cap;
    _Alignas(16) char bytes[];
} rill__chunk;

/* A copy of len bytes at data that lives with c, aligned as an object of
 * that size may need (see queue.c); NULL if out of memory. */
static const void *rill__collect_copy(rill__collect *c, const void *data, size_t len) {
    size_t align = len & -len;
    align = align && align < 16 ? align : 16;
    rill__chunk *k = c->chunks;
    size_t at = k ? (k->used + align - 1) & ~(align - 1) : 0;
    if (!k || at > k->cap || len > k->cap - at) {
        if (len > SIZE_MAX / 2)
            return NULL;
        size_t cap = len > 65536 ? len : 65536;
        if (!(k = malloc(sizeof *k + cap)))
            return NULL;
        k->next = c->chunks;
        k->cap = cap;
        c->chunks = k;
        at = 0;
    }
    k->used = at + len;
    return memcpy(k->bytes + at, data, len);
}

/* Grow *arr (elements of size elem) so that it holds at least one more. */
static int rill__grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap)
        return 0;
    size_t nc = *cap ? 2 * *cap : 64;
    if (nc > SIZE_MAX / elem)
        return RILL_ENOMEM;
    void *a = realloc(*arr, nc * elem);
    if (!a)
        return RILL_ENOMEM;
    *arr = a;
    *cap = nc;
    return 0;
}

static int rill__collect_send(rill_stage *st, void *state, const rill_item *item) {
    rill__collect *c = state;
    rill_ref *o = item->owner;
    rill_item kept = *item;
    if (!o && item->len) {
        if (!(kept.data = rill__collect_copy(c, item->data, item->len)))
            return rill_stage_fail(st, RILL_ENOMEM, "cannot keep item %zu", c->n + 1);
    }
    if (!o)
        kept.owner = RILL_REF_STATIC;
    else if (o != RILL_REF_STATIC && (c->nown == 0 || c->owners[c->nown - 1] != o)) {
        if (rill__grow((void **)&c->owners, &c->capown, c->nown, sizeof *c->owners) < 0)
            return rill_stage_fail(st, RILL_ENOMEM, "cannot keep item %zu", c->n + 1);
        rill_ref_retain(o);
        c->owners[c->nown++] = o;
    }
    if (RILL__UNLIKELY(c->n == c->cap) &&
        rill__grow((void **)&c->items, &c->cap, c->n, sizeof *c->items) < 0)
        return rill_stage_fail(st, RILL_ENOMEM, "cannot keep item %zu", c->n + 1);
    c->items[c->n++] = kept;
    return 0;
}

static void rill__collect_destroy(void *state) {
    rill__collect *c = state;
    for (size_t i = 0; i < c->nown; i++)
        rill_ref_release(c->owners[i]);
    free(c->owners);
    free(c->items);
    for (rill__chunk *k = c->chunks, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    free(c);
}

static const rill_stage_ops rill__collect_ops = {
    .send = rill__collect_send,
    .free = rill__collect_destroy,
};

RILL_API int rill_collect_add(rill_pipeline *p, const char *name, const rill_stage_opts *opts,
                              rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    rill__collect *c = calloc(1, sizeof *c);
    if (!c)
        return RILL_ENOMEM;
    int rc = rill_stage_add(p, name, &rill__collect_ops, c, opts, out);
    if (rc < 0)
        free(c);
    return rc;
}

RILL_API int rill_collect_items(const rill_stage *st, const rill_item **items, size_t *n) {
    if (!st || !items || !n || rill_stage_ops_of(st) != &rill__collect_ops)
        return RILL_EINVAL;
    const rill__collect *c = rill_stage_state(st);
    *items = c->items;
    *n = c->n;
    return 0;
}
