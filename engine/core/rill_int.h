/* Internal declarations shared by engine/ and stages/ (prefix rill__). */
#ifndef RILL_INT_H
#define RILL_INT_H

#include <stdlib.h>
#include <string.h>

#include "rill.h"

#if defined(RILL_BUILDING)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#define RILL__UNUSED(x) ((void)(x))
#define RILL__LIKELY(x) __builtin_expect(!!(x), 1)
#define RILL__UNLIKELY(x) __builtin_expect(!!(x), 0)

/* rill_gen_send for the library's own drivers (generator stages, scheduler
 * tasks), whose inline resume is compiled here, not in the program: a body
 * compiled with a header older than RILL_YIELD's store of
 * RILL_GEN_SUSPENDED leaves its generator RUNNING after a yield taken
 * inline, and its next resume would be refused (RILL_ESTATE). One compare,
 * on a path that costs far more, keeps such bodies working as
 * include/rill/coro.h promises. After a 0 the generator yielded: it is
 * suspended, or waiting in a yield from (left as is). */
static inline int rill__gen_resume(rill_gen *g, void *value, void **out) {
    int rc = rill_gen_send(g, value, out);
    if (RILL__LIKELY(rc == 0) && RILL__UNLIKELY(g->rill__status == RILL_GEN_RUNNING))
        g->rill__status = RILL_GEN_SUSPENDED;
    return rc;
}

/* Double an explicit stack that starts in a caller's array `small` (the
 * graph walks use one, not the C stack): its n elements of elem bytes move
 * to a heap block twice the size, an earlier heap block is freed. Returns
 * the new block, or NULL with stack and *cap as they were. */
static inline void *rill__stack_grow(void *stack, const void *small, size_t *cap, size_t n,
                                     size_t elem) {
    void *s = malloc(2 * *cap * elem);
    if (!s)
        return NULL;
    memcpy(s, stack, n * elem);
    if (stack != small)
        free(stack);
    *cap *= 2;
    return s;
}

/* A call on p failed before or outside the run (a setup call, a push): put
 * what and where in rill_pipeline_errmsg(p) as "<fmt...>: <rill_strerror
 * (code)>", unless the run's error is there already. The pipeline does not
 * stop. Returns code. p may be NULL (then nothing is recorded). */
int rill__setup_error(rill_pipeline *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A setup call on p begins: a message an earlier call left is no longer
 * about the code this one may return (rill_pipeline_error), even if this
 * one fails without a message of its own. The text stays for errmsg. */
void rill__setup_begin(rill_pipeline *p);

/* strdup without POSIX-only declarations leaking into callers. */
char *rill__strdup(const char *s);

#endif
