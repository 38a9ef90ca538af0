/* Streaming line source: lines are slices of reference-counted read buffers.
 *
 * The source holds one reference to its current buffer. Before each read it
 * either reuses that buffer in place (nobody else kept a reference: the
 * single-threaded steady state allocates nothing) or leaves it to whoever
 * retained it and takes a fresh one. The unfinished last line of a read is
 * moved to the front of the buffer and the next read appends to it, so a
 * buffer never holds more than max_line of carried-over bytes plus one chunk.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rill_int.h"

typedef struct rill__lbuf {
    rill_ref ref; /* first: the release function casts back */
    size_t cap;
    char data[];
} rill__lbuf;

typedef struct rill__lines {
    int fd;
    bool close_fd;
    bool done;     /* EOF seen (or failed): produce answers RILL_EDONE */
    bool skipping; /* TRUNCATE: discarding the rest of an over-long line */
    bool strip_cr;
    bool truncate;
    bool regular;  /* a regular file: read() does not wait for a writer */
    size_t chunk, max_line;
    size_t slack;    /* 1 with STRIP_CR: a tail of max_line+1 may end in '\r' */
    size_t cap_init; /* first capacity of a buffer; grows up to cap_max */
    size_t cap_max;
    rill__lbuf *buf; /* current buffer; the source holds one reference */
    size_t toff, tlen; /* unfinished line: buf->data[toff .. toff+tlen) */
    rill_lines_stats stats;
    char *desc;      /* "'path'" or "fd N", for error messages */
} rill__lines;

/* Counters only the source's thread writes, readable from others (progress
 * reports) while it runs: a plain add, stored atomically. */
#define RILL__LINES_ADD(field, n) \
    __atomic_store_n(&(field), __atomic_load_n(&(field), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

static void rill__lbuf_release(rill_ref *ref) { free(ref); }

static rill__lbuf *rill__lbuf_new(size_t cap) {
    rill__lbuf *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    rill_ref_init(&b->ref, rill__lbuf_release);
    b->cap = cap;
    return b;
}

/* Make buf->data[0 .. tlen) the unfinished line with at least one chunk of
 * room after it. */
static int rill__lines_prepare(rill_stage *st, rill__lines *s) {
    rill__lbuf *b = s->buf;
    size_t need = s->tlen + s->chunk;
    if (b && b->cap >= need && rill_ref_count(&b->ref) == 1) {
        if (s->toff)
            memmove(b->data, b->data + s->toff, s->tlen);
        s->toff = 0;
        return 0;
    }
    size_t cap = s->cap_init;
    while (cap < need)
        cap = cap > s->cap_max / 2 ? s->cap_max : 2 * cap;
    rill__lbuf *nb = rill__lbuf_new(cap);
    if (!nb)
        return rill_stage_fail(st, RILL_ENOMEM, "cannot allocate a %zu-byte read buffer", cap);
    if (b) {
        memcpy(nb->data, b->data + s->toff, s->tlen);
        rill_ref_release(&b->ref);
    }
    s->buf = nb;
    s->toff = 0;
    return 0;
}

/* One read(): bytes read, 0 at EOF, or a negative code (recorded). */
static ssize_t rill__lines_read(rill_stage *st, rill__lines *s, char *dst, size_t len) {
    if (!s->regular) {
        /* A pipe or socket may make read() wait: hand the lines already cut
         * to threads downstream first, or they would wait with us. */
        struct pollfd ready = {.fd = s->fd, .events = POLLIN};
        if (poll(&ready, 1, 0) == 0)
            rill_stage_flush(st);
    }
    for (;;) {
        ssize_t n = read(s->fd, dst, len);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* A non-blocking fd (a shared stdin): wait instead of failing. */
            struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
            if (poll(&pfd, 1, -1) >= 0 || errno == EINTR)
                continue;
        }
        return rill_stage_fail(st, -errno, "cannot read %s", s->desc);
    }
}

/* A line longer than max_line starting at ls: fail, or emit its head. */
static int rill__lines_overlong(rill_stage *st, rill__lines *s, const char *ls) {
    if (!s->truncate)
        return rill_stage_fail(st, RILL_ETOOLONG, "line %llu longer than %zu bytes",
                               (unsigned long long)s->stats.lines + 1, s->max_line);
    rill_item it = {ls, s->max_line, &s->buf->ref};
    int rc = rill_emit(st, &it);
    if (rc < 0)
        return rc;
    RILL__LINES_ADD(s->stats.lines, 1);
    RILL__LINES_ADD(s->stats.truncated, 1);
    return 0;
}

/* EOF: the last line, if it had no '\n'. Never stripped of '\r'. */
static int rill__lines_finish(rill_stage *st, rill__lines *s) {
    if (s->tlen == 0)
        return RILL_EDONE;
    const char *ls = s->buf->data + s->toff;
    int rc;
    if (s->tlen > s->max_line) {
        rc = rill__lines_overlong(st, s, ls);
    } else {
        rill_item it = {ls, s->tlen, &s->buf->ref};
        rc = rill_emit(st, &it);
        if (rc == 0)
            RILL__LINES_ADD(s->stats.lines, 1);
    }
    s->tlen = 0;
    return rc < 0 ? rc : RILL_EDONE;
}

/* The hot loop: every complete line of data[.. end), the search for '\n'
 * starting at p. Leaves the unfinished line in toff/tlen. */
static int rill__lines_scan(rill_stage *st, rill__lines *s, const char *ls, const char *p,
                            const char *end) {
    rill_ref *owner = &s->buf->ref;
    const size_t max_line = s->max_line;
    const bool strip_cr = s->strip_cr;
    uint64_t n = 0; /* kept out of s so the loop needs no store per line */
    int rc = 0;
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        size_t len = (size_t)(nl - ls);
        if (strip_cr && len && nl[-1] == '\r')
            len--;
        if (RILL__LIKELY(len <= max_line)) {
            rill_item it = {ls, len, owner};
            rc = rill_emit(st, &it);
            if (RILL__UNLIKELY(rc < 0))
                break;
            n++;
        } else {
            RILL__LINES_ADD(s->stats.lines, n);
            n = 0;
            rc = rill__lines_overlong(st, s, ls);
            if (rc < 0)
                break;
        }
        ls = p = nl + 1;
    }
    RILL__LINES_ADD(s->stats.lines, n);
    s->toff = (size_t)(ls - s->buf->data);
    s->tlen = (size_t)(end - ls);
    return rc;
}

/* One read and the lines it completes: 0, RILL_EDONE, or a negative code. */
static int rill__lines_step(rill_stage *st, rill__lines *s) {
    int rc = rill__lines_prepare(st, s);
    if (rc < 0)
        return rc;
    char *data = s->buf->data;
    ssize_t n = rill__lines_read(st, s, data + s->tlen, s->chunk);
    if (n <= 0)
        return n < 0 ? (int)n : rill__lines_finish(st, s);
    RILL__LINES_ADD(s->stats.bytes, (uint64_t)n);
    const char *ls = data, *p = data + s->tlen, *end = p + n;
    if (s->skipping) {
        const char *nl = memchr(p, '\n', (size_t)n);
        if (!nl) {
            s->tlen = 0;
            return 0;
        }
        s->skipping = false;
        ls = p = nl + 1;
    }
    rc = rill__lines_scan(st, s, ls, p, end);
    if (rc == 0 && s->tlen > s->max_line + s->slack) {
        /* No '\n' yet and already too long, whatever follows. */
        rc = rill__lines_overlong(st, s, s->buf->data + s->toff);
        s->tlen = 0;
        s->skipping = true;
    }
    return rc;
}

static int rill__lines_produce(rill_stage *st, void *state) {
    rill__lines *s = state;
    if (s->done)
        return RILL_EDONE;
    int rc = rill__lines_step(st, s);
    if (rc < 0) {
        /* Exhausted or failed: the buffer is no longer needed here (stages
         * that kept lines hold their own references). */
        s->done = true;
        if (s->buf)
            rill_ref_release(&s->buf->ref);
        s->buf = NULL;
        s->tlen = 0;
    }
    return rc;
}

static void rill__lines_destroy(void *state) {
    rill__lines *s = state;
    if (s->buf)
        rill_ref_release(&s->buf->ref);
    if (s->close_fd)
        close(s->fd);
    free(s->desc);
    free(s);
}

static const rill_stage_ops rill__lines_ops = {
    .produce = rill__lines_produce,
    .destroy = rill__lines_destroy,
};

static int rill__lines_add(rill_pipeline *p, const char *name, int fd, const char *path,
                           bool own_fd, const rill_lines_opts *lopts,
                           const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    rill_lines_opts lo = {0};
    if (lopts)
        lo = *lopts;
    const unsigned known = RILL_LINES_TRUNCATE | RILL_LINES_STRIP_CR | RILL_LINES_CLOSE_FD;
    if (!p || fd < 0 || (lo.flags & ~known))
        return RILL_EINVAL;
    if (!lo.max_line)
        lo.max_line = RILL_LINES_DEFAULT_MAX_LINE;
    if (!lo.chunk)
        lo.chunk = RILL_LINES_DEFAULT_CHUNK;
    size_t slack = (lo.flags & RILL_LINES_STRIP_CR) ? 1 : 0;
    /* Keep the largest buffer well inside what malloc and ssize_t allow. */
    const size_t limit = (size_t)1 << (sizeof(size_t) > 4 ? 40 : 29);
    if (lo.max_line > limit || lo.chunk > limit)
        return RILL_EINVAL;
    rill__lines *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    s->fd = fd;
    struct stat sb;
    s->regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    s->close_fd = own_fd || (lo.flags & RILL_LINES_CLOSE_FD);
    s->strip_cr = slack;
    s->truncate = lo.flags & RILL_LINES_TRUNCATE;
    s->chunk = lo.chunk;
    s->max_line = lo.max_line;
    s->slack = slack;
    s->cap_max = lo.chunk + lo.max_line + slack;
    s->cap_init = lo.chunk + (lo.max_line + slack < lo.chunk ? lo.max_line + slack : lo.chunk);
    int len = path ? snprintf(NULL, 0, "'%s'", path) : snprintf(NULL, 0, "fd %d", fd);
    s->desc = malloc((size_t)len + 1);
    if (!s->desc) {
        free(s);
        return RILL_ENOMEM;
    }
    if (path)
        snprintf(s->desc, (size_t)len + 1, "'%s'", path);
    else
        snprintf(s->desc, (size_t)len + 1, "fd %d", fd);
    int rc = rill_stage_add(p, name, &rill__lines_ops, s, opts, out);
    if (rc < 0) {
        free(s->desc);
        free(s);
    }
    return rc;
}

RILL_API int rill_lines_fd_add(rill_pipeline *p, const char *name, int fd,
                               const rill_lines_opts *lopts, const rill_stage_opts *opts,
                               rill_stage **out) {
    return rill__lines_add(p, name, fd, NULL, false, lopts, opts, out);
}

RILL_API int rill_lines_file_add(rill_pipeline *p, const char *name, const char *path,
                                 const rill_lines_opts *lopts, const rill_stage_opts *opts,
                                 rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p || !path)
        return RILL_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* open() succeeds on a directory; read() would fail only later. */
    struct stat sb;
    int rc = fstat(fd, &sb) < 0 ? -errno : S_ISDIR(sb.st_mode) ? -EISDIR : 0;
    if (rc < 0) {
        close(fd);
        return rc;
    }
    rc = rill__lines_add(p, name, fd, path, true, lopts, opts, out);
    if (rc < 0)
        close(fd);
    return rc;
}

RILL_API int rill_lines_stats_of(const rill_stage *st, rill_lines_stats *out) {
    if (!st || !out || rill_stage_ops_of(st) != &rill__lines_ops)
        return RILL_EINVAL;
    const rill_lines_stats *in = &((const rill__lines *)rill_stage_state(st))->stats;
    out->lines = __atomic_load_n(&in->lines, __ATOMIC_RELAXED);
    out->bytes = __atomic_load_n(&in->bytes, __ATOMIC_RELAXED);
    out->truncated = __atomic_load_n(&in->truncated, __ATOMIC_RELAXED);
    return 0;
}
