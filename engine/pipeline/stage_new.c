/* rill_stage_add_new: a stage whose zeroed state the pipeline allocates and
 * frees, so the caller skips the calloc / add / free-on-failure steps.
 *
 * The state sits behind a header holding a copy of the caller's ops whose
 * destroy is ours: it runs the caller's destroy (which releases what the
 * state holds) and then frees the block. The engine reads a stage's ops for
 * the last time when it calls destroy, so the copy may die with the state. */
#include <stdalign.h>
#include <stdlib.h>

#include "pipeline_int.h"

typedef struct rill__owned_state {
    rill_stage_ops ops;
    void (*user_destroy)(void *state);
    alignas(max_align_t) unsigned char state[];
} rill__owned_state;

static void rill__owned_destroy(void *state) {
    rill__owned_state *o =
        (rill__owned_state *)(void *)((unsigned char *)state - offsetof(rill__owned_state, state));
    if (o->user_destroy)
        o->user_destroy(state);
    free(o);
}

RILL_API int rill_stage_add_new(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                                size_t state_size, const rill_stage_opts *opts,
                                rill_stage **out) {
    if (out)
        *out = NULL;
    /* A clone of the caller's would be a state this block does not hold. */
    if (!p || !ops || state_size > ((size_t)1 << 40) || (opts && opts->replicas > 1))
        return RILL_EINVAL;
    rill__owned_state *o = calloc(1, sizeof *o + (state_size ? state_size : 1));
    if (!o)
        return RILL_ENOMEM;
    o->ops = *ops;
    o->user_destroy = ops->free;
    o->ops.free = rill__owned_destroy;
    int rc = rill_stage_add(p, name, &o->ops, o->state, opts, out);
    if (rc) {
        free(o); /* the caller's destroy is for a state that was added */
        return rc;
    }
    return 0;
}
