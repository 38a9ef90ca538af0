/* filter: pass the items that match a predicate, a prefix, or a first field.
 *
 * This runs once per line per filter on the hot path (the seed's topology has
 * one filter per IP), so each match kind gets its own send function (no
 * switch per item) and the byte tests are one length check plus one memcmp.
 * Each also takes runs (send_items): one loop over the run, the matches
 * emitted as runs of their own. */
#include <stdlib.h>
#include <string.h>

#include "core/rill_int.h"

typedef struct rill__filter {
    rill_pred_fn pred;
    void *arg;
    bool emit_pattern;
    rill_item pat_item; /* points at pat: what emit_pattern sends */
    size_t plen;
    /* The pattern followed by a ' ' (for FIRST_FIELD) and a NUL. */
    char pat[];
} rill__filter;

RILL_API void rill_key_first_field(const rill_item *item, void *arg, const void **key,
                                   size_t *len) {
    RILL__UNUSED(arg);
    const char *sp = item->len ? memchr(item->data, ' ', item->len) : NULL;
    *key = item->data;
    *len = sp ? (size_t)(sp - (const char *)item->data) : item->len;
}

static inline int rill__filter_pass(rill_stage *st, const rill__filter *f,
                                    const rill_item *item) {
    return rill_emit(st, f->emit_pattern ? &f->pat_item : item);
}

typedef bool (*rill__match_fn)(const rill__filter *f, const rill_item *item);

static inline bool rill__match_pred(const rill__filter *f, const rill_item *item) {
    return f->pred(item, f->arg);
}

static inline bool rill__match_prefix(const rill__filter *f, const rill_item *item) {
    return item->len >= f->plen && (!f->plen || memcmp(item->data, f->pat, f->plen) == 0);
}

/* The first field equals the pattern iff the item starts with the pattern and
 * then ends or has a space: compare plen+1 bytes against "pattern ", never
 * scanning the rest of the line. */
static inline bool rill__match_field(const rill__filter *f, const rill_item *item) {
    size_t n = item->len > f->plen ? f->plen + 1 : f->plen;
    return item->len >= f->plen && (!n || memcmp(item->data, f->pat, n) == 0);
}

/* A run: the matches are collected and emitted as runs of their own, so a
 * filter costs one loop per run and one emit per RILL__FILTER_RUN matches.
 * Inlined per match kind, as the sends are. */
#define RILL__FILTER_RUN 64
static inline __attribute__((always_inline)) int
rill__filter_run(rill_stage *st, const rill__filter *f, const rill_item *items, size_t n,
                 rill__match_fn match) {
    rill_item out[RILL__FILTER_RUN];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!match(f, &items[i]))
            continue;
        out[k++] = f->emit_pattern ? f->pat_item : items[i];
        if (k == RILL__FILTER_RUN) {
            int rc = rill_emit_items(st, out, k);
            if (rc < 0)
                return rc;
            k = 0;
        }
    }
    return k ? rill_emit_items(st, out, k) : 0;
}

#define RILL__FILTER_SENDS(kind)                                                              \
    static int rill__filter_##kind##_send(rill_stage *st, void *state, const rill_item *item) { \
        const rill__filter *f = state;                                                        \
        return rill__match_##kind(f, item) ? rill__filter_pass(st, f, item) : 0;               \
    }                                                                                         \
    static int rill__filter_##kind##_send_items(rill_stage *st, void *state,                  \
                                                const rill_item *items, size_t n) {            \
        return rill__filter_run(st, state, items, n, rill__match_##kind);                     \
    }
RILL__FILTER_SENDS(pred)
RILL__FILTER_SENDS(prefix)
RILL__FILTER_SENDS(field)

/* A FIRST_FIELD pattern with a space in it: no first field contains one. */
static int rill__filter_never_send(rill_stage *st, void *state, const rill_item *item) {
    RILL__UNUSED(st);
    RILL__UNUSED(state);
    RILL__UNUSED(item);
    return 0;
}

static void rill__filter_destroy(void *state) { free(state); }

/* A replica's copy: the pattern item points at the copy's own bytes. */
static int rill__filter_clone(const void *state, void **out) {
    const rill__filter *f = state;
    size_t size = sizeof *f + f->plen + 2;
    rill__filter *c = malloc(size);
    if (!c)
        return RILL_ENOMEM;
    memcpy(c, f, size);
    c->pat_item = rill_item_static(c->pat, c->plen);
    *out = c;
    return 0;
}

static const rill_stage_ops rill__filter_pred_ops = {
    .send = rill__filter_pred_send, .free = rill__filter_destroy, .clone = rill__filter_clone,
    .send_items = rill__filter_pred_send_items };
static const rill_stage_ops rill__filter_prefix_ops = {
    .send = rill__filter_prefix_send, .free = rill__filter_destroy, .clone = rill__filter_clone,
    .send_items = rill__filter_prefix_send_items };
static const rill_stage_ops rill__filter_field_ops = {
    .send = rill__filter_field_send, .free = rill__filter_destroy, .clone = rill__filter_clone,
    .send_items = rill__filter_field_send_items };
static const rill_stage_ops rill__filter_never_ops = {
    .send = rill__filter_never_send, .free = rill__filter_destroy, .clone = rill__filter_clone };

RILL_API int rill_filter_add(rill_pipeline *p, const char *name, const rill_filter_spec *spec,
                             const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p || !spec || (!spec->pattern && spec->pattern_len))
        return RILL_EINVAL;
    const rill_stage_ops *ops;
    switch (spec->match) {
    case RILL_MATCH_PRED:
        if (!spec->pred)
            return RILL_EINVAL;
        ops = &rill__filter_pred_ops;
        break;
    case RILL_MATCH_PREFIX:
        ops = &rill__filter_prefix_ops;
        break;
    case RILL_MATCH_FIRST_FIELD:
        ops = spec->pattern_len && memchr(spec->pattern, ' ', spec->pattern_len)
                  ? &rill__filter_never_ops
                  : &rill__filter_field_ops;
        break;
    default:
        return RILL_EINVAL;
    }
    size_t plen = spec->pattern_len;
    if (plen > SIZE_MAX - sizeof(rill__filter) - 2)
        return RILL_ENOMEM;
    rill__filter *f = malloc(sizeof *f + plen + 2);
    if (!f)
        return RILL_ENOMEM;
    f->pred = spec->pred;
    f->arg = spec->arg;
    f->emit_pattern = spec->emit_pattern;
    f->plen = plen;
    if (plen)
        memcpy(f->pat, spec->pattern, plen);
    f->pat[plen] = ' ';
    f->pat[plen + 1] = '\0';
    f->pat_item = rill_item_static(f->pat, plen);
    int rc = rill_stage_add(p, name, ops, f, opts, out);
    if (rc)
        free(f);
    return rc;
}
