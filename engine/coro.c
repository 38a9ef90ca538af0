/* Generator driver: runs bodies step by step and resolves yield-from chains
 * iteratively, so a deep delegation costs no C stack. */
#include "rill_int.h"

RILL_API void rill_gen_init(rill_gen *g, rill_gen_body_fn body, rill_gen_close_fn on_close) {
    g->rill__body = body;
    g->rill__on_close = on_close;
    g->rill__sub = NULL;
    g->rill__val = NULL;
    g->rill__pc = 0;
    g->rill__status = RILL_GEN_CREATED;
}

RILL_API rill_gen_status rill_gen_status_of(const rill_gen *g) {
    return (rill_gen_status)g->rill__status;
}

/* The generator under top whose rill__sub is child. */
static rill_gen *rill__gen_parent(rill_gen *top, rill_gen *child) {
    for (rill_gen *p = top; p; p = p->rill__sub)
        if (p->rill__sub == child)
            return p;
    return NULL;
}

/* Abandon every generator from g down its delegation chain: innermost first,
 * each suspended one's on_close runs once. Returns the first close error. */
static int rill__gen_abandon(rill_gen *g) {
    int first = 0;
    while (g->rill__status != RILL_GEN_DONE) {
        rill_gen *leaf = g;
        while (leaf->rill__sub && leaf->rill__sub->rill__status != RILL_GEN_DONE)
            leaf = leaf->rill__sub;
        int was_suspended = leaf->rill__status == RILL_GEN_SUSPENDED;
        leaf->rill__status = RILL_GEN_DONE;
        leaf->rill__sub = NULL;
        leaf->rill__val = NULL;
        if (was_suspended && leaf->rill__on_close) {
            int rc = leaf->rill__on_close(leaf);
            if (rc < 0 && first == 0)
                first = rc;
        }
    }
    return first;
}

RILL_API int rill_gen_send(rill_gen *g, void *value, void **out) {
    void *dummy;
    if (!out)
        out = &dummy;
    *out = NULL;
    if (!g || !g->rill__body)
        return RILL_EINVAL;
    switch (g->rill__status) {
    case RILL_GEN_DONE:
        return RILL_EDONE;
    case RILL_GEN_RUNNING:
        return RILL_ESTATE;
    case RILL_GEN_CREATED:
        if (value)
            return RILL_EINVAL;
        break;
    default:
        break;
    }
    for (;;) {
        rill_gen *leaf = g;
        while (leaf->rill__sub)
            leaf = leaf->rill__sub;
        int rc;
        if (leaf->rill__status == RILL_GEN_RUNNING) {
            return RILL_ESTATE; /* re-entered from inside a delegate */
        } else if (leaf->rill__status == RILL_GEN_DONE) {
            rc = 0; /* yield from an exhausted generator: result NULL */
            leaf->rill__val = NULL;
        } else {
            leaf->rill__val = value;
            leaf->rill__status = RILL_GEN_RUNNING;
            rc = leaf->rill__body(leaf);
            if (rc == RILL__GEN_YIELD) {
                leaf->rill__status = RILL_GEN_SUSPENDED;
                *out = leaf->rill__val;
                return 0;
            }
            if (rc == RILL__GEN_DELEGATE) {
                leaf->rill__status = RILL_GEN_SUSPENDED;
                value = NULL; /* yield from starts the delegate with next() */
                continue;
            }
            leaf->rill__status = RILL_GEN_DONE;
            leaf->rill__sub = NULL;
        }
        if (leaf == g) {
            if (rc < 0) {
                g->rill__val = NULL;
                return rc;
            }
            *out = g->rill__val;
            g->rill__val = NULL;
            return RILL_EDONE;
        }
        rill_gen *parent = rill__gen_parent(g, leaf);
        parent->rill__sub = NULL;
        if (rc < 0) {
            /* The delegate failed: every generator waiting on it is
             * abandoned (its cleanup runs) and the error goes to the caller. */
            rill__gen_abandon(g);
            return rc;
        }
        value = leaf->rill__val; /* result of the yield from */
        leaf->rill__val = NULL;
    }
}

RILL_API int rill_gen_next(rill_gen *g, void **out) { return rill_gen_send(g, NULL, out); }

RILL_API int rill_gen_close(rill_gen *g) {
    if (!g)
        return RILL_EINVAL;
    for (rill_gen *p = g; p; p = p->rill__sub)
        if (p->rill__status == RILL_GEN_RUNNING)
            return RILL_ESTATE;
    return rill__gen_abandon(g);
}
