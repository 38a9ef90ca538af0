/* The intrusive list of the engine: a circular doubly-linked list whose node
 * (rill__list) is a field of the struct it links, reached back from a node
 * with RILL__LIST_ENTRY.
 *
 * Why this shape: an element leaves its list in O(1) without knowing which
 * list holds it (a killed task does not know what it was waiting for), a
 * node may sit anywhere in its struct (no first-member casts), and linking
 * allocates nothing. The head is a node of its own that belongs to no
 * element; an empty list and an unlinked node point at themselves, so
 * unlinking twice is harmless.
 *
 * Not thread-safe: one thread at a time per list (each owner says which).
 * A head must not move while elements are linked, except through
 * rill__list_moved, which relinks them to the head's new place. */
#ifndef RILL_LIST_H
#define RILL_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rill__list {
    struct rill__list *prev, *next;
} rill__list;

/* The struct of type `type` whose field `member` (a rill__list) is node.
 * The unevaluated branch makes the compiler check that node points at a
 * rill__list and that member is one. */
#define RILL__LIST_ENTRY(node, type, member)                                                \
    ((type *)(void *)((char *)(1 ? (node) : &((type *)NULL)->member) -                      \
                      offsetof(type, member)))

/* Visit every node of head in order; the body must not unlink `it` (use
 * RILL__LIST_EACH_SAFE for that). */
#define RILL__LIST_EACH(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)

/* As RILL__LIST_EACH, but the body may unlink (or free) `it`: `nx` holds the
 * next node. The body must not unlink `nx`. */
#define RILL__LIST_EACH_SAFE(it, nx, head)                                                  \
    for ((it) = (head)->next, (nx) = (it)->next; (it) != (head); (it) = (nx), (nx) = (it)->next)

/* Make h an empty list, or n an unlinked node. */
static inline void rill__list_init(rill__list *h) { h->prev = h->next = h; }

static inline bool rill__list_empty(const rill__list *h) { return h->next == h; }

/* The first node of h; h must not be empty. */
static inline rill__list *rill__list_first(const rill__list *h) { return h->next; }

/* Link n (unlinked) at the back of h. */
static inline void rill__list_push(rill__list *h, rill__list *n) {
    n->prev = h->prev;
    n->next = h;
    h->prev->next = n;
    h->prev = n;
}

/* Link n (unlinked) at the front of h. */
static inline void rill__list_push_front(rill__list *h, rill__list *n) {
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

/* Take n out of whatever list holds it; n is then unlinked. */
static inline void rill__list_unlink(rill__list *n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* The head that was at `from` (copied bytewise to `to`, e.g. by realloc or
 * memcpy) now lives at `to`: relink its first and last nodes to it. `from`
 * is the old address and is not read. */
static inline void rill__list_moved(rill__list *to, const rill__list *from) {
    if (to->next == from) {
        rill__list_init(to);
    } else {
        to->next->prev = to;
        to->prev->next = to;
    }
}

#endif
