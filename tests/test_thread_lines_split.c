/* The line source with replicas: a regular file is cut into N line-aligned
 * byte ranges, one per replica. Checked against a splitter written here on
 * random files (long lines, lines longer than a whole range, empty lines,
 * CRLF, no final newline, one line, empty): replica k of a paired sink must
 * see exactly the lines that start in range k, in file order, so that the
 * replicas' outputs, one after the other, are the file's lines, none lost
 * and none twice. A pipe is read by replica 0 alone. A failure prints the
 * seed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "line_split.h"
#include "rill_test.h"
#include "thread_util.h"

/* ---- a sink whose replicas each record their lines ------------------------- */

typedef struct rec {
    char *buf; /* each line as a 4-byte length and its bytes */
    size_t len, cap;
    size_t lines;
} rec;

static int rec_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    rec *r = state;
    if (r->len + 4 + item->len > r->cap) {
        size_t cap = (r->cap + 4 + item->len) * 2;
        char *b = realloc(r->buf, cap);
        if (!b)
            return RILL_ENOMEM;
        r->buf = b;
        r->cap = cap;
    }
    uint32_t n = (uint32_t)item->len;
    memcpy(r->buf + r->len, &n, 4);
    if (item->len)
        memcpy(r->buf + r->len + 4, item->data, item->len);
    r->len += 4 + item->len;
    r->lines++;
    return 0;
}

static void rec_free(void *state) {
    rec *r = state;
    free(r->buf);
    free(r);
}

static int rec_clone(const void *state, void **out) {
    (void)state;
    *out = calloc(1, sizeof(rec));
    return *out ? 0 : RILL_ENOMEM;
}

static const rill_stage_ops rec_ops = {.send = rec_send, .free = rec_free, .clone = rec_clone};

/* ---- the independent splitter ------------------------------------------------ */

/* The lines of data (tests/util/line_split.h, the reference splitter) in
 * the same record format. */
static void split_here(const char *data, size_t n, bool strip, rec *out) {
    span *sp = malloc((n + 1) * sizeof *sp);
    uint64_t ntrunc;
    bool toolong;
    size_t k = ref_split(data, n, strip ? RILL_LINES_STRIP_CR : 0, SIZE_MAX, sp, &ntrunc, &toolong);
    for (size_t i = 0; i < k; i++) {
        rill_item it = rill_item_static(data + sp[i].off, sp[i].len);
        rec_send(NULL, out, &it);
    }
    free(sp);
}

/* The records of every replica of sink, replica 0's first, appended to got. */
static void gather(rill_stage *sink, rec *got) {
    rill_stage *r;
    for (unsigned k = 0; (r = rill_stage_replica(sink, k)) != NULL; k++) {
        const rec *part = rill_stage_state(r);
        for (size_t at = 0; at < part->len;) {
            uint32_t l;
            memcpy(&l, part->buf + at, 4);
            rill_item it = rill_item_static(part->buf + at + 4, l);
            rec_send(NULL, got, &it);
            at += 4 + l;
        }
    }
}

/* A random file: kind 0 random, 1 empty, 2 one line, 3 one line without
 * '\n', 4 lines longer than the ranges. */
static char *make_file(uint64_t *rs, unsigned kind, size_t *len) {
    size_t cap = 1 << 20, n = 0;
    char *d = malloc(cap);
    unsigned nlines = kind == 1 ? 0 : kind <= 3 ? 1 : 1 + (unsigned)(rng_next(rs) % 400);
    for (unsigned l = 0; l < nlines; l++) {
        uint64_t r = rng_next(rs);
        size_t ll = r % 10 == 0 ? 0 : r % 10 < 8 ? r % 90 : 1000 + r % 20000;
        if (kind == 4 && r % 3 == 0)
            ll = 30000 + r % 60000;
        if (n + ll + 2 > cap)
            break;
        for (size_t i = 0; i < ll; i++)
            d[n++] = (char)('a' + rng_next(rs) % 26);
        if (rng_next(rs) % 4 == 0)
            d[n++] = '\r';
        d[n++] = '\n';
    }
    if ((kind == 3 || rng_next(rs) % 3 == 0) && n && d[n - 1] == '\n')
        n--; /* no final newline */
    *len = n;
    return d;
}

static void write_file(const char *path, const char *d, size_t n, int *ok) {
    FILE *f = fopen(path, "wb");
    *ok = f && (n == 0 || fwrite(d, 1, n, f) == n);
    if (f)
        *ok = fclose(f) == 0 && *ok;
}

/* Read path with `width` replicas into a paired sink; compare. */
static void check_split(const char *path, const char *d, size_t n, unsigned width,
                        unsigned flags, size_t chunk, uint64_t seed, int *ok) {
    *ok = 0;
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("split", &p));
    rill_stage_opts o = {.replicas = width};
    rill_lines_opts lo = {.chunk = chunk, .flags = flags};
    rill_stage *src = NULL, *sink = NULL;
    CHECK_OK(rill_lines_file_add(p, "src", path, &lo, &o, &src));
    CHECK_OK(rill_stage_add(p, "sink", &rec_ops, calloc(1, sizeof(rec)), &o, &sink));
    CHECK_OK(rill_connect(src, sink));
    int rc = rill_pipeline_run(p);
    if (rc)
        rill_test__failf(__FILE__, __LINE__, "seed %llu: %s", (unsigned long long)seed,
                         rill_pipeline_errmsg(p));
    rec want = {0}, got = {0};
    split_here(d, n, flags & RILL_LINES_STRIP_CR, &want);
    gather(sink, &got);
    struct rill_lines_stats ls;
    CHECK_OK(rill_lines_stats(src, &ls));
    bool same = rc == 0 && got.lines == want.lines && got.len == want.len &&
                (got.len == 0 || memcmp(got.buf, want.buf, got.len) == 0) &&
                ls.lines == want.lines && ls.bytes == n;
    if (!same)
        rill_test__failf(__FILE__, __LINE__, "seed %llu width %u chunk %zu: %zu lines (%zu "
                         "bytes read), want %zu", (unsigned long long)seed, width, chunk,
                         got.lines, (size_t)ls.bytes, want.lines);
    free(want.buf);
    free(got.buf);
    rill_pipeline_free(p);
    *ok = same;
}

RILL_TEST(lines_split, replicas_read_every_line_once_in_order) {
    char path[512];
    snprintf(path, sizeof path, "%s/lines_split_%d.txt", RILL_TEST_TMP, (int)getpid());
    for (uint64_t seed = 1; seed <= 60; seed++) {
        uint64_t rs = seed * 0x9e3779b97f4a7c15ull;
        unsigned kind = (unsigned)(seed % 5);
        size_t n;
        char *d = make_file(&rs, kind, &n);
        int ok;
        write_file(path, d, n, &ok);
        CHECK(ok);
        unsigned width = 1 + (unsigned)(rng_next(&rs) % 7);
        size_t chunk = rng_next(&rs) % 2 ? 64 + rng_next(&rs) % 4096 : 0;
        unsigned flags = rng_next(&rs) % 2 ? RILL_LINES_STRIP_CR : 0;
        check_split(path, d, n, width, flags, chunk, seed, &ok);
        free(d);
        CHECK(ok);
    }
    unlink(path);
}

/* Every cut position on a small file: widths up to past its size (every
 * other width under ThreadSanitizer, where each run is ten times slower). */
#if defined(__SANITIZE_THREAD__)
#define WIDTH_STEP 2
#else
#define WIDTH_STEP 1
#endif
RILL_TEST(lines_split, every_width_on_small_files) {
    static const char *const files[] = {"", "a", "a\n", "\n", "\n\n\n", "ab\ncd", "ab\r\ncd\r\n",
                                        "x\n\nyy\n\n\nzzz", "long line here\nb\n"};
    char path[512];
    snprintf(path, sizeof path, "%s/lines_split_small_%d.txt", RILL_TEST_TMP, (int)getpid());
    for (unsigned f = 0; f < sizeof files / sizeof files[0]; f++)
        for (unsigned w = 1; w <= 20; w += WIDTH_STEP) {
            int ok;
            size_t n = strlen(files[f]);
            write_file(path, files[f], n, &ok);
            CHECK(ok);
            check_split(path, files[f], n, w, 0, 0, f * 100 + w, &ok);
            CHECK(ok);
        }
    unlink(path);
}

/* A pipe cannot be cut: replica 0 reads it all, the others end at once. */
typedef struct feeder {
    int fd;
    const char *d;
    size_t n;
} feeder;

static void *feed(void *arg) {
    feeder *f = arg;
    for (size_t at = 0; at < f->n;) {
        ssize_t w = write(f->fd, f->d + at, f->n - at);
        if (w <= 0)
            break;
        at += (size_t)w;
    }
    close(f->fd);
    return NULL;
}

RILL_TEST(lines_split, a_pipe_is_read_by_replica_zero) {
    uint64_t rs = 42;
    size_t n;
    char *d = make_file(&rs, 0, &n);
    int fds[2];
    CHECK(pipe(fds) == 0);
    feeder f = {fds[1], d, n};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, feed, &f) == 0);
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("pipe", &p));
    rill_stage_opts o = {.replicas = 3};
    rill_lines_opts lo = {.flags = RILL_LINES_CLOSE_FD};
    rill_stage *src = NULL, *sink = NULL;
    CHECK_OK(rill_lines_fd_add(p, "src", fds[0], &lo, &o, &src));
    CHECK_OK(rill_stage_add(p, "sink", &rec_ops, calloc(1, sizeof(rec)), &o, &sink));
    CHECK_OK(rill_connect(src, sink));
    int rc = rill_pipeline_run(p);
    pthread_join(t, NULL);
    CHECK_OK(rc);
    rec want = {0};
    split_here(d, n, false, &want);
    const rec *r0 = rill_stage_state(sink);
    CHECK_EQ(r0->lines, want.lines);
    CHECK(r0->len == want.len && (!want.len || memcmp(r0->buf, want.buf, want.len) == 0));
    CHECK_EQ(((const rec *)rill_stage_state(rill_stage_replica(sink, 1)))->lines, 0);
    CHECK_EQ(((const rec *)rill_stage_state(rill_stage_replica(sink, 2)))->lines, 0);
    free(want.buf);
    free(d);
    rill_pipeline_free(p);
}

/* A file that shrinks or grows after the source was added: the replicas
 * read the bytes that are there of the size it had when added, each line
 * once (a line cut by the new end is a last line without '\n'). */
RILL_TEST(lines_split, a_file_that_shrinks_or_grows_is_read_once) {
    char path[512];
    snprintf(path, sizeof path, "%s/lines_split_change_%d.txt", RILL_TEST_TMP, (int)getpid());
    for (uint64_t seed = 1; seed <= 16; seed++) {
        uint64_t rs = seed * 7777;
        size_t n;
        char *d = make_file(&rs, 0, &n);
        int ok;
        write_file(path, d, n, &ok);
        CHECK(ok);
        rill_pipeline *p = NULL;
        CHECK_OK(rill_pipeline_new("change", &p));
        rill_stage_opts o = {.replicas = 2 + (unsigned)(seed % 4)}; /* one reads to EOF */
        rill_stage *src = NULL, *sink = NULL;
        CHECK_OK(rill_lines_file_add(p, "src", path, NULL, &o, &src));
        CHECK_OK(rill_stage_add(p, "sink", &rec_ops, calloc(1, sizeof(rec)), &o, &sink));
        CHECK_OK(rill_connect(src, sink));
        size_t now = n;
        if (seed % 2) { /* shrink to a random length */
            now = n ? (size_t)(rng_next(&rs) % n) : 0;
            CHECK(truncate(path, (off_t)now) == 0);
        } else { /* grow: what is appended is not read */
            FILE *f = fopen(path, "ab");
            CHECK(f != NULL);
            fputs("appended line\nand another\n", f);
            CHECK(fclose(f) == 0);
        }
        CHECK_OK(rill_pipeline_run(p));
        rec want = {0}, got = {0};
        split_here(d, now < n ? now : n, false, &want);
        gather(sink, &got);
        bool same = got.lines == want.lines && got.len == want.len &&
                    (!got.len || memcmp(got.buf, want.buf, got.len) == 0);
        if (!same)
            rill_test__failf(__FILE__, __LINE__, "seed %llu: %zu lines, want %zu",
                             (unsigned long long)seed, got.lines, want.lines);
        free(want.buf);
        free(got.buf);
        free(d);
        rill_pipeline_free(p);
        CHECK(same);
    }
    unlink(path);
}

/* A line source of `width` replicas on fd (which it closes) into a paired
 * recording sink (*sink); NULL if it cannot be built. */
static rill_pipeline *fd_pipeline(int fd, unsigned width, rill_stage **sink) {
    rill_pipeline *p = NULL;
    rill_stage_opts o = {.replicas = width};
    rill_lines_opts lo = {.flags = RILL_LINES_CLOSE_FD};
    rill_stage *src = NULL;
    if (rill_pipeline_new("fd", &p))
        return NULL;
    if (rill_lines_fd_add(p, "src", fd, &lo, &o, &src) ||
        rill_stage_add(p, "sink", &rec_ops, calloc(1, sizeof(rec)), &o, sink) ||
        rill_connect(src, *sink)) {
        rill_pipeline_free(p);
        return NULL;
    }
    return p;
}

/* An fd already read into (a shell's stdin, a header skipped by the
 * caller): the replicas start where a single reader would, at its offset,
 * and together read the lines after it once. */
RILL_TEST(lines_split, replicas_of_an_fd_start_at_its_offset) {
    char path[512];
    snprintf(path, sizeof path, "%s/lines_split_off_%d.txt", RILL_TEST_TMP, (int)getpid());
    size_t n = 0;
    char *d = malloc(1 << 17), pad[200];
    memset(pad, 'x', sizeof pad);
    for (unsigned l = 0; l < 400; l++) /* lines of 8 to 200 bytes */
        n += (size_t)sprintf(d + n, "line %u %.*s\n", l, (int)(l * 37 % 190), pad);
    int ok;
    write_file(path, d, n, &ok);
    CHECK(ok);
    for (unsigned width = 1; width <= 4; width++) {
        size_t skip = n / 3 + width; /* mid-line or not: the bytes before it are not read */
        skip = skip < n ? skip : n;
        int fd = open(path, O_RDONLY);
        CHECK(fd >= 0);
        CHECK(lseek(fd, (off_t)skip, SEEK_SET) == (off_t)skip);
        rill_stage *sink = NULL;
        rill_pipeline *p = fd_pipeline(fd, width, &sink);
        CHECK(p != NULL);
        CHECK_OK(rill_pipeline_run(p));
        rec want = {0}, got = {0};
        split_here(d + skip, n - skip, false, &want);
        gather(sink, &got);
        bool same = got.lines == want.lines && got.len == want.len &&
                    (!got.len || memcmp(got.buf, want.buf, got.len) == 0);
        if (!same)
            rill_test__failf(__FILE__, __LINE__, "width %u from byte %zu: %zu lines, want %zu",
                             width, skip, got.lines, want.lines);
        CHECK(same);
        free(want.buf);
        free(got.buf);
        rill_pipeline_free(p);
    }
    free(d);
    unlink(path);
}

/* A read that fails (here an fd opened for writing only) fails the run,
 * naming the replica's stage, the fd and the byte it was read at. */
RILL_TEST(lines_split, a_failing_read_names_the_stage_and_the_fd) {
    char path[512];
    snprintf(path, sizeof path, "%s/lines_split_wo_%d.txt", RILL_TEST_TMP, (int)getpid());
    int ok;
    write_file(path, "one\ntwo\nthree\nfour\n", 19, &ok);
    CHECK(ok);
    for (unsigned width = 1; width <= 3; width += 2) {
        int fd = open(path, O_WRONLY);
        CHECK(fd >= 0);
        rill_stage *sink = NULL;
        rill_pipeline *p = fd_pipeline(fd, width, &sink);
        CHECK(p != NULL);
        CHECK_EQ(rill_pipeline_run(p), -EBADF);
        char fdname[32];
        snprintf(fdname, sizeof fdname, "fd %d", fd);
        const char *msg = rill_pipeline_errmsg(p), *stage = rill_pipeline_errstage(p);
        CHECK(stage && strncmp(stage, "src", 3) == 0);
        CHECK(strstr(msg, "cannot read") && strstr(msg, fdname));
        CHECK(width == 1 || strstr(msg, "at byte"));
        rill_pipeline_free(p);
    }
    unlink(path);
}
