/* Every rule of the generator contract in include/rill/coro.h. Values travel
 * as small integers in pointers (P/I); "closed_at" stamps record the order in
 * which on_close callbacks run. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "rill.h"
#include "rill_test.h"

#define P(i) ((void *)(intptr_t)(i))
#define I(p) ((intptr_t)(p))

/* What a test observes of a generator's cleanup. */
struct probe {
    int *clock; /* shared by the generators of one test, may be NULL */
    int closes, closed_at, close_rc;
};

static int probe_close(struct probe *p) {
    p->closes++;
    p->closed_at = p->clock ? (*p->clock)++ : -1;
    return p->close_rc;
}

/* seq: yields 1..n, then returns ret. */
struct seq {
    rill_gen gen;
    intptr_t i, n;
    void *ret;
    struct probe pr;
};

static int seq_body(rill_gen *g) {
    struct seq *s = RILL_CONTAINER_OF(g, struct seq, gen);
    RILL_GEN_BEGIN(g);
    for (s->i = 1; s->i <= s->n; s->i++)
        RILL_YIELD(g, P(s->i));
    RILL_RETURN(g, s->ret);
    RILL_GEN_END(g);
}

static int seq_close(rill_gen *g) {
    return probe_close(&RILL_CONTAINER_OF(g, struct seq, gen)->pr);
}

static void seq_init(struct seq *s, intptr_t n, void *ret, int *clock) {
    *s = (struct seq){.n = n, .ret = ret, .pr = {.clock = clock}};
    rill_gen_init(&s->gen, seq_body, seq_close);
}

/* acc: yields the running sum of what it is sent; next() (NULL) makes it
 * return the total, like the classic averager used with yield from. */
struct acc {
    rill_gen gen;
    intptr_t sum;
};

static int acc_body(rill_gen *g) {
    struct acc *a = RILL_CONTAINER_OF(g, struct acc, gen);
    RILL_GEN_BEGIN(g);
    for (a->sum = 0;;) {
        RILL_YIELD(g, P(a->sum));
        if (!RILL_SENT(g))
            break;
        a->sum += I(RILL_SENT(g));
    }
    RILL_RETURN(g, P(a->sum));
    RILL_GEN_END(g);
}

/* deleg: yields `before` (if not 0), yields from sub, keeps the result in
 * got, yields it if echo, and returns got + 1. */
struct deleg {
    rill_gen gen;
    rill_gen *sub;
    intptr_t before;
    int echo, resumed;
    void *got;
    struct probe pr;
};

static int deleg_body(rill_gen *g) {
    struct deleg *d = RILL_CONTAINER_OF(g, struct deleg, gen);
    RILL_GEN_BEGIN(g);
    if (d->before)
        RILL_YIELD(g, P(d->before));
    RILL_YIELD_FROM(g, d->sub);
    d->got = RILL_SENT(g);
    d->resumed++;
    if (d->echo)
        RILL_YIELD(g, d->got);
    RILL_RETURN(g, P(I(d->got) + 1));
    RILL_GEN_END(g);
}

static int deleg_close(rill_gen *g) {
    return probe_close(&RILL_CONTAINER_OF(g, struct deleg, gen)->pr);
}

static void deleg_init(struct deleg *d, rill_gen *sub, intptr_t before, int echo, int *clock) {
    *d = (struct deleg){.sub = sub, .before = before, .echo = echo, .pr = {.clock = clock}};
    rill_gen_init(&d->gen, deleg_body, deleg_close);
}

/* fail: yields 1, then its body fails with rc. */
struct fail {
    rill_gen gen;
    int rc;
    struct probe pr;
};

static int fail_body(rill_gen *g) {
    struct fail *f = RILL_CONTAINER_OF(g, struct fail, gen);
    RILL_GEN_BEGIN(g);
    RILL_YIELD(g, P(1));
    return f->rc;
    RILL_GEN_END(g);
}

static int fail_close(rill_gen *g) {
    return probe_close(&RILL_CONTAINER_OF(g, struct fail, gen)->pr);
}

/* Next from g must give value v. */
#define CHECK_NEXT(g, v)                                                       \
    do {                                                                       \
        void *out_ = P(-1);                                                    \
        CHECK_OK(rill_gen_next((g), &out_));                                   \
        CHECK_EQ(I(out_), (v));                                                \
    } while (0)

/* Next from g must report exhaustion with return value v. */
#define CHECK_DONE(g, v)                                                       \
    do {                                                                       \
        void *out_ = P(-1);                                                    \
        CHECK_EQ(rill_gen_next((g), &out_), RILL_EDONE);                       \
        CHECK_EQ(I(out_), (v));                                                \
    } while (0)

RILL_TEST(coro, next_yields_then_done_with_return_value_then_done_forever) {
    struct seq s;
    seq_init(&s, 3, P(42), NULL);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_CREATED);
    CHECK_NEXT(&s.gen, 1);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_SUSPENDED);
    CHECK_NEXT(&s.gen, 2);
    CHECK_NEXT(&s.gen, 3);
    CHECK_DONE(&s.gen, 42); /* StopIteration(42) */
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_DONE);
    for (int i = 0; i < 3; i++)
        CHECK_DONE(&s.gen, 0);
    void *out = P(-1);
    CHECK_EQ(rill_gen_send(&s.gen, P(5), &out), RILL_EDONE);
    CHECK(out == NULL);
    CHECK_EQ(rill_gen_next(&s.gen, NULL), RILL_EDONE); /* out may be NULL */
    CHECK_EQ(s.pr.closes, 0); /* running to the end is not a close */
}

RILL_TEST(coro, body_without_return_or_yield_gives_null) {
    struct seq s;
    seq_init(&s, 0, NULL, NULL);
    CHECK_DONE(&s.gen, 0);
    seq_init(&s, 0, P(7), NULL); /* re-initializing restarts from the top */
    CHECK_DONE(&s.gen, 7);
    seq_init(&s, 1, P(7), NULL);
    CHECK_NEXT(&s.gen, 1);
    CHECK_DONE(&s.gen, 7);
}

RILL_TEST(coro, send_values_reach_the_body) {
    struct acc a;
    rill_gen_init(&a.gen, acc_body, NULL);
    void *out;
    CHECK_OK(rill_gen_send(&a.gen, NULL, &out)); /* start */
    CHECK_EQ(I(out), 0);
    CHECK_OK(rill_gen_send(&a.gen, P(5), &out));
    CHECK_EQ(I(out), 5);
    CHECK_OK(rill_gen_send(&a.gen, P(7), &out));
    CHECK_EQ(I(out), 12);
    CHECK_DONE(&a.gen, 12); /* next() = send(NULL) */
}

RILL_TEST(coro, send_non_null_to_a_new_generator_is_einval_and_harmless) {
    struct seq s;
    seq_init(&s, 2, NULL, NULL);
    void *out = P(-1);
    CHECK_EQ(rill_gen_send(&s.gen, P(1), &out), RILL_EINVAL);
    CHECK(out == NULL);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_CREATED);
    CHECK_NEXT(&s.gen, 1);
    CHECK_OK(rill_gen_send(&s.gen, P(9), &out)); /* now waiting at a yield */
    CHECK_EQ(I(out), 2);
}

RILL_TEST(coro, bad_handles_are_einval) {
    rill_gen zero = {0};
    CHECK_EQ(rill_gen_next(NULL, NULL), RILL_EINVAL);
    CHECK_EQ(rill_gen_next(&zero, NULL), RILL_EINVAL); /* never initialized */
    CHECK_EQ(rill_gen_close(NULL), RILL_EINVAL);
}

/* poke: from inside its body (and its on_close) it calls the API on target,
 * which is itself or a generator delegating to it. */
struct poke {
    rill_gen gen;
    rill_gen *target;
    int rc_next, rc_send, rc_close, status, close_next, close_close;
    int finish; /* return right after poking instead of yielding first */
};

static int poke_body(rill_gen *g) {
    struct poke *p = RILL_CONTAINER_OF(g, struct poke, gen);
    RILL_GEN_BEGIN(g);
    p->rc_next = rill_gen_next(p->target, NULL);
    p->rc_send = rill_gen_send(p->target, P(1), NULL);
    p->rc_close = rill_gen_close(p->target);
    p->status = rill_gen_status_of(p->target);
    if (!p->finish)
        RILL_YIELD(g, P(1));
    RILL_RETURN(g, P(2));
    RILL_GEN_END(g);
}

static int poke_close(rill_gen *g) {
    struct poke *p = RILL_CONTAINER_OF(g, struct poke, gen);
    p->close_next = rill_gen_next(p->target, NULL);
    p->close_close = rill_gen_close(p->target);
    return 0;
}

RILL_TEST(coro, calling_itself_from_its_body_is_estate) {
    struct poke p = {0};
    rill_gen_init(&p.gen, poke_body, NULL);
    p.target = &p.gen;
    CHECK_NEXT(&p.gen, 1);
    CHECK_EQ(p.rc_next, RILL_ESTATE);
    CHECK_EQ(p.rc_send, RILL_ESTATE);
    CHECK_EQ(p.rc_close, RILL_ESTATE);
    CHECK_EQ(p.status, RILL_GEN_RUNNING);
    CHECK_DONE(&p.gen, 2); /* the refused calls did not disturb it */
}

RILL_TEST(coro, calling_a_delegator_from_its_delegate_is_estate) {
    struct poke p = {0};
    struct deleg d;
    rill_gen_init(&p.gen, poke_body, poke_close);
    deleg_init(&d, &p.gen, 0, 0, NULL);
    p.target = &d.gen;
    CHECK_NEXT(&d.gen, 1);
    CHECK_EQ(p.rc_next, RILL_ESTATE);
    CHECK_EQ(p.rc_send, RILL_ESTATE);
    CHECK_EQ(p.rc_close, RILL_ESTATE);
    CHECK_EQ(p.status, RILL_GEN_SUSPENDED); /* only the executing body runs */
    CHECK_EQ(rill_gen_status_of(&d.gen), RILL_GEN_SUSPENDED);
    /* While the chain is being closed its delegators cannot be resumed. */
    CHECK_OK(rill_gen_close(&d.gen));
    CHECK_EQ(p.close_next, RILL_ESTATE);
    CHECK_EQ(p.close_close, RILL_ESTATE);
    CHECK_EQ(d.pr.closes, 1);
    CHECK_EQ(d.resumed, 0);
    CHECK_DONE(&d.gen, 0);
}

/* A refused re-entry must not disturb the chain being driven: top -> mid ->
 * poke, where poke pokes mid itself, or x, a fresh generator that tries to
 * yield from mid, and then returns at once: the same resume must still
 * unwind level by level. */
RILL_TEST(coro, a_refused_reentry_leaves_the_running_chain_intact) {
    for (int via_x = 0; via_x < 2; via_x++) {
        struct poke p = {.finish = 1};
        struct deleg top, mid, x;
        rill_gen_init(&p.gen, poke_body, NULL);
        deleg_init(&mid, &p.gen, 0, 0, NULL);
        deleg_init(&top, &mid.gen, 0, 1, NULL);
        deleg_init(&x, &mid.gen, 0, 0, NULL);
        p.target = via_x ? &x.gen : &mid.gen;
        CHECK_NEXT(&top.gen, 3); /* poke returned 2, mid 3, top echoes */
        CHECK_EQ(p.rc_next, RILL_ESTATE);
        CHECK_EQ(x.pr.closes, via_x); /* x failed in its yield from */
        CHECK_DONE(&top.gen, 4);
        CHECK_EQ(mid.resumed + top.resumed, 2);
    }
}

RILL_TEST(coro, close_new_or_finished_runs_no_callback) {
    struct seq s;
    seq_init(&s, 1, NULL, NULL);
    CHECK_OK(rill_gen_close(&s.gen)); /* created */
    CHECK_EQ(s.pr.closes, 0);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_DONE);
    CHECK_DONE(&s.gen, 0);

    seq_init(&s, 1, P(3), NULL);
    CHECK_NEXT(&s.gen, 1);
    CHECK_DONE(&s.gen, 3);
    CHECK_OK(rill_gen_close(&s.gen)); /* finished */
    CHECK_EQ(s.pr.closes, 0);
    CHECK_DONE(&s.gen, 0);
}

RILL_TEST(coro, close_suspended_runs_on_close_exactly_once) {
    struct seq s;
    seq_init(&s, 5, P(3), NULL);
    CHECK_NEXT(&s.gen, 1);
    CHECK_OK(rill_gen_close(&s.gen));
    CHECK_EQ(s.pr.closes, 1);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_DONE);
    CHECK_DONE(&s.gen, 0); /* no return value: it never returned */
    CHECK_EQ(rill_gen_send(&s.gen, P(1), NULL), RILL_EDONE);
    CHECK_OK(rill_gen_close(&s.gen)); /* twice: a no-op */
    CHECK_EQ(s.pr.closes, 1);
}

RILL_TEST(coro, close_returns_the_on_close_error_once) {
    struct seq s;
    seq_init(&s, 5, NULL, NULL);
    s.pr.close_rc = RILL_ESTAGE;
    CHECK_NEXT(&s.gen, 1);
    CHECK_EQ(rill_gen_close(&s.gen), RILL_ESTAGE);
    CHECK_OK(rill_gen_close(&s.gen));
    CHECK_EQ(s.pr.closes, 1);
}

RILL_TEST(coro, close_of_a_delegating_generator_closes_innermost_first) {
    int clock = 0;
    struct seq s;
    struct deleg b, a;
    seq_init(&s, 5, NULL, &clock);
    deleg_init(&b, &s.gen, 0, 0, &clock);
    deleg_init(&a, &b.gen, 0, 0, &clock);
    b.pr.close_rc = -EIO;
    a.pr.close_rc = RILL_ESTAGE;
    CHECK_NEXT(&a.gen, 1);
    CHECK_NEXT(&a.gen, 2);
    CHECK_EQ(rill_gen_close(&a.gen), -EIO); /* the first error, innermost first */
    CHECK_EQ(s.pr.closes, 1);
    CHECK_EQ(b.pr.closes, 1);
    CHECK_EQ(a.pr.closes, 1);
    CHECK_EQ(s.pr.closed_at, 0);
    CHECK_EQ(b.pr.closed_at, 1);
    CHECK_EQ(a.pr.closed_at, 2);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_DONE);
    CHECK_EQ(rill_gen_status_of(&b.gen), RILL_GEN_DONE);
    CHECK_DONE(&a.gen, 0);
    CHECK_OK(rill_gen_close(&a.gen));
    CHECK_EQ(clock, 3);
}

RILL_TEST(coro, yield_from_passes_values_and_returns_the_sub_result) {
    struct seq s;
    struct deleg d;
    seq_init(&s, 3, P(99), NULL);
    deleg_init(&d, &s.gen, 50, 1, NULL);
    CHECK_NEXT(&d.gen, 50);
    CHECK_NEXT(&d.gen, 1);
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_SUSPENDED);
    CHECK_NEXT(&d.gen, 2);
    CHECK_NEXT(&d.gen, 3);
    CHECK_NEXT(&d.gen, 99); /* RILL_SENT after RILL_YIELD_FROM */
    CHECK_EQ(rill_gen_status_of(&s.gen), RILL_GEN_DONE);
    CHECK_DONE(&d.gen, 100);
    CHECK_EQ(d.resumed, 1);
    CHECK_EQ(s.pr.closes + d.pr.closes, 0);
}

RILL_TEST(coro, send_reaches_the_innermost_delegate) {
    struct acc a;
    struct deleg mid, top;
    rill_gen_init(&a.gen, acc_body, NULL);
    deleg_init(&mid, &a.gen, 0, 0, NULL);
    deleg_init(&top, &mid.gen, 0, 1, NULL);
    void *out;
    CHECK_EQ(rill_gen_send(&top.gen, P(3), &out), RILL_EINVAL); /* not started */
    CHECK_NEXT(&top.gen, 0);
    CHECK_OK(rill_gen_send(&top.gen, P(5), &out));
    CHECK_EQ(I(out), 5);
    CHECK_OK(rill_gen_send(&top.gen, P(7), &out));
    CHECK_EQ(I(out), 12);
    CHECK_NEXT(&top.gen, 13); /* acc returned 12, mid 13, top echoes it */
    CHECK_DONE(&top.gen, 14);
}

RILL_TEST(coro, yield_from_an_exhausted_generator_yields_nothing_and_gives_null) {
    struct seq s;
    struct deleg d;
    seq_init(&s, 2, P(9), NULL);
    CHECK_NEXT(&s.gen, 1);
    CHECK_NEXT(&s.gen, 2);
    CHECK_DONE(&s.gen, 9);
    deleg_init(&d, &s.gen, 0, 1, NULL);
    CHECK_NEXT(&d.gen, 0); /* the echo of got: the sub yielded nothing */
    CHECK_EQ(d.resumed, 1);
    CHECK(d.got == NULL);
    CHECK_DONE(&d.gen, 1);
}

RILL_TEST(coro, yield_from_a_partly_consumed_or_delegating_generator_continues_it) {
    struct seq s;
    struct deleg mid, top;
    seq_init(&s, 4, P(20), NULL);
    deleg_init(&mid, &s.gen, 0, 0, NULL);
    CHECK_NEXT(&mid.gen, 1); /* mid is now suspended inside its yield from */
    deleg_init(&top, &mid.gen, 0, 1, NULL);
    CHECK_NEXT(&top.gen, 2);
    CHECK_NEXT(&top.gen, 3);
    CHECK_NEXT(&top.gen, 4);
    CHECK_NEXT(&top.gen, 21);
    CHECK_DONE(&top.gen, 22);
}

RILL_TEST(coro, a_delegate_closed_by_its_owner_ends_the_yield_from_with_null) {
    struct seq s;
    struct deleg d;
    seq_init(&s, 4, P(20), NULL);
    deleg_init(&d, &s.gen, 0, 0, NULL);
    CHECK_NEXT(&d.gen, 1);
    CHECK_OK(rill_gen_close(&s.gen));
    CHECK_EQ(s.pr.closes, 1);
    CHECK_DONE(&d.gen, 1); /* got NULL, returned NULL + 1 */
    CHECK_EQ(d.resumed, 1);
    CHECK_EQ(d.pr.closes, 0);
}

RILL_TEST(coro, nested_delegation_several_levels) {
    struct seq s;
    struct deleg d[4];
    seq_init(&s, 3, P(10), NULL);
    for (int i = 3; i >= 0; i--)
        deleg_init(&d[i], i == 3 ? &s.gen : &d[i + 1].gen, 100 + i, 1, NULL);
    static const intptr_t want[] = {100, 101, 102, 103, 1, 2, 3, 10, 11, 12, 13};
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
        CHECK_NEXT(&d[0].gen, want[k]);
    CHECK_DONE(&d[0].gen, 14);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(d[i].resumed, 1);
}

RILL_TEST(coro, a_failing_delegate_fails_the_caller_and_closes_the_waiting_delegators) {
    int clock = 0;
    struct fail f = {.rc = -EIO, .pr = {.clock = &clock}};
    struct deleg b, a;
    rill_gen_init(&f.gen, fail_body, fail_close);
    deleg_init(&b, &f.gen, 0, 1, &clock);
    deleg_init(&a, &b.gen, 0, 1, &clock);
    CHECK_NEXT(&a.gen, 1);
    void *out = P(-1);
    CHECK_EQ(rill_gen_next(&a.gen, &out), -EIO);
    CHECK(out == NULL);
    CHECK_EQ(f.pr.closes, 0); /* a failing body did its own cleanup */
    CHECK_EQ(b.pr.closes, 1);
    CHECK_EQ(a.pr.closes, 1);
    CHECK_EQ(b.pr.closed_at, 0);
    CHECK_EQ(a.pr.closed_at, 1);
    CHECK_EQ(a.resumed + b.resumed, 0);
    CHECK_EQ(rill_gen_status_of(&f.gen), RILL_GEN_DONE);
    CHECK_EQ(rill_gen_status_of(&b.gen), RILL_GEN_DONE);
    CHECK_DONE(&a.gen, 0);
    CHECK_OK(rill_gen_close(&a.gen));
    CHECK_EQ(clock, 2);
}

RILL_TEST(coro, a_failing_body_is_done_afterwards) {
    struct fail f = {.rc = RILL_ESTAGE};
    rill_gen_init(&f.gen, fail_body, fail_close);
    CHECK_NEXT(&f.gen, 1);
    CHECK_EQ(rill_gen_next(&f.gen, NULL), RILL_ESTAGE);
    CHECK_EQ(rill_gen_status_of(&f.gen), RILL_GEN_DONE);
    CHECK_DONE(&f.gen, 0);
    CHECK_OK(rill_gen_close(&f.gen));
    CHECK_EQ(f.pr.closes, 0);
}

RILL_TEST(coro, yield_from_null_or_a_running_generator_fails_the_delegator) {
    struct deleg d;
    deleg_init(&d, NULL, 0, 0, NULL);
    CHECK_EQ(rill_gen_next(&d.gen, NULL), RILL_EINVAL);
    CHECK_EQ(d.pr.closes, 1); /* it was waiting in its yield from */
    CHECK_DONE(&d.gen, 0);

    deleg_init(&d, NULL, 0, 0, NULL);
    d.sub = &d.gen; /* yield from itself */
    CHECK_EQ(rill_gen_next(&d.gen, NULL), RILL_ESTATE);
    CHECK_EQ(d.pr.closes, 1);

    int clock = 0;
    struct deleg a, b; /* a -> b -> a: a cycle */
    deleg_init(&a, &b.gen, 0, 0, &clock);
    deleg_init(&b, &a.gen, 0, 0, &clock);
    CHECK_EQ(rill_gen_next(&a.gen, NULL), RILL_ESTATE);
    CHECK_EQ(b.pr.closed_at, 0);
    CHECK_EQ(a.pr.closed_at, 1);
    CHECK_EQ(a.pr.closes + b.pr.closes, 2);
    CHECK_DONE(&a.gen, 0);
    CHECK_DONE(&b.gen, 0);
}

/* fib, as in examples/fib.c: two bodies sharing code must not share state. */
struct fib {
    rill_gen gen;
    long a, b;
};

static int fib_body(rill_gen *g) {
    struct fib *f = RILL_CONTAINER_OF(g, struct fib, gen);
    RILL_GEN_BEGIN(g);
    for (f->a = 0, f->b = 1;;) {
        RILL_YIELD(g, f->a);
        long t = f->a + f->b;
        f->b = f->a;
        f->a = t;
    }
    RILL_GEN_END(g);
}

RILL_TEST(coro, many_instances_interleave_independently) {
    enum { N = 1000 };
    struct fib *fs = calloc(N, sizeof *fs);
    long *taken = calloc(N, sizeof *taken), *last = calloc(N, sizeof *last);
    long ref[40] = {0, 1};
    for (int i = 2; i < 40; i++)
        ref[i] = ref[i - 1] + ref[i - 2];
    int bad = !fs || !taken || !last;
    for (int i = 0; !bad && i < N; i++)
        rill_gen_init(&fs[i].gen, fib_body, NULL);
    /* Instance i advances by i % 5 + 1 values per round. */
    for (int round = 0; !bad && round < 7; round++)
        for (int i = 0; !bad && i < N; i++)
            for (int k = 0; k <= i % 5; k++) {
                void *v;
                if (rill_gen_next(&fs[i].gen, &v) != 0 || (long)I(v) != ref[taken[i]++])
                    bad = 1;
            }
    for (int i = 0; !bad && i < N; i++)
        bad = taken[i] != 7 * (i % 5 + 1);
    free(fs);
    free(taken);
    free(last);
    CHECK(!bad);
}

/* ---- deep chains and heap-allocated delegates ---------------------------- */

enum { DEEP = 100000 };

struct deep_run {
    int line; /* the first failed check in the worker, 0 if none */
};

#define DEEP_CHECK(c)                                                          \
    do {                                                                       \
        if (!(c) && !r->line)                                                  \
            r->line = __LINE__;                                                \
    } while (0)

/* Runs on a small stack: a driver that recursed per level would overflow. */
static void *deep_chain(void *arg) {
    struct deep_run *r = arg;
    struct deleg *d = calloc(DEEP, sizeof *d);
    struct acc leaf;
    struct seq s;
    void *out = NULL;
    int clock = 0;
    DEEP_CHECK(d != NULL);
    if (!d)
        return NULL;
    rill_gen_init(&leaf.gen, acc_body, NULL);
    for (int i = DEEP - 1; i >= 0; i--)
        deleg_init(&d[i], i == DEEP - 1 ? &leaf.gen : &d[i + 1].gen, 0, 0, NULL);
    DEEP_CHECK(rill_gen_next(&d[0].gen, &out) == 0 && I(out) == 0);
    DEEP_CHECK(rill_gen_send(&d[0].gen, P(5), &out) == 0 && I(out) == 5);
    DEEP_CHECK(rill_gen_send(&d[0].gen, P(6), &out) == 0 && I(out) == 11);
    DEEP_CHECK(rill_gen_status_of(&d[DEEP / 2].gen) == RILL_GEN_SUSPENDED);
    /* Each level returns the result of its yield from plus one. */
    DEEP_CHECK(rill_gen_next(&d[0].gen, &out) == RILL_EDONE && I(out) == 11 + DEEP);
    for (int i = 0; i < DEEP; i++)
        DEEP_CHECK(d[i].resumed == 1 && I(d[i].got) == 11 + DEEP - 1 - i);

    /* Closing the whole chain: innermost first, each on_close once. */
    seq_init(&s, 5, NULL, &clock);
    for (int i = DEEP - 1; i >= 0; i--)
        deleg_init(&d[i], i == DEEP - 1 ? &s.gen : &d[i + 1].gen, 0, 0, &clock);
    DEEP_CHECK(rill_gen_next(&d[0].gen, &out) == 0 && I(out) == 1);
    DEEP_CHECK(rill_gen_close(&d[0].gen) == 0);
    DEEP_CHECK(s.pr.closes == 1 && s.pr.closed_at == 0);
    for (int i = 0; i < DEEP; i++)
        DEEP_CHECK(d[i].pr.closes == 1 && d[i].pr.closed_at == DEEP - i);
    DEEP_CHECK(clock == DEEP + 1);
    free(d);
    return NULL;
}

RILL_TEST(coro, a_chain_of_100000_yield_froms_needs_no_stack) {
    struct deep_run r = {0};
    pthread_attr_t attr;
    pthread_t t;
    CHECK_EQ(pthread_attr_init(&attr), 0);
    CHECK_EQ(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
    CHECK_EQ(pthread_create(&t, &attr, deep_chain, &r), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    pthread_attr_destroy(&attr);
    if (r.line)
        rill_test__failf(__FILE__, r.line, "deep chain check failed");
    CHECK_EQ(r.line, 0);
}

/* walk: in-order walk of the implicit binary tree 0..n-1 (children 2k+1,
 * 2k+2), one heap-allocated generator per visited node, as in
 * examples/tree_walk.c; *live counts the allocated walks. */
struct walk {
    rill_gen gen;
    int node, n, *live;
    struct walk *child;
};

static int walk_body(rill_gen *g);

static int walk_close(rill_gen *g);

static struct walk *walk_new(int node, int n, int *live) {
    struct walk *w = malloc(sizeof *w);
    if (w) {
        *w = (struct walk){.node = node, .n = n, .live = live};
        rill_gen_init(&w->gen, walk_body, walk_close);
        (*live)++;
    }
    return w;
}

static void walk_free(struct walk *w) {
    if (w) {
        (*w->live)--;
        free(w);
    }
}

static int walk_close(rill_gen *g) {
    struct walk *w = RILL_CONTAINER_OF(g, struct walk, gen);
    walk_free(w->child); /* already closed: innermost first */
    w->child = NULL;
    return 0;
}

static int walk_body(rill_gen *g) {
    struct walk *w = RILL_CONTAINER_OF(g, struct walk, gen);
    RILL_GEN_BEGIN(g);
    if (2 * w->node + 1 < w->n) {
        if (!(w->child = walk_new(2 * w->node + 1, w->n, w->live)))
            return RILL_ENOMEM;
        RILL_YIELD_FROM(g, &w->child->gen);
        walk_free(w->child); /* the driver no longer touches it */
        w->child = NULL;
    }
    RILL_YIELD(g, P(w->node));
    if (2 * w->node + 2 < w->n) {
        if (!(w->child = walk_new(2 * w->node + 2, w->n, w->live)))
            return RILL_ENOMEM;
        RILL_YIELD_FROM(g, &w->child->gen);
        walk_free(w->child);
        w->child = NULL;
    }
    RILL_GEN_END(g);
}

/* The reference: a plain recursive in-order walk. */
static void inorder(int node, int n, int *out, int *len) {
    if (node >= n)
        return;
    inorder(2 * node + 1, n, out, len);
    out[(*len)++] = node;
    inorder(2 * node + 2, n, out, len);
}

RILL_TEST(coro, a_generator_of_generators_frees_its_delegates_when_done_or_closed) {
    enum { N = 1023 };
    int want[N], len = 0, live = 0;
    inorder(0, N, want, &len);
    CHECK_EQ(len, N);

    struct walk *root = walk_new(0, N, &live);
    CHECK(root != NULL);
    void *out;
    int i = 0, rc;
    while ((rc = rill_gen_next(&root->gen, &out)) == 0 && i < N)
        if (I(out) != want[i++])
            break;
    CHECK_EQ(rc, RILL_EDONE);
    CHECK_EQ(i, N);
    CHECK_EQ(live, 1); /* only the root */
    walk_free(root);

    root = walk_new(0, N, &live);
    CHECK(root != NULL);
    for (i = 0; i < 300; i++) {
        CHECK_OK(rill_gen_next(&root->gen, &out));
        CHECK_EQ(I(out), want[i]);
    }
    CHECK(live > 2); /* suspended a few levels deep */
    CHECK_OK(rill_gen_close(&root->gen));
    CHECK_EQ(live, 1);
    walk_free(root);
    CHECK_EQ(live, 0);
}

static int seq_close_and_free(rill_gen *g) {
    int rc = seq_close(g);
    free(RILL_CONTAINER_OF(g, struct seq, gen));
    return rc;
}

RILL_TEST(coro, on_close_may_free_the_generator_itself) {
    int clock = 0;
    struct seq *s = malloc(sizeof *s);
    struct deleg d;
    CHECK(s != NULL);
    seq_init(s, 3, NULL, &clock);
    rill_gen_init(&s->gen, seq_body, seq_close_and_free);
    deleg_init(&d, &s->gen, 0, 0, &clock);
    CHECK_NEXT(&d.gen, 1);
    CHECK_OK(rill_gen_close(&d.gen)); /* ASan: nothing touches s after free */
    CHECK_EQ(d.pr.closed_at, 1);
    CHECK_EQ(clock, 2);
}
