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
 * discarded or leaked. Failure runs inject one failure (a send, a close, a
 * produce call) or an abort at a random stage and item, and check the first
 * error and its stage, one close per stage, and that every item that entered
 * a queue between threads was delivered or counted as discarded. A failure
 * prints the seed. */
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { MAXS = 12, MAXIN = 3, MAXK = 240, MAXIDS = 3 * MAXK, MAX_DELIVERIES = 12000 };

enum kind { K_SOURCE, K_PUSH, K_PASS, K_FILTER, K_DUP };

static unsigned below(uint64_t *s, unsigned n) { return (unsigned)(rng_next(s) % n); }

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
    unsigned nport, port_to[MAXS * MAXIN]; /* output ports, in connect order */
    uint64_t queued;      /* emits that entered a queue (to a stage heading a thread) */
    /* injected failure (failure runs only) */
    unsigned fail_at;     /* send (or produce call) number that fails */
    unsigned abort_at;    /* send number that aborts the pipeline */
    bool fail_close;
    unsigned calls;
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
    bool failing;         /* a failure or abort is injected in this run */
    int want;             /* what run must return */
    int want_stage;       /* the stage that must be named (-1: none, an abort) */
    uint64_t pushed_queued; /* pushes that entered a queue */
    tnode node[MAXS];
};

/* What the failure runs covered: injections of each kind, and runs that
 * discarded items. */
static unsigned g_kinds[4], g_discarding;

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

static int emit_one(tnode *n, const rill_item *it);

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
        if (!p) {
            rc = emit_one(src, &it);
        } else if ((rc = rill_pipeline_push(p, src->st, &it)) == 0) {
            src->t->pushed_queued += src->exp_threaded;
        }
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

/* rill_emit, one port at a time: items that enter a queue are counted. */
static int emit_one(tnode *n, const rill_item *it) {
    for (unsigned k = 0; k < n->nport; k++) {
        int rc = rill_emit_to(n->st, k, it);
        if (rc < 0) {
            if (n->emit_errs++ == 0)
                n->first_err = rc;
            return rc;
        }
        n->queued += n->t->node[n->port_to[k]].exp_threaded;
    }
    return 0;
}

static int node_send(rill_stage *st, void *state, const rill_item *it) {
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
    if (n->recv == n->abort_at)
        rill_pipeline_abort(rill_stage_pipeline(st));
    if (n->recv == n->fail_at)
        return rill_stage_fail(st, -EPROTO, "injected at item %u", n->fail_at);
    for (unsigned i = factor(n, id); i > 0; i--) {
        int rc = emit_one(n, it);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int node_produce(rill_stage *st, void *state) {
    tnode *n = state;
    note_thread(n);
    if (++n->calls == n->fail_at)
        return rill_stage_fail(st, -EPROTO, "injected in produce call %u", n->fail_at);
    if (n->next >= n->k)
        return RILL_EDONE;
    unsigned c = n->k - n->next < n->chunk ? n->k - n->next : n->chunk;
    int rc = emit_ids(n, n->next, c, NULL);
    n->next += c;
    if (n->yield_every && n->next % n->yield_every == 0)
        sched_yield();
    return rc < 0 ? rc : 0;
}

/* Every producer must have closed before this stage is closed. Reading their
 * counters here is ordered by end of stream (same thread, or the queue's
 * hand-off): a missing order is a ThreadSanitizer report. After a stop a
 * threaded stage closes without waiting for its producers' end of stream,
 * so failure runs do not look. */
static int node_close(rill_stage *st, void *state) {
    tnode *n = state;
    note_thread(n);
    n->closes++;
    for (unsigned i = 0; i < n->nin && !n->t->failing; i++)
        if (n->t->node[n->in[i]].closes != 1)
            n->early_close++;
    return n->fail_close ? rill_stage_fail(st, -EPROTO, "injected in close") : 0;
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
        n->salt = rng_next(&s);
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

/* Where each stage ran: the caller's thread exactly for domain 0, and an
 * inline stage on the thread of its producers. */
static bool check_threads(topo *t, char *why, size_t len) {
    pthread_t self = pthread_self();
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        if (n->bad_len || n->wrong_thread)
            return failf(why, len, "n%u: %d bad items, %d calls from a second thread", j,
                         n->bad_len, n->wrong_thread);
        if ((n->exp_domain == 0) != (pthread_equal(n->tid, self) != 0))
            return failf(why, len, "n%u ran %s the caller's thread", j,
                         n->exp_domain ? "on" : "off");
        for (unsigned i = 0; i < n->nin && !n->exp_threaded; i++)
            if (!pthread_equal(n->tid, t->node[n->in[i]].tid))
                return failf(why, len, "inline n%u not on the thread of its producer n%u", j,
                             n->in[i]);
    }
    return check_threaded(t, "after run", why, len);
}

/* A clean run: every stage got exactly the expected items, nothing lost. */
static bool check_clean(topo *t, rill_pipeline *p, int rc, char *why, size_t len) {
    if (rc)
        return failf(why, len, "run returned %d (%s): %s", rc, rill_strerror(rc),
                     rill_pipeline_errmsg(p));
    if (rill_pipeline_discarded(p) != 0)
        return failf(why, len, "discarded %llu", (unsigned long long)rill_pipeline_discarded(p));
    if (rill_pipeline_status(p) != 0 || rill_pipeline_errstage(p) != NULL)
        return failf(why, len, "status %d after a clean run", rill_pipeline_status(p));
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        if (n->recv != n->exp_recv || n->sum != n->exp_sum || n->sumsq != n->exp_sumsq)
            return failf(why, len, "n%u received %llu items (sum %llu), expected %llu (sum %llu)",
                         j, (unsigned long long)n->recv, (unsigned long long)n->sum,
                         (unsigned long long)n->exp_recv, (unsigned long long)n->exp_sum);
        if (n->closes != 1 || n->late_sends || n->early_close)
            return failf(why, len, "n%u: %d closes, %d sends after close, %d producers open at close",
                         j, n->closes, n->late_sends, n->early_close);
        if (n->emit_errs)
            return failf(why, len, "n%u: %d emit errors (first %d)", j, n->emit_errs, n->first_err);
        if (n->kind == K_SOURCE && n->next != n->k)
            return failf(why, len, "source n%u produced %u of %u", j, n->next, n->k);
    }
    return check_threads(t, why, len);
}

/* A run with one injected failure or abort: the first error and its stage,
 * one close each, no stage got more than expected, refusals carry the stop
 * code, and what entered queues was delivered or discarded. */
static bool check_failed(topo *t, rill_pipeline *p, int rc, char *why, size_t len) {
    const char *es = rill_pipeline_errstage(p), *msg = rill_pipeline_errmsg(p);
    char name[16], quoted[20];
    snprintf(name, sizeof name, "n%d", t->want_stage);
    snprintf(quoted, sizeof quoted, "'%s'", name);
    if (rc != t->want || rill_pipeline_status(p) != t->want)
        return failf(why, len, "run returned %d (%s), expected %d: %s", rc, rill_strerror(rc),
                     t->want, msg);
    if (t->want_stage < 0 ? es || strcmp(msg, "pipeline aborted") != 0
                          : !es || strcmp(es, name) != 0 || !strstr(msg, quoted))
        return failf(why, len, "errstage %s, errmsg \"%s\", expected n%d", es ? es : "NULL", msg,
                     t->want_stage);
    uint64_t queued = t->pushed_queued, delivered = 0;
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        if (n->recv > n->exp_recv)
            return failf(why, len, "n%u received %llu items, more than %llu", j,
                         (unsigned long long)n->recv, (unsigned long long)n->exp_recv);
        if (n->closes != 1 || n->late_sends)
            return failf(why, len, "n%u: %d closes, %d sends after close", j, n->closes,
                         n->late_sends);
        if (n->emit_errs && n->first_err != t->want)
            return failf(why, len, "n%u: an emit returned %d, not the stop code", j, n->first_err);
        queued += n->queued;
        if (n->exp_threaded && n->kind != K_SOURCE)
            delivered += n->recv;
    }
    uint64_t d = rill_pipeline_discarded(p);
    g_discarding += d > 0;
    if (queued != delivered + d)
        return failf(why, len, "%llu items entered queues, %llu delivered + %llu discarded",
                     (unsigned long long)queued, (unsigned long long)delivered,
                     (unsigned long long)d);
    return check_threads(t, why, len);
}

/* Build, run, check; the pipeline is destroyed before returning. */
static bool run_once(topo *t, unsigned variant, char *why, size_t len) {
    for (unsigned j = 0; j < t->n; j++) {
        tnode *n = &t->node[j];
        n->next = n->calls = n->nport = 0;
        n->recv = n->sum = n->sumsq = n->queued = 0;
        n->closes = n->emit_errs = n->first_err = n->late_sends = 0;
        n->early_close = n->bad_len = n->wrong_thread = 0;
        n->tid_set = false;
    }
    atomic_store(&t->made, 0);
    t->pushed_queued = 0;
    rill_pipeline *p;
    if (rill_pipeline_new("random", &p) != 0)
        return failf(why, len, "rill_pipeline_new failed");
    bool ok = true;
    char name[16];
    for (unsigned j = 0; j < t->n && ok; j++) {
        tnode *n = &t->node[j];
        snprintf(name, sizeof name, "n%u", j);
        const rill_stage_ops *ops = n->kind == K_SOURCE ? &source_ops : &send_ops;
        int rc = rill_stage_add(p, name, ops, n, &n->opts, &n->st);
        for (unsigned i = 0; i < n->nin && rc == 0; i++) {
            tnode *from = &t->node[n->in[i]];
            from->port_to[from->nport++] = j;
            rc = rill_connect(from->st, n->st);
        }
        if (rc)
            ok = failf(why, len, "building n%u: %s", j, rill_strerror(rc));
    }
    if (ok && variant % 2) {
        int rc = rill_pipeline_start(p);
        ok = rc == 0 ? check_threaded(t, "after start", why, len)
                     : failf(why, len, "start: %s", rill_strerror(rc));
    }
    /* Push entries get their items from this thread, interleaved; after an
     * injected stop each push returns the stop code. */
    for (unsigned x = 0; ok && x < MAXK; x++)
        for (unsigned j = 0; j < t->nsrc && ok; j++) {
            tnode *n = &t->node[j];
            if (n->kind != K_PUSH || x >= n->k)
                continue;
            int rc = emit_ids(n, x, 1, p);
            if (rc && !(t->failing && rc == t->want))
                ok = failf(why, len, "push n%u item %u: %s", j, x, rill_strerror(rc));
            if (n->yield_every && x % n->yield_every == 0)
                sched_yield();
        }
    if (ok) {
        int rc = rill_pipeline_run(p);
        ok = t->failing ? check_failed(t, p, rc, why, len) : check_clean(t, p, rc, why, len);
    }
    rill_pipeline_free(p);
    if (ok && atomic_load(&t->alive) != 0)
        ok = failf(why, len, "%ld of %ld owner blocks never released", atomic_load(&t->alive),
                   atomic_load(&t->made));
    return ok;
}

/* Failure runs: one stage, drawn from the seed and the run, fails on a send
 * it will get, fails in close, aborts the pipeline in a send, or (a source)
 * fails in a produce call it will make. Clean runs: nothing injected. */
static void inject(topo *t, bool failures, uint64_t seed, unsigned run, char *what, size_t len) {
    for (unsigned j = 0; j < t->n; j++) {
        t->node[j].fail_at = t->node[j].abort_at = 0;
        t->node[j].fail_close = false;
    }
    t->failing = failures;
    snprintf(what, len, "clean");
    if (!failures)
        return;
    uint64_t s = seed * 0x9e3779b97f4a7c15u + run * 0x632be59bd9b4e019u + 7;
    unsigned j = below(&s, t->n), kind = below(&s, 4);
    tnode *n = &t->node[j];
    if (n->kind == K_SOURCE && kind != 1)
        kind = 3;
    else if (kind == 3)
        kind = 0;
    if ((kind == 0 || kind == 2) && n->exp_recv == 0)
        kind = 1;
    t->want = kind == 2 ? RILL_EABORTED : -EPROTO;
    t->want_stage = kind == 2 ? -1 : (int)j;
    if (kind == 0)
        n->fail_at = 1 + below(&s, (unsigned)n->exp_recv);
    else if (kind == 1)
        n->fail_close = true;
    else if (kind == 2)
        n->abort_at = 1 + below(&s, (unsigned)n->exp_recv);
    else
        n->fail_at = 1 + below(&s, n->k / n->chunk + 1);
    g_kinds[kind]++;
    static const char *kinds[] = {"send fails at", "close fails", "aborts at", "produce fails at"};
    snprintf(what, len, "n%u %s %u", j, kinds[kind], n->fail_at + n->abort_at);
}

static void random_topologies(uint64_t first_seed, unsigned seeds, unsigned runs, bool owned,
                              bool failures) {
    static topo t;
    char why[512], shape[1024], what[64];
    for (uint64_t seed = first_seed; seed < first_seed + seeds; seed++) {
        generate(&t, seed, owned);
        for (unsigned r = 0; r < runs; r++) {
            inject(&t, failures, seed, r, what, sizeof what);
            if (!run_once(&t, r, why, sizeof why)) {
                describe(&t, shape, sizeof shape);
                rill_test__failf(__FILE__, __LINE__,
                                 "seed %llu run %u (%s items, %s): %s\n  shape:%s",
                                 (unsigned long long)seed, r, owned ? "counted" : "static", what,
                                 why, shape);
                return;
            }
        }
    }
}

/* RILL_RANDOM_SEED=<n> replays one topology (with 20 runs; with injected
 * failures if RILL_RANDOM_FAIL is set) after a failure;
 * RILL_RANDOM_BASE=<n> shifts the seeds, to soak more topologies by hand. */
static bool replay(bool owned) {
    const char *s = getenv("RILL_RANDOM_SEED");
    if (!s)
        return false;
    random_topologies(strtoull(s, NULL, 10), 1, 20, owned, getenv("RILL_RANDOM_FAIL") != NULL);
    return true;
}

static uint64_t base(void) {
    const char *s = getenv("RILL_RANDOM_BASE");
    return s ? strtoull(s, NULL, 10) : 0;
}

RILL_TEST(thread_random, static_items_conserved) {
    if (!replay(false))
        random_topologies(base() + 1, 200, 4, false, false);
}

RILL_TEST(thread_random, counted_items_conserved_and_released) {
    if (!replay(true))
        random_topologies(base() + 100001, 200, 4, true, false);
}

RILL_TEST(thread_random, injected_failures_and_aborts_conserve_items) {
    if (replay(base() % 2))
        return;
    random_topologies(base() + 200001, 80, 3, false, true);
    random_topologies(base() + 300001, 80, 3, true, true);
    for (unsigned k = 0; k < 4; k++)
        CHECK(g_kinds[k] >= 20);
    CHECK(g_discarding >= 20);
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
