/* count: the N largest counts of a count stage (rill_count_top), by a bounded
 * heap over the table. */
#include <stdlib.h>
#include <string.h>

#include "count_int.h"

/* < 0 if a ranks before b: count descending, then key ascending bytewise
 * with a proper prefix first. */
static int rill__entry_cmp(const rill_count_entry *a, const rill_count_entry *b) {
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int r = n ? memcmp(a->key, b->key, n) : 0;
    if (r)
        return r;
    return (a->len > b->len) - (a->len < b->len);
}

static int rill__entry_qcmp(const void *a, const void *b) { return rill__entry_cmp(a, b); }

/* Restore the heap below i: a max-heap by rank, so h[0] is the entry that
 * ranks last among those kept, the one a better newcomer replaces. */
static void rill__sift_down(rill_count_entry *h, size_t n, size_t i) {
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && rill__entry_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && rill__entry_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        rill_count_entry t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void rill__sift_up(rill_count_entry *h, size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (rill__entry_cmp(&h[i], &h[parent]) <= 0)
            return;
        rill_count_entry t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* Heap selection in out itself (O(keys log n), no allocation), then a sort
 * of the n kept. */
RILL_API int rill_count_top(const rill_stage *st, size_t n, rill_count_entry *out,
                            size_t *nout) {
    const rill__count *c = rill__count_of(st);
    if (!c || !nout || (n && !out))
        return RILL_EINVAL;
    size_t k = 0;
    for (size_t i = 0; n && i <= c->mask; i++) {
        const rill__slot *s = &c->slots[i];
        if (!s->count)
            continue;
        rill_count_entry e = { s->key, s->len, s->count };
        if (k < n) {
            out[k] = e;
            rill__sift_up(out, k++);
        } else if (rill__entry_cmp(&e, &out[0]) < 0) {
            out[0] = e;
            rill__sift_down(out, k, 0);
        }
    }
    if (k > 1)
        qsort(out, k, sizeof *out, rill__entry_qcmp);
    *nout = k;
    return 0;
}
