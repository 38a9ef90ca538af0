/* Fan-in: three producer threads into one consumer thread, on this machine's
 * two cores — the "measure and choose" of issue 3 between ck's MPSC ring
 * and one SPSC ring per producer edge. Contenders, same run, rounds
 * interleaved so machine noise hits them alike:
 *   mpsc/1    one ck ring, ck_ring_enqueue_mpsc of one item pointer per call,
 *             the consumer dequeuing (ck_ring_dequeue_mpsc)
 *   spsc/1    one ck SPSC ring per producer, one item per call, the consumer
 *             polling the rings round robin
 *   mpsc/B    the MPSC ring carrying batches of B items (copied in, as rill
 *             does), each producer's batches recycled through an SPSC ring
 *             of its own
 *   spsc/B    one SPSC ring of batches per producer, recycled the same way
 *   rill      three RILL_STAGE_THREADED sources -> one threaded sink
 *             (capacity and batch as above), timed from start to close
 * Same items (rill_item, 24 bytes, from one preallocated pool), same total,
 * about the same room per producer (per item: an SPSC ring of C slots each,
 * or one MPSC ring of pow2(3C) for the three; batched: C/B batches each).
 * Raw producers and the raw consumer spin with ck_pr_stall when full or
 * empty and never park; rill spins briefly then parks. Four spinning threads
 * on two cores get preempted all the time: the situation the choice is
 * about.
 *
 * The tail: every 16th item (every batch) a producer reads the clock around
 * its enqueue. "call" is the one ck enqueue call that succeeded: with the
 * MPSC ring it includes spinning until every producer that reserved a slot
 * before it has published, which lasts as long as such a producer stays
 * preempted; with SPSC it is wait-free. "item" adds the retries while full
 * (backpressure), which is what rill_emit's time includes. A call can also
 * be long because its own thread was preempted during it, for either ring:
 * compare the two, not either with zero.
 *
 *   bench_fanin [--n ITEMS] [--rounds R] [--capacity C] [--batch B] [--max-s S]
 *
 * Every contender must deliver every item it produced: the consumer's count
 * and sum are checked against the producers'. */
#include <ck_pr.h>
#include <ck_ring.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "rill.h"

enum { NP = 3, POOL = 4096, CHUNK = 4096, SAMPLE = 16, SUB = 64, NB = 48 * SUB };

static rill_item pool[POOL];
static char bytes[POOL + 256];
static double deadline; /* producers stop early after it */

static double now(void) { return (double)bench_now_ns() * 1e-9; }



/* ---- latency histogram: exact below 64 ns, then 64 steps per power of 2 ---- */

struct hist {
    uint64_t n, max, over10us, over1ms;
    uint64_t b[NB];
};

static unsigned bucket_of(uint64_t ns) {
    if (ns < SUB)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= 6 */
    unsigned k = (e - 5) * SUB + (unsigned)((ns >> (e - 6)) & (SUB - 1));
    return k < NB ? k : NB - 1;
}

static uint64_t bucket_low(unsigned k) {
    if (k < SUB)
        return k;
    unsigned e = k / SUB + 5;
    return (uint64_t)(SUB + k % SUB) << (e - 6);
}

static void hist_add(struct hist *h, uint64_t ns) {
    h->n++;
    h->b[bucket_of(ns)]++;
    h->max = ns > h->max ? ns : h->max;
    h->over10us += ns > 10000;
    h->over1ms += ns > 1000000;
}

static void hist_merge(struct hist *to, const struct hist *from) {
    to->n += from->n;
    to->max = from->max > to->max ? from->max : to->max;
    to->over10us += from->over10us;
    to->over1ms += from->over1ms;
    for (unsigned k = 0; k < NB; k++)
        to->b[k] += from->b[k];
}

/* The q-quantile (lower bound of its bucket: within 1/64 of the value). */
static uint64_t hist_pct(const struct hist *h, double q) {
    uint64_t want = (uint64_t)((double)h->n * q), seen = 0;
    for (unsigned k = 0; k < NB; k++)
        if ((seen += h->b[k]) > want)
            return bucket_low(k);
    return h->max;
}

/* ---- the raw contenders ---------------------------------------------------------- */

enum { MPSC1, SPSC1, MPSCB, SPSCB, RILL, NKIND };
static const char *const kind_names[NKIND] = {"mpsc/1", "spsc/1", "mpsc/B", "spsc/B", "rill"};

struct batch {
    unsigned n, owner;
    rill_item items[];
};

/* One producer; aligned so producers do not share cache lines. */
struct prod {
    _Alignas(64) struct fan *f;
    unsigned id;
    uint64_t n, produced;
    ck_ring_t ring, empty; /* its own ring (spsc), its batches coming back */
    ck_ring_buffer_t *buf, *empty_buf;
    struct batch **batches;
    unsigned nbatches;
    struct hist call, item;
    pthread_t tid;
};

struct fan {
    int kind;
    unsigned b;
    _Alignas(64) ck_ring_t ring; /* shared (mpsc) */
    ck_ring_buffer_t *buf;
    struct prod p[NP];
    uint64_t count, sum;
};

static bool enqueue(struct fan *f, struct prod *p, void *v) {
    return f->kind == MPSC1 || f->kind == MPSCB ? ck_ring_enqueue_mpsc(&f->ring, f->buf, v)
                                                : ck_ring_enqueue_spsc(&p->ring, p->buf, v);
}

/* Enqueue v, spinning while full. A sampled one (since: when the producer
 * started waiting for room, 0 = now) is timed. */
static void put(struct fan *f, struct prod *p, void *v, bool sample, uint64_t since) {
    if (!sample) {
        while (!enqueue(f, p, v))
            ck_pr_stall();
        return;
    }
    uint64_t t0 = since ? since : bench_now_ns(), t1;
    for (;;) {
        t1 = bench_now_ns();
        if (enqueue(f, p, v))
            break;
        ck_pr_stall();
    }
    uint64_t t2 = bench_now_ns();
    hist_add(&p->call, t2 - t1);
    hist_add(&p->item, t2 - t0);
}

static void *produce(void *arg) {
    struct prod *p = arg;
    struct fan *f = p->f;
    uint64_t i = 0;
    if (f->kind == MPSC1 || f->kind == SPSC1) {
        for (; i < p->n; i++) {
            if ((i & (CHUNK - 1)) == 0 && i && now() > deadline)
                break;
            put(f, p, &pool[i & (POOL - 1)], (i & (SAMPLE - 1)) == 0, 0);
        }
    } else {
        for (unsigned since = 0; i < p->n; since += f->b) {
            if (since >= CHUNK) {
                since = 0;
                if (now() > deadline)
                    break;
            }
            uint64_t t0 = bench_now_ns();
            void *v;
            while (!ck_ring_dequeue_spsc(&p->empty, p->empty_buf, &v))
                ck_pr_stall(); /* every batch in flight: the queue is full */
            struct batch *b = v;
            unsigned k = p->n - i < f->b ? (unsigned)(p->n - i) : f->b;
            for (unsigned j = 0; j < k; j++)
                b->items[j] = pool[(i + j) & (POOL - 1)];
            b->n = k;
            i += k;
            put(f, p, b, true, t0);
        }
    }
    p->produced = i;
    put(f, p, NULL, false, 0); /* end of stream */
    return NULL;
}

static void consume_one(struct fan *f, void *v, uint64_t *sum, uint64_t *count) {
    if (f->kind == MPSC1 || f->kind == SPSC1) {
        *sum += ((const rill_item *)v)->len;
        ++*count;
        return;
    }
    struct batch *b = v;
    for (unsigned j = 0; j < b->n; j++)
        *sum += b->items[j].len;
    *count += b->n;
    struct prod *p = &f->p[b->owner];
    while (!ck_ring_enqueue_spsc(&p->empty, p->empty_buf, b)) /* cannot be full */
        ck_pr_stall();
}

static void *consume(void *arg) {
    struct fan *f = arg;
    uint64_t sum = 0, count = 0;
    unsigned open = NP;
    bool done[NP] = {false};
    void *v;
    if (f->kind == MPSC1 || f->kind == MPSCB) {
        while (open) {
            if (!ck_ring_dequeue_mpsc(&f->ring, f->buf, &v)) {
                ck_pr_stall();
                continue;
            }
            if (!v)
                open--; /* one producer's end of stream */
            else
                consume_one(f, v, &sum, &count);
        }
    } else {
        /* Round robin, up to 64 entries from each ring in turn. */
        for (unsigned r = 0; open; r = (r + 1) % NP) {
            bool got = false;
            for (unsigned k = 0; k < 64 && !done[r]; k++) {
                if (!ck_ring_dequeue_spsc(&f->p[r].ring, f->p[r].buf, &v))
                    break;
                got = true;
                if (!v) {
                    done[r] = true;
                    open--;
                } else {
                    consume_one(f, v, &sum, &count);
                }
            }
            if (!got && r == NP - 1)
                ck_pr_stall();
        }
    }
    f->sum = sum;
    f->count = count;
    return NULL;
}

/* What a run moved, and how long its producers' enqueues took. */
struct moved {
    uint64_t produced, count, sum, expect;
    double t;
    struct hist call, item;
};

static struct moved run_raw(int kind, uint64_t n, unsigned cap, unsigned bsz) {
    static struct fan f; /* large (histograms): not on the stack */
    struct moved m;
    memset(&m, 0, sizeof m);
    memset(&f, 0, sizeof f);
    f.kind = kind;
    f.b = bsz;
    bool batched = kind == MPSCB || kind == SPSCB;
    unsigned nb = cap / bsz ? cap / bsz : 1;
    /* Room: per item, an SPSC ring of pow2(cap) slots per producer or one
     * MPSC ring of pow2(3 cap) (a ring of s slots holds s - 1); batched, nb
     * batches per producer, and rings that never fill. */
    unsigned per = batched ? nb + 2 : cap;
    unsigned shared = pow2_at_least(NP * per);
    if (kind == MPSC1 || kind == MPSCB) {
        f.buf = calloc(shared, sizeof *f.buf);
        ck_ring_init(&f.ring, shared);
    }
    for (unsigned i = 0; i < NP; i++) {
        struct prod *p = &f.p[i];
        p->f = &f;
        p->id = i;
        p->n = n / NP + (i < n % NP);
        if (kind == SPSC1 || kind == SPSCB) {
            p->buf = calloc(pow2_at_least(per), sizeof *p->buf);
            ck_ring_init(&p->ring, pow2_at_least(per));
        }
        if (batched) {
            unsigned slots = pow2_at_least(nb + 2);
            p->empty_buf = calloc(slots, sizeof *p->empty_buf);
            ck_ring_init(&p->empty, slots);
            p->batches = calloc(nb, sizeof *p->batches);
            p->nbatches = nb;
            for (unsigned k = 0; k < nb; k++) {
                p->batches[k] = malloc(sizeof(struct batch) + bsz * sizeof(rill_item));
                p->batches[k]->owner = i;
                ck_ring_enqueue_spsc(&p->empty, p->empty_buf, p->batches[k]);
            }
        }
    }
    pthread_t cons;
    double t0 = now();
    pthread_create(&cons, NULL, consume, &f);
    for (unsigned i = 0; i < NP; i++)
        pthread_create(&f.p[i].tid, NULL, produce, &f.p[i]);
    for (unsigned i = 0; i < NP; i++)
        pthread_join(f.p[i].tid, NULL);
    pthread_join(cons, NULL);
    m.t = now() - t0;
    for (unsigned i = 0; i < NP; i++) {
        struct prod *p = &f.p[i];
        m.produced += p->produced;
        m.expect += pool_sum(pool, POOL, p->produced);
        hist_merge(&m.call, &p->call);
        hist_merge(&m.item, &p->item);
        for (unsigned k = 0; k < p->nbatches; k++)
            free(p->batches[k]);
        free(p->batches);
        free(p->buf);
        free(p->empty_buf);
    }
    free(f.buf);
    m.count = f.count;
    m.sum = f.sum;
    return m;
}

/* ---- rill: three threaded sources -> one threaded sink ---------------------------- */

struct src {
    uint64_t left, produced;
    struct hist item; /* rill_emit, sampled; only this source's thread writes */
};

static int src_produce(rill_stage *st, void *state) {
    struct src *s = state;
    if (s->produced && now() > deadline)
        return RILL_EDONE;
    unsigned k = s->left < CHUNK ? (unsigned)s->left : CHUNK;
    for (unsigned i = 0; i < k; i++) {
        int rc;
        if ((i & (SAMPLE - 1)) == 0) {
            uint64_t t0 = bench_now_ns();
            rc = rill_emit(st, &pool[i]); /* CHUNK == POOL: i indexes the pool */
            hist_add(&s->item, bench_now_ns() - t0);
        } else {
            rc = rill_emit(st, &pool[i]);
        }
        if (rc < 0)
            return rc;
    }
    s->left -= k;
    s->produced += k;
    return s->left ? 0 : RILL_EDONE;
}

static const rill_stage_ops src_ops = {.produce = src_produce};

static struct moved run_rill(uint64_t n, unsigned cap, unsigned bsz) {
    static struct src s[NP];
    struct count_sink k = {0};
    struct moved m;
    memset(&m, 0, sizeof m);
    memset(s, 0, sizeof s);
    rill_pipeline *p;
    rill_stage *a, *b;
    rill_stage_opts so = {.flags = RILL_STAGE_THREADED};
    rill_stage_opts ko = {.flags = RILL_STAGE_THREADED, .capacity = cap, .batch = bsz};
    int rc = rill_pipeline_new("fanin", &p);
    if (!rc)
        rc = rill_stage_add(p, "sink", &count_sink_ops, &k, &ko, &b);
    for (unsigned i = 0; i < NP && !rc; i++) {
        char name[16];
        snprintf(name, sizeof name, "source-%u", i + 1);
        s[i].left = n / NP + (i < n % NP);
        if (!(rc = rill_stage_add(p, name, &src_ops, &s[i], &so, &a)))
            rc = rill_connect(a, b);
    }
    if (rc) {
        fprintf(stderr, "bench_fanin: cannot build the pipeline: %s\n", rill_strerror(rc));
        exit(1);
    }
    double t0 = now();
    rc = rill_pipeline_run(p);
    m.t = now() - t0;
    if (rc)
        fprintf(stderr, "bench_fanin: run failed: %s\n", rill_pipeline_errmsg(p));
    rill_pipeline_free(p);
    for (unsigned i = 0; i < NP; i++) {
        m.produced += s[i].produced;
        m.expect += pool_sum(pool, POOL, s[i].produced);
        hist_merge(&m.item, &s[i].item);
    }
    if (rc)
        m.produced = UINT64_MAX;
    m.count = k.count;
    m.sum = k.sum;
    return m;
}

/* ---- driver ------------------------------------------------------------------------ */

static int bad; /* a contender lost or invented items */

static double rate(int kind, const struct moved *m, uint64_t n) {
    if (m->count != m->produced || m->sum != m->expect || m->produced == 0) {
        fprintf(stderr, "bench_fanin: %s produced %llu, delivered %llu items (sum %llu, want "
                "%llu)\n", kind_names[kind], (unsigned long long)m->produced,
                (unsigned long long)m->count, (unsigned long long)m->sum,
                (unsigned long long)m->expect);
        bad = 1;
        return 0;
    }
    if (m->produced < n)
        printf("  (%s stopped at the time limit after %llu items)\n", kind_names[kind],
               (unsigned long long)m->produced);
    return (double)m->produced / m->t;
}


static unsigned long long arg_num(const char *s) {
    char *end;
    double v = strtod(s, &end); /* accepts 3e7 */
    if (end == s || *end || v <= 0) {
        fprintf(stderr, "bench_fanin: bad number '%s'\n", s);
        exit(2);
    }
    return (unsigned long long)v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void print_us(uint64_t ns) {
    if (ns >= 10000)
        printf(" %9.0f", (double)ns / 1e3);
    else
        printf(" %9.2f", (double)ns / 1e3);
}

int main(int argc, char **argv) {
    uint64_t n = 30000000;
    unsigned rounds = 2, cap = 4096, bsz = 256;
    double max_s = 2.0; /* per run: keeps the whole under ~30 s on a busy machine */
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "usage: bench_fanin [--n ITEMS] [--rounds R] [--capacity C] "
                            "[--batch B] [--max-s SECONDS]\n");
            return 2;
        }
        const char *o = argv[i], *val = argv[++i];
        if (!strcmp(o, "--max-s")) {
            max_s = strtod(val, NULL);
            continue;
        }
        unsigned long long v = arg_num(val);
        if (!strcmp(o, "--n"))
            n = v;
        else if (!strcmp(o, "--rounds"))
            rounds = v > 16 ? 16 : (unsigned)v;
        else if (!strcmp(o, "--capacity"))
            cap = (unsigned)v;
        else if (!strcmp(o, "--batch"))
            bsz = (unsigned)v;
        else {
            fprintf(stderr, "bench_fanin: unknown option %s\n", o);
            return 2;
        }
    }
    if (bsz > cap)
        bsz = cap;
    for (unsigned i = 0; i < POOL; i++) {
        bytes[i] = (char)('a' + i % 26);
        pool[i] = rill_item_static(&bytes[i], 1 + (i * 7) % 200);
    }
    printf("bench_fanin: %u producer threads -> 1 consumer thread, %llu items in all, room %u "
           "items per producer, batch %u, %u rounds, load %.2f\n",
           NP, (unsigned long long)n, cap, bsz, rounds, loadavg());
    static struct hist call[NKIND], item[NKIND];
    double rates[NKIND][16];
    for (unsigned r = 0; r < rounds; r++)
        for (int k = 0; k < NKIND; k++) {
            deadline = now() + max_s;
            struct moved m = k == RILL ? run_rill(n, cap, bsz) : run_raw(k, n, cap, bsz);
            rates[k][r] = rate(k, &m, n);
            hist_merge(&call[k], &m.call);
            hist_merge(&item[k], &m.item);
        }
    printf("\n%-8s %12s | %-28s | %s\n", "", "items/s", "one enqueue call, us",
           "one item, incl. waits for room, us");
    printf("%-8s %12s | %9s %9s %8s | %9s %9s %8s %8s\n", "", "median", "p99.9", "max",
           ">10us", "p99.9", "max", ">10us", ">1ms");
    double med[NKIND];
    for (int k = 0; k < NKIND; k++) {
        qsort(rates[k], rounds, sizeof rates[k][0], cmp_double);
        med[k] = rounds % 2 ? rates[k][rounds / 2]
                            : (rates[k][rounds / 2 - 1] + rates[k][rounds / 2]) / 2;
        printf("%-8s %10.2f M |", kind_names[k], med[k] / 1e6);
        if (call[k].n) {
            print_us(hist_pct(&call[k], 0.999));
            print_us(call[k].max);
            printf(" %8llu |", (unsigned long long)call[k].over10us);
        } else {
            printf(" %9s %9s %8s |", "-", "-", "-");
        }
        print_us(hist_pct(&item[k], 0.999));
        print_us(item[k].max);
        printf(" %8llu %8llu   (%llu samples)\n", (unsigned long long)item[k].over10us,
               (unsigned long long)item[k].over1ms, (unsigned long long)item[k].n);
    }
    /* The choice, from these numbers: did MPSC calls spin far longer than
     * SPSC calls, whose long ones are only their own thread's preemptions
     * (a producer preempted between reserving its slot and publishing it
     * stalls every other producer for as long), and which moved more? */
    const struct hist *mc = &call[MPSC1], *sc = &call[SPSC1];
    double m_long = (double)mc->over10us / (double)(mc->n ? mc->n : 1) * 1e6;
    double s_long = (double)sc->over10us / (double)(sc->n ? sc->n : 1) * 1e6;
    uint64_t m_p = hist_pct(mc, 0.999), s_p = hist_pct(sc, 0.999);
    bool spun = m_p > 100 * (s_p ? s_p : 1) && m_long > 10 * s_long && m_p > 100000;
    printf("\nconclusion: %s: p99.9 of one per-item enqueue call %.2f us with the MPSC ring vs "
           "%.2f us with SPSC rings, %.0f vs %.0f calls per million over 10 us (longest %.0f vs "
           "%.0f us); per item SPSC moved %.1fx the MPSC rate, batched %.1fx; rill's fan-in "
           "(an SPSC ring per edge, batched) %.1f M items/s. Choice: one SPSC ring per producer "
           "edge, as rill does: no producer ever waits for another.\n",
           spun ? "the MPSC enqueue spun behind preempted producers here"
                : "no MPSC spin beyond the SPSC calls' own preemptions showed here",
           (double)m_p / 1e3, (double)s_p / 1e3, m_long, s_long, (double)mc->max / 1e3,
           (double)sc->max / 1e3, med[SPSC1] / (med[MPSC1] > 0 ? med[MPSC1] : 1),
           med[SPSCB] / (med[MPSCB] > 0 ? med[MPSCB] : 1), med[RILL] / 1e6);
    return bad;
}
