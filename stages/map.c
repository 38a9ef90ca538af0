/* map: one item in, zero or one item out, computed by a user function. */
#include <stdlib.h>
#include <string.h>

#include "core/rill_int.h"

typedef struct rill__map {
    rill_map_fn fn;
    void *arg;
} rill__map;

static int rill__map_send(rill_stage *st, void *state, const rill_item *in) {
    const rill__map *m = state;
    rill_item out = { NULL, 0, NULL };
    int rc = m->fn(in, &out, m->arg);
    if (rc == 0)
        rc = rill_emit(st, &out);
    else if (rc < 0)
        rc = rill_stage_fail(st, rc, "map function returned %d", rc);
    else
        rc = 0; /* skip this item */
    /* A new owner is a reference handed to us (rill_item_copy); in's own
     * owner means out is a slice of in, borrowed like in itself. Dropped on
     * every path, so a failed emit or a skip does not leak it. */
    if (out.owner && out.owner != in->owner)
        rill_ref_release(out.owner);
    return rc;
}

static void rill__map_destroy(void *state) { free(state); }

/* A replica's copy: the same function and argument, called from its thread. */
static int rill__map_clone(const void *state, void **out) {
    rill__map *c = malloc(sizeof *c);
    if (!c)
        return RILL_ENOMEM;
    memcpy(c, state, sizeof *c);
    *out = c;
    return 0;
}

static const rill_stage_ops rill__map_ops = { .send = rill__map_send,
                                              .free = rill__map_destroy,
                                              .clone = rill__map_clone };

RILL_API int rill_map_add(rill_pipeline *p, const char *name, rill_map_fn fn, void *arg,
                          const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    if (!fn)
        return rill__setup_error(p, RILL_EINVAL, "rill_map_add '%s': fn is NULL",
                                 name ? name : "(unnamed)");
    rill__map *m = malloc(sizeof *m);
    if (!m)
        return RILL_ENOMEM;
    m->fn = fn;
    m->arg = arg;
    int rc = rill_stage_add(p, name, &rill__map_ops, m, opts, out);
    if (rc)
        free(m);
    return rc;
}
