/* The count reducer's deltas at checkpoint barriers (rill_count_add_deltas):
 * at every barrier, the deltas emitted so far sum, key by key, to an
 * independent count of the items before that barrier; the totals after close
 * count every item; the default count stage is unchanged (no delta items).
 * One source or two (their items interleave at the reducer), inline or
 * threaded, the reducer and the collector inline or threaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { NKEYS = 37, MAXB = 512 };

static const char *const keys[NKEYS] = {
    "10.0.0.1", "10.0.0.2", "10.0.0.3", "a", "b", "c", "", "192.168.1.1", "x", "y",
    "z", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19",
    "k20", "k21", "k22", "k23", "k24", "k25", "k26", "k27", "k28", "k29",
    "k30", "k31", "k32", "k33", "k34", "k35", "k36"};

/* Item i of source s: a key skewed towards the first ones, from a seed. */
static unsigned key_of(unsigned s, uint64_t i) {
    uint64_t x = (uint64_t)s * 1000003u + i;
    uint64_t r = rng_next(&x);
    return (unsigned)((r % NKEYS) * (r >> 60) / 16 % NKEYS);
}

typedef struct src {
    unsigned tag;
    uint64_t n, k, next;
    bool end_with_barrier;
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    if (s->next >= s->n) {
        if (s->end_with_barrier && s->next % s->k)
            rill_emit_barrier(st, s->next / s->k + 1);
        return RILL_EDONE;
    }
    uint64_t i = s->next++;
    rill_item it = rill_item_cstr(keys[key_of(s->tag, i)]);
    int rc = rill_emit(st, &it);
    if (rc == 0 && s->next % s->k == 0)
        rc = rill_emit_barrier(st, s->next / s->k);
    return rc;
}

static const rill_stage_ops src_ops = {.produce = src_produce};

/* The collector: sums deltas per key and checks them at each barrier. */
typedef struct coll {
    src *srcs[2];
    unsigned nsrc;
    bool deltas; /* else no delta item may come */
    uint64_t sum[NKEYS], barriers, items;
    char why[160];
} coll;

static int coll_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    coll *c = state;
    const void *key;
    size_t len;
    uint64_t n;
    if (rill_count_delta_parse(item, &key, &len, &n) != 0) {
        snprintf(c->why, sizeof c->why, "not a delta item (%zu bytes)", item->len);
        return 0;
    }
    c->items++;
    for (unsigned k = 0; k < NKEYS; k++)
        if (strlen(keys[k]) == len && memcmp(keys[k], key, len) == 0) {
            c->sum[k] += n;
            return 0;
        }
    snprintf(c->why, sizeof c->why, "unknown key of %zu bytes", len);
    return 0;
}

static int coll_barrier(rill_stage *st, void *state, uint64_t id) {
    (void)st;
    coll *c = state;
    uint64_t want[NKEYS] = {0};
    for (unsigned s = 0; s < c->nsrc; s++) {
        uint64_t upto = id * c->srcs[s]->k;
        if (upto > c->srcs[s]->n)
            upto = c->srcs[s]->n;
        for (uint64_t i = 0; i < upto; i++)
            want[key_of(c->srcs[s]->tag, i)]++;
    }
    for (unsigned k = 0; k < NKEYS && c->deltas; k++)
        if (want[k] != c->sum[k] && !c->why[0])
            snprintf(c->why, sizeof c->why, "barrier %llu, key %u: deltas sum to %llu, want %llu",
                     (unsigned long long)id, k, (unsigned long long)c->sum[k],
                     (unsigned long long)want[k]);
    c->barriers++;
    return 0;
}

static const rill_stage_ops coll_ops = {.send = coll_send, .barrier = coll_barrier};

static void delta_case(unsigned nsrc, bool src_thr, bool count_thr, bool coll_thr, bool deltas,
                       bool end_barrier) {
    rill_pipeline *p;
    CHECK_OK(rill_pipeline_new("deltas", &p));
    src s[2] = {{.tag = 0, .n = 5000, .k = 97, .end_with_barrier = end_barrier},
                {.tag = 1, .n = 3000, .k = 97, .end_with_barrier = end_barrier}};
    coll c = {.srcs = {&s[0], &s[1]}, .nsrc = nsrc, .deltas = deltas};
    rill_stage_opts thr = {.flags = RILL_STAGE_THREADED, .capacity = 128};
    rill_stage *cnt, *cl, *ss[2];
    CHECK_OK((deltas ? rill_count_add_deltas : rill_count_add)(p, "count", NULL, NULL,
                                                              count_thr ? &thr : NULL, &cnt));
    CHECK_OK(rill_stage_add(p, "coll", &coll_ops, &c, coll_thr ? &thr : NULL, &cl));
    for (unsigned i = 0; i < nsrc; i++) {
        rill_stage_opts so = {.flags = src_thr ? RILL_STAGE_THREADED : 0};
        char nm[8];
        snprintf(nm, sizeof nm, "s%u", i);
        CHECK_OK(rill_stage_add(p, nm, &src_ops, &s[i], &so, &ss[i]));
        CHECK_OK(rill_connect(ss[i], cnt));
    }
    CHECK_OK(rill_connect(cnt, cl));
    CHECK_OK(rill_pipeline_run(p));
    if (c.why[0])
        rill_test__failf(__FILE__, __LINE__, "%s", c.why);
    CHECK(!c.why[0]);
    uint64_t all[NKEYS] = {0}, total = 0;
    for (unsigned i = 0; i < nsrc; i++)
        for (uint64_t j = 0; j < s[i].n; j++, total++)
            all[key_of(s[i].tag, j)]++;
    for (unsigned k = 0; k < NKEYS; k++) {
        uint64_t got;
        CHECK_OK(rill_count_get(cnt, keys[k], strlen(keys[k]), &got));
        CHECK_EQ(got, all[k]);
        if (!deltas)
            CHECK_EQ(c.sum[k], 0);
        else if (end_barrier)
            CHECK_EQ(c.sum[k], all[k]); /* every item is in some delta */
    }
    uint64_t t;
    CHECK_OK(rill_count_size(cnt, NULL, &t));
    CHECK_EQ(t, total);
    uint64_t most = end_barrier ? (s[0].n + s[0].k - 1) / s[0].k : s[0].n / s[0].k;
    CHECK_EQ(c.barriers, most);
    if (!deltas)
        CHECK_EQ(c.items, 0);
    rill_pipeline_free(p);
}

RILL_TEST(count_delta, deltas_sum_to_the_counts_before_each_barrier_inline) {
    delta_case(1, false, false, false, true, false);
    delta_case(1, false, false, false, true, true);
    delta_case(2, false, false, false, true, true);
}

RILL_TEST(count_delta, deltas_sum_to_the_counts_before_each_barrier_threaded) {
    delta_case(1, true, true, true, true, false);
    delta_case(2, true, true, false, true, true);
    delta_case(2, true, false, true, true, false);
    delta_case(1, false, false, true, true, true);
}

RILL_TEST(count_delta, default_count_stage_emits_no_delta) {
    delta_case(1, false, false, false, false, true);
    delta_case(2, true, true, false, false, false);
}

RILL_TEST(count_delta, parse_rejects_what_is_not_a_delta) {
    const void *key;
    size_t len;
    uint64_t n;
    rill_item it = rill_item_cstr("short");
    CHECK_EQ(rill_count_delta_parse(&it, &key, &len, &n), RILL_EINVAL);
    CHECK_EQ(rill_count_delta_parse(NULL, &key, &len, &n), RILL_EINVAL);
    unsigned char buf[11] = {0};
    uint64_t v = 42;
    memcpy(buf, &v, 8);
    memcpy(buf + 8, "abc", 3);
    it = rill_item_static(buf, sizeof buf);
    CHECK_OK(rill_count_delta_parse(&it, &key, &len, &n));
    CHECK_EQ(n, 42);
    CHECK_EQ(len, 3);
    CHECK(memcmp(key, "abc", 3) == 0);
}
