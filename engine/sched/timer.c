/* Deadlines of sleeping tasks and of waits with a timeout: a binary min-heap
 * of task pointers on (deadline, seq). Each task knows its index, so a kill
 * or a wait that ends early leaves the heap in O(log n). seq makes equal
 * deadlines expire in call order. */
#include <stdlib.h>

#include "sched_int.h"

static int rill__before(const rill__task *a, const rill__task *b) {
    return a->deadline < b->deadline || (a->deadline == b->deadline && a->seq < b->seq);
}

static void rill__put(rill_sched *s, size_t i, rill__task *t) {
    s->heap[i] = t;
    t->heap_idx = (uint32_t)i;
}

static void rill__sift_up(rill_sched *s, size_t i) {
    rill__task *t = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!rill__before(t, s->heap[parent]))
            break;
        rill__put(s, i, s->heap[parent]);
        i = parent;
    }
    rill__put(s, i, t);
}

static void rill__sift_down(rill_sched *s, size_t i) {
    rill__task *t = s->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->heap_len)
            break;
        if (c + 1 < s->heap_len && rill__before(s->heap[c + 1], s->heap[c]))
            c++;
        if (!rill__before(s->heap[c], t))
            break;
        rill__put(s, i, s->heap[c]);
        i = c;
    }
    rill__put(s, i, t);
}

/* ns from now (clamped at 0; saturating far in the future). */
int rill__sched_heap_push(rill_sched *s, rill__task *t, int64_t ns) {
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? 2 * s->heap_cap : 64;
        if (cap > RILL__NO_HEAP)
            return RILL_ENOMEM;
        rill__task **heap = realloc(s->heap, cap * sizeof *heap);
        if (!heap)
            return RILL_ENOMEM;
        s->heap = heap;
        s->heap_cap = cap;
    }
    uint64_t now = rill_sched_now_ns();
    uint64_t d = ns > 0 ? (uint64_t)ns : 0;
    t->deadline = d > UINT64_MAX - now ? UINT64_MAX : now + d;
    t->seq = s->heap_seq++;
    s->heap[s->heap_len] = t;
    rill__sift_up(s, s->heap_len++);
    return 0;
}

void rill__sched_heap_remove(rill_sched *s, rill__task *t) {
    size_t i = t->heap_idx;
    if (i == RILL__NO_HEAP)
        return;
    t->heap_idx = RILL__NO_HEAP;
    rill__task *last = s->heap[--s->heap_len];
    if (i == s->heap_len)
        return;
    s->heap[i] = last;
    if (i > 0 && rill__before(last, s->heap[(i - 1) / 2]))
        rill__sift_up(s, i);
    else
        rill__sift_down(s, i);
}

/* Resume every task whose deadline has come, earliest first: a sleep ends
 * with 0, a wait with -ETIMEDOUT (leaving whatever it waited on). */
void rill__sched_expire(rill_sched *s, uint64_t now) {
    while (s->heap_len > 0 && s->heap[0]->deadline <= now) {
        rill__task *t = s->heap[0];
        rill__sched_heap_remove(s, t);
        if (t->state == RILL__T_SLEEP) {
            t->call->result = 0;
        } else {
            if (t->state == RILL__T_WAIT_FD)
                rill__sched_fd_cancel(s, t);
            else
                rill__list_unlink(&t->link);
            t->call->result = -ETIMEDOUT;
        }
        rill__sched_ready(s, t);
    }
}

void rill__sched_heap_free(rill_sched *s) {
    free(s->heap);
    s->heap = NULL;
    s->heap_len = s->heap_cap = 0;
}
