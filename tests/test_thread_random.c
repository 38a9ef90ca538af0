/* Threaded pipelines on random acyclic topologies: a seeded generator draws
 * 2-12 stages (1-3 sources or push entries first, then pass-through,
 * filter and duplicator stages, each fed by 1-3 lower-numbered stages, so
 * the graph is acyclic and has fan-out and fan-in), makes each stage threaded
 * or inline and draws its queue capacity (1..64 or default), batch (1..16 or
 * default) and latency. The test computes, from the graph alone, how often
 * every item id must reach every stage (a product of path counts, duplication
 * and the deterministic filters), then runs the pipeline and checks
 * conservation at every stage (count, sum and sum of squares of ids), that
 * close ran once per stage, after its last item and after all its producers,
 * on the thread the threading rules predict, that promotion happened exactly
 * where an inline stage is fed from two threads, and that nothing was
 * discarded or leaked. A failure prints the seed. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"

enum { MAXS = 12, MAXIN = 3, MAXK = 240, MAXIDS = 3 * MAXK, MAX_DELIVERIES = 12000 };

enum kind { K_SOURCE, K_PUSH, K_PASS, K_FILTER, K_DUP };

static uint64_t rnd(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static unsigned below(uint64_t *s, unsigned n) { return (unsigned)(rnd(s) % n); }

typedef struct topo topo;

typedef struct tnode {
    topo *t;
    unsigned idx;
    enum kind kind;
    uint64_t salt;     /* filter: drops id when mix(id ^ salt) % modulus == 0 */
    unsigned modulus;
    rill_stage_opts opts;
    unsigned nin, in[MAXIN]; /* producers, in connect order (repeats allowed) */
    unsigned yield_every;    /* sched_yield every this many items (0: never) */
    /* sources and push entries */
    unsigned k, next, chunk;
    uint64_t ids[MAXK];
    /* observed; written by the stage's own thread, read after close */
    uint64_t recv, sum, sumsq;
    int closes, emit_errs, first_err, late_sends, early_close, bad_len, wrong_thread;
    pthread_t tid;
    bool tid_set;
    rill_stage *st;
    /* expected */
    uint64_t exp_recv, exp_sum, exp_sumsq;
    bool exp_threaded;
    unsigned exp_domain;
} tnode;

struct topo {
    unsigned n, nsrc;
    bool owned;           /* items carry counted owners (one block per chunk) */
    atomic_long alive;    /* owner blocks not yet released */
    atomic_long made;     /* owner blocks made (sources may be threaded) */
    tnode node[MAXS];
};

/* ---- items: static (owner NULL, in the stage state) or counted blocks ---- */

typedef struct block {
    rill_ref ref; /* first member: release casts back */
    topo *t;
    uint64_t ids[];
} block;

static void block_release(rill_ref *r) {
    block *b = (block *)r;
    atomic_fetch_sub(&b->t->alive, 1);
    free(b);
}

/* Emit (or push) ids[from, from+n) of src; counted mode puts them in a fresh
 * block whose last reference goes when queues have delivered it. */
static int emit_ids(tnode *src, unsigned from, unsigned n, rill_pipeline *p) {
    block *b = NULL;
    if (src->t->owned) {
        b = malloc(sizeof *b + n * sizeof b->ids[0]);
        if (!b)
            return RILL_ENOMEM;
        rill_ref_init(&b->ref, block_release);
        b->t = src->t;
        memcpy(b->ids, src->ids + from, n * sizeof b->ids[0]);
        atomic_fetch_add(&src->t->made, 1);
        atomic_fetch_add(&src->t->alive, 1);
    }
    int rc = 0;
    for (unsigned i = 0; i < n && rc == 0; i++) {
        rill_item it = b ? (rill_item){&b->ids[i], 8, &b->ref}
                         : rill_item_static(&src->ids[from + i], 8);
        rc = p ? rill_pipeline_push(p, src->st, &it) : rill_emit(src->st, &it);
    }
    if (b)
        rill_item_release(&(rill_item){NULL, 0, &b->ref});
    return rc;
}

/* ---- stages ------------------------------------------------------------------ */

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    return x;
}

static bool keeps(const tnode *n, uint64_t id) {
    return n->kind != K_FILTER || mix(id ^ n->salt) % n->modulus != 0;
}

static unsigned factor(const tnode *n, uint64_t id) {
    return n->kind == K_DUP ? 2 : keeps(n, id) ? 1 : 0;
}

/* Callbacks of one stage never run concurrently and, with this engine, all
 * run on the one thread of the stage's domain. */
static void note_thread(tnode *n) {
    if (!n->tid_set) {
        n->tid = pthread_self();
        n->tid_set = true;
    } else if (!pthread_equal(n->tid, pthread_self())) {
        n->wrong_thread++;
    }
}

static int emit_one(tnode *n, const rill_item *it) {
    int rc = rill_emit(n->st, it);
    if (rc < 0 && n->emit_errs++ == 0)
        n->first_err = rc;
    return rc;
}

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st;
    tnode *n = state;
    note_thread(n);
    if (n->closes)
        n->late_sends++;
    uint64_t id = 0;
    if (it->len != 8)
        n->bad_len++;
    else
        memcpy(&id, it->data, 8);
    n->recv++;
    n->sum += id;
    n->sumsq += id * id;
    if (n->yield_every && n->recv % n->yield_every == 0)
        sched_yield();
    for (unsigned i = factor(n, id); i > 0; i--) {
        int rc = emit_one(n, it);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int node_produce(rill_stage *st, void *state) {
    (void)st;
    tnode *n = state;
    note_thread(n);
    if (n->next >= n->k)
        return RILL_EDONE;
    unsigned c = n->k - n->next < n->chunk ? n->k - n->next : n->chunk;
    int rc = emit_ids(n, n->next, c, NULL);
    if (rc < 0 && n->emit_errs++ == 0)
        n->first_err = rc;
    n->next += c;
    if (n->yield_every && n->next % n->yield_every == 0)
        sched_yield();
    return rc < 0 ? rc : 0;
}

/* Every producer must have closed before this stage is closed. Reading their
 * counters here is ordered by end of stream (same thread, or the queue's
 * hand-off): a missing order is a ThreadSanitizer report. */
static int node_close(rill_stage *st, void *state) {
    (void)st;
    tnode *n = state;
    note_thread(n);
    n->closes++;
    for (unsigned i = 0; i < n->nin; i++)
        if (n->t->node[n->in[i]].closes != 1)
            n->early_close++;
    return 0;
}

static const rill_stage_ops send_ops = {.send = node_send, .close = node_close};
static const rill_stage_ops source_ops = {.produce = node_produce, .close = node_close};

/* ---- generating a topology and what it must deliver ----------------------------- */

/* Per-id arrival counts at every stage, from the graph alone. Returns the
 * total number of deliveries. */
static uint64_t expect(topo *t) {
    static uint32_t cnt[MAXS][MAXIDS];
    memset(cnt, 0, sizeof cnt);
    uint64_t total = 0;
    unsigned ndomains = 0;
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        n->exp_recv = n->exp_sum = n->exp_sumsq = 0;
        bool threaded = n->opts.flags & RILL_STAGE_THREADED;
        if (j < t->nsrc) {
            n->exp_domain = threaded ? ++ndomains : 0;
            n->exp_threaded = threaded;
            for (unsigned x = 0; x < n->k && n->kind == K_PUSH; x++) {
                n->exp_recv++;
                n->exp_sum += n->ids[x];
                n->exp_sumsq += n->ids[x] * n->ids[x];
            }
            total += n->exp_recv;
            continue;
        }
        /* Threads: a threaded stage heads a domain; an inline one joins its
         * producers' domain if they share one, else it is promoted. */
        unsigned d = t->node[n->in[0]].exp_domain;
        bool mixed = false;
        for (unsigned i = 1; i < n->nin; i++)
            mixed |= t->node[n->in[i]].exp_domain != d;
        n->exp_threaded = threaded || mixed;
        n->exp_domain = n->exp_threaded ? ++ndomains : d;
        for (unsigned i = 0; i < n->nin; i++) {
            const tnode *from = &t->node[n->in[i]];
            for (unsigned s = 0; s < t->nsrc; s++)
                for (unsigned x = 0; x < t->node[s].k; x++) {
                    uint64_t id = t->node[s].ids[x];
                    uint32_t arriving = n->in[i] < t->nsrc
                                            ? (n->in[i] == s)
                                            : cnt[n->in[i]][s * MAXK + x] * factor(from, id);
                    cnt[j][s * MAXK + x] += arriving;
                    n->exp_recv += arriving;
                    n->exp_sum += arriving * id;
                    n->exp_sumsq += arriving * id * id;
                }
        }
        total += n->exp_recv;
    }
    return total;
}

static void generate(topo *t, uint64_t seed, bool owned) {
    uint64_t s = seed * 0x2545f4914f6cdd1du + 1;
    memset(t, 0, sizeof *t);
    t->owned = owned;
    atomic_init(&t->alive, 0);
    t->n = 2 + below(&s, MAXS - 1);
    t->nsrc = 1 + below(&s, t->n - 1 < 3 ? t->n - 1 : 3);
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        n->t = t;
        n->idx = j;
        if (below(&s, 2))
            n->opts.flags = RILL_STAGE_THREADED;
        n->opts.capacity = below(&s, 4) ? 1 + below(&s, 64) : 0;
        n->opts.batch = below(&s, 4) ? 1 + below(&s, 16) : 0;
        n->opts.max_latency_us = below(&s, 3) ? 0 : 1 + below(&s, 50);
        n->yield_every = below(&s, 4) ? 0 : 1 + below(&s, 8);
        if (j < t->nsrc) {
            n->kind = below(&s, 4) ? K_SOURCE : K_PUSH;
            if (n->kind == K_SOURCE && below(&s, 3))
                n->opts.flags = 0; /* most sources on the caller's thread */
            n->k = below(&s, 8) ? 1 + below(&s, MAXK) : below(&s, 3);
            n->chunk = 1 + below(&s, 32);
            for (unsigned x = 0; x < n->k; x++)
                n->ids[x] = (uint64_t)(j + 1) * 1000003u + x * 7u;
            continue;
        }
        unsigned r = below(&s, 10);
        n->kind = r < 4 ? K_PASS : r < 7 ? K_FILTER : K_DUP;
        n->salt = rnd(&s);
        n->modulus = 2 + below(&s, 3);
        unsigned r2 = below(&s, 10);
        n->nin = r2 < 6 ? 1 : r2 < 9 ? 2 : 3;
        for (unsigned i = 0; i < n->nin; i++)
            n->in[i] = below(&s, j);
    }
    /* Keep runs short: duplicators and repeated fan-in multiply paths. */
    while (expect(t) > MAX_DELIVERIES) {
        bool changed = false;
        for (unsigned j = t->n; j-- > t->nsrc && !changed;)
            if (t->node[j].kind == K_DUP) {
                t->node[j].kind = K_PASS;
                changed = true;
            }
        for (unsigned j = 0; j < t->nsrc && !changed; j++)
            t->node[j].k /= 2;
    }
}

static void describe(const topo *t, char *buf, size_t len) {
    static const char *kinds[] = {"source", "push", "pass", "filter", "dup"};
    size_t o = 0;
    for (unsigned j = 0; j < t->n && o < len; j++) {
        const tnode *n = &t->node[j];
        o += (size_t)snprintf(buf + o, len - o, " n%u=%s%s(c%u,b%u,k%u)<-", j, kinds[n->kind],
                              n->opts.flags ? "/T" : "", n->opts.capacity, n->opts.batch, n->k);
        for (unsigned i = 0; i < n->nin && o < len; i++)
            o += (size_t)snprintf(buf + o, len - o, "%u,", n->in[i]);
    }
}

/* ---- one run ---------------------------------------------------------------------- */

static bool failf(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool failf(char *why, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

static bool check_threaded(topo *t, const char *when, char *why, size_t len) {
    for (unsigned j = 0; j < t->n; j++)
        if (rill_stage_threaded(t->node[j].st) != t->node[j].exp_threaded)
            return failf(why, len, "%s: rill_stage_threaded(n%u) is %d, expected %d", when, j,
                         !t->node[j].exp_threaded, t->node[j].exp_threaded);
    return true;
}

/* Build, run, check; the pipeline is destroyed before returning. */
static bool run_once(topo *t, unsigned variant, char *why, size_t len) {
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        n->next = 0;
        n->recv = n->sum = n->sumsq = 0;
        n->closes = n->emit_errs = n->first_err = n->late_sends = 0;
        n->early_close = n->bad_len = n->wrong_thread = 0;
        n->tid_set = false;
    }
    atomic_store(&t->made, 0);
    rill_pipeline *p;
    if (rill_pipeline_new(&p, "random") != 0)
        return failf(why, len, "rill_pipeline_new failed");
    bool ok = true;
    char name[16];
    for (unsigned j = 0; j < t->n && ok; j++) {
        tnode *n = &t->node[j];
        snprintf(name, sizeof name, "n%u", j);
        const rill_stage_ops *ops = n->kind == K_SOURCE ? &source_ops : &send_ops;
        int rc = rill_stage_add(p, name, ops, n, &n->opts, &n->st);
        for (unsigned i = 0; i < n->nin && rc == 0; i++)
            rc = rill_connect(t->node[n->in[i]].st, n->st);
        if (rc)
            ok = failf(why, len, "building n%u: %s", j, rill_strerror(rc));
    }
    if (ok && variant % 2) {
        int rc = rill_pipeline_start(p);
        ok = rc == 0 ? check_threaded(t, "after start", why, len)
                     : failf(why, len, "start: %s", rill_strerror(rc));
    }
    /* Push entries get their items from this thread, interleaved. */
    for (unsigned x = 0; ok && x < MAXK; x++)
        for (unsigned j = 0; j < t->nsrc && ok; j++) {
            tnode *n = &t->node[j];
            if (n->kind != K_PUSH || x >= n->k)
                continue;
            int rc = emit_ids(n, x, 1, p);
            if (rc)
                ok = failf(why, len, "push n%u item %u: %s", j, x, rill_strerror(rc));
            if (n->yield_every && x % n->yield_every == 0)
                sched_yield();
        }
    if (ok) {
        int rc = rill_pipeline_run(p);
        if (rc)
            ok = failf(why, len, "run returned %d (%s): %s", rc, rill_strerror(rc),
                       rill_pipeline_errmsg(p));
    }
    if (ok && rill_pipeline_discarded(p) != 0)
        ok = failf(why, len, "discarded %llu", (unsigned long long)rill_pipeline_discarded(p));
    if (ok && (rill_pipeline_status(p) != 0 || rill_pipeline_errstage(p) != NULL))
        ok = failf(why, len, "status %d after a clean run", rill_pipeline_status(p));
    if (ok)
        ok = check_threaded(t, "after run", why, len);
    pthread_t self = pthread_self();
    for (unsigned j = 0; j < t->n && ok; j++) {
        tnode *n = &t->node[j];
        if (n->recv != n->exp_recv || n->sum != n->exp_sum || n->sumsq != n->exp_sumsq)
            ok = failf(why, len, "n%u received %llu items (sum %llu), expected %llu (sum %llu)",
                       j, (unsigned long long)n->recv, (unsigned long long)n->sum,
                       (unsigned long long)n->exp_recv, (unsigned long long)n->exp_sum);
        else if (n->closes != 1 || n->late_sends || n->early_close)
            ok = failf(why, len, "n%u: %d closes, %d sends after close, %d producers open at close",
                       j, n->closes, n->late_sends, n->early_close);
        else if (n->emit_errs || n->bad_len || n->wrong_thread)
            ok = failf(why, len, "n%u: %d emit errors (first %d), %d bad items, %d foreign calls", j,
                       n->emit_errs, n->first_err, n->bad_len, n->wrong_thread);
        else if ((n->exp_domain == 0) != (pthread_equal(n->tid, self) != 0))
            ok = failf(why, len, "n%u ran %s the caller's thread", j,
                       n->exp_domain ? "on" : "off");
        /* An inline stage runs on its producers' thread. */
        for (unsigned i = 0; i < n->nin && ok && !n->exp_threaded; i++)
            if (!pthread_equal(n->tid, t->node[n->in[i]].tid))
                ok = failf(why, len, "inline n%u not on the thread of its producer n%u", j,
                           n->in[i]);
        /* Sources and push entries: every item handed over. */
        if (ok && j < t->nsrc && n->kind == K_SOURCE && n->next != n->k)
            ok = failf(why, len, "source n%u produced %u of %u", j, n->next, n->k);
    }
    rill_pipeline_destroy(p);
    if (ok && atomic_load(&t->alive) != 0)
        ok = failf(why, len, "%ld of %ld owner blocks never released", atomic_load(&t->alive),
                   atomic_load(&t->made));
    return ok;
}

static void random_topologies(uint64_t first_seed, unsigned seeds, unsigned runs, bool owned) {
    static topo t;
    char why[512], shape[1024];
    for (uint64_t seed = first_seed; seed < first_seed + seeds; seed++) {
        generate(&t, seed, owned);
        for (unsigned r = 0; r < runs; r++)
            if (!run_once(&t, r, why, sizeof why)) {
                describe(&t, shape, sizeof shape);
                rill_test__failf(__FILE__, __LINE__, "seed %llu run %u (%s items): %s\n  shape:%s",
                                 (unsigned long long)seed, r, owned ? "counted" : "static", why,
                                 shape);
                return;
            }
    }
}

/* RILL_RANDOM_SEED=<n> replays one topology (with 20 runs) after a failure;
 * RILL_RANDOM_BASE=<n> shifts the seeds, to soak more topologies by hand. */
static bool replay(bool owned) {
    const char *s = getenv("RILL_RANDOM_SEED");
    if (!s)
        return false;
    random_topologies(strtoull(s, NULL, 10), 1, 20, owned);
    return true;
}

static uint64_t base(void) {
    const char *s = getenv("RILL_RANDOM_BASE");
    return s ? strtoull(s, NULL, 10) : 0;
}

RILL_TEST(thread_random, static_items_conserved) {
    if (!replay(false))
        random_topologies(base() + 1, 200, 4, false);
}

RILL_TEST(thread_random, counted_items_conserved_and_released) {
    if (!replay(true))
        random_topologies(base() + 100001, 200, 4, true);
}

/* The generator really draws what the tests claim to cover. */
RILL_TEST(thread_random, generator_covers_the_shapes) {
    static topo t;
    unsigned promoted = 0, fan_in = 0, fan_out = 0, threaded = 0, inline_ = 0, dups = 0,
             filters = 0, pushes = 0, threaded_src = 0, cap1 = 0, defaults = 0;
    for (uint64_t seed = 1; seed <= 120; seed++) {
        generate(&t, seed, false);
        unsigned outs[MAXS] = {0};
        for (unsigned j = 0; j < t.n; j++) {
            tnode *n = &t.node[j];
            for (unsigned i = 0; i < n->nin; i++)
                outs[n->in[i]]++;
            bool flagged = n->opts.flags & RILL_STAGE_THREADED;
            promoted += n->exp_threaded && !flagged;
            fan_in += n->nin > 1;
            threaded += flagged && j >= t.nsrc;
            inline_ += !flagged && j >= t.nsrc;
            dups += n->kind == K_DUP;
            filters += n->kind == K_FILTER;
            pushes += n->kind == K_PUSH;
            threaded_src += flagged && j < t.nsrc;
            cap1 += n->opts.capacity == 1;
            defaults += n->opts.capacity == 0 && n->opts.batch == 0;
        }
        for (unsigned j = 0; j < t.n; j++)
            fan_out += outs[j] > 1;
    }
    CHECK(promoted >= 20);
    CHECK(fan_in >= 50 && fan_out >= 50);
    CHECK(threaded >= 100 && inline_ >= 100);
    CHECK(dups >= 20 && filters >= 50);
    CHECK(pushes >= 10 && threaded_src >= 10);
    CHECK(cap1 >= 3 && defaults >= 10);
}
