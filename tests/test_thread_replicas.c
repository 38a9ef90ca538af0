/* Replicated stages (rill_stage_opts.replicas): random chains of groups of
 * random widths (pairwise, dealt, fanned in), threaded or not, at queue
 * capacities 1, 2, 64 and 4096, conserve the count and the sum of the ids
 * at every stage (summed over its replicas) and in a merged reducer; items
 * dealt by key always meet the same replica, and reach every replica even
 * from a weak hash; count's merge is exact; a group is added and connected
 * whole or not at all. Stopping early: test_thread_replicas_stop.c.
 * Expected figures are computed from the ids and the graph alone. A
 * failure prints the seed. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replica_util.h"
#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { MAXL = 6 };

/* Random chains per capacity: fewer under ThreadSanitizer (each run is ten
 * times slower there, and CI gives a test 120 s). */
#if defined(__SANITIZE_THREAD__)
#define SEEDS 5
#else
#define SEEDS 12
#endif

/* ---- random chains --------------------------------------------------------- */

/* source (width w0) -> L stages of random widths and filters -> a merged
 * reducer, plus a second reducer fed by a random middle stage (fan-out). */
static void run_chain(uint64_t seed, unsigned capacity, int *ok) {
    uint64_t rs = seed;
    unsigned nids = 500 + (unsigned)(rng_next(&rs) % 3000);
    unsigned L = 1 + (unsigned)(rng_next(&rs) % (MAXL - 1));
    rill_pipeline *p = NULL;
    *ok = 0;
    if (rill_pipeline_new("replicas", &p))
        return;
    rill_stage_opts o = {.capacity = capacity, .batch = 1 + (unsigned)(rng_next(&rs) % 64)};
    o.replicas = 1 + (unsigned)(rng_next(&rs) % 4);
    src_state *src = calloc(1, sizeof *src);
    src->n = nids;
    rill_stage *prev = NULL, *st[MAXL], *red = NULL, *red2 = NULL;
    unsigned mod[MAXL];
    int rc = rill_stage_add(p, "src", &src_ops, src, &o, &prev);
    char name[32];
    for (unsigned i = 0; i < L && !rc; i++) {
        sum_state *s = calloc(1, sizeof *s);
        s->modulus = mod[i] = rng_next(&rs) % 3 ? 0 : 2 + (unsigned)(rng_next(&rs) % 5);
        rill_stage_opts so = o;
        so.replicas = 1 + (unsigned)(rng_next(&rs) % 4);
        so.flags = rng_next(&rs) % 3 == 0 ? RILL_STAGE_THREADED : 0;
        so.batch = 1 + (unsigned)(rng_next(&rs) % 64);
        snprintf(name, sizeof name, "s%u", i);
        rc = rill_stage_add(p, name, rng_next(&rs) % 4 == 0 ? &keyed_ops : &pass_ops, s, &so,
                            &st[i]);
        if (rc)
            free(s);
        else
            rc = rill_connect(prev, st[i]);
        prev = st[i];
    }
    unsigned tap = (unsigned)(rng_next(&rs) % L);
    for (unsigned r = 0; r < 2 && !rc; r++) {
        sum_state *s = calloc(1, sizeof *s);
        rill_stage_opts so = o;
        so.replicas = 1 + (unsigned)(rng_next(&rs) % 4);
        rc = rill_stage_add(p, r ? "red2" : "red", &merged_ops, s, &so, r ? &red2 : &red);
        if (rc)
            free(s);
        else
            rc = rill_connect(r ? st[tap] : prev, r ? red2 : red);
    }
    if (rc) {
        rill_test__failf(__FILE__, __LINE__, "seed %llu: build: %s", (unsigned long long)seed,
                         rill_strerror(rc));
        rill_pipeline_free(p);
        return;
    }
    rc = rill_pipeline_run(p);
    /* Expected, from the ids alone: every stage sees the ids that passed
     * every filter before it. */
    uint64_t want_n[MAXL + 1] = {0}, want_sum[MAXL + 1] = {0};
    for (unsigned id = 0; id < nids; id++)
        for (unsigned i = 0; i <= L; i++) {
            want_n[i]++;
            want_sum[i] += id;
            if (i < L && mod[i] && id % mod[i] == 0)
                break;
        }
    int good = rc == 0 && rill_pipeline_discarded(p) == 0;
    for (unsigned i = 0; i < L && good; i++) {
        uint64_t n, sum;
        group_totals(st[i], &n, &sum);
        good = n == want_n[i] && sum == want_sum[i];
        if (!good)
            rill_test__failf(__FILE__, __LINE__, "seed %llu cap %u: stage s%u saw %llu/%llu, "
                             "want %llu/%llu", (unsigned long long)seed, capacity, i,
                             (unsigned long long)n, (unsigned long long)sum,
                             (unsigned long long)want_n[i], (unsigned long long)want_sum[i]);
    }
    /* The reducers: merged into replica 0, whatever their width. */
    const sum_state *r1 = rill_stage_state(red), *r2 = rill_stage_state(red2);
    if (good && (r1->n != want_n[L] || r1->sum != want_sum[L] || r2->n != want_n[tap + 1] ||
                 r2->sum != want_sum[tap + 1])) {
        good = 0;
        rill_test__failf(__FILE__, __LINE__, "seed %llu cap %u: merged %llu/%llu and %llu/%llu",
                         (unsigned long long)seed, capacity, (unsigned long long)r1->n,
                         (unsigned long long)r1->sum, (unsigned long long)r2->n,
                         (unsigned long long)r2->sum);
    }
    /* Keyed groups: no key class seen by two replicas. */
    for (unsigned i = 0; i < L && good; i++) {
        if (rill_stage_ops_of(st[i]) != &keyed_ops)
            continue;
        uint64_t seen = 0;
        rill_stage *r;
        for (unsigned k = 0; (r = rill_stage_replica(st[i], k)) != NULL && good; k++) {
            uint64_t mine = ((const sum_state *)rill_stage_state(r))->keys_seen;
            good = (seen & mine) == 0;
            seen |= mine;
        }
        if (!good)
            rill_test__failf(__FILE__, __LINE__, "seed %llu: a key met two replicas of s%u",
                             (unsigned long long)seed, i);
    }
    if (rc)
        rill_test__failf(__FILE__, __LINE__, "seed %llu cap %u: run: %s",
                         (unsigned long long)seed, capacity, rill_pipeline_errmsg(p));
    rill_pipeline_free(p);
    *ok = good;
}

RILL_TEST(replicas, random_chains_conserve_count_and_sum) {
    static const unsigned caps[] = {1, 2, 64, 4096};
    for (unsigned c = 0; c < 4; c++)
        for (uint64_t seed = 1; seed <= SEEDS; seed++) {
            int ok;
            run_chain(seed * 7919 + c, caps[c], &ok);
            CHECK(ok);
        }
}

/* ---- count's merge ------------------------------------------------------- */

static void run_count(bool keyed, unsigned width, unsigned srcw, int *ok) {
    *ok = 0;
    rill_pipeline *p = NULL;
    if (rill_pipeline_new("count", &p))
        return;
    rill_stage_opts o = {.replicas = srcw};
    src_state *src = calloc(1, sizeof *src);
    src->n = MAXIDS;
    rill_stage *s = NULL, *c = NULL;
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, &o, &s));
    rill_stage_opts co = {.replicas = width, .batch = 16};
    CHECK_OK(keyed ? rill_count_keyed_add(p, "count", NULL, NULL, &co, &c)
                   : rill_count_add(p, "count", NULL, NULL, &co, &c));
    CHECK_OK(rill_connect(s, c));
    CHECK_OK(rill_pipeline_run(p));
    /* Each id (8 bytes, its own key) counted once, whichever replica. */
    size_t keys = 0;
    uint64_t total = 0;
    CHECK_OK(rill_count_size(c, &keys, &total));
    CHECK_EQ(keys, MAXIDS);
    CHECK_EQ(total, MAXIDS);
    for (unsigned i = 0; i < MAXIDS; i += 97) {
        uint64_t n = 0;
        CHECK_OK(rill_count_get(c, &ids[i], sizeof ids[i], &n));
        CHECK_EQ(n, 1);
    }
    rill_pipeline_free(p);
    *ok = 1;
}

RILL_TEST(replicas, count_shares_merge_exactly) {
    for (unsigned w = 1; w <= 5; w += 2)
        for (unsigned sw = 1; sw <= 5; sw += 2) {
            int ok = 0;
            run_count(false, w, sw, &ok);
            CHECK(ok);
            run_count(true, w, sw, &ok);
            CHECK(ok);
        }
}

/* Repeated keys: the sum of the shares per key, dealt round robin. */
RILL_TEST(replicas, count_merge_adds_repeated_keys) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("repeat", &p));
    rill_stage *c = NULL;
    rill_stage_opts co = {.replicas = 3, .batch = 1, .flags = RILL_STAGE_THREADED};
    CHECK_OK(rill_count_add(p, "count", NULL, NULL, &co, &c));
    rill_stage *b = NULL;
    CHECK_OK(rill_broadcast_add(p, "in", NULL, &b));
    CHECK_OK(rill_connect(b, c));
    static const char *const words[] = {"a", "bb", "a", "ccc", "a", "bb", "", "a"};
    for (unsigned r = 0; r < 1000; r++)
        for (unsigned i = 0; i < 8; i++) {
            rill_item it = rill_item_static(words[i], strlen(words[i]));
            CHECK_OK(rill_pipeline_push(p, b, &it));
        }
    CHECK_OK(rill_pipeline_close(p));
    uint64_t n = 0;
    CHECK_OK(rill_count_get(c, "a", 1, &n));
    CHECK_EQ(n, 4000);
    CHECK_OK(rill_count_get(c, "bb", 2, &n));
    CHECK_EQ(n, 2000);
    CHECK_OK(rill_count_get(c, "", 0, &n));
    CHECK_EQ(n, 1000);
    size_t keys;
    CHECK_OK(rill_count_size(c, &keys, NULL));
    CHECK_EQ(keys, 4);
    rill_pipeline_free(p);
}

/* ---- the API's edges ----------------------------------------------------- */

RILL_TEST(replicas, add_checks_and_names_each_replica) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("api", &p));
    static const rill_stage_ops no_clone = {.send = sum_send};
    rill_stage_opts o = {.replicas = 3};
    rill_stage *st = NULL;
    CHECK_EQ(rill_stage_add(p, "x", &no_clone, NULL, &o, &st), RILL_EINVAL);
    o.replicas = RILL_MAX_REPLICAS + 1;
    CHECK_EQ(rill_stage_add(p, "x", &pass_ops, NULL, &o, &st), RILL_EINVAL);
    CHECK_EQ(rill_stage_add_new(p, "x", &pass_ops, 8, &(rill_stage_opts){.replicas = 2}, &st),
             RILL_EINVAL);
    /* A taken replica name refuses the whole group, and keeps nothing. */
    CHECK_OK(rill_stage_add(p, "y#2", &pass_ops, calloc(1, sizeof(sum_state)), NULL, NULL));
    o.replicas = 3;
    sum_state *s = calloc(1, sizeof *s);
    CHECK_EQ(rill_stage_add(p, "y", &pass_ops, s, &o, &st), RILL_EEXIST);
    CHECK(rill_pipeline_find(p, "y") == NULL);
    CHECK_OK(rill_stage_add(p, "z", &pass_ops, s, &o, &st));
    unsigned k = 9;
    CHECK_EQ(rill_stage_replicas(st, &k), 3);
    CHECK_EQ(k, 0);
    CHECK(rill_pipeline_find(p, "z#2") == rill_stage_replica(st, 2));
    CHECK_EQ(rill_stage_replicas(rill_pipeline_find(p, "z#2"), &k), 3);
    CHECK_EQ(k, 2);
    CHECK(rill_stage_replica(st, 3) == NULL);
    /* Pushing into a group: not an entry (connect a stage in front). */
    rill_item it = rill_item_static("q", 1);
    CHECK_EQ(rill_pipeline_push(p, st, &it), RILL_EINVAL);
    rill_pipeline_free(p);
}

/* ---- built-in stages replicate ---------------------------------------------- */

static int plus_one(const rill_item *in, rill_item *out, void *arg) {
    (void)arg;
    uint64_t id;
    memcpy(&id, in->data, sizeof id);
    if (id + 1 >= MAXIDS)
        return 1; /* skip: no id to point at */
    *out = rill_item_static(&ids[id + 1], sizeof ids[0]);
    return 0;
}

static int by_parity(const rill_item *item, unsigned nports, void *arg) {
    (void)arg;
    uint64_t id;
    memcpy(&id, item->data, sizeof id);
    return (int)(id % 2 % nports);
}

/* src (3) -> map (3, paired) -> selector (2, dealt) -> even / odd sums
 * (merged, 2 and 1 replicas). */
RILL_TEST(replicas, map_and_selector_replicate) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("builtin", &p));
    rill_stage_opts three = {.replicas = 3}, two = {.replicas = 2};
    src_state *src = calloc(1, sizeof *src);
    src->n = 5000;
    rill_stage *s, *m, *sel, *even, *odd;
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, &three, &s));
    CHECK_OK(rill_map_add(p, "map", plus_one, NULL, &three, &m));
    rill_selector_spec spec = {.select = by_parity};
    CHECK_OK(rill_selector_add(p, "sel", &spec, &two, &sel));
    CHECK_OK(rill_stage_add(p, "even", &merged_ops, calloc(1, sizeof(sum_state)), &two, &even));
    CHECK_OK(rill_stage_add(p, "odd", &merged_ops, calloc(1, sizeof(sum_state)), NULL, &odd));
    CHECK_OK(rill_connect(s, m));
    CHECK_OK(rill_connect(m, sel));
    CHECK_OK(rill_connect(sel, even));
    CHECK_OK(rill_connect(sel, odd));
    CHECK_OK(rill_pipeline_run(p));
    uint64_t wn[2] = {0}, ws[2] = {0};
    for (uint64_t id = 1; id <= 5000; id++) {
        wn[id % 2]++;
        ws[id % 2] += id;
    }
    const sum_state *e = rill_stage_state(even), *o = rill_stage_state(odd);
    CHECK_EQ(e->n, wn[0]);
    CHECK_EQ(e->sum, ws[0]);
    CHECK_EQ(o->n, wn[1]);
    CHECK_EQ(o->sum, ws[1]);
    rill_pipeline_free(p);
}

RILL_TEST(replicas, keyed_and_merged_shares_hold_disjoint_keys) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("keyedmerge", &p));
    src_state *src = calloc(1, sizeof *src);
    src->n = MAXIDS;
    rill_stage *s, *c;
    rill_stage_opts o = {.replicas = 4, .batch = 32};
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, &(rill_stage_opts){.replicas = 2}, &s));
    CHECK_OK(rill_stage_add(p, "k", &keyed_merged_ops, calloc(1, sizeof(sum_state)), &o, &c));
    CHECK_OK(rill_connect(s, c));
    CHECK_OK(rill_pipeline_run(p));
    uint64_t seen = 0;
    for (unsigned k = 0; k < 4; k++) {
        uint64_t mine = ((const sum_state *)rill_stage_state(rill_stage_replica(c, k)))->keys_seen;
        CHECK((seen & mine) == 0);
        seen |= mine;
    }
    CHECK(seen == UINT64_MAX);
    const sum_state *r0 = rill_stage_state(c);
    CHECK_EQ(r0->n, MAXIDS);
    CHECK_EQ(r0->sum, (uint64_t)MAXIDS * (MAXIDS - 1) / 2);
    rill_pipeline_free(p);
}

/* A clone that fails part-way refuses the whole group: nothing is kept,
 * the clones made are freed (ASan's leak check), errmsg names the replica,
 * and the name can be used again. */
static int clones_left;

static int clone_twice(const void *state, void **out) {
    if (clones_left-- <= 0)
        return RILL_ENOMEM;
    return sum_clone(state, out);
}

static const rill_stage_ops flaky_ops = {.send = sum_send, .free = free, .clone = clone_twice};

RILL_TEST(replicas, a_failing_clone_keeps_nothing) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("clone", &p));
    sum_state *s = calloc(1, sizeof *s);
    rill_stage *st = NULL;
    clones_left = 2;
    CHECK_EQ(rill_stage_add(p, "f", &flaky_ops, s, &(rill_stage_opts){.replicas = 4}, &st),
             RILL_ENOMEM);
    CHECK(st == NULL);
    CHECK(rill_pipeline_find(p, "f") == NULL && rill_pipeline_find(p, "f#1") == NULL);
    CHECK(strstr(rill_pipeline_errmsg(p), "replica 3") != NULL);
    clones_left = 3;
    CHECK_OK(rill_stage_add(p, "f", &flaky_ops, s, &(rill_stage_opts){.replicas = 4}, &st));
    CHECK_EQ(rill_stage_replicas(st, NULL), 4);
    rill_pipeline_free(p);
}

/* A key hash with few varying bits (here the key itself, 0..63) still
 * spreads keys over every replica, each key on one. */
static uint64_t small_hash(const void *state, const rill_item *item) {
    (void)state;
    uint64_t id;
    memcpy(&id, item->data, sizeof id);
    return id % 64;
}

static const rill_stage_ops small_hash_ops = {
    .send = sum_send, .free = free, .clone = sum_clone, .hash = small_hash};

RILL_TEST(replicas, a_weak_key_hash_reaches_every_replica) {
    rill_pipeline *p = NULL;
    CHECK_OK(rill_pipeline_new("weak", &p));
    src_state *src = calloc(1, sizeof *src);
    src->n = 6400;
    rill_stage *s, *c;
    CHECK_OK(rill_stage_add(p, "src", &src_ops, src, NULL, &s));
    CHECK_OK(rill_stage_add(p, "k", &small_hash_ops, calloc(1, sizeof(sum_state)),
                            &(rill_stage_opts){.replicas = 4}, &c));
    CHECK_OK(rill_connect(s, c));
    CHECK_OK(rill_pipeline_run(p));
    uint64_t seen = 0, n = 0;
    for (unsigned k = 0; k < 4; k++) {
        const sum_state *r = rill_stage_state(rill_stage_replica(c, k));
        CHECK(r->n > 0); /* 64 keys over 4 replicas: none left out */
        CHECK((seen & r->keys_seen) == 0);
        seen |= r->keys_seen;
        n += r->n;
    }
    CHECK_EQ(n, 6400);
    rill_pipeline_free(p);
}
