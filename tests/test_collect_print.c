/* The collect stage (items kept alive by reference until destroy) and the
 * print stage (buffered writes, large items, write errors). */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "rill.h"
#include "rill_test.h"

/* ---- collect ----------------------------------------------------------------- */

typedef struct tracked {
    rill_ref ref; /* first: the release function casts back */
    int *released;
    char data[32];
} tracked;

static void tracked_release(rill_ref *ref) {
    tracked *t = (tracked *)ref;
    (*t->released)++;
    free(t);
}

static tracked *tracked_new(int *released, const char *text) {
    tracked *t = malloc(sizeof *t);
    if (t) {
        rill_ref_init(&t->ref, tracked_release);
        t->released = released;
        snprintf(t->data, sizeof t->data, "%s", text);
    }
    return t;
}

/* A source that emits slices of two counted objects, static items and fresh
 * copies, and drops its own references as soon as it has emitted them. */
typedef struct mixsrc {
    int released;
    tracked *a, *b;
} mixsrc;

static int mix_slice(rill_stage *st, tracked *t, size_t i) {
    rill_item it = {t->data + i % 8, 1 + i % 3, &t->ref};
    return rill_emit(st, &it);
}

static int mix_produce(rill_stage *st, void *state) {
    mixsrc *m = state;
    int rc = 0;
    for (size_t i = 0; i < 10 && rc == 0; i++)
        rc = mix_slice(st, m->a, i);
    for (size_t i = 0; i < 5 && rc == 0; i++)
        rc = mix_slice(st, m->b, i);
    for (size_t i = 0; i < 3 && rc == 0; i++)
        rc = mix_slice(st, m->a, i);
    rill_item s = rill_item_cstr("static");
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = rill_emit(st, &s);
    for (int i = 0; i < 4 && rc == 0; i++) {
        char text[16];
        snprintf(text, sizeof text, "copy %d", i);
        rill_item c;
        if ((rc = rill_item_copy(text, strlen(text), &c)) == 0) {
            rc = rill_emit(st, &c);
            rill_item_release(&c); /* now only the collector holds it */
        }
    }
    return rc < 0 ? rc : RILL_EDONE;
}

static const rill_stage_ops mix_ops = {.produce = mix_produce};

RILL_TEST(collect, items_live_until_destroy_one_reference_per_owner) {
    mixsrc m = {0};
    m.a = tracked_new(&m.released, "AAAAAAAAAAAAAAAAAAAA");
    m.b = tracked_new(&m.released, "BBBBBBBBBBBBBBBBBBBB");
    CHECK(m.a && m.b);
    rill_pipeline *p;
    rill_stage *src, *col;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "mix", &mix_ops, &m, NULL, &src));
    CHECK_OK(rill_collect_add(p, "col", NULL, &col));
    CHECK_OK(rill_connect(src, col));
    CHECK_OK(rill_pipeline_run(p));
    /* The source's references are gone; the collector keeps both alive with
     * one reference per run of same-owner items, not one per item. */
    rill_ref_release(&m.a->ref);
    rill_ref_release(&m.b->ref);
    CHECK_EQ(m.released, 0);
    CHECK(rill_ref_count(&m.a->ref) >= 1 && rill_ref_count(&m.a->ref) <= 2);
    CHECK_EQ(rill_ref_count(&m.b->ref), 1);

    const rill_item *it;
    size_t n;
    CHECK_OK(rill_collect_items(col, &it, &n));
    CHECK_EQ(n, 10 + 5 + 3 + 2 + 4);
    for (size_t i = 0; i < 18; i++) {
        const char *want = i < 10 || i >= 15 ? "AAAA" : "BBBB";
        size_t k = i < 10 ? i : i < 15 ? i - 10 : i - 15;
        CHECK(rill_item_eq(&it[i], want, 1 + k % 3));
    }
    /* static: kept by pointer, not copied */
    CHECK(it[18].owner == RILL_REF_STATIC && it[18].data == it[19].data &&
          rill_item_eq(&it[19], "static", 6));
    for (int i = 0; i < 4; i++) { /* under ASan: a use after free if freed early */
        char text[16];
        snprintf(text, sizeof text, "copy %d", i);
        CHECK(rill_item_eq(&it[20 + i], text, strlen(text)));
        CHECK_EQ(rill_ref_count(it[20 + i].owner), 1);
    }
    rill_pipeline_free(p);
    CHECK_EQ(m.released, 2);
}

RILL_TEST(collect, pushed_static_items_and_bad_handles) {
    rill_pipeline *p;
    rill_stage *col, *pr;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_collect_add(p, "col", NULL, &col));
    CHECK_OK(rill_print_add(p, "print", 1, NULL, &pr));
    static const char *const words[] = {"alpha", "", "gamma"};
    for (size_t i = 0; i < 3; i++) {
        rill_item w = rill_item_cstr(words[i]);
        CHECK_OK(rill_pipeline_push(p, col, &w));
    }
    CHECK_OK(rill_pipeline_close(p));
    const rill_item *it;
    size_t n;
    CHECK_OK(rill_collect_items(col, &it, &n));
    CHECK_EQ(n, 3);
    for (size_t i = 0; i < 3; i++)
        CHECK(it[i].owner == RILL_REF_STATIC && it[i].data == words[i]);
    CHECK_EQ(rill_collect_items(pr, &it, &n), RILL_EINVAL);
    CHECK_EQ(rill_collect_items(NULL, &it, &n), RILL_EINVAL);
    CHECK_EQ(rill_print_add(p, "bad", -1, NULL, NULL), RILL_EINVAL);
    rill_pipeline_free(p);
}

/* A buffer reused for every push (a getline buffer): the collector keeps
 * copies of borrowed items, each with the bytes it had when pushed, also
 * ones larger than a chunk. */
RILL_TEST(collect, borrowed_items_are_copied) {
    rill_pipeline *p;
    rill_stage *col;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_collect_add(p, "col", NULL, &col));
    enum { N = 3000, BIG = 100000 };
    char *buf = malloc(BIG);
    CHECK(buf != NULL);
    for (int i = 0; i < N; i++) {
        size_t len = i == N / 2 ? BIG : (size_t)snprintf(buf, BIG, "item %d", i);
        if (i == N / 2)
            memset(buf, 'z', BIG);
        rill_item it = rill_item_borrow(buf, len);
        CHECK_OK(rill_pipeline_push(p, col, &it));
    }
    memset(buf, '#', BIG);
    CHECK_OK(rill_pipeline_close(p));
    const rill_item *it;
    size_t n;
    CHECK_OK(rill_collect_items(col, &it, &n));
    CHECK_EQ(n, (size_t)N);
    for (int i = 0; i < N; i++) {
        char want[32];
        int len = snprintf(want, sizeof want, "item %d", i);
        CHECK(it[i].data != buf);
        if (i == N / 2)
            CHECK(it[i].len == BIG && ((const char *)it[i].data)[BIG - 1] == 'z');
        else
            CHECK(rill_item_eq(&it[i], want, (size_t)len));
    }
    free(buf);
    rill_pipeline_free(p);
}

/* ---- print ------------------------------------------------------------------- */

static void tmp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/print_%s_%ld", RILL_TEST_TMP, name, (long)getpid());
}

/* Lines of many sizes around the 64 KiB buffer: empty, small, just below,
 * at and above the buffer size, and one of 200 KiB. */
static char *make_input(size_t *len) {
    static const size_t sizes[] = {0, 1, 80, 65534, 65535, 65536, 65537, 3, 200000, 0, 17};
    size_t cap = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        cap += sizes[i] + 1;
    cap += 5000 * 40;
    char *d = malloc(cap), *q = d;
    if (!d)
        return NULL;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        for (size_t j = 0; j < sizes[i]; j++)
            *q++ = (char)('a' + (i + j) % 26);
        *q++ = '\n';
    }
    for (int i = 0; i < 5000; i++)
        q += sprintf(q, "line %d of the small ones\n", i);
    *len = (size_t)(q - d);
    return d;
}

/* in (a file) -> line source -> print(fd). */
static int lines_to_print(const char *in, int fd, rill_pipeline **pout) {
    rill_pipeline *p;
    rill_stage *src, *pr;
    int rc = rill_pipeline_new("t", &p);
    if (rc == 0 && (rc = rill_lines_file_add(p, "src", in, NULL, NULL, &src)) == 0 &&
        (rc = rill_print_add(p, "print", fd, NULL, &pr)) == 0 &&
        (rc = rill_connect(src, pr)) == 0)
        rc = rill_pipeline_run(p);
    *pout = p;
    return rc;
}

static bool write_file(const char *path, const void *d, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(d, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

RILL_TEST(print, writes_exactly_the_lines_to_a_file) {
    size_t n;
    char *d = make_input(&n);
    CHECK(d);
    char in[512], out[512];
    tmp_path(in, sizeof in, "in");
    tmp_path(out, sizeof out, "out");
    for (int final_nl = 1; final_nl >= 0; final_nl--) {
        CHECK(write_file(in, d, n - !final_nl)); /* print adds the missing '\n' */
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        CHECK(fd >= 0);
        rill_pipeline *p;
        CHECK_OK(lines_to_print(in, fd, &p));
        rill_pipeline_free(p);
        close(fd);
        FILE *f = fopen(out, "rb");
        CHECK(f);
        char *got = malloc(n + 1);
        size_t k = fread(got, 1, n + 1, f);
        fclose(f);
        CHECK_EQ(k, n);
        CHECK(memcmp(got, d, n) == 0);
        free(got);
    }
    unlink(in);
    unlink(out);
    free(d);
}

typedef struct reader {
    int fd;
    char *buf;
    size_t len, cap;
} reader;

static void *reader_main(void *arg) {
    reader *r = arg;
    ssize_t k;
    while (r->len < r->cap && (k = read(r->fd, r->buf + r->len, r->cap - r->len)) != 0) {
        if (k < 0 && errno != EINTR)
            break;
        if (k > 0)
            r->len += (size_t)k;
    }
    return NULL;
}

RILL_TEST(print, writes_exactly_the_lines_to_a_pipe) {
    size_t n;
    char *d = make_input(&n);
    CHECK(d);
    char in[512];
    tmp_path(in, sizeof in, "pin");
    CHECK(write_file(in, d, n));
    int fds[2];
    CHECK(pipe(fds) == 0);
    reader r = {.fd = fds[0], .buf = malloc(n + 1), .cap = n + 1};
    pthread_t t;
    CHECK(r.buf && pthread_create(&t, NULL, reader_main, &r) == 0);
    rill_pipeline *p;
    int rc = lines_to_print(in, fds[1], &p);
    rill_pipeline_free(p);
    close(fds[1]); /* EOF for the reader */
    pthread_join(t, NULL);
    close(fds[0]);
    unlink(in);
    CHECK_OK(rc);
    CHECK_EQ(r.len, n);
    CHECK(memcmp(r.buf, d, n) == 0);
    free(r.buf);
    free(d);
}

RILL_TEST(print, closed_pipe_fails_with_epipe) {
    signal(SIGPIPE, SIG_IGN);
    char in[512];
    tmp_path(in, sizeof in, "epipe");
    size_t n;
    char *d = make_input(&n);
    CHECK(d && write_file(in, d, n));
    free(d);
    int fds[2];
    CHECK(pipe(fds) == 0);
    close(fds[0]);
    rill_pipeline *p;
    CHECK_EQ(lines_to_print(in, fds[1], &p), -EPIPE); /* fails while sending */
    unlink(in);
    CHECK_EQ(rill_pipeline_status(p), -EPIPE);
    CHECK_STREQ(rill_pipeline_errstage(p), "print");
    char want[64];
    snprintf(want, sizeof want, "cannot write to fd %d", fds[1]);
    CHECK(strstr(rill_pipeline_errmsg(p), want));
    rill_pipeline_free(p);

    /* A few short items fit the buffer: the error comes from the flush at close. */
    rill_stage *pr;
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_print_add(p, "print", fds[1], NULL, &pr));
    rill_item w = rill_item_cstr("hello");
    CHECK_OK(rill_pipeline_push(p, pr, &w));
    CHECK_EQ(rill_pipeline_close(p), -EPIPE);
    CHECK_STREQ(rill_pipeline_errstage(p), "print");
    rill_pipeline_free(p);
    close(fds[1]);
}
