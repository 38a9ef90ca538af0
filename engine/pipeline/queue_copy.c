/* What a queue does for items that are not owned: borrowed bytes copied
 * into the batch's arena, and (RILL_DEBUG) static bytes checked for change
 * while queued; and a run's chunk appended to a batch with both done. The
 * hand-offs that call these are queue.c. */
#include <stdlib.h>
#include <string.h>

#include "queue_ring.h"

/* Here, not in queue_life.c: whether a batch has RILL_DEBUG's sums is
 * decided per library (this file is built for each, see CMakeLists.txt). */
rill__batch *rill__batch_new(unsigned n) {
    rill__batch *b = malloc(sizeof *b + n * sizeof(rill_item) + n * sizeof(rill_ref *));
    if (!b)
        return NULL;
    b->items = (rill_item *)(b + 1);
    b->owners = (rill_ref **)(b->items + n);
    b->n = b->nowners = 0;
    b->eos = false;
    b->has_barrier = false;
    b->last = RILL_REF_STATIC;
    b->arena = NULL;
    b->arena_len = b->arena_cap = 0;
    b->sums = NULL;
#ifdef RILL_DEBUG
    if (!(b->sums = malloc(n * sizeof *b->sums))) {
        free(b);
        return NULL;
    }
#endif
    atomic_init(&b->pub_n, 0);
    atomic_init(&b->refs, 0);
    return b;
}

/* Borrowed bytes must not be read after the producer's call returns: copy
 * them into b's arena, which grows by doubling (moving the copies made so
 * far, which are the items whose owner is NULL) and is kept for the batch's
 * next use. Each copy is aligned as an object of its size may need (the
 * largest power of two dividing len, at most 16): an item carrying a struct
 * stays readable as one. */
int rill__batch_copy(rill__batch *b, rill_item *it) {
    size_t len = it->len;
    if (len == 0) { /* no bytes, but no pointer into the caller's memory either */
        it->data = "";
        return 0;
    }
    size_t align = len & -len;
    align = align < 16 ? align : 16;
    size_t at = (b->arena_len + align - 1) & ~(align - 1);
    if (at > b->arena_cap || len > b->arena_cap - at) {
        if (len > SIZE_MAX / 8 - at)
            return RILL_ENOMEM;
        size_t cap = b->arena_cap ? b->arena_cap : 4096;
        while (cap < at + len)
            cap *= 2;
        char *a = aligned_alloc(16, cap), *old = b->arena;
        if (!a)
            return RILL_ENOMEM;
        if (b->arena_len)
            memcpy(a, old, b->arena_len);
        for (rill_item *c = b->items; c < it; c++) /* the copies before it */
            if (!c->owner && c->len)
                c->data = a + ((const char *)c->data - old);
        free(old);
        b->arena = a;
        b->arena_cap = cap;
    }
    it->data = memcpy(b->arena + at, it->data, len);
    b->arena_len = at + len;
    return 0;
}

/* RILL_DEBUG: a static item promises bytes that do not change until the
 * pipeline is freed. Sum them when queued and again when taken, and fail the
 * pipeline, naming the producer, if they changed: a buffer reused while
 * queued gives wrong results only when threaded, the hardest way to find it. */
#ifdef RILL_DEBUG
uint64_t rill__sum(const rill_item *it) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < it->len; i++)
        h = (h ^ ((const unsigned char *)it->data)[i]) * 1099511628211u;
    return h;
}
void rill__check_static(rill__queue *e, const rill__batch *b) {
    for (unsigned i = 0; i < b->n; i++) {
        const rill_item *it = &b->items[i];
        if (it->owner != RILL_REF_STATIC || rill__sum(it) == b->sums[i])
            continue;
        const char *to = rill_stage_name(e->to), *why =
            "(a static item's bytes must not change until rill_pipeline_free: "
            "mark a reused buffer borrowed, owner NULL)";
        if (e->from)
            rill_stage_fail(e->from, RILL_ESTAGE,
                            "a static item it emitted to '%s' changed while queued %s", to, why);
        else
            rill_stage_fail(e->to, RILL_ESTAGE,
                            "a static item pushed into it changed while queued %s", why);
        return;
    }
}
#endif


/* A run's chunk: items[0..n) appended to b after its b->n items, owners
 * retained once per change of owner and borrowed bytes copied, as
 * rill__queue_push does for one. Returns how many were appended: n, or
 * fewer if copying one's bytes ran out of memory (it is not appended).
 * The caller sets b->n and publishes. */
size_t rill__batch_append(rill__batch *b, const rill_item *items, size_t n) {
    rill_item *dst = b->items + b->n;
    memcpy(dst, items, n * sizeof *dst);
    for (size_t j = 0; j < n; j++) {
        rill_ref *o = dst[j].owner;
        if (RILL__UNLIKELY(o != b->last)) {
            if (!o) { /* b->last is never NULL: copy, and keep the last owner */
                if (rill__batch_copy(b, &dst[j]) < 0)
                    return j;
                continue;
            }
            if (o != RILL_REF_STATIC) {
                rill_ref_retain(o);
                b->owners[b->nowners++] = o;
            }
            b->last = o;
        }
#ifdef RILL_DEBUG
        if (o == RILL_REF_STATIC)
            b->sums[b->n + j] = rill__sum(&dst[j]);
#endif
    }
    return n;
}
