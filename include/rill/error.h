/* rill — error codes.
 *
 * Every function that can fail returns int: 0 on success or a negative code.
 * System errors are reported as the negated errno value (-ENOENT, -EACCES...),
 * as libuv does, so no information is lost; rill's own conditions use the
 * RILL_E* codes below, which never collide with errno values. Functions that
 * only try an operation return bool instead (named *_try_*).
 */
#ifndef RILL_ERROR_H
#define RILL_ERROR_H

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    RILL_OK = 0,
    RILL_ENOMEM = -ENOMEM,   /* allocation failed */
    RILL_EINVAL = -EINVAL,   /* bad argument */
    RILL_EAGAIN = -EAGAIN,   /* not now: no room; retry once told (rill_try_emit) */
    /* rill's own codes, well below any errno value */
    RILL_EDONE = -10001,     /* generator exhausted (Python's StopIteration) */
    RILL_ECLOSED = -10002,   /* object already closed */
    RILL_ESTATE = -10003,    /* call not allowed in the object's current state */
    RILL_ECYCLE = -10004,    /* connecting these stages would make a cycle */
    RILL_ETOOLONG = -10005,  /* a line is longer than the configured limit */
    RILL_EABORTED = -10007,  /* the pipeline was aborted */
    RILL_ENOTSUP = -10008,   /* not supported (yet) */
    RILL_ESTAGE = -10009,    /* a stage failed without a more precise code */
    RILL_EEXIST = -10010,    /* a name is already taken */
    RILL_EMAX_ = -10011      /* one past the last code; not an error */
};

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
