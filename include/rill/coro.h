/* rill — stackless generators and coroutines.
 *
 * A generator is a function body plus an explicit state struct that the
 * caller owns. The body is resumed with a `switch` on a stored resume point
 * (the technique of Duff's device, Tatham's coroutines and Dunkels'
 * protothreads) instead of a separate stack: a resume costs about a function
 * call, the engine state is sizeof(rill_gen) bytes, and sanitizers and
 * debuggers see ordinary C.
 *
 * Semantics follow Python generators:
 *   rill_gen_next  = next(g)       rill_gen_send  = g.send(v)
 *   rill_gen_close = g.close()     RILL_YIELD_FROM = yield from sub
 * Exhaustion is reported as RILL_EDONE (StopIteration) with the body's return
 * value in *out.
 *
 * Writing a body:
 *
 *     struct fib { rill_gen gen; long a, b; };      // state: never statics
 *
 *     static int fib_body(rill_gen *g) {
 *         struct fib *f = RILL_CONTAINER_OF(g, struct fib, gen);
 *         RILL_GEN_BEGIN(g);
 *         for (f->a = 0, f->b = 1;; ) {
 *             RILL_YIELD(g, &f->a);
 *             long t = f->a + f->b; f->b = f->a; f->a = t;
 *         }
 *         RILL_GEN_END(g);
 *     }
 *
 * Rules of the technique, and how each mistake is reported:
 *  - Local variables do not survive a RILL_YIELD: keep everything that must
 *    live across a yield in the state struct. A local whose scope spans a
 *    yield (`for (int i = 0; ...) RILL_YIELD(...)`) is a compile error
 *    inside bodies, with gcc ("switch jumps over variable initialization",
 *    pointing at the line of coro.h that states the rule) and clang
 *    ("variable 'i' is uninitialized when used here", at the use). A
 *    temporary used only before a yield goes in a { block } closed before it.
 *  - A RILL_YIELD / RILL_YIELD_FROM may not sit inside a `switch` statement
 *    of the body: its hidden `case` label would belong to the inner switch.
 *    Use if/else chains around yields. The compiler sees it only when the
 *    hidden label collides ("duplicate case value", pointing at the rule
 *    line); otherwise it is caught at run time: resuming at such a yield
 *    ends the generator with RILL_ENOTSUP instead of running wrong code.
 *  - Exactly one RILL_GEN_BEGIN ... RILL_GEN_END pair per body.
 *
 * Thread-safety: a generator is not thread-safe; one thread at a time may
 * call its functions. Different generators are independent.
 */
#ifndef RILL_CORO_H
#define RILL_CORO_H

#include <stddef.h>
#include <stdbool.h>

#include "rill/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_gen rill_gen;

/* The body: run from the current resume point to the next yield or to the
 * end. Use the RILL_GEN_* macros; do not return values of your own except a
 * negative rill error code, which ends the generator with that error. */
typedef int (*rill_gen_body_fn)(rill_gen *g);

/* Cleanup of a generator abandoned while suspended (Python's GeneratorExit
 * handler): called exactly once when rill_gen_close() closes a suspended
 * generator, or when a generator it delegates to with RILL_YIELD_FROM fails.
 * It is not called when the body runs to its end or returns an error: the
 * body did its own cleanup then. A negative return is returned by close.
 * g is already RILL_GEN_DONE when on_close runs and the driver does not touch
 * it afterwards, so on_close may free the memory holding g. */
typedef int (*rill_gen_close_fn)(rill_gen *g);

typedef enum rill_gen_status {
    RILL_GEN_CREATED = 0,  /* never resumed */
    RILL_GEN_SUSPENDED,    /* stopped at a yield, or waiting in a yield from */
    RILL_GEN_RUNNING,      /* its body is executing now */
    RILL_GEN_DONE          /* returned, failed or closed */
} rill_gen_status;

/* Engine state, embedded in the caller's own struct. Fields are private
 * (used by the macros); initialize with rill_gen_init().
 *
 * ABI contract: the inline rill_gen_send below and the RILL_YIELD macro are
 * compiled into programs, so this layout, the meaning of rill__status, the
 * two rill__gen_* entry points and the store of RILL_GEN_SUSPENDED by
 * RILL_YIELD are part of the ABI (changing any of them needs a new soname).
 * rill__status holds one value more than rill_gen_status: a generator
 * suspended in a RILL_YIELD_FROM is RILL__GEN_WAITING, so "suspended and not
 * delegating", the only case resumed inline, is one comparison. The library
 * still marks a yielding generator suspended itself, so bodies compiled
 * against an older header keep working when driven by the library. */
struct rill_gen {
    rill_gen_body_fn rill__body;
    rill_gen_close_fn rill__on_close;
    rill_gen *rill__sub;   /* generator delegated to by RILL_YIELD_FROM */
    void *rill__val;       /* value yielded out, sent in, or returned */
    int rill__pc;          /* resume point: 0 = start */
    int rill__status;      /* rill_gen_status, or RILL__GEN_WAITING */
};

/* rill__status of a generator suspended in a RILL_YIELD_FROM (reported as
 * RILL_GEN_SUSPENDED by rill_gen_status_of). */
#define RILL__GEN_WAITING 4

/* Prepare g to run body. on_close may be NULL. g is caller-owned memory and
 * holds no resources: a generator that is done may simply be forgotten, and a
 * suspended one needs rill_gen_close() only if its on_close frees something.
 * Re-initializing restarts it from the beginning. */
void rill_gen_init(rill_gen *g, rill_gen_body_fn body, rill_gen_close_fn on_close);

/* Resume g with value (the result of the pending RILL_YIELD, read with
 * RILL_SENT()). Returns 0 with the next yielded value in *out; RILL_EDONE
 * when the body has finished, with its return value in *out (NULL if none) —
 * and again RILL_EDONE, *out = NULL, on every later call; a negative error
 * code if the body (or a generator it delegates to) failed; RILL_EINVAL if g
 * was never started and value is not NULL (as in Python, start with NULL);
 * RILL_ESTATE if g is running (called from inside itself or from a generator
 * it delegates to). out may be NULL. If g delegates (RILL_YIELD_FROM), value
 * goes to the innermost delegate. Cost: O(1), plus O(depth) while g
 * delegates; no C stack is used per level of delegation. */
static inline int rill_gen_send(rill_gen *g, void *value, void **out);

/* rill_gen_send(g, NULL, out): Python's next(g). */
static inline int rill_gen_next(rill_gen *g, void **out);

/* Close g (Python's g.close()). A suspended generator's delegates are closed
 * innermost first, then each on_close runs exactly once. Closing a created
 * (never started) or finished generator only marks it done: no callback runs.
 * Returns 0, the first negative on_close result, or RILL_ESTATE if g or a
 * generator it delegates to is running. After close, g is RILL_GEN_DONE and next/send return RILL_EDONE. */
int rill_gen_close(rill_gen *g);

/* Current status of g. */
rill_gen_status rill_gen_status_of(const rill_gen *g);

/* ---- macros for bodies ------------------------------------------------ */

#define RILL_CONTAINER_OF(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Internal results of one body step. */
#define RILL__GEN_YIELD 1
#define RILL__GEN_DELEGATE 2

/* Inside a body (between BEGIN and END only) a local held across a yield is
 * a compile error: clang's use of an uninitialized local (exact: only a
 * local read after the resume), and gcc's resume switch jumping over a
 * local's initialization, which also refuses a local that merely shares a
 * block with a yield: give such a local a { block } that ends before the
 * yield. push/pop keep the rest of the file's warning settings. */
#if defined(__clang__)
#define RILL__GEN_STRICT_ON                                              \
    _Pragma("clang diagnostic push")                                     \
    _Pragma("clang diagnostic error \"-Wuninitialized\"")               \
    _Pragma("clang diagnostic error \"-Wsometimes-uninitialized\"")
#define RILL__GEN_STRICT_OFF _Pragma("clang diagnostic pop")
#elif defined(__GNUC__) && !defined(__cplusplus)
#define RILL__GEN_STRICT_ON                                              \
    _Pragma("GCC diagnostic push")                                       \
    _Pragma("GCC diagnostic error \"-Wjump-misses-init\"")
#define RILL__GEN_STRICT_OFF _Pragma("GCC diagnostic pop")
#else /* C++ compilers refuse a jump over an initialization by themselves */
#define RILL__GEN_STRICT_ON
#define RILL__GEN_STRICT_OFF
#endif

/* The default label catches a resume point that the switch cannot see: a
 * yield that sat inside a switch of the body (its case belongs to that one). */
#define RILL_GEN_BEGIN(g)                                                \
    RILL__GEN_STRICT_ON                                                  \
    switch ((g)->rill__pc) {                                             \
    default: return RILL_ENOTSUP;                                        \
    case 0:

/* Suspend, handing v (any pointer) to the caller of next/send. */
#define RILL_YIELD(g, v) RILL__YIELD_AT(g, v, __COUNTER__ + 1)
#define RILL__YIELD_AT(g, v, n)                                          \
    do {                                                                 \
        (g)->rill__pc = (n);                                             \
        (g)->rill__status = RILL_GEN_SUSPENDED;                          \
        (g)->rill__val = (void *)(v);                                    \
        return RILL__GEN_YIELD;                                          \
        case (n):; /* RULE: no local lives across a yield; no yield in a switch */ \
    } while (0)

/* The value the generator was resumed with: after RILL_YIELD, what the
 * caller passed to send (NULL for next); after RILL_YIELD_FROM, the return
 * value of the sub-generator. */
#define RILL_SENT(g) ((g)->rill__val)

/* Delegate to sub (a rill_gen * whose state outlives the delegation) until
 * it is exhausted: everything it yields goes to our caller, everything sent
 * goes to it. Python's `yield from sub`. sub may be fresh, partly consumed
 * (it is resumed with next) or exhausted (nothing is yielded and RILL_SENT is
 * NULL). Once the delegation is over the driver no longer touches sub, so
 * the body may free it. A sub that fails fails the delegator: the error goes
 * to the caller and every waiting delegator's on_close runs. Delegating to
 * NULL fails the same way with RILL_EINVAL, and to a running generator
 * (itself or one of its delegators: a cycle) with RILL_ESTATE. */
#define RILL_YIELD_FROM(g, sub) RILL__YIELD_FROM_AT(g, sub, __COUNTER__ + 1)
#define RILL__YIELD_FROM_AT(g, sub, n)                                   \
    do {                                                                 \
        (g)->rill__pc = (n);                                             \
        (g)->rill__sub = (sub);                                          \
        return RILL__GEN_DELEGATE;                                       \
        case (n):; /* RULE: no local lives across a yield; no yield in a switch */ \
    } while (0)

/* Finish with a return value (StopIteration.value / result of yield from). */
#define RILL_RETURN(g, v)                                                \
    do {                                                                 \
        (g)->rill__val = (void *)(v);                                    \
        return 0;                                                        \
    } while (0)

#define RILL_GEN_END(g)                                                  \
    }                                                                    \
    RILL__GEN_STRICT_OFF                                                 \
    (g)->rill__val = NULL;                                               \
    return 0

/* ---- resume: the common case inline, the rest in the library ------------ */

/* Internal to rill_gen_send (exported for it; do not call them directly). */
int rill__gen_send_slow(rill_gen *g, void *value, void **out);
int rill__gen_step_done(rill_gen *g, int rc, void **out);

static inline int rill_gen_send(rill_gen *g, void *value, void **out) {
    /* A suspended generator that does not delegate: resuming it is one
     * indirect call, so keep it out of the library call. RUNNING is what
     * catches a body that resumes itself; the yield that ends the step marks
     * the generator suspended again (pc and status are one store). */
    if (__builtin_expect(g && out && g->rill__status == RILL_GEN_SUSPENDED, 1)) {
        g->rill__val = value;
        g->rill__status = RILL_GEN_RUNNING;
        int rc = g->rill__body(g);
        if (__builtin_expect(rc == RILL__GEN_YIELD, 1)) {
            *out = g->rill__val;
            return 0;
        }
        return rill__gen_step_done(g, rc, out);
    }
    return rill__gen_send_slow(g, value, out);
}

static inline int rill_gen_next(rill_gen *g, void **out) { return rill_gen_send(g, NULL, out); }

#ifdef __cplusplus
}
#endif
#endif
