/* rill — items and the reference-counted memory they point into.
 *
 * An item is a (pointer, length, owner) triple passed by value. It does not
 * own a reference by itself: an item handed to a stage's send callback, or to
 * rill_emit(), is borrowed for the duration of that call. A stage that keeps
 * an item beyond the call (a queue, a collector) takes a reference on its
 * owner with rill_item_retain() — once per owner it keeps, not once per item:
 * the line source cuts thousands of lines out of one counted buffer.
 *
 * The owner says how long the bytes live, and so what the engine does when
 * an item has to outlive the call (it crosses to another thread, or is held
 * past the inline depth limit):
 *
 *   owner                      the bytes live            kept by
 *   NULL (rill_item_borrow)    for this call only        copying them
 *   RILL_REF_STATIC            until rill_pipeline_free  pointer (no copy)
 *     (rill_item_static, rill_item_cstr)
 *   a rill_ref                 while it is referenced    pointer + one
 *     (rill_item_copy, yours)                            reference per owner
 *
 * Borrowed is the default and always safe: a buffer you overwrite after the
 * call (a getline buffer, a stack array) is copied where it must be, so
 * threading never changes a result. On one thread nothing is copied. Copies
 * for a queue go into memory its batch owns (one block, reused), not one
 * allocation per item. Mark bytes static only when they truly stay unchanged
 * until the pipeline is freed (string literals, a stage's state written once);
 * a build with RILL_DEBUG reports a static item whose bytes change while it
 * waits in a queue (docs/stages.md, "Items").
 *
 * Items are immutable once emitted: a stage that wants to change an item
 * makes a new one (rill_item_copy) or emits a slice of it (same owner).
 *
 * Any payload can travel as an item: embed a rill_ref in your object, give it
 * a release function, and point data at the object.
 */
#ifndef RILL_ITEM_H
#define RILL_ITEM_H

#include <stddef.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_ref rill_ref;

/* Called once, by whichever thread drops the last reference. */
typedef void (*rill_release_fn)(rill_ref *ref);

/* A reference count. Caller-allocated (embed it in the object it counts). */
struct rill_ref {
    unsigned long rill__count;   /* atomic; use the functions below */
    rill_release_fn rill__release;
};

typedef struct rill_item {
    const void *data;  /* first byte (need not be NUL-terminated) */
    size_t len;        /* bytes */
    rill_ref *owner;   /* reference count of the memory data points into */
} rill_item;

/* The owner of static items (see above): never counted, never released.
 * Retaining or releasing it does nothing and touches no shared memory. */
extern rill_ref rill__ref_static;
#define RILL_REF_STATIC (&rill__ref_static)

/* Start ref at one reference, owned by the caller. release may not be NULL. */
static inline void rill_ref_init(rill_ref *ref, rill_release_fn release) {
    ref->rill__count = 1;
    ref->rill__release = release;
}

/* Take one more reference. Thread-safe, lock-free (one atomic add; none for
 * RILL_REF_STATIC). */
static inline void rill_ref_retain(rill_ref *ref) {
    if (ref == RILL_REF_STATIC)
        return;
    __atomic_fetch_add(&ref->rill__count, 1, __ATOMIC_RELAXED);
}

/* Drop one reference; the last one calls the release function. Thread-safe,
 * lock-free. Acquire-release ordering: everything the other holders wrote is
 * visible to the release function. */
static inline void rill_ref_release(rill_ref *ref) {
    if (ref == RILL_REF_STATIC)
        return;
    if (__atomic_fetch_sub(&ref->rill__count, 1, __ATOMIC_ACQ_REL) == 1)
        ref->rill__release(ref);
}

/* Number of references now (exact only when no other thread holds one). */
static inline unsigned long rill_ref_count(const rill_ref *ref) {
    return __atomic_load_n(&ref->rill__count, __ATOMIC_ACQUIRE);
}

/* An item for bytes borrowed for the call only (owner NULL): copied by the
 * engine if they must outlive it. The same as (rill_item){data, len, NULL}. */
static inline rill_item rill_item_borrow(const void *data, size_t len) {
    rill_item it = { data, len, NULL };
    return it;
}

/* An item for bytes that stay valid and unchanged until the pipeline is
 * freed (owner RILL_REF_STATIC): never copied, never counted. */
static inline rill_item rill_item_static(const void *data, size_t len) {
    rill_item it = { data, len, RILL_REF_STATIC };
    return it;
}

/* rill_item_static for a NUL-terminated string (the NUL is not included). */
static inline rill_item rill_item_cstr(const char *s) {
    return rill_item_static(s, strlen(s));
}

/* Make *out a new item holding a private copy of len bytes at data (plus a
 * NUL after them, not counted in len), in one allocation with its counter.
 * The caller owns the one reference: drop it with rill_item_release() when
 * done (typically right after rill_emit()). Returns 0 or RILL_ENOMEM. */
int rill_item_copy(const void *data, size_t len, rill_item *out);

/* Retain / release the owner of item if it is counted: nothing for a
 * borrowed item (keep a copy of it instead) or a static one. */
static inline void rill_item_retain(const rill_item *item) {
    if (item->owner)
        rill_ref_retain(item->owner);
}
static inline void rill_item_release(const rill_item *item) {
    if (item->owner)
        rill_ref_release(item->owner);
}

/* True if item's bytes are valid only for the current call (owner NULL). */
static inline int rill_item_borrowed(const rill_item *item) { return item->owner == NULL; }

/* True if the item's bytes equal len bytes at s. */
static inline int rill_item_eq(const rill_item *item, const void *s, size_t len) {
    return item->len == len && (len == 0 || memcmp(item->data, s, len) == 0);
}

#ifdef __cplusplus
}
#endif
#endif
