/* selector: each item to exactly one output, chosen by a function or by a
 * hash of a key. Never drops: an impossible port fails the pipeline. */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "core/rill_int.h"

typedef struct rill__selector {
    rill_select_fn select;
    void *arg;
    rill_key_fn key;
    void *key_arg;
} rill__selector;

static int rill__selector_send(rill_stage *st, void *state, const rill_item *item) {
    const rill__selector *s = state;
    unsigned nout = rill_stage_outputs(st);
    if (RILL__UNLIKELY(nout == 0))
        return rill_stage_fail(st, RILL_EINVAL, "no output connected: item would be dropped");
    unsigned port;
    if (s->select) {
        int r = s->select(item, nout, s->arg);
        if (RILL__UNLIKELY(r < 0))
            return rill_stage_fail(st, r, "select function returned %d", r);
        if (RILL__UNLIKELY((unsigned)r >= nout))
            return rill_stage_fail(st, RILL_EINVAL,
                                   "select function chose port %d, but only ports 0..%u exist",
                                   r, nout - 1);
        port = (unsigned)r;
    } else {
        const void *k = item->data;
        size_t len = item->len;
        if (s->key)
            s->key(item, s->key_arg, &k, &len);
        port = (unsigned)(rill__hash_bytes(k, len) % nout);
    }
    return rill_emit_to(st, port, item);
}

static void rill__selector_destroy(void *state) { free(state); }

/* A replica's copy: the same function and argument, called from its thread. */
static int rill__selector_clone(const void *state, void **out) {
    rill__selector *c = malloc(sizeof *c);
    if (!c)
        return RILL_ENOMEM;
    memcpy(c, state, sizeof *c);
    *out = c;
    return 0;
}

static const rill_stage_ops rill__selector_ops = { .send = rill__selector_send,
                                                   .free = rill__selector_destroy,
                                                   .clone = rill__selector_clone };

RILL_API int rill_selector_add(rill_pipeline *p, const char *name,
                               const rill_selector_spec *spec, const rill_stage_opts *opts,
                               rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    if (!spec)
        return rill__setup_error(p, RILL_EINVAL, "rill_selector_add '%s': spec is NULL",
                                 name ? name : "(unnamed)");
    rill__selector *s = malloc(sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    s->select = spec->select;
    s->arg = spec->arg;
    s->key = spec->key;
    s->key_arg = spec->key_arg;
    int rc = rill_stage_add(p, name, &rill__selector_ops, s, opts, out);
    if (rc)
        free(s);
    return rc;
}
