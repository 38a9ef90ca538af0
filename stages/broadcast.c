/* broadcast: every item to every output, in connect order (the seed's
 * broadcast). Stateless: rill_emit already does the fan-out. */
#include "core/rill_int.h"

static int rill__broadcast_send(rill_stage *st, void *state, const rill_item *item) {
    RILL__UNUSED(state);
    return rill_emit(st, item);
}

/* A run goes on as a run: each output gets it whole, in one call. */
static int rill__broadcast_send_items(rill_stage *st, void *state, const rill_item *items,
                                      size_t n) {
    RILL__UNUSED(state);
    return rill_emit_items(st, items, n);
}

/* Replicas of a stage without state share nothing. */
static int rill__broadcast_clone(const void *state, void **out) {
    RILL__UNUSED(state);
    *out = NULL;
    return 0;
}

static const rill_stage_ops rill__broadcast_ops = { .send = rill__broadcast_send,
                                                    .clone = rill__broadcast_clone,
                                                    .send_items = rill__broadcast_send_items };

RILL_API int rill_broadcast_add(rill_pipeline *p, const char *name,
                                const rill_stage_opts *opts, rill_stage **out) {
    return rill_stage_add(p, name, &rill__broadcast_ops, NULL, opts, out);
}
