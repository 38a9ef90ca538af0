/* The FIFO of the engine: a growable ring of fixed-size entries, for what a
 * thread holds back to deliver later in order (pipeline/held.c: items past
 * the inline depth limit; pipeline/barrier.c: an input held back while a
 * stage aligns its barriers).
 *
 * Why this shape: entries are stored by value (no allocation per entry), the
 * ring doubles when full so a push is O(1) amortized and a pop O(1), and a
 * zeroed rill__fifo is an empty one, so it can sit in a calloc'd struct.
 * A push is two steps, rill__fifo_reserve then rill__fifo_commit, so that an
 * entry whose filling fails (no memory for a copy) is simply not committed.
 *
 * The entry type is the owner's: every call takes its size, which must be
 * the same for the life of the FIFO. Pointers into the ring are valid until
 * the next reserve. Not thread-safe: one thread at a time per FIFO. */
#ifndef RILL_FIFO_H
#define RILL_FIFO_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

typedef struct rill__fifo {
    unsigned char *e;     /* cap entries */
    size_t first, n, cap; /* cap is 0 or a power of two */
} rill__fifo;

/* Entry k (0 = the oldest) of f; k < f->n. */
static inline void *rill__fifo_at(const rill__fifo *f, size_t k, size_t esize) {
    return f->e + ((f->first + k) & (f->cap - 1)) * esize;
}

/* Room for one more entry at the back: a pointer to it, not yet counted, or
 * NULL if the ring was full and could not grow (f is unchanged then). */
void *rill__fifo_grow_reserve(rill__fifo *f, size_t esize);

static inline void *rill__fifo_reserve(rill__fifo *f, size_t esize) {
    if (f->n == f->cap)
        return rill__fifo_grow_reserve(f, esize);
    return rill__fifo_at(f, f->n, esize);
}

/* Count the entry that the last rill__fifo_reserve returned. */
static inline void rill__fifo_commit(rill__fifo *f) { f->n++; }

/* Take the oldest entry into *out; false if f is empty. */
static inline bool rill__fifo_pop(rill__fifo *f, void *out, size_t esize) {
    if (!f->n)
        return false;
    memcpy(out, rill__fifo_at(f, 0, esize), esize);
    f->first = (f->first + 1) & (f->cap - 1);
    f->n--;
    return true;
}

/* Forget every entry (the owner released what they held) and the memory. */
void rill__fifo_free(rill__fifo *f);

#endif
