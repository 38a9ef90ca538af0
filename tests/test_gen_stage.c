/* Generators meet stages: a rill_gen as a source, a generator body fed with
 * send as a stage (rill/stages.h), and the two stackless-coroutine mistakes
 * that rill/coro.h makes loud: a yield inside a switch at run time, and both
 * mistakes at compile time (the compiler is run on snippets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

/* ---- a source: yields "0", "1", ... "n-1" -------------------------------- */

struct numbers {
    rill_gen gen;
    int i, n;
    char text[16];
    rill_item item;
    int closed, freed;
};

static int numbers_body(rill_gen *g) {
    struct numbers *s = RILL_CONTAINER_OF(g, struct numbers, gen);
    RILL_GEN_BEGIN(g);
    for (s->i = 0; s->i < s->n; s->i++) {
        s->item = rill_item_borrow(s->text, (size_t)snprintf(s->text, sizeof s->text, "%d", s->i));
        RILL_YIELD(g, &s->item);
    }
    RILL_GEN_END(g);
}

static int numbers_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct numbers, gen)->closed++;
    return 0;
}

static void numbers_free(rill_gen *g) { RILL_CONTAINER_OF(g, struct numbers, gen)->freed++; }

/* ---- a stage: running sum of the integers sent in; emits "sum=N" at end,
 * and "big" right after any item over 100 -------------------------------- */

struct summer {
    rill_gen gen;
    int64_t sum;
    char out[32];
    rill_item item;
    int closed;
};

static int summer_body(rill_gen *g) {
    struct summer *s = RILL_CONTAINER_OF(g, struct summer, gen);
    RILL_GEN_BEGIN(g);
    for (;;) {
        RILL_YIELD(g, NULL); /* the next item, or NULL at end of stream */
        if (!RILL_SENT(g))
            break;
        {
            int64_t v;
            rill_parse_error e;
            int rc = rill_item_i64(RILL_SENT(g), &v, &e);
            if (rc)
                return rc;
            s->sum += v;
            if (v <= 100)
                continue;
        }
        s->item = rill_item_cstr("big");
        RILL_YIELD(g, &s->item);
    }
    s->item = rill_item_static(s->out, (size_t)snprintf(s->out, sizeof s->out, "sum=%lld",
                                                         (long long)s->sum));
    RILL_YIELD(g, &s->item);
    RILL_GEN_END(g);
}

static int summer_close(rill_gen *g) {
    RILL_CONTAINER_OF(g, struct summer, gen)->closed++;
    return 0;
}

static void sumup(rill_pipeline *p, rill_stage *from, const char *const *items, size_t n) {
    for (size_t i = 0; i < n; i++) {
        rill_item it = rill_item_cstr(items[i]);
        if (rill_pipeline_push(p, from, &it))
            return;
    }
}

RILL_TEST(gen_stage, generator_as_source_into_generator_stage) {
    for (int threaded = 0; threaded < 2; threaded++) {
        struct numbers src = { .n = 200 };
        struct summer sum = { 0 };
        rill_gen_init(&src.gen, numbers_body, numbers_close);
        rill_gen_init(&sum.gen, summer_body, summer_close);
        rill_pipeline *p = NULL;
        rill_stage *s1, *s2, *out;
        rill_stage_opts topts = { .flags = RILL_STAGE_THREADED };
        CHECK_OK(rill_pipeline_new("gens", &p));
        CHECK_OK(rill_gen_source_add(p, "numbers", &src.gen, numbers_free, NULL, &s1));
        /* The source's items point into its state, which it overwrites: they
         * may not cross to a thread. The threaded run pushes static items
         * into the threaded generator stage instead (the source yields none). */
        if (threaded)
            src.n = 0;
        CHECK_OK(rill_gen_stage_add(p, "sum", &sum.gen, NULL, threaded ? &topts : NULL, &s2));
        CHECK_OK(rill_collect_add(p, "out", NULL, &out));
        CHECK_OK(rill_connect(s2, out));
        if (!threaded)
            CHECK_OK(rill_connect(s1, s2));
        else
            sumup(p, s2, (const char *const[]){"1", "250", "7"}, 3);
        CHECK_OK(rill_pipeline_run(p));
        const rill_item *items;
        size_t n;
        CHECK_OK(rill_collect_items(out, &items, &n));
        int64_t want = threaded ? 258 : 199 * 200 / 2;
        size_t bigs = threaded ? 1 : 99; /* 101..199 */
        CHECK_EQ(n, bigs + 1);
        char expect[32];
        snprintf(expect, sizeof expect, "sum=%lld", (long long)want);
        CHECK(rill_item_eq(&items[n - 1], expect, strlen(expect)));
        CHECK(rill_item_eq(&items[0], "big", 3));
        CHECK_EQ(sum.closed, 0); /* it ran to its end: no on_close */
        CHECK(rill_gen_status_of(&sum.gen) == RILL_GEN_DONE);
        rill_pipeline_free(p);
        CHECK_EQ(src.freed, 1);
        CHECK_EQ(src.closed, 0); /* exhausted: nothing to close */
    }
}

/* A body compiled with the header before RILL_YIELD marked its generator
 * suspended: the previous RILL_YIELD written out (pc, value, return), with no
 * store of rill__status. include/rill/coro.h and CHANGES.md promise that such
 * bodies keep working when the library drives them; a generator source is
 * driven by the library's own copy of the inline resume. */
static int old_header_numbers_body(rill_gen *g) {
    struct numbers *s = RILL_CONTAINER_OF(g, struct numbers, gen);
    switch (g->rill__pc) {
    case 0:
        for (s->i = 0; s->i < s->n; s->i++) {
            s->item = rill_item_borrow(s->text,
                                       (size_t)snprintf(s->text, sizeof s->text, "%d", s->i));
            g->rill__pc = 1;
            g->rill__val = &s->item;
            return 1; /* RILL__GEN_YIELD */
        case 1:;
        }
    }
    g->rill__val = NULL;
    return 0;
}

RILL_TEST(gen_stage, a_body_compiled_with_the_previous_header_runs_as_a_source) {
    CHECK_EQ(RILL__GEN_YIELD, 1); /* the value the body above returns */
    struct numbers src = {.n = 5};
    rill_gen_init(&src.gen, old_header_numbers_body, NULL);
    rill_pipeline *p = NULL;
    rill_stage *s1, *out;
    CHECK_OK(rill_pipeline_new("old", &p));
    CHECK_OK(rill_gen_source_add(p, "numbers", &src.gen, NULL, NULL, &s1));
    CHECK_OK(rill_collect_add(p, "out", NULL, &out));
    CHECK_OK(rill_connect(s1, out));
    int rc = rill_pipeline_run(p);
    if (rc)
        fprintf(stderr, "run: %s\n", rill_pipeline_error(p, rc));
    CHECK_OK(rc);
    const rill_item *items;
    size_t n;
    CHECK_OK(rill_collect_items(out, &items, &n));
    CHECK_EQ(n, (size_t)src.n);
    for (size_t i = 0; i < n; i++) {
        char want[24];
        snprintf(want, sizeof want, "%zu", i);
        CHECK(rill_item_eq(&items[i], want, strlen(want)));
    }
    rill_pipeline_free(p);
}

RILL_TEST(gen_stage, bad_item_fails_with_the_body_error_and_closes) {
    struct summer sum = { 0 };
    rill_gen_init(&sum.gen, summer_body, summer_close);
    rill_pipeline *p = NULL;
    rill_stage *s2;
    CHECK_OK(rill_pipeline_new("gens", &p));
    CHECK_OK(rill_gen_stage_add(p, "sum", &sum.gen, NULL, NULL, &s2));
    rill_item a = rill_item_cstr("5"), b = rill_item_cstr("5x");
    CHECK_OK(rill_pipeline_push(p, s2, &a));
    CHECK_EQ(rill_pipeline_push(p, s2, &b), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_close(p), RILL_EINVAL);
    const char *msg = rill_pipeline_errmsg(p);
    CHECK(strstr(msg, "'sum'") && strstr(msg, "after 2 items"));
    rill_pipeline_free(p);
    /* a body that returned an error did its own cleanup: no on_close */
    CHECK_EQ(sum.closed, 0);
}

RILL_TEST(gen_stage, abandoned_source_is_closed_once_and_freed) {
    struct numbers src = { .n = 1000000 };
    rill_gen_init(&src.gen, numbers_body, numbers_close);
    rill_pipeline *p = NULL;
    rill_stage *s1;
    CHECK_OK(rill_pipeline_new("gens", &p));
    CHECK_OK(rill_gen_source_add(p, "numbers", &src.gen, numbers_free, NULL, &s1));
    CHECK_OK(rill_pipeline_start(p));
    rill_pipeline_free(p); /* never run: suspended or created */
    CHECK_EQ(src.freed, 1);
    CHECK(src.closed <= 1);
    /* A started generator is refused: the stage primes it itself. */
    struct numbers used = { .n = 3 };
    void *v;
    rill_gen_init(&used.gen, numbers_body, NULL);
    CHECK_OK(rill_gen_next(&used.gen, &v));
    CHECK_OK(rill_pipeline_new("gens2", &p));
    CHECK_EQ(rill_gen_source_add(p, "x", &used.gen, NULL, NULL, NULL), RILL_EINVAL);
    /* Each refusal says which call, which stage and what is wrong. */
    CHECK(strstr(rill_pipeline_error(p, RILL_EINVAL), "rill_gen_source_add 'x'"));
    CHECK(strstr(rill_pipeline_errmsg(p), "already resumed"));
    rill_stage *y = (rill_stage *)&y;
    CHECK_EQ(rill_gen_stage_add(p, "y", NULL, NULL, NULL, &y), RILL_EINVAL);
    CHECK(y == NULL);
    CHECK(strstr(rill_pipeline_error(p, RILL_EINVAL), "rill_gen_stage_add 'y'"));
    CHECK(strstr(rill_pipeline_errmsg(p), "generator g is NULL"));
    rill_pipeline_free(p);
}

/* A body that takes two items and returns: the third is an error that says so. */
struct take2 {
    rill_gen gen;
    int k;
};

static int take2_body(rill_gen *g) {
    struct take2 *t = RILL_CONTAINER_OF(g, struct take2, gen);
    RILL_GEN_BEGIN(g);
    for (t->k = 0; t->k < 2; t->k++)
        RILL_YIELD(g, NULL);
    RILL_GEN_END(g);
}

RILL_TEST(gen_stage, body_that_returns_early_fails_at_the_next_item) {
    struct take2 t = { 0 };
    rill_gen_init(&t.gen, take2_body, NULL);
    rill_pipeline *p = NULL;
    rill_stage *st;
    CHECK_OK(rill_pipeline_new("early", &p));
    CHECK_OK(rill_gen_stage_add(p, "take2", &t.gen, NULL, NULL, &st));
    rill_item it = rill_item_cstr("x");
    CHECK_OK(rill_pipeline_push(p, st, &it));
    CHECK_OK(rill_pipeline_push(p, st, &it));
    CHECK_EQ(rill_pipeline_push(p, st, &it), RILL_ESTATE);
    CHECK_EQ(rill_pipeline_close(p), RILL_ESTATE);
    CHECK(strstr(rill_pipeline_errmsg(p), "returned before end of stream (item 3)"));
    rill_pipeline_free(p);
}

/* ---- a yield inside a switch: caught at run time -------------------------- */

struct sw {
    rill_gen gen;
    int mode;
};

static int sw_body(rill_gen *g) {
    struct sw *s = RILL_CONTAINER_OF(g, struct sw, gen);
    RILL_GEN_BEGIN(g);
    switch (s->mode) { /* the mistake: no case of this switch collides */
    case 100:
        RILL_YIELD(g, &s->mode);
        break;
    default:
        break;
    }
    RILL_GEN_END(g);
}

RILL_TEST(gen_stage, yield_inside_switch_fails_loudly_at_resume) {
    struct sw s = { .mode = 100 };
    void *v = NULL;
    rill_gen_init(&s.gen, sw_body, NULL);
    CHECK_OK(rill_gen_next(&s.gen, &v)); /* the yield itself runs */
    CHECK(v == &s.mode);
    CHECK_EQ(rill_gen_next(&s.gen, &v), RILL_ENOTSUP); /* its resume cannot */
    CHECK(rill_gen_status_of(&s.gen) == RILL_GEN_DONE);
}

/* ---- both mistakes at compile time ----------------------------------------- */

/* Compile snippet with cc; returns the exit status, the diagnostics in out. */
static int compile(const char *cc, const char *name, const char *snippet, char *out, size_t cap) {
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/%s.c", RILL_TEST_TMP, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("#include \"rill/coro.h\"\n"
          "struct s { rill_gen g; int v; };\n"
          "int body(rill_gen *g) {\n"
          "    struct s *s = RILL_CONTAINER_OF(g, struct s, g);\n"
          "    RILL_GEN_BEGIN(g);\n",
          f);
    fputs(snippet, f);
    fputs("    RILL_GEN_END(g);\n}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd,
             "command -v %s >/dev/null || exit 99; %s -std=c11 -Wall -Werror -O1 -I%s/../include "
             "-c %s -o /dev/null 2>&1",
             cc, cc, RILL_DATA_DIR, path);
    return run(cmd, out, cap);
}

static const char *const local_across_yield =
    "    for (int i = 0; i < 3; i++) {\n"
    "        s->v = i;\n"
    "        RILL_YIELD(g, &s->v);\n"
    "    }\n";

static const char *const colliding_switch =
    "    switch (s->v) {\n"
    "    case 1: case 2: case 3: case 4:\n"
    "        RILL_YIELD(g, &s->v);\n"
    "        break;\n"
    "    }\n";

RILL_TEST(gen_stage, compile_errors_name_the_rule) {
    static char out[16384];
    const char *ccs[] = {"gcc", "clang"};
    int compiled = 0;
    for (int c = 0; c < 2; c++) {
        int rc = compile(ccs[c], "gen_local", local_across_yield, out, sizeof out);
        if (rc == 99)
            continue; /* that compiler is not installed */
        compiled++;
        CHECK(rc != 0);
        /* gcc points at coro.h's line stating the rule; clang at the use. */
        CHECK(strstr(out, c == 0 ? "RULE: no local lives across a yield"
                                 : "variable 'i' is uninitialized when used") != NULL);
        rc = compile(ccs[c], "gen_switch", colliding_switch, out, sizeof out);
        CHECK(rc != 0);
        CHECK(strstr(out, "duplicate case value") != NULL);
        CHECK(strstr(out, "no yield in a switch") != NULL);
        /* The same body with the local in the state struct compiles. */
        rc = compile(ccs[c], "gen_ok",
                     "    for (s->v = 0; s->v < 3; s->v++) RILL_YIELD(g, &s->v);\n", out,
                     sizeof out);
        CHECK_EQ(rc, 0);
    }
    CHECK(compiled > 0);
}
