/* Streaming line source: lines are slices of reference-counted read buffers
 * (the splitting and the buffers live in line_split.c, shared with the TCP
 * line source). Each produce call does one read() and emits the lines it
 * completes. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lines_int.h"

typedef struct rill__lines {
    int fd;
    bool close_fd;
    bool done;     /* EOF seen (or failed): produce answers RILL_EDONE */
    bool regular;  /* a regular file: read() does not wait for a writer */
    bool ranged;   /* a replica reading its byte range [off, end) with pread */
    bool placed;   /* the first produce has looked at its replica number */
    uint64_t size; /* a regular file's size when the stage was added */
    uint64_t base; /* and its offset then: where a single reader would start */
    uint64_t off, end;
    rill_lines_opts lo;
    rill__lsplit sp;
    struct rill_lines_stats stats;
    char *desc;    /* "'path'" or "fd N", for error messages */
} rill__lines;

/* pread() all of len unless EOF comes first: bytes read, or -errno. */
static ssize_t rill__pread_at(int fd, char *dst, size_t len, uint64_t off) {
    for (;;) {
        ssize_t n = pread(fd, dst, len, (off_t)off);
        if (n >= 0 || errno != EINTR)
            return n >= 0 ? n : -errno;
    }
}

/* Where the first line starting at or after byte c begins: c itself after
 * a '\n' (or at base, where reading starts), else just past the next '\n';
 * size if there is none. Each replica's range runs from its cut's line
 * start to the next one's, so every line is read by the replica its first
 * byte's cut falls in. On a read error, *out is where it failed. */
static int rill__line_start(int fd, uint64_t c, uint64_t base, uint64_t size, uint64_t *out) {
    char buf[16384];
    if (c <= base || c >= size) {
        *out = c < size ? c : size;
        return 0;
    }
    for (uint64_t at = c - 1; at < size;) {
        ssize_t n = rill__pread_at(fd, buf, sizeof buf, at);
        if (n <= 0) {
            *out = at;
            if (n < 0)
                return (int)n;
            break; /* shrunk: no line starts after here */
        }
        /* Only bytes of the size taken at the add count: the file may
         * have grown since, and every replica must agree on the cuts. */
        if ((uint64_t)n > size - at)
            n = (ssize_t)(size - at);
        const char *nl = memchr(buf, '\n', (size_t)n);
        if (nl) {
            *out = at + (uint64_t)(nl - buf) + 1;
            return 0;
        }
        at += (uint64_t)n;
    }
    *out = size;
    return 0;
}

/* First produce of a replica: a regular file gives it its byte range; a
 * pipe is read by replica 0 alone (the others are done at once). */
static int rill__lines_place(rill_stage *st, rill__lines *s) {
    unsigned k, n = rill_stage_replicas(st, &k);
    s->placed = true;
    if (n < 2)
        return 0;
    if (!s->regular)
        return k == 0 ? 0 : RILL_EDONE;
    /* The bytes a single reader would read: from the offset at the add. */
    uint64_t span = s->size - s->base;
    uint64_t c0 = s->base + span / n * k + span % n * k / n;
    uint64_t c1 = s->base + span / n * (k + 1) + span % n * (k + 1) / n;
    uint64_t *cut = &s->off;
    int rc = rill__line_start(s->fd, c0, s->base, s->size, cut);
    if (!rc)
        rc = rill__line_start(s->fd, c1, s->base, s->size, cut = &s->end);
    if (rc)
        return rill_stage_fail(st, rc, "cannot read %s at byte %llu (looking for a line start)",
                               s->desc, (unsigned long long)*cut);
    if (s->end < s->off) /* cannot happen with cuts within the size; stay safe */
        s->end = s->off;
    s->ranged = true;
    return 0;
}

/* One read(): bytes read, 0 at EOF, or a negative code (recorded). */
static ssize_t rill__lines_read(rill_stage *st, rill__lines *s, char *dst, size_t len) {
    if (s->ranged) { /* the end of the range is its EOF */
        uint64_t left = s->end - s->off;
        ssize_t n = left ? rill__pread_at(s->fd, dst, len < left ? len : (size_t)left, s->off) : 0;
        if (n < 0)
            return rill_stage_fail(st, (int)n, "cannot read %s at byte %llu", s->desc,
                                   (unsigned long long)s->off);
        s->off += (uint64_t)n;
        return n;
    }
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

/* Record a splitter failure with its detail. */
static int rill__lines_failed(rill_stage *st, rill__lines *s, int rc) {
    if (rc == RILL_ETOOLONG)
        return rill_stage_fail(st, rc, "line %llu longer than %zu bytes",
                               (unsigned long long)s->sp.lines + 1, s->sp.max_line);
    if (rc == RILL_ENOMEM)
        return rill_stage_fail(st, rc, "cannot allocate a read buffer");
    return rc; /* a downstream error, recorded where it happened */
}

/* One read and the lines it completes: 0, RILL_EDONE, or a negative code. */
static int rill__lines_step(rill_stage *st, rill__lines *s) {
    int rc = rill__lsplit_prepare(&s->sp);
    if (rc < 0)
        return rill__lines_failed(st, s, rc);
    ssize_t n = rill__lines_read(st, s, rill__lsplit_space(&s->sp), s->sp.room);
    if (n < 0)
        return (int)n;
    if (n == 0)
        rc = rill__lsplit_finish(st, &s->sp, false);
    else {
        rill__lsplit_fed(&s->sp, (size_t)n);
        rc = rill__lsplit_emit(st, &s->sp);
    }
    if (rc < 0)
        return rill__lines_failed(st, s, rc);
    return n == 0 ? RILL_EDONE : 0;
}

static int rill__lines_produce(rill_stage *st, void *state) {
    rill__lines *s = state;
    if (s->done)
        return RILL_EDONE;
    int rc = s->placed ? 0 : rill__lines_place(st, s);
    if (rc == 0)
        rc = rill__lines_step(st, s);
    if (rc < 0) {
        /* Exhausted or failed: the buffer is no longer needed here. */
        s->done = true;
        rill__lsplit_release(&s->sp);
    }
    return rc;
}

static void rill__lines_destroy(void *state) {
    rill__lines *s = state;
    rill__lsplit_release(&s->sp);
    if (s->close_fd)
        close(s->fd);
    free(s->desc);
    free(s);
}

/* A replica: the same fd (pread needs no offset of its own; replica 0
 * closes it), its own buffers and counters. */
static int rill__lines_clone(const void *state, void **out) {
    const rill__lines *s = state;
    rill__lines *c = calloc(1, sizeof *c);
    char *desc = c ? rill__strdup(s->desc) : NULL;
    if (!desc) {
        free(c);
        return RILL_ENOMEM;
    }
    c->fd = s->fd;
    c->regular = s->regular;
    c->size = s->size;
    c->base = s->base;
    c->lo = s->lo;
    c->desc = desc;
    rill__lsplit_init(&c->sp, &c->lo, &c->stats);
    *out = c;
    return 0;
}

static const rill_stage_ops rill__lines_ops = {
    .produce = rill__lines_produce,
    .free = rill__lines_destroy,
    .clone = rill__lines_clone,
};

static int rill__lines_add(const char *fn, rill_pipeline *p, const char *name, int fd,
                           const char *path, bool own_fd, const rill_lines_opts *lopts,
                           const rill_stage_opts *opts, rill_stage **out) {
    if (out)
        *out = NULL;
    rill_lines_opts lo = {0};
    if (lopts)
        lo = *lopts;
    const unsigned known = RILL_LINES_TRUNCATE | RILL_LINES_STRIP_CR | RILL_LINES_CLOSE_FD;
    if (!p)
        return RILL_EINVAL;
    if (fd < 0)
        return rill__setup_error(p, RILL_EINVAL, "%s '%s': fd %d is not a file descriptor", fn,
                                 name ? name : "(unnamed)", fd);
    if (rill__lsplit_opts(&lo, RILL_LINES_DEFAULT_CHUNK, known))
        return rill__lsplit_opts_error(p, fn, name, lopts, known);
    rill__lines *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    s->fd = fd;
    struct stat sb;
    s->regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    s->size = s->regular ? (uint64_t)sb.st_size : 0;
    off_t at = s->regular ? lseek(fd, 0, SEEK_CUR) : 0;
    s->base = at > 0 && (uint64_t)at < s->size ? (uint64_t)at : at > 0 ? s->size : 0;
    s->close_fd = own_fd || (lo.flags & RILL_LINES_CLOSE_FD);
    s->lo = lo;
    rill__lsplit_init(&s->sp, &s->lo, &s->stats);
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
    return rill__lines_add("rill_lines_fd_add", p, name, fd, NULL, false, lopts, opts, out);
}

RILL_API int rill_lines_file_add(rill_pipeline *p, const char *name, const char *path,
                                 const rill_lines_opts *lopts, const rill_stage_opts *opts,
                                 rill_stage **out) {
    if (out)
        *out = NULL;
    if (!p)
        return RILL_EINVAL;
    const char *what = name ? name : "(unnamed)";
    if (!path)
        return rill__setup_error(p, RILL_EINVAL, "rill_lines_file_add '%s': the path is NULL", what);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return rill__setup_error(p, -errno, "rill_lines_file_add '%s': cannot open '%s'", what, path);
    /* open() succeeds on a directory; read() would fail only later. */
    struct stat sb;
    int rc = fstat(fd, &sb) < 0 ? -errno : S_ISDIR(sb.st_mode) ? -EISDIR : 0;
    if (rc < 0) {
        close(fd);
        return rill__setup_error(p, rc, "rill_lines_file_add '%s': cannot read '%s'", what, path);
    }
    rc = rill__lines_add("rill_lines_file_add", p, name, fd, path, true, lopts, opts, out);
    if (rc < 0)
        close(fd);
    return rc;
}

RILL_API int rill_lines_stats(const rill_stage *st, struct rill_lines_stats *out) {
    if (!st || !out)
        return RILL_EINVAL;
    const struct rill_lines_stats *in = rill__tcp_lines_counters(st);
    if (in) {
        out->lines = __atomic_load_n(&in->lines, __ATOMIC_RELAXED);
        out->bytes = __atomic_load_n(&in->bytes, __ATOMIC_RELAXED);
        out->truncated = __atomic_load_n(&in->truncated, __ATOMIC_RELAXED);
        return 0;
    }
    if (rill_stage_ops_of(st) != &rill__lines_ops)
        return RILL_EINVAL;
    /* Replicas: the sum over the group, whichever replica is asked. */
    *out = (struct rill_lines_stats){0};
    const rill_stage *r;
    for (unsigned k = 0; (r = rill_stage_replica(st, k)) != NULL; k++) {
        in = &((const rill__lines *)rill_stage_state(r))->stats;
        out->lines += __atomic_load_n(&in->lines, __ATOMIC_RELAXED);
        out->bytes += __atomic_load_n(&in->bytes, __ATOMIC_RELAXED);
        out->truncated += __atomic_load_n(&in->truncated, __ATOMIC_RELAXED);
    }
    return 0;
}
