/* Threaded pipelines that fail, are aborted or destroyed early: the source's
 * produce, each stage's send (on the 1st, 5th or 37th item) and each close
 * fail in turn; a stage fails while its input queue is full and its producer
 * is blocked on it; the last stage fails while every queue before it is full;
 * each worker thread fails to start (RILL_FAULT_THREAD_START); abort comes
 * from another thread, from signal handlers and from a stage; pipelines are
 * destroyed before, during and after a run.
 *
 * Every case checks the same verdict: run/close returns the first error,
 * errstage/errmsg name the stage that raised it, every close ran exactly
 * once, every refused emit returned the pipeline's stop code, every owner
 * block was released, and items are conserved: over the edges between
 * threads, items queued (emits that returned 0) = items delivered (sends
 * into threaded stages) + rill_pipeline_discarded(). Where the state at the
 * failure is exact (batch 1), the refusals and the discarded count are
 * checked exactly too. A hang is bounded by the waits here (30 s, then the
 * case fails and every stall is released) and by the ctest timeout. */
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "rill.h"
#include "rill_test.h"
#include "thread_util.h"

enum { MAXN = 8, MAXP = 3, WAIT_S = 30 };

typedef struct net net;

typedef struct node {
    net *net;
    char name[16];
    rill_stage *st;
    bool source, threaded, swallow; /* swallow: a refused emit is ignored */
    unsigned cap, batch, items, chunk, next;
    /* injected behaviour (1-based item or produce-call numbers; 0 = never) */
    unsigned fail_at, stall_at, abort_at, raise_at, late_fail_at;
    bool stall_fails;   /* fail once released from the stall */
    bool detail;        /* fail through rill_stage_fail with a detail */
    int code, close_code;
    /* observed; atomics where a watcher thread reads them while running */
    atomic_uint_fast64_t recv, attempts, finished, refused, ok[MAXP];
    atomic_int closes, release, stalled;
    int first_refusal, late_sends, destroys;
    unsigned calls, nout;
    struct node *to[MAXP];
} node;

struct net {
    node n[MAXN];
    unsigned count;
    rill_pipeline *p;
    atomic_long alive; /* owner blocks not yet released */
    atomic_int timeouts, go;
    uint64_t moves;    /* chain_jammed: progress seen at `since` */
    double since;
    char state[512];   /* the counters when a wait timed out */
};

static char g_case[160]; /* the case running, for failure messages */
#define CASE(...) snprintf(g_case, sizeof g_case, __VA_ARGS__)

/* ---- waiting without hanging ------------------------------------------------------ */

static void nap_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static void state_text(net *t, char *buf, size_t len) {
    size_t o = 0;
    for (unsigned i = 0; i < t->count && o < len; i++) {
        node *n = &t->n[i];
        o += (size_t)snprintf(buf + o, len - o, " %s[recv %llu emits %llu/%llu ok0 %llu refused %llu%s]",
                              n->name, (unsigned long long)atomic_load(&n->recv),
                              (unsigned long long)atomic_load(&n->finished),
                              (unsigned long long)atomic_load(&n->attempts),
                              (unsigned long long)atomic_load(&n->ok[0]),
                              (unsigned long long)atomic_load(&n->refused),
                              atomic_load(&n->stalled) ? " stalled" : "");
    }
}

/* Poll cond until it holds; after WAIT_S count a timeout (the case fails). */
static bool wait_until(net *t, bool (*cond)(void *), void *arg) {
    double end = now_s() + WAIT_S;
    while (!cond(arg)) {
        if (now_s() > end) {
            if (atomic_fetch_add(&t->timeouts, 1) == 0)
                state_text(t, t->state, sizeof t->state);
            return false;
        }
        nap_us(50);
    }
    return true;
}

static bool released(void *arg) { return atomic_load(&((node *)arg)->release) != 0; }

static bool net_go(void *arg) { return atomic_load(&((net *)arg)->go) != 0; }

static void release_all(net *t) {
    for (unsigned i = 0; i < t->count; i++)
        atomic_store(&t->n[i].release, 1);
}

/* ---- items: one counted block per produce call ------------------------------------ */

typedef struct block {
    rill_ref ref; /* first member */
    net *net;
    uint64_t ids[];
} block;

static void block_release(rill_ref *r) {
    block *b = (block *)r;
    atomic_fetch_sub(&b->net->alive, 1);
    free(b);
}

/* ---- the stage ---------------------------------------------------------------------- */

static int fail_now(node *n, int code) {
    return n->detail ? rill_stage_fail(n->st, code, "injected in %s", n->name) : code;
}

/* Emit to each port separately, so every port's outcome is counted. */
static int forward(node *n, const rill_item *it) {
    int first = 0;
    for (unsigned k = 0; k < n->nout; k++) {
        atomic_fetch_add(&n->attempts, 1);
        int rc = rill_emit_to(n->st, k, it);
        if (rc == 0)
            atomic_fetch_add(&n->ok[k], 1);
        else if (atomic_load(&n->refused) == 0)
            n->first_refusal = rc;
        if (rc < 0)
            atomic_fetch_add(&n->refused, 1);
        atomic_fetch_add(&n->finished, 1);
        if (rc < 0 && !first)
            first = rc;
        if (rc < 0 && !n->swallow)
            return rc;
    }
    return n->swallow ? 0 : first;
}

static int node_send(rill_stage *st, void *state, const rill_item *it) {
    node *n = state;
    uint64_t r = atomic_fetch_add(&n->recv, 1) + 1;
    if (atomic_load(&n->closes))
        n->late_sends++;
    if (r == n->stall_at) {
        atomic_store(&n->stalled, 1);
        wait_until(n->net, released, n);
        if (n->stall_fails)
            return fail_now(n, n->code);
    }
    if (r == n->abort_at)
        rill_pipeline_abort(rill_stage_pipeline(st));
    if (r == n->raise_at)
        raise(SIGALRM);
    if (r == n->fail_at)
        return fail_now(n, n->code);
    int rc = forward(n, it);
    /* A failure after the stop (abort or error) must not be recorded. */
    if (n->late_fail_at && r >= n->late_fail_at)
        return rill_stage_fail(st, -EIO, "late failure in %s", n->name);
    return rc;
}

static int node_produce(rill_stage *st, void *state) {
    (void)st;
    node *n = state;
    if (++n->calls == n->fail_at)
        return fail_now(n, n->code);
    if (n->next >= n->items)
        return RILL_EDONE;
    unsigned c = n->items - n->next < n->chunk ? n->items - n->next : n->chunk;
    block *b = malloc(sizeof *b + c * sizeof b->ids[0]);
    if (!b)
        return RILL_ENOMEM;
    rill_ref_init(&b->ref, block_release);
    b->net = n->net;
    atomic_fetch_add(&n->net->alive, 1);
    int rc = 0;
    for (unsigned i = 0; i < c && rc == 0; i++) {
        b->ids[i] = n->next + i;
        rill_item it = {&b->ids[i], sizeof b->ids[i], &b->ref};
        rc = forward(n, &it);
    }
    rill_ref_release(&b->ref);
    n->next += c;
    return rc;
}

static int node_close(rill_stage *st, void *state) {
    (void)st;
    node *n = state;
    atomic_fetch_add(&n->closes, 1);
    return n->close_code ? fail_now(n, n->close_code) : 0;
}

static void node_destroy(void *state) { ((node *)state)->destroys++; }

static const rill_stage_ops send_ops = {
    .send = node_send, .close = node_close, .free = node_destroy};
static const rill_stage_ops source_ops = {
    .produce = node_produce, .close = node_close, .free = node_destroy};

/* ---- building nets ---------------------------------------------------------------------- */

static void net_init(net *t) {
    memset(t, 0, sizeof *t);
    atomic_init(&t->alive, 0);
    atomic_init(&t->timeouts, 0);
    atomic_init(&t->go, 0);
}

static node *add(net *t, const char *name, bool source, bool threaded, unsigned cap,
                 unsigned batch) {
    node *n = &t->n[t->count++];
    n->net = t;
    snprintf(n->name, sizeof n->name, "%s", name);
    n->source = source;
    n->threaded = threaded;
    n->cap = cap;
    n->batch = batch;
    n->items = 200;
    n->chunk = 16;
    return n;
}

static void link_to(node *from, node *to) { from->to[from->nout++] = to; }

/* src -> s1 -> ... -> s<len>, every stage threaded (the source if asked). */
static void chain(net *t, unsigned len, bool threaded_src, unsigned cap, unsigned batch) {
    net_init(t);
    node *prev = add(t, "src", true, threaded_src, cap, batch);
    for (unsigned i = 1; i <= len; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%u", i);
        node *n = add(t, name, false, true, cap, batch);
        link_to(prev, n);
        prev = n;
    }
}

static node *find(net *t, const char *name) {
    for (unsigned i = 0; i < t->count; i++)
        if (strcmp(t->n[i].name, name) == 0)
            return &t->n[i];
    return NULL;
}

static int build(net *t) {
    int rc = rill_pipeline_new("fail", &t->p);
    for (unsigned i = 0; i < t->count && rc == 0; i++) {
        node *n = &t->n[i];
        rill_stage_opts o = {.flags = n->threaded ? RILL_STAGE_THREADED : 0u,
                             .capacity = n->cap, .batch = n->batch};
        rc = rill_stage_add(t->p, n->name, n->source ? &source_ops : &send_ops, n, &o, &n->st);
    }
    for (unsigned i = 0; i < t->count && rc == 0; i++)
        for (unsigned k = 0; k < t->n[i].nout && rc == 0; k++)
            rc = rill_connect(t->n[i].st, t->n[i].to[k]->st);
    return rc;
}

/* ---- checks ------------------------------------------------------------------------------ */

/* A failed check: name the case, show the counters, release every stall and
 * free the pipeline (its threads joined), then return from the test. */
static void case_failed(net *t, int line, const char *what) {
    char st[512];
    state_text(t, st, sizeof st);
    rill_test__failf(__FILE__, line, "[%s] %s\n  state:%s%s%s", g_case, what, st,
                     atomic_load(&t->timeouts) ? "\n  when the wait timed out:" : "",
                     atomic_load(&t->timeouts) ? t->state : "");
    release_all(t);
    rill_pipeline_free(t->p);
    t->p = NULL;
}

#define CHECK_T(t, c)                                                                      \
    do {                                                                                   \
        if (!(c)) {                                                                        \
            case_failed(t, __LINE__, "CHECK(" #c ") failed");                              \
            return;                                                                        \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_T(t, a, b)                                                                \
    do {                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                \
        if (a_ != b_) {                                                                    \
            char m_[200];                                                                  \
            snprintf(m_, sizeof m_, "CHECK_EQ(%s, %s): %lld != %lld", #a, #b, a_, b_);     \
            case_failed(t, __LINE__, m_);                                                  \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static bool failf(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static bool failf(char *why, size_t len, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
    return false;
}

/* After close: rc is what run/close returned, want what they must return;
 * stage names the failing stage (NULL: an abort). */
static bool verdict(net *t, int rc, int want, const char *stage, char *why, size_t len) {
    rill_pipeline *p = t->p;
    if (atomic_load(&t->timeouts))
        return failf(why, len, "a wait timed out (the pipeline never reached the state)");
    if (rc != want)
        return failf(why, len, "returned %d (%s), expected %d (%s); errmsg \"%s\"", rc,
                     rill_strerror(rc), want, rill_strerror(want), rill_pipeline_errmsg(p));
    if (rill_pipeline_close(p) != want || rill_pipeline_status(p) != want)
        return failf(why, len, "close/status do not repeat %d", want);
    const char *es = rill_pipeline_errstage(p), *msg = rill_pipeline_errmsg(p);
    char quoted[24];
    snprintf(quoted, sizeof quoted, "'%s'", stage ? stage : "");
    if (stage ? !es || strcmp(es, stage) != 0 || !strstr(msg, quoted)
              : es != NULL || strcmp(msg, "pipeline aborted") != 0)
        return failf(why, len, "errstage %s, errmsg \"%s\", expected stage %s", es ? es : "NULL",
                     msg, stage ? stage : "NULL (abort)");
    uint64_t queued = 0, delivered = 0;
    for (unsigned i = 0; i < t->count; i++) {
        node *n = &t->n[i];
        if (atomic_load(&n->closes) != 1 || n->late_sends)
            return failf(why, len, "%s: closed %d times, %d sends after close", n->name,
                         atomic_load(&n->closes), n->late_sends);
        if (atomic_load(&n->refused) && n->first_refusal != want)
            return failf(why, len, "%s: an emit was refused with %d, not the stop code %d",
                         n->name, n->first_refusal, want);
        if (n->threaded != rill_stage_threaded(n->st))
            return failf(why, len, "%s: threaded %d", n->name, !n->threaded);
        if (n->threaded && !n->source)
            delivered += atomic_load(&n->recv);
        for (unsigned k = 0; k < n->nout; k++)
            if (n->to[k]->threaded)
                queued += atomic_load(&n->ok[k]);
    }
    uint64_t d = rill_pipeline_discarded(p);
    if (queued != delivered + d)
        return failf(why, len, "%llu items queued between threads, %llu delivered + %llu discarded",
                     (unsigned long long)queued, (unsigned long long)delivered,
                     (unsigned long long)d);
    if (atomic_load(&t->alive) != 0)
        return failf(why, len, "%ld owner blocks never released", atomic_load(&t->alive));
    return true;
}

/* Destroy: every state's destroy once, nothing left alive. */
static bool teardown(net *t, char *why, size_t len) {
    rill_pipeline_free(t->p);
    t->p = NULL;
    for (unsigned i = 0; i < t->count; i++)
        if (t->n[i].destroys != 1)
            return failf(why, len, "%s destroyed %d times", t->n[i].name, t->n[i].destroys);
    return atomic_load(&t->alive) == 0 || failf(why, len, "owner blocks leaked at destroy");
}

#define VERDICT(t, rc, want, stage)                                                        \
    do {                                                                                   \
        char why_[512];                                                                    \
        if (!verdict(t, rc, want, stage, why_, sizeof why_)) {                             \
            case_failed(t, __LINE__, why_);                                                \
            return;                                                                        \
        }                                                                                  \
        if (!teardown(t, why_, sizeof why_)) {                                             \
            rill_test__failf(__FILE__, __LINE__, "[%s] %s", g_case, why_);                 \
            return;                                                                        \
        }                                                                                  \
    } while (0)

/* ---- watchers: a thread that waits for a state of the pipeline, then acts ---------------- */

typedef struct watcher {
    net *t;
    bool (*cond)(void *);
    void *arg;
    void (*act)(struct watcher *);
    pthread_t main_thread, tid;
    unsigned hold_us; /* after cond: give blocked threads time to park */
} watcher;

static void *watch_main(void *arg) {
    watcher *w = arg;
    if (wait_until(w->t, w->cond, w->arg))
        nap_us(w->hold_us);
    w->act(w); /* also after a timeout: it unblocks the pipeline */
    return NULL;
}

static bool watch_start(watcher *w) {
    w->main_thread = pthread_self();
    return pthread_create(&w->tid, NULL, watch_main, w) == 0;
}

/* Inside an emit that has not returned. */
static bool in_emit(node *n) {
    return atomic_load(&n->attempts) == atomic_load(&n->finished) + 1;
}

/* prod is blocked on the full queue of a consumer stalled in its first item
 * (so it has finished no batch): exactly cap items went in and the next emit
 * has not returned. */
static bool blocked_first(void *arg) {
    node *prod = arg;
    return atomic_load(&prod->to[0]->stalled) && in_emit(prod) &&
           atomic_load(&prod->ok[0]) == prod->to[0]->cap;
}

/* The chain is jammed behind its last stage, stalled on its first item: the
 * last producer put exactly cap items in and is blocked (its consumer
 * finished none); every producer before it is inside an emit and nothing
 * has moved for 50 ms. (Those queues need not be quite full: a consumer that
 * finished some items wakes its parked producer only once the queue is half
 * empty or dry, and here it blocks on its own output first.) */
static bool chain_jammed(void *arg) {
    net *t = arg;
    unsigned last = t->count - 1;
    bool jammed = atomic_load(&t->n[last].stalled) && blocked_first(&t->n[last - 1]);
    uint64_t moves = 0;
    for (unsigned i = 0; i < t->count; i++) {
        node *n = &t->n[i];
        jammed = jammed && (i + 1 >= last || in_emit(n));
        moves += atomic_load(&n->recv) + atomic_load(&n->attempts) + atomic_load(&n->finished);
    }
    if (!jammed || moves != t->moves) {
        t->moves = moves;
        t->since = now_s();
        return false;
    }
    return now_s() - t->since >= 0.05;
}

/* After a jam released by a stop: the last producer's blocked emit was
 * refused and queued nothing; the others were refused at most once. */
static bool jam_outcome(net *t, char *why, size_t len) {
    node *lastprod = &t->n[t->count - 2];
    for (unsigned i = 0; i + 2 < t->count; i++)
        if (atomic_load(&t->n[i].refused) > 1)
            return failf(why, len, "%s: %llu emits refused", t->n[i].name,
                         (unsigned long long)atomic_load(&t->n[i].refused));
    if (atomic_load(&lastprod->refused) != 1 || atomic_load(&lastprod->ok[0]) != lastprod->cap)
        return failf(why, len, "%s: %llu refused, %llu queued into a stalled stage of capacity %u",
                     lastprod->name, (unsigned long long)atomic_load(&lastprod->refused),
                     (unsigned long long)atomic_load(&lastprod->ok[0]), lastprod->cap);
    /* The stalled stage took the first of its cap items only. */
    if (rill_pipeline_discarded(t->p) < lastprod->cap - 1)
        return failf(why, len, "discarded %llu < %u", (unsigned long long)rill_pipeline_discarded(t->p),
                     lastprod->cap - 1);
    return true;
}

#define JAM_OUTCOME(t)                                                                     \
    do {                                                                                   \
        char why_[256];                                                                    \
        if (!jam_outcome(t, why_, sizeof why_)) {                                          \
            case_failed(t, __LINE__, why_);                                                \
            return;                                                                        \
        }                                                                                  \
    } while (0)

static void act_release(watcher *w) { release_all(w->t); }

static void act_abort_release(watcher *w) {
    rill_pipeline_abort(w->t->p);
    release_all(w->t);
}

/* ---- failures in each position -------------------------------------------------------------- */

RILL_TEST(thread_fail, produce_fails) {
    static net t;
    for (unsigned threaded = 0; threaded < 2; threaded++)
        for (unsigned detail = 0; detail < 2; detail++)
            for (unsigned at = 1; at <= 13; at += 6) {
                CASE("source threaded %u, detail %u, fails on call %u", threaded, detail, at);
                chain(&t, 3, threaded, 4, 2);
                node *src = &t.n[0];
                src->fail_at = at;
                src->code = -EIO;
                src->detail = detail;
                CHECK_OK(build(&t));
                int rc = rill_pipeline_run(t.p);
                CHECK_T(&t, !detail || strstr(rill_pipeline_errmsg(t.p), "injected in src"));
                CHECK_EQ_T(&t, src->next, 16 * (at - 1));
                VERDICT(&t, rc, -EIO, "src");
            }
}

RILL_TEST(thread_fail, send_fails_in_each_position) {
    static net t;
    static const int codes[] = {-EIO, -ENOSPC, -EPIPE, -EBADMSG};
    static const unsigned caps[] = {1, 3, 64}, nth[] = {1, 5, 37};
    for (unsigned pos = 1; pos <= 4; pos++)
        for (unsigned c = 0; c < 3; c++)
            for (unsigned b = 0; b < 2; b++)
                for (unsigned k = 0; k < 3; k++) {
                    CASE("s%u fails on item %u, cap %u, batch %u", pos, nth[k], caps[c],
                         b ? 0 : 1);
                    chain(&t, 4, (pos + k) % 2, caps[c], b ? 0 : 1);
                    node *n = &t.n[pos];
                    n->fail_at = nth[k];
                    n->code = codes[pos - 1];
                    n->detail = k % 2;
                    CHECK_OK(build(&t));
                    int rc = rill_pipeline_run(t.p);
                    CHECK_EQ_T(&t, atomic_load(&n->recv), nth[k]);
                    VERDICT(&t, rc, codes[pos - 1], n->name);
                }
}

/* Mixed threads: an inline stage on its producer's thread, and a stage fed
 * from two threads (promoted): src -> a(T) -> b -> d; src -> c(T) -> d;
 * d -> e (inline on d's thread). */
static void diamond(net *t, unsigned cap, unsigned batch) {
    net_init(t);
    node *src = add(t, "src", true, false, cap, batch);
    node *a = add(t, "a", false, true, cap, batch), *b = add(t, "b", false, false, cap, batch);
    node *c = add(t, "c", false, true, cap, batch), *d = add(t, "d", false, false, cap, batch);
    node *e = add(t, "e", false, false, cap, batch);
    link_to(src, a);
    link_to(a, b);
    link_to(b, d);
    link_to(src, c);
    link_to(c, d);
    link_to(d, e);
    d->threaded = true; /* promoted: fed from a's and c's threads */
}

RILL_TEST(thread_fail, send_and_close_fail_in_a_diamond) {
    static net t;
    static const char *names[] = {"a", "b", "c", "d", "e"};
    for (unsigned i = 0; i < 5; i++)
        for (unsigned in_close = 0; in_close < 2; in_close++)
            for (unsigned cap = 1; cap <= 16; cap *= 4) {
                CASE("%s fails in %s, cap %u", names[i], in_close ? "close" : "send", cap);
                diamond(&t, cap, cap / 2);
                node *n = find(&t, names[i]);
                if (in_close)
                    n->close_code = -ENOSPC;
                else
                    n->fail_at = 7;
                n->code = -ENOSPC;
                n->detail = cap > 1;
                CHECK_OK(build(&t));
                int rc = rill_pipeline_run(t.p);
                VERDICT(&t, rc, -ENOSPC, names[i]);
            }
}

RILL_TEST(thread_fail, close_fails_in_each_position) {
    static net t;
    for (unsigned pos = 0; pos <= 4; pos++)
        for (unsigned detail = 0; detail < 2; detail++) {
            CASE("close of stage %u fails, detail %u", pos, detail);
            chain(&t, 4, detail, 2, 1);
            node *n = &t.n[pos];
            n->close_code = -EPIPE;
            n->detail = detail;
            CHECK_OK(build(&t));
            int rc = rill_pipeline_run(t.p);
            /* Everything before the failing close was delivered. */
            CHECK_EQ_T(&t, atomic_load(&n->recv), pos ? 200 : 0);
            VERDICT(&t, rc, -EPIPE, n->name);
        }
}

RILL_TEST(thread_fail, first_error_wins) {
    static net t;
    CASE("s2 fails, then the close of s4");
    chain(&t, 4, true, 4, 2);
    t.n[2].fail_at = 3;
    t.n[2].code = -EIO;
    t.n[4].close_code = -EPIPE; /* closes after s2 failed: not recorded */
    CHECK_OK(build(&t));
    int rc = rill_pipeline_run(t.p);
    VERDICT(&t, rc, -EIO, "s2");
}

/* ---- failures while queues are full ---------------------------------------------------------- */

RILL_TEST(thread_fail, stage_fails_while_its_producer_is_blocked) {
    static net t;
    for (unsigned pos = 1; pos <= 3; pos++)
        for (unsigned cap = 1; cap <= 4; cap += 3)
            for (unsigned b = 0; b < 2; b++)
                for (unsigned tsrc = 0; tsrc < 2; tsrc++) {
                    CASE("s%u, cap %u, batch %u, source threaded %u", pos, cap, b ? cap : 1, tsrc);
                    chain(&t, 3, tsrc, cap, b ? cap : 1);
                    node *n = &t.n[pos], *prod = &t.n[pos - 1];
                    n->stall_at = 1;
                    n->stall_fails = true;
                    n->code = -EIO;
                    CHECK_OK(build(&t));
                    watcher w = {.t = &t, .cond = blocked_first, .arg = prod,
                                 .act = act_release, .hold_us = 2000};
                    CHECK(watch_start(&w));
                    int rc = rill_pipeline_run(t.p);
                    pthread_join(w.tid, NULL);
                    /* The blocked emit returned the error: nothing more was queued. */
                    CHECK_EQ_T(&t, atomic_load(&prod->refused), 1);
                    CHECK_EQ_T(&t, atomic_load(&prod->ok[0]), cap);
                    CHECK_EQ_T(&t, atomic_load(&n->recv), 1);
                    VERDICT(&t, rc, -EIO, n->name);
                }
}

RILL_TEST(thread_fail, last_stage_fails_while_every_queue_is_full) {
    static net t;
    for (unsigned cap = 1; cap <= 16; cap *= 4)
        for (unsigned b = 0; b < 2; b++)
            for (unsigned tsrc = 0; tsrc < 2; tsrc++) {
                unsigned batch = b ? cap : 1;
                CASE("cap %u, batch %u, source threaded %u", cap, batch, tsrc);
                chain(&t, 4, tsrc, cap, batch);
                node *last = &t.n[4];
                last->stall_at = 1;
                last->stall_fails = true;
                last->code = -EPIPE;
                CHECK_OK(build(&t));
                watcher w = {.t = &t, .cond = chain_jammed, .arg = &t, .act = act_release,
                             .hold_us = 2000};
                CHECK(watch_start(&w));
                int rc = rill_pipeline_run(t.p);
                pthread_join(w.tid, NULL);
                JAM_OUTCOME(&t);
                VERDICT(&t, rc, -EPIPE, "s4");
            }
}

/* ---- threads that cannot start ------------------------------------------------------------- */

/* src0(T) -> a(T) -> c ; src1 -> b(T) -> c ; c (promoted) -> d (inline, c's
 * thread) -> e(T): five threads, the promoted one among them. */
static void fan_net(net *t) {
    net_init(t);
    node *s0 = add(t, "src0", true, true, 4, 2), *s1 = add(t, "src1", true, false, 4, 2);
    node *a = add(t, "a", false, true, 3, 0), *b = add(t, "b", false, true, 1, 0);
    node *c = add(t, "c", false, false, 5, 2), *d = add(t, "d", false, false, 0, 0);
    node *e = add(t, "e", false, true, 2, 1);
    link_to(s0, a);
    link_to(s1, b);
    link_to(a, c);
    link_to(b, c);
    link_to(c, d);
    link_to(d, e);
    c->threaded = true;
}

RILL_TEST(thread_fail, thread_start_fails_for_each_threaded_stage) {
    static net t;
    static const char *names[] = {"src0", "a", "b", "c", "e"};
    for (unsigned i = 0; i < 5; i++)
        for (unsigned how = 0; how < 3; how++) {
            CASE("thread of %s fails to start, via %s", names[i],
                 how == 0 ? "run" : how == 1 ? "start + close" : "start + destroy");
            fan_net(&t);
            CHECK_OK(build(&t));
            CHECK(setenv("RILL_FAULT_THREAD_START", names[i], 1) == 0);
            int rc = how == 0 ? rill_pipeline_run(t.p) : rill_pipeline_start(t.p);
            unsetenv("RILL_FAULT_THREAD_START");
            if (how == 2) {
                /* Destroy without close: joins, closes each stage once, frees. */
                CHECK_EQ_T(&t, rc, -EAGAIN);
                CHECK_STREQ(rill_pipeline_errstage(t.p), names[i]);
                char why[256];
                if (!teardown(&t, why, sizeof why))
                    rill_test__failf(__FILE__, __LINE__, "[%s] %s", g_case, why);
                for (unsigned k = 0; k < t.count; k++)
                    CHECK_EQ(atomic_load(&t.n[k].closes), 1);
                continue;
            }
            if (how == 1)
                rc = rill_pipeline_close(t.p);
            CHECK_T(&t, strstr(rill_pipeline_errmsg(t.p), "cannot start its thread"));
            VERDICT(&t, rc, -EAGAIN, names[i]);
        }
}

/* ---- abort ---------------------------------------------------------------------------------- */

RILL_TEST(thread_fail, abort_from_another_thread_while_every_queue_is_full) {
    static net t;
    for (unsigned cap = 1; cap <= 16; cap *= 4)
        for (unsigned b = 0; b < 2; b++)
            for (unsigned tsrc = 0; tsrc < 2; tsrc++) {
                unsigned batch = b ? cap : 1;
                CASE("cap %u, batch %u, source threaded %u", cap, batch, tsrc);
                chain(&t, 4, tsrc, cap, batch);
                t.n[4].stall_at = 1;
                CHECK_OK(build(&t));
                watcher w = {.t = &t, .cond = chain_jammed, .arg = &t, .act = act_abort_release,
                             .hold_us = 2000};
                CHECK(watch_start(&w));
                int rc = rill_pipeline_run(t.p);
                pthread_join(w.tid, NULL);
                JAM_OUTCOME(&t);
                VERDICT(&t, rc, RILL_EABORTED, NULL);
            }
}

static _Atomic(rill_pipeline *) g_target;
static atomic_int g_signals;

static void on_alarm(int sig) {
    (void)sig;
    rill_pipeline_abort(atomic_load(&g_target));
    atomic_fetch_add(&g_signals, 1);
}

static bool got_signal(void *arg) {
    (void)arg;
    return atomic_load(&g_signals) > 0;
}

static void act_kill_main(watcher *w) {
    pthread_kill(w->main_thread, SIGALRM);
    wait_until(w->t, got_signal, NULL);
    release_all(w->t);
}

static void act_kill_self(watcher *w) {
    pthread_kill(pthread_self(), SIGALRM);
    wait_until(w->t, got_signal, NULL);
    release_all(w->t);
}

static void act_timer(watcher *w) {
    struct itimerval it = {{0, 0}, {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    wait_until(w->t, got_signal, NULL);
    release_all(w->t);
}

static bool set_handler(struct sigaction *old, int flags) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    atomic_store(&g_signals, 0);
    return sigaction(SIGALRM, &sa, old) == 0;
}

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif

/* The caller's thread produces (unthreaded source) into s1's full queue and
 * is blocked there when SIGALRM arrives: by pthread_kill to it, from a
 * process timer to whichever thread, or on another thread; with and without
 * SA_RESTART. ThreadSanitizer defers a signal that arrives during a system
 * call it does not intercept (the engine's raw futex wait) until the call
 * returns, which here is never: under it only the handler on another thread
 * can run while the caller is blocked. */
RILL_TEST(thread_fail, abort_from_signal_handler_while_run_is_blocked) {
    static net t;
    static const struct {
        const char *what;
        void (*act)(watcher *);
        int flags;
        unsigned batch;
        bool tsan;
    } ways[] = {
        {"pthread_kill to the blocked caller", act_kill_main, SA_RESTART, 1, false},
        {"pthread_kill to the blocked caller", act_kill_main, 0, 4, false},
        {"setitimer", act_timer, SA_RESTART, 4, false},
        {"setitimer", act_timer, 0, 1, false},
        {"pthread_kill to another thread", act_kill_self, SA_RESTART, 4, true},
        {"pthread_kill to another thread", act_kill_self, 0, 1, true},
    };
    for (unsigned how = 0; how < sizeof ways / sizeof ways[0]; how++) {
#ifdef UNDER_TSAN
        if (!ways[how].tsan)
            continue;
#endif
        CASE("%s, flags %d, batch %u", ways[how].what, ways[how].flags, ways[how].batch);
        chain(&t, 2, false, 4, ways[how].batch);
        node *src = &t.n[0];
        t.n[1].stall_at = 1;
        CHECK_OK(build(&t));
        atomic_store(&g_target, t.p);
        struct sigaction old;
        CHECK(set_handler(&old, ways[how].flags));
        watcher w = {.t = &t, .cond = blocked_first, .arg = src, .act = ways[how].act,
                     .hold_us = 2000};
        CHECK(watch_start(&w));
        int rc = rill_pipeline_run(t.p);
        pthread_join(w.tid, NULL);
        sigaction(SIGALRM, &old, NULL);
        atomic_store(&g_target, NULL);
        CHECK_EQ_T(&t, atomic_load(&g_signals), 1);
        CHECK_EQ_T(&t, atomic_load(&src->refused), 1);
        CHECK_EQ_T(&t, atomic_load(&src->ok[0]), 4);
        /* s1 was inside item 1 of the 4 queued; its emit was refused. */
        CHECK_EQ_T(&t, atomic_load(&t.n[1].recv), 1);
        CHECK_EQ_T(&t, rill_pipeline_discarded(t.p), 3);
        VERDICT(&t, rc, RILL_EABORTED, NULL);
    }
}

/* raise() on a worker thread: the handler runs there. */
RILL_TEST(thread_fail, abort_from_signal_raised_by_a_stage) {
    static net t;
    CASE("s2 raises SIGALRM on its 5th item");
    chain(&t, 3, true, 2, 1);
    t.n[2].raise_at = 5;
    CHECK_OK(build(&t));
    atomic_store(&g_target, t.p);
    struct sigaction old;
    CHECK(set_handler(&old, 0));
    int rc = rill_pipeline_run(t.p);
    sigaction(SIGALRM, &old, NULL);
    atomic_store(&g_target, NULL);
    CHECK_EQ_T(&t, atomic_load(&g_signals), 1);
    CHECK_EQ_T(&t, atomic_load(&t.n[2].recv), 5);
    VERDICT(&t, rc, RILL_EABORTED, NULL);
}

/* A stage aborts on a worker; later failures (its own, a close downstream)
 * are not recorded: the status stays RILL_EABORTED. */
RILL_TEST(thread_fail, abort_from_a_stage_and_later_errors_ignored) {
    static net t;
    for (unsigned swallow = 0; swallow < 2; swallow++)
        for (unsigned cap = 1; cap <= 64; cap *= 8) {
            CASE("s2 aborts on item 10, then %s; cap %u", swallow ? "goes on" : "fails", cap);
            chain(&t, 4, swallow, cap, 0);
            t.n[2].abort_at = 10;
            t.n[2].late_fail_at = swallow ? 0 : 10; /* fails right after aborting */
            t.n[2].swallow = swallow;               /* or goes on, its emits refused */
            t.n[4].close_code = -EIO;
            CHECK_OK(build(&t));
            int rc = rill_pipeline_run(t.p);
            if (!swallow)
                CHECK_EQ_T(&t, atomic_load(&t.n[2].recv), 10);
            VERDICT(&t, rc, RILL_EABORTED, NULL);
        }
}

/* ---- destroy early ---------------------------------------------------------------------------- */

RILL_TEST(thread_fail, destroy_never_run_started_or_failed) {
    static net t;
    char why[256];
    CASE("never started");
    chain(&t, 3, true, 2, 1);
    CHECK_OK(build(&t));
    CHECK(teardown(&t, why, sizeof why));
    for (unsigned i = 0; i < t.count; i++)
        CHECK_EQ(atomic_load(&t.n[i].closes), 0); /* close is for started pipelines */
    /* Started, never closed: the threaded source fills the queues, then
     * destroy aborts, joins, closes each stage once. */
    for (unsigned cap = 1; cap <= 4; cap += 3) {
        CASE("started, never closed, cap %u", cap);
        chain(&t, 3, true, cap, 1);
        CHECK_OK(build(&t));
        CHECK_OK(rill_pipeline_start(t.p));
        bool ok = teardown(&t, why, sizeof why);
        CHECK(ok);
        for (unsigned i = 0; i < t.count; i++)
            CHECK_EQ(atomic_load(&t.n[i].closes), 1);
    }
    /* The same with every queue full and the last stage stalled: the stall is
     * released (from a watcher) after destroy has begun. */
    CASE("started, queues full, destroyed");
    chain(&t, 3, true, 4, 1);
    t.n[3].stall_at = 1;
    CHECK_OK(build(&t));
    CHECK_OK(rill_pipeline_start(t.p));
    CHECK_T(&t, wait_until(&t, chain_jammed, &t));
    watcher w = {.t = &t, .cond = net_go, .arg = &t, .act = act_release, .hold_us = 20000};
    CHECK(watch_start(&w));
    atomic_store(&t.go, 1);
    bool ok = teardown(&t, why, sizeof why);
    pthread_join(w.tid, NULL);
    CHECK(ok);
    CHECK_EQ(atomic_load(&t.timeouts), 0);
    for (unsigned i = 0; i < t.count; i++)
        CHECK_EQ(atomic_load(&t.n[i].closes), 1);
    CASE("run failed, then destroyed");
    chain(&t, 3, false, 2, 1);
    t.n[2].fail_at = 4;
    t.n[2].code = -EIO;
    CHECK_OK(build(&t));
    CHECK_EQ(rill_pipeline_run(t.p), -EIO);
    CHECK(teardown(&t, why, sizeof why));
}

/* Abort from another thread while close is draining normally: the result is
 * a clean 0 or RILL_EABORTED, never a crash or a use of freed queues. */
RILL_TEST(thread_fail, abort_racing_a_draining_close) {
    static net t;
    for (unsigned i = 0; i < 150; i++) {
        CASE("race %u", i);
        chain(&t, 2, i % 2, 2, 1);
        t.n[0].items = 20;
        CHECK_OK(build(&t));
        watcher w = {.t = &t, .cond = net_go, .arg = &t, .act = act_abort_release,
                     .hold_us = i % 50};
        atomic_store(&t.go, 1);
        CHECK(watch_start(&w));
        int rc = rill_pipeline_run(t.p);
        pthread_join(w.tid, NULL);
        CHECK_T(&t, rc == 0 || rc == RILL_EABORTED);
        if (rc == 0) {
            CHECK_EQ_T(&t, atomic_load(&t.n[2].recv), 20);
            CHECK_EQ_T(&t, rill_pipeline_discarded(t.p), 0);
            char why[256];
            CHECK(teardown(&t, why, sizeof why));
            continue;
        }
        VERDICT(&t, rc, RILL_EABORTED, NULL);
    }
}
