/* Print stage: each item and a '\n', buffered, written to an fd.
 *
 * A write error stops the pipeline with -errno and drops what is still
 * buffered (later writes would fail the same way). Writing to a pipe whose
 * reader has gone raises SIGPIPE, which kills the process by default: a
 * caller that wants -EPIPE instead ignores SIGPIPE.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/rill_int.h"

enum { RILL__PRINT_BUF = 64 << 10 };

typedef struct rill__print {
    int fd;
    bool failed;
    size_t len;
    char buf[RILL__PRINT_BUF];
} rill__print;

static int rill__print_write(rill_stage *st, rill__print *pr, const char *p, size_t len) {
    while (len) {
        ssize_t n = write(pr->fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* A non-blocking fd (a shared stdout): wait for room, as the
             * line source waits for data, instead of failing. */
            struct pollfd pfd = {.fd = pr->fd, .events = POLLOUT};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        if (n <= 0) {
            pr->failed = true;
            return rill_stage_fail(st, n < 0 ? -errno : -EIO, "cannot write to fd %d", pr->fd);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int rill__print_flush(rill_stage *st, rill__print *pr) {
    size_t len = pr->len;
    pr->len = 0;
    return rill__print_write(st, pr, pr->buf, len);
}

static int rill__print_send(rill_stage *st, void *state, const rill_item *item) {
    rill__print *pr = state;
    if (RILL__UNLIKELY(pr->failed))
        return RILL_ESTAGE;
    size_t len = item->len;
    if (RILL__UNLIKELY(len >= sizeof pr->buf - pr->len)) {
        int rc = rill__print_flush(st, pr);
        if (rc < 0)
            return rc;
        if (len >= sizeof pr->buf) {
            /* Too big to buffer: no point copying it first. */
            rc = rill__print_write(st, pr, item->data, len);
            if (rc < 0)
                return rc;
            len = 0;
        }
    }
    if (len)
        memcpy(pr->buf + pr->len, item->data, len);
    pr->len += len;
    pr->buf[pr->len++] = '\n';
    return 0;
}

static int rill__print_close(rill_stage *st, void *state) {
    rill__print *pr = state;
    return pr->failed ? 0 : rill__print_flush(st, pr);
}

static const rill_stage_ops rill__print_ops = {
    .send = rill__print_send,
    .close = rill__print_close,
    .free = free,
};

RILL_API int rill_print_add(rill_pipeline *p, const char *name, int fd,
                            const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    if (fd < 0)
        return rill__setup_error(p, RILL_EINVAL, "rill_print_add '%s': fd %d is not a file "
                                 "descriptor", name ? name : "(unnamed)", fd);
    rill__print *pr = malloc(sizeof *pr);
    if (!pr)
        return RILL_ENOMEM;
    pr->fd = fd;
    pr->failed = false;
    pr->len = 0;
    int rc = rill_stage_add(p, name, &rill__print_ops, pr, opts, out);
    if (rc < 0)
        free(pr);
    return rc;
}
