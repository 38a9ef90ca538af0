/* The cold half of core/fifo.h: growing the ring, and freeing it. */
#include <stdlib.h>

#include "fifo.h"

void *rill__fifo_grow_reserve(rill__fifo *f, size_t esize) {
    size_t cap = f->cap ? 2 * f->cap : 16;
    unsigned char *e = malloc(cap * esize);
    if (!e)
        return NULL;
    /* Unwrapped into the new ring: the oldest entry goes to the front. */
    for (size_t k = 0; k < f->n; k++)
        memcpy(e + k * esize, rill__fifo_at(f, k, esize), esize);
    free(f->e);
    f->e = e;
    f->cap = cap;
    f->first = 0;
    return e + f->n * esize;
}

void rill__fifo_free(rill__fifo *f) {
    free(f->e);
    *f = (rill__fifo){0};
}
