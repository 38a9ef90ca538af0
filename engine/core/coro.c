/* Generator driver: runs bodies step by step and resolves yield-from chains
 * iteratively, so a deep delegation costs no C stack.
 *
 * A chain is g -> g->rill__sub -> ... -> leaf. rill_gen has no parent
 * pointer (it would cost 8 bytes per generator for the rare delegating
 * case). A resume walks down from g once, checking that nothing on the way
 * is running; when the leaf merely yields (the common case) that is all.
 * When it finishes, fails or delegates further, the way back up is threaded
 * through rill__val of each delegator (unused while it waits: it is
 * overwritten with the sub's result when it resumes), and every later step
 * is O(1), so building, resuming and unwinding an n-level chain is O(n), not
 * O(n^2).
 *
 * Only the generator whose body executes is RILL_GEN_RUNNING; its delegators
 * are RILL__GEN_WAITING (reported as suspended), which keeps a resume
 * through k levels at 2k reads and no writes above the leaf. Re-entry is
 * still caught: any path into the running chain (next, send or close of a
 * delegator, or a yield from that would close a cycle) walks down to the
 * running generator and gets RILL_ESTATE. */
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
    return g->rill__status == RILL__GEN_WAITING ? RILL_GEN_SUSPENDED
                                                : (rill_gen_status)g->rill__status;
}

/* Stopped at a yield, or waiting in a yield from. */
static int rill__gen_suspended(const rill_gen *g) {
    return g->rill__status == RILL_GEN_SUSPENDED || g->rill__status == RILL__GEN_WAITING;
}

/* Whether g or a generator it delegates to is running. */
static int rill__gen_busy(const rill_gen *g) {
    for (; g; g = g->rill__sub)
        if (g->rill__status == RILL_GEN_RUNNING)
            return 1;
    return 0;
}

/* From cur down to its innermost delegate, which is returned, linking the
 * delegators on the way up through rill__val; NULL if one of them is running
 * (re-entry, or a cycle of delegation). The check comes before any link is
 * written: a refused re-entry walks into the chain being driven, whose
 * links its driver still needs. */
static rill_gen *rill__gen_descend(rill_gen *cur, rill_gen **up) {
    if (rill__gen_busy(cur))
        return NULL;
    for (; cur->rill__sub; cur = cur->rill__sub) {
        cur->rill__val = *up;
        *up = cur;
    }
    return cur;
}

/* Abandon g and its delegation chain: innermost first, each suspended
 * generator's on_close runs once. Returns the first close error.
 *
 * The chain is marked RUNNING before any callback so that an on_close that
 * re-enters the chain gets RILL_ESTATE instead of resuming a half-closed
 * generator; each generator is marked DONE before its own on_close, and is
 * not touched afterwards, so on_close may free the generator's memory. */
static int rill__gen_abandon(rill_gen *g) {
    rill_gen *up = NULL, *cur = g;
    for (;;) {
        cur->rill__status = rill__gen_suspended(cur)
                                ? RILL_GEN_RUNNING /* "closing": callback due */
                                : RILL_GEN_DONE;
        cur->rill__val = up;
        rill_gen *sub = cur->rill__sub;
        if (!sub || sub->rill__status == RILL_GEN_DONE)
            break; /* a sub closed directly by its owner is already done */
        up = cur;
        cur = sub;
    }
    int first = 0;
    while (cur) {
        rill_gen *parent = cur->rill__val;
        int due = cur->rill__status == RILL_GEN_RUNNING;
        cur->rill__status = RILL_GEN_DONE;
        cur->rill__sub = NULL;
        cur->rill__val = NULL;
        if (due && cur->rill__on_close) {
            int rc = cur->rill__on_close(cur);
            if (rc < 0 && first == 0)
                first = rc;
        }
        cur = parent;
    }
    return first;
}

/* The delegation chain under g failed at its bottom, cur: cur and the
 * delegators above it are abandoned and rc goes to the caller. */
static int rill__gen_fail(rill_gen *g, rill_gen *cur, int rc) {
    cur->rill__sub = NULL;
    cur->rill__status = RILL_GEN_SUSPENDED;
    rill__gen_abandon(g);
    return rc;
}

/* Drive the chain g -> ... -> up -> cur once cur's body has returned rc
 * (ran), or cur was found exhausted (!ran), until a value comes out of the
 * chain or g itself finishes. */
static int rill__gen_drive(rill_gen *g, rill_gen *up, rill_gen *cur, int rc, int ran,
                           void **out) {
    *out = NULL;
    for (;;) {
        void *value = NULL; /* what cur is resumed with next */
        if (ran && rc == RILL__GEN_YIELD) {
            cur->rill__status = RILL_GEN_SUSPENDED; /* RILL_YIELD did; older bodies did not */
            *out = cur->rill__val;
            return 0;
        }
        if (ran && rc == RILL__GEN_DELEGATE) {
            rill_gen *sub = cur->rill__sub;
            cur->rill__val = up;
            up = cur;
            /* Python: `yield from None` is a TypeError and delegating to a
             * running generator a ValueError, raised in the delegator. cur
             * is still RUNNING here, so a sub whose chain leads back to it
             * (a cycle) is found by the descent. */
            if (!sub)
                return rill__gen_fail(g, cur, RILL_EINVAL);
            rill_gen *leaf = rill__gen_descend(sub, &up); /* sub may be delegating */
            if (!leaf)
                return rill__gen_fail(g, cur, RILL_ESTATE);
            cur->rill__status = RILL__GEN_WAITING;
            cur = leaf;
        } else {
            void *result = NULL; /* an exhausted delegate's yield from gives NULL */
            if (ran) {
                cur->rill__status = RILL_GEN_DONE;
                cur->rill__sub = NULL;
                if (rc >= 0)
                    result = cur->rill__val;
                cur->rill__val = NULL;
            }
            if (!up) { /* cur == g: the generator itself finished */
                if (ran && rc < 0)
                    return rc;
                *out = result;
                return RILL_EDONE;
            }
            /* cur is not touched again: its owner may free it as soon as the
             * delegator resumes. */
            rill_gen *parent = up;
            up = parent->rill__val;
            parent->rill__sub = NULL;
            if (ran && rc < 0) /* a failed delegate: its delegators are abandoned */
                return rill__gen_fail(g, parent, rc);
            cur = parent;
            value = result; /* the result of the yield from (RILL_SENT) */
        }
        ran = cur->rill__status != RILL_GEN_DONE;
        if (ran) { /* a fresh sub is started, a partly consumed one resumed */
            cur->rill__val = value;
            cur->rill__status = RILL_GEN_RUNNING;
            rc = cur->rill__body(cur);
        }
    }
}

/* Everything but a plain resume of a suspended, non-delegating generator. */
RILL_API int rill__gen_send_slow(rill_gen *g, void *value, void **out) {
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
    /* One walk down to the leaf that checks nothing on the way is running.
     * The way back up is linked only if the leaf does not simply yield: a
     * resume through k levels reads 2k fields and writes none. */
    rill_gen *leaf = g;
    for (;; leaf = leaf->rill__sub) {
        if (leaf->rill__status == RILL_GEN_RUNNING)
            return RILL_ESTATE; /* re-entered from inside one of its delegates */
        if (!leaf->rill__sub)
            break;
    }
    int rc = 0, ran = leaf->rill__status != RILL_GEN_DONE; /* not: closed by its owner */
    if (ran) {
        leaf->rill__val = value;
        leaf->rill__status = RILL_GEN_RUNNING;
        rc = leaf->rill__body(leaf);
        if (rc == RILL__GEN_YIELD) {
            leaf->rill__status = RILL_GEN_SUSPENDED; /* RILL_YIELD did; older bodies did not */
            *out = leaf->rill__val;
            return 0;
        }
    }
    /* Nothing above the leaf changed meanwhile: every way into the chain
     * found the leaf running and was refused. */
    rill_gen *up = NULL;
    for (rill_gen *cur = g; cur != leaf; cur = cur->rill__sub) {
        cur->rill__val = up;
        up = cur;
    }
    return rill__gen_drive(g, up, leaf, rc, ran, out);
}

/* The header's inline rill_gen_send resumes a suspended, non-delegating
 * generator itself (about a nanosecond) and calls these for the rest. */
RILL_API int rill__gen_step_done(rill_gen *g, int rc, void **out) {
    return rill__gen_drive(g, NULL, g, rc, 1, out);
}

RILL_API int rill_gen_close(rill_gen *g) {
    if (!g)
        return RILL_EINVAL;
    if (rill__gen_busy(g))
        return RILL_ESTATE;
    return rill__gen_abandon(g);
}
