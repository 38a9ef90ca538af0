/* rill — error codes.
 *
 * Every function that can fail returns int: 0 on success or a negative code.
 * System errors are reported as the negated errno value (-ENOENT, -EACCES...),
 * as libuv does, so no information is lost; rill's own conditions use the
 * RILL_E* codes below, which never collide with errno values.
 *
 * A function that only tries (rill_try_*) never waits and returns int like
 * the rest: RILL_EAGAIN says "not now, retry once told", and it can also fail
 * for other reasons (the pipeline's error, RILL_ENOMEM). bool answers
 * questions only (rill_stage_threaded).
 */
#ifndef RILL_ERROR_H
#define RILL_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* rill's own codes, one line each: XX(name, value, text). The list is the
 * only place they are written: the enum below and rill_errname /
 * rill_strerror are expanded from it. Values are dense from -10001 down,
 * well below any errno value; a new code goes at the end. */
#define RILL_ERRNO_MAP(XX)                                                    \
    XX(EDONE, -10001, "generator exhausted") /* Python's StopIteration */     \
    XX(ECLOSED, -10002, "already closed")                                     \
    XX(ESTATE, -10003, "not allowed in the current state")                    \
    XX(ECYCLE, -10004, "connection would create a cycle")                     \
    XX(ETOOLONG, -10005, "line longer than the configured limit")             \
    XX(EABORTED, -10006, "pipeline aborted")                                  \
    XX(ENOTSUP, -10007, "operation not supported")                            \
    XX(ESTAGE, -10008, "stage failed") /* without a more precise code */      \
    XX(EEXIST, -10009, "name already in use")

#define RILL__ERRNO_ENUM(name, value, text) RILL_##name = (value),
#define RILL__ERRNO_ONE(name, value, text) +1

enum {
    RILL_OK = 0,
    RILL_ENOMEM = -ENOMEM,   /* allocation failed */
    RILL_EINVAL = -EINVAL,   /* bad argument */
    RILL_EAGAIN = -EAGAIN,   /* not now: retry once told (rill_try_emit) */
    RILL_ERRNO_MAP(RILL__ERRNO_ENUM)
    /* one past the last code; not an error */
    RILL_EMAX_ = -10001 - (0 RILL_ERRNO_MAP(RILL__ERRNO_ONE))
};

#undef RILL__ERRNO_ENUM
#undef RILL__ERRNO_ONE

/* A human-readable description of code: rill's own codes, any negated errno
 * value, and 0 ("success"). Unknown codes give "unknown error". The string is
 * static: never NULL, never freed, safe to call from any thread. */
const char *rill_strerror(int code);

/* The symbolic name of code ("RILL_ECYCLE", "ENOENT"), or "UNKNOWN". Static. */
const char *rill_errname(int code);

#ifdef __cplusplus
}
#endif
#endif
