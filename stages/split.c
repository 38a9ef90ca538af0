/* split: one item in, one item per field out (a slice of the item, same
 * owner: nothing is copied). */
#include <stdlib.h>

#include "core/rill_int.h"

typedef struct rill__split {
    char sep;
    unsigned flags;
} rill__split;

static int rill__split_send(rill_stage *st, void *state, const rill_item *item) {
    const rill__split *s = state;
    rill_fields fs;
    rill_item field;
    int rc = rill_fields_init(&fs, item, s->sep, s->flags);
    while (rc == 0 && (rc = rill_fields_next(&fs, &field)) == 0)
        rc = rill_emit(st, &field);
    return rc == RILL_EDONE ? 0 : rc;
}

static const rill_stage_ops rill__split_ops = { .send = rill__split_send };

RILL_API int rill_split_add(rill_pipeline *p, const char *name, char sep, unsigned flags,
                            const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (flags & ~(unsigned)(RILL_FIELDS_SKIP_EMPTY | RILL_FIELDS_WHITESPACE))
        return rill__setup_error(p, RILL_EINVAL, "rill_split_add '%s': unknown flags 0x%x",
                                 name ? name : "(unnamed)",
                                 flags & ~(unsigned)(RILL_FIELDS_SKIP_EMPTY | RILL_FIELDS_WHITESPACE));
    rill_stage *st;
    int rc = rill_stage_add_new(p, name, &rill__split_ops, sizeof(rill__split), opts, &st);
    if (rc)
        return rc;
    rill__split *s = rill_stage_state(st);
    s->sep = sep;
    s->flags = flags;
    if (out)
        *out = st;
    return 0;
}
