/* rill_pipeline_stopped: 0 while a pipeline runs normally, the code emits
 * return once an error or an abort has stopped it. */
#include <string.h>

#include "rill.h"
#include "rill_test.h"

/* Fails with RILL_ETOOLONG on an item reading "bad"; counts the rest. */
typedef struct picky {
    int seen;
} picky;

static int picky_send(rill_stage *st, void *state, const rill_item *it) {
    picky *k = state;
    if (it->len == 3 && memcmp(it->data, "bad", 3) == 0)
        return rill_stage_fail(st, RILL_ETOOLONG, "item %d", k->seen);
    k->seen++;
    return 0;
}

static const rill_stage_ops picky_ops = {.send = picky_send};

static int make(rill_pipeline **p, rill_stage **st, picky *k) {
    memset(k, 0, sizeof *k);
    int rc = rill_pipeline_new("stopped", p);
    if (rc == 0)
        rc = rill_stage_add(*p, "picky", &picky_ops, k, NULL, st);
    if (rc == 0)
        rc = rill_pipeline_start(*p);
    return rc;
}

static int push(rill_pipeline *p, rill_stage *st, const char *s) {
    rill_item it = {s, strlen(s), NULL};
    return rill_pipeline_push(p, st, &it);
}

RILL_TEST(pipeline_stopped, zero_through_a_normal_run_and_after_close) {
    rill_pipeline *p;
    rill_stage *st;
    picky k;
    CHECK_OK(make(&p, &st, &k));
    CHECK_EQ(rill_pipeline_stopped(p), 0);
    CHECK_OK(push(p, st, "ok"));
    CHECK_EQ(rill_pipeline_stopped(p), 0);
    CHECK_OK(rill_pipeline_close(p));
    CHECK_EQ(rill_pipeline_stopped(p), 0);
    CHECK_EQ(k.seen, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_stopped, an_error_gives_the_first_error_at_once) {
    rill_pipeline *p;
    rill_stage *st;
    picky k;
    CHECK_OK(make(&p, &st, &k));
    CHECK_OK(push(p, st, "ok"));
    CHECK_EQ(push(p, st, "bad"), RILL_ETOOLONG);
    CHECK_EQ(rill_pipeline_stopped(p), RILL_ETOOLONG); /* before close */
    CHECK_EQ(push(p, st, "ok"), RILL_ETOOLONG);
    CHECK_EQ(rill_pipeline_close(p), RILL_ETOOLONG);
    CHECK_EQ(rill_pipeline_stopped(p), RILL_ETOOLONG);
    CHECK_EQ(k.seen, 1);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_stopped, an_abort_is_seen_before_close_unlike_status) {
    rill_pipeline *p;
    rill_stage *st;
    picky k;
    CHECK_OK(make(&p, &st, &k));
    rill_pipeline_abort(p);
    CHECK_EQ(rill_pipeline_status(p), 0); /* an abort becomes the status at close */
    CHECK_EQ(rill_pipeline_stopped(p), RILL_EABORTED);
    CHECK_EQ(push(p, st, "ok"), RILL_EABORTED);
    CHECK_EQ(rill_pipeline_close(p), RILL_EABORTED);
    CHECK_EQ(rill_pipeline_stopped(p), RILL_EABORTED);
    CHECK_EQ(k.seen, 0);
    rill_pipeline_free(p);
}

RILL_TEST(pipeline_stopped, null_is_einval) { CHECK_EQ(rill_pipeline_stopped(NULL), RILL_EINVAL); }
