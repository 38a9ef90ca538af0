/* Generators as stages: a rill_gen that yields items as a source, and a
 * rill_gen body that receives items with send as a stage (the seed's
 * @coroutine stages). The protocol is in rill/stages.h. */
#include <stdlib.h>

#include "core/rill_int.h"

#define RILL__GEN_SOURCE_BATCH 256 /* items per produce call */

typedef struct rill__gen_stage {
    rill_gen *g;
    void (*destroy)(rill_gen *g);
    int primed;          /* resumed once with NULL (Python's priming next) */
    uint64_t received;   /* items sent in, for messages */
} rill__gen_stage;

static void rill__gen_stage_destroy(void *state) {
    rill__gen_stage *s = state;
    /* Suspended after an error or abort: its on_close still runs, once. */
    rill_gen_close(s->g);
    if (s->destroy)
        s->destroy(s->g);
}

static int rill__gen_fail(rill_stage *st, rill__gen_stage *s, int rc) {
    if (rc == RILL_ENOTSUP)
        return rill_stage_fail(st, rc, "generator body resumed at a yield inside a switch "
                                       "(after %llu items; see rill/coro.h)",
                               (unsigned long long)s->received);
    return rill_stage_fail(st, rc, "generator body failed after %llu items",
                           (unsigned long long)s->received);
}

/* ---- generator as a source ------------------------------------------------ */

static int rill__gen_source_produce(rill_stage *st, void *state) {
    rill__gen_stage *s = state;
    for (int i = 0; i < RILL__GEN_SOURCE_BATCH; i++) {
        void *v = NULL;
        int rc = rill__gen_resume(s->g, NULL, &v);
        if (rc == RILL_EDONE)
            return RILL_EDONE;
        if (rc < 0)
            return rill__gen_fail(st, s, rc);
        if (v && (rc = rill_emit(st, v)) != 0)
            return rc;
    }
    return 0;
}

static const rill_stage_ops rill__gen_source_ops = { .produce = rill__gen_source_produce,
                                                     .free = rill__gen_stage_destroy };

/* ---- generator as a stage ------------------------------------------------- */

/* Resume g with in and emit what it yields until it asks for the next item
 * (yields NULL) or finishes. */
static int rill__gen_drive(rill_stage *st, rill__gen_stage *s, const rill_item *in) {
    void *v = (void *)in;
    for (;;) {
        void *y = NULL;
        int rc = rill__gen_resume(s->g, v, &y);
        if (rc == RILL_EDONE)
            return 0;
        if (rc < 0)
            return rill__gen_fail(st, s, rc);
        if (!y)
            return 0; /* waiting for input */
        if ((rc = rill_emit(st, y)) != 0)
            return rc;
        v = NULL;
    }
}

static int rill__gen_prime(rill_stage *st, rill__gen_stage *s) {
    if (s->primed)
        return 0;
    s->primed = 1;
    return rill__gen_drive(st, s, NULL);
}

static int rill__gen_stage_send(rill_stage *st, void *state, const rill_item *item) {
    rill__gen_stage *s = state;
    int rc = rill__gen_prime(st, s);
    if (rc)
        return rc;
    if (rill_gen_status_of(s->g) == RILL_GEN_DONE)
        return rill_stage_fail(st, RILL_ESTATE,
                               "generator body returned before end of stream (item %llu)",
                               (unsigned long long)s->received + 1);
    s->received++;
    return rill__gen_drive(st, s, item);
}

static int rill__gen_stage_close(rill_stage *st, void *state) {
    rill__gen_stage *s = state;
    int rc = rill__gen_prime(st, s);
    /* End of stream: resumed with NULL, the body may emit its totals. */
    if (!rc && rill_gen_status_of(s->g) != RILL_GEN_DONE)
        rc = rill__gen_drive(st, s, NULL);
    int crc = rill_gen_close(s->g); /* still asking for items: it is done */
    return rc ? rc : crc < 0 ? rill_stage_fail(st, crc, "generator on_close failed") : 0;
}

static const rill_stage_ops rill__gen_stage_ops = { .send = rill__gen_stage_send,
                                                    .close = rill__gen_stage_close,
                                                    .free = rill__gen_stage_destroy };

static int rill__gen_add(const char *fn, rill_pipeline *p, const char *name,
                         const rill_stage_ops *ops, rill_gen *g, void (*destroy)(rill_gen *g),
                         const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    const char *what = name ? name : "(unnamed)";
    if (!g)
        return rill__setup_error(p, RILL_EINVAL, "%s '%s': the generator g is NULL", fn, what);
    if (rill_gen_status_of(g) != RILL_GEN_CREATED)
        return rill__setup_error(p, RILL_EINVAL, "%s '%s': the generator g was already resumed "
                                 "(the stage starts it: pass a fresh one, from rill_gen_init)",
                                 fn, what);
    rill_stage *st;
    int rc = rill_stage_add_new(p, name, ops, sizeof(rill__gen_stage), opts, &st);
    if (rc)
        return rc;
    rill__gen_stage *s = rill_stage_state(st);
    s->g = g;
    s->destroy = destroy;
    if (out)
        *out = st;
    return 0;
}

RILL_API int rill_gen_source_add(rill_pipeline *p, const char *name, rill_gen *g,
                                 void (*destroy)(rill_gen *g), const rill_stage_opts *opts,
                                 rill_stage **out) {
    return rill__gen_add("rill_gen_source_add", p, name, &rill__gen_source_ops, g, destroy, opts,
                         out);
}

RILL_API int rill_gen_stage_add(rill_pipeline *p, const char *name, rill_gen *g,
                                void (*destroy)(rill_gen *g), const rill_stage_opts *opts,
                                rill_stage **out) {
    return rill__gen_add("rill_gen_stage_add", p, name, &rill__gen_stage_ops, g, destroy, opts,
                         out);
}
