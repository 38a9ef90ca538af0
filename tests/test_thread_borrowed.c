/* Threading never changes a result: borrowed items (owner NULL) are copied
 * when they cross to another thread, static ones are kept by pointer, owned
 * ones by one reference per owner; the tests' library (RILL_DEBUG) reports a
 * static item whose bytes change while queued. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

static uint64_t fnv(const void *p, size_t len) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < len; i++)
        h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211u;
    return h;
}

/* What a stream of items adds up to, whatever their order: count, bytes and
 * the sum of each item's hash. */
typedef struct tally {
    uint64_t n, bytes, sum;
} tally;

static void tally_add(tally *t, const void *p, size_t len) {
    t->n++;
    t->bytes += len;
    t->sum += fnv(p, len);
}

static int tally_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    tally_add(state, it->data, it->len);
    return 0;
}
static const rill_stage_ops tally_ops = {.send = tally_send};

/* The input: the sample log read with getline into one reused buffer, then
 * lines longer than a batch's first arena (4 KiB), so that it grows with
 * items already copied into it, and one of 1.5 MiB (an arena that large is
 * freed when its batch comes back). Each line is handed to fn before the
 * buffer is overwritten. */
typedef int (*line_fn)(void *arg, char *line, size_t len);

static int each_line(line_fn fn, void *arg) {
    FILE *f = fopen(RILL_DATA_DIR "/apache_logs", "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;
    while (!rc && (n = getline(&line, &cap, f)) > 0)
        rc = fn(arg, line, (size_t)n - (line[n - 1] == '\n'));
    fclose(f);
    for (int k = 0; !rc && k < 40; k++) {
        size_t len = k == 20 ? 3u << 19 : 1000 + (size_t)k * 997 % 9000;
        char *big = realloc(line, len);
        if (!big)
            break;
        line = big;
        for (size_t i = 0; i < len; i++)
            line[i] = (char)('a' + (i * 7 + (size_t)k) % 26);
        rc = fn(arg, line, len);
    }
    free(line);
    return rc;
}

static int expect_line(void *arg, char *line, size_t len) {
    tally_add(arg, line, len);
    return 0;
}

typedef struct pusher {
    rill_pipeline *p;
    rill_stage *entry;
} pusher;

/* Push the borrowed line, then wreck the buffer as the next getline would. */
static int push_line(void *arg, char *line, size_t len) {
    pusher *u = arg;
    rill_item it = rill_item_borrow(line, len);
    int rc = rill_pipeline_push(u->p, u->entry, &it);
    memset(line, '#', len);
    return rc;
}

enum { INLINE, THREADED, CHAIN };

/* push -> [broadcast, THREADED when CHAIN] -> tally, with small batches. */
static int run_pushed(int shape, tally *got) {
    rill_pipeline *p;
    rill_stage *entry, *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 64, .batch = 7};
    int rc = rill_pipeline_new("borrowed", &p);
    if (!rc)
        rc = rill_stage_add(p, "tally", &tally_ops, got, shape == INLINE ? NULL : &th, &sink);
    entry = sink;
    if (!rc && shape == CHAIN && !(rc = rill_broadcast_add(p, "hop", &th, &entry)))
        rc = rill_connect(entry, sink);
    pusher u = {p, entry};
    if (!rc)
        rc = each_line(push_line, &u);
    int crc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    return rc ? rc : crc;
}

RILL_TEST(borrowed, reused_buffer_pushed_gives_the_same_result_on_every_thread) {
    tally want = {0};
    CHECK_OK(each_line(expect_line, &want));
    CHECK(want.n > 10000);
    for (int shape = INLINE; shape <= CHAIN; shape++) {
        tally got = {0};
        CHECK_OK(run_pushed(shape, &got));
        CHECK_EQ(got.n, want.n);
        CHECK_EQ(got.bytes, want.bytes);
        CHECK_EQ(got.sum, want.sum);
    }
}

/* A pipeline with one stage, "sink", fed by rill_pipeline_push. */
static int sink_pipeline(const rill_stage_ops *ops, void *state, const rill_stage_opts *o,
                         rill_pipeline **p, rill_stage **sink) {
    int rc = rill_pipeline_new("t", p);
    return rc ? rc : rill_stage_add(*p, "sink", ops, state, o, sink);
}

/* ---- what crosses by pointer -------------------------------------------------- */

typedef struct seen {
    const void *data[8];
    int n;
} seen;

static int seen_send(rill_stage *st, void *state, const rill_item *it) {
    seen *s = state;
    (void)st;
    if (s->n < 8)
        s->data[s->n++] = it->data;
    return 0;
}
static const rill_stage_ops seen_ops = {.send = seen_send};

RILL_TEST(borrowed, static_items_cross_by_pointer_borrowed_ones_are_copied) {
    static const char *const words[] = {"alpha", "beta", "gamma"};
    char buf[] = "delta";
    seen s = {0};
    rill_pipeline *p;
    rill_stage *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(sink_pipeline(&seen_ops, &s, &th, &p, &sink));
    for (int i = 0; i < 3; i++) {
        rill_item it = rill_item_cstr(words[i]);
        CHECK_OK(rill_pipeline_push(p, sink, &it));
    }
    rill_item b = rill_item_borrow(buf, 5), empty = rill_item_borrow(buf, 0);
    CHECK_OK(rill_pipeline_push(p, sink, &b));
    CHECK_OK(rill_pipeline_push(p, sink, &empty));
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    CHECK_EQ(s.n, 5);
    for (int i = 0; i < 3; i++)
        CHECK(s.data[i] == (const void *)words[i]);
    CHECK(s.data[3] != (const void *)buf);
    CHECK(s.data[4] != (const void *)buf); /* even with no bytes */
}

/* ---- owned items: one reference per owner per batch, all given back ------------ */

typedef struct tracked {
    rill_ref ref;
    int *released;
    char bytes[64];
} tracked;

static void tracked_release(rill_ref *r) {
    tracked *t = RILL_CONTAINER_OF(r, tracked, ref);
    (*t->released)++;
    free(t);
}

RILL_TEST(borrowed, owned_items_cross_by_reference_and_are_released_once) {
    int released = 0;
    tally want = {0}, got = {0};
    rill_pipeline *p;
    rill_stage *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 16, .batch = 4};
    CHECK_OK(sink_pipeline(&tally_ops, &got, &th, &p, &sink));
    for (int k = 0; k < 50; k++) {
        tracked *t = malloc(sizeof *t);
        CHECK(t != NULL);
        rill_ref_init(&t->ref, tracked_release);
        t->released = &released;
        int len = snprintf(t->bytes, sizeof t->bytes, "object %d", k);
        for (int i = 0; i < 1 + k % 9; i++) { /* runs of items of one owner */
            rill_item it = {t->bytes + i % 3, (size_t)len - i % 3, &t->ref};
            tally_add(&want, it.data, it.len);
            CHECK_OK(rill_pipeline_push(p, sink, &it));
        }
        rill_ref_release(&t->ref); /* the queue holds what it needs */
    }
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(released, 50);
    rill_pipeline_free(p);
    CHECK_EQ(released, 50);
    CHECK_EQ(got.n, want.n);
    CHECK_EQ(got.sum, want.sum);
}

/* ---- RILL_DEBUG: a static item changed while queued ------------------------------ */

RILL_TEST(borrowed, debug_check_names_a_pushed_static_item_that_changed) {
    char buf[] = "stable";
    tally got = {0};
    rill_pipeline *p;
    rill_stage *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED};
    CHECK_OK(sink_pipeline(&tally_ops, &got, &th, &p, &sink));
    rill_item it = rill_item_static(buf, 6); /* a lie: buf changes */
    CHECK_OK(rill_pipeline_push(p, sink, &it));
    buf[0] = 'S'; /* still in this thread's partial batch: no race */
    CHECK_EQ(rill_pipeline_close(p), RILL_ESTAGE);
    const char *msg = rill_pipeline_errmsg(p);
    CHECK(strstr(msg, "stage 'sink'") && strstr(msg, "static item") &&
          strstr(msg, "changed while queued"));
    CHECK_EQ(got.n, 0); /* the changed batch is not delivered */
    rill_pipeline_free(p);
}

/* A source that emits its state's buffer as static, then rewrites it. */
typedef struct liar {
    char buf[16];
    int n;
} liar;

static int liar_produce(rill_stage *st, void *state) {
    liar *l = state;
    if (l->n == 3)
        return RILL_EDONE;
    int len = snprintf(l->buf, sizeof l->buf, "value %d", l->n++);
    rill_item it = rill_item_static(l->buf, (size_t)len);
    return rill_emit(st, &it);
}
static const rill_stage_ops liar_ops = {.produce = liar_produce};

RILL_TEST(borrowed, debug_check_blames_the_stage_that_emitted_a_changed_static_item) {
    liar l = {0};
    tally got = {0};
    rill_pipeline *p;
    rill_stage *src, *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .max_latency_us = 1000000};
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "liar", &liar_ops, &l, NULL, &src));
    CHECK_OK(rill_stage_add(p, "sink", &tally_ops, &got, &th, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_EQ(rill_pipeline_run(p), RILL_ESTAGE);
    const char *msg = rill_pipeline_errmsg(p);
    CHECK(strstr(msg, "stage 'liar'") && strstr(msg, "to 'sink'") &&
          strstr(msg, "changed while queued"));
    CHECK_STREQ(rill_pipeline_errstage(p), "liar");
    rill_pipeline_free(p);
}

/* ---- copies are aligned as objects of their size --------------------------------- */

typedef struct aligned {
    int n, misaligned;
} aligned;

static int aligned_send(rill_stage *st, void *state, const rill_item *it) {
    aligned *a = state;
    size_t want = it->len & -it->len;
    want = want < 16 ? want : 16;
    (void)st;
    a->n++;
    a->misaligned += (uintptr_t)it->data % want != 0;
    return 0;
}
static const rill_stage_ops aligned_ops = {.send = aligned_send};

RILL_TEST(borrowed, copies_are_aligned_for_their_size) {
    static const size_t lens[] = {1, 2, 3, 4, 8, 12, 16, 24, 32, 5, 48, 7, 64, 6};
    char buf[80] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123";
    aligned a = {0};
    rill_pipeline *p;
    rill_stage *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .batch = 5};
    CHECK_OK(sink_pipeline(&aligned_ops, &a, &th, &p, &sink));
    int pushed = 0;
    for (int round = 0; round < 300; round++) /* past the first arena: it grows */
        for (size_t i = 0; i < sizeof lens / sizeof *lens; i++, pushed++) {
            rill_item it = rill_item_borrow(buf + 1, lens[i]); /* odd address */
            CHECK_OK(rill_pipeline_push(p, sink, &it));
        }
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    CHECK_EQ(a.n, pushed);
    CHECK_EQ(a.misaligned, 0);
}

/* ---- a leaky queue reuses a batch it took back: its copies stay whole ----------- */

/* "k:<k>:<k*k>": an item that says whether it is whole. */
static int item_of(char *buf, size_t cap, unsigned long k) {
    return snprintf(buf, cap, "k:%lu:%lu", k, k * k);
}

typedef struct checker {
    unsigned long n, bad, last, out_of_order;
} checker;

static int checker_send(rill_stage *st, void *state, const rill_item *it) {
    checker *c = state;
    char want[64], got[64];
    unsigned long k = 0;
    (void)st;
    if (it->len < sizeof got) { /* items are not NUL-terminated */
        memcpy(got, it->data, it->len);
        got[it->len] = '\0';
    }
    if (it->len < sizeof got && sscanf(got, "k:%lu", &k) == 1) {
        int len = item_of(want, sizeof want, k);
        c->bad += !rill_item_eq(it, want, (size_t)len);
    } else {
        c->bad++;
    }
    c->out_of_order += c->n && k <= c->last;
    c->last = k;
    c->n++;
    for (volatile int spin = 0; spin < 200; spin++) /* slower than the producer */
        ;
    return 0;
}
static const rill_stage_ops checker_ops = {.send = checker_send};

RILL_TEST(borrowed, drop_oldest_queue_delivers_whole_copies_in_order) {
    enum { N = 20000 };
    checker c = {0};
    rill_pipeline *p;
    rill_stage *sink;
    rill_stage_opts th = {.flags = RILL_STAGE_THREADED, .capacity = 16, .batch = 4,
                          .overflow = RILL_OVERFLOW_DROP_OLDEST};
    CHECK_OK(sink_pipeline(&checker_ops, &c, &th, &p, &sink));
    char buf[64];
    for (unsigned long k = 1; k <= N; k++) {
        int len = item_of(buf, sizeof buf, k);
        rill_item it = rill_item_borrow(buf, (size_t)len);
        CHECK_OK(rill_pipeline_push(p, sink, &it));
        memset(buf, '#', sizeof buf); /* as a reused buffer would be */
    }
    CHECK_OK(rill_pipeline_close(p));
    rill_pipeline_free(p);
    CHECK(c.n > 0 && c.n <= N);
    CHECK_EQ(c.bad, 0);
    CHECK_EQ(c.out_of_order, 0);
}

/* ---- dealt over replicas: each replica's queue copies too ------------------------ */

static int tally_clone(const void *state, void **out) {
    (void)state;
    return (*out = calloc(1, sizeof(tally))) ? 0 : RILL_ENOMEM;
}
static int tally_merge(void *into, const void *from) {
    tally *a = into;
    const tally *b = from;
    a->n += b->n;
    a->bytes += b->bytes;
    a->sum += b->sum;
    return 0;
}
static void tally_free(void *state) { free(state); }
static const rill_stage_ops tally_rep_ops = {.send = tally_send, .clone = tally_clone,
                                             .merge = tally_merge, .free = tally_free};

/* A source that emits the log's lines from one reused buffer, borrowed. */
typedef struct reader {
    rill_stage *st;
} reader;

static int emit_line(void *arg, char *line, size_t len) {
    reader *r = arg;
    rill_item it = rill_item_borrow(line, len);
    int rc = rill_emit(r->st, &it);
    memset(line, '#', len);
    return rc;
}
static int reader_produce(rill_stage *st, void *state) {
    reader *r = state;
    r->st = st;
    int rc = each_line(emit_line, r);
    return rc < 0 ? rc : RILL_EDONE;
}
static const rill_stage_ops reader_ops = {.produce = reader_produce};

RILL_TEST(borrowed, emitted_items_dealt_to_replicas_are_copied) {
    tally want = {0}, got, *mine = calloc(1, sizeof *mine); /* the pipeline frees it */
    CHECK(mine != NULL);
    CHECK_OK(each_line(expect_line, &want));
    reader r = {0};
    rill_pipeline *p;
    rill_stage *src, *sink;
    rill_stage_opts three = {.replicas = 3, .capacity = 64, .batch = 7};
    CHECK_OK(rill_pipeline_new("t", &p));
    CHECK_OK(rill_stage_add(p, "reader", &reader_ops, &r, NULL, &src));
    CHECK_OK(rill_stage_add(p, "tally", &tally_rep_ops, mine, &three, &sink));
    CHECK_OK(rill_connect(src, sink));
    CHECK_OK(rill_pipeline_run(p));
    got = *(tally *)rill_stage_state(sink); /* replica 0's, merged */
    rill_pipeline_free(p);
    CHECK_EQ(got.n, want.n);
    CHECK_EQ(got.bytes, want.bytes);
    CHECK_EQ(got.sum, want.sum);
}
