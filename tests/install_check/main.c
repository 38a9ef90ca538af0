/* Built by scripts/install_check.sh against an installed rill, with only
 * `pkg-config --cflags --libs rill` and strict C11 (no _GNU_SOURCE): proves
 * the installed headers are self-contained and the library links and runs. */
#include <rill.h>

#include <stdio.h>
#include <string.h>

struct count3 {
    rill_gen gen;
    int i;
};

static int count3_body(rill_gen *g) {
    struct count3 *c = RILL_CONTAINER_OF(g, struct count3, gen);
    RILL_GEN_BEGIN(g);
    for (c->i = 1; c->i <= 3; c->i++)
        RILL_YIELD(g, &c->i);
    RILL_GEN_END(g);
}

static int sum_send(rill_stage *st, void *state, const rill_item *item) {
    (void)st;
    *(size_t *)state += item->len;
    return 0;
}

static const rill_stage_ops sum_ops = { .send = sum_send };

int main(void) {
    if (rill_version() != RILL_VERSION_HEX ||
        strcmp(rill_version_string(), RILL_VERSION_STRING) != 0) {
        fprintf(stderr, "header/library version mismatch\n");
        return 1;
    }
    if (strcmp(rill_errname(RILL_ECYCLE), "RILL_ECYCLE") != 0) {
        fprintf(stderr, "rill_errname is wrong\n");
        return 1;
    }

    struct count3 c;
    void *v;
    int sum = 0, rc;
    rill_gen_init(&c.gen, count3_body, NULL);
    while ((rc = rill_gen_next(&c.gen, &v)) == 0)
        sum += *(int *)v;
    if (rc != RILL_EDONE || sum != 6) {
        fprintf(stderr, "generator: rc %d (%s), sum %d\n", rc, rill_strerror(rc), sum);
        return 1;
    }

    /* A one-stage pipeline fed from outside: total bytes pushed. */
    size_t bytes = 0;
    rill_pipeline *p;
    rill_stage *st;
    const char *words[] = { "hybrid", "coroutine", "thread" };
    if ((rc = rill_pipeline_new("install-check", &p)) != 0 ||
        (rc = rill_stage_add(p, "sum", &sum_ops, &bytes, NULL, &st)) != 0) {
        fprintf(stderr, "pipeline: %s\n", rill_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < sizeof words / sizeof *words && rc == 0; i++) {
        rill_item it = rill_item_cstr(words[i]);
        rc = rill_pipeline_push(p, st, &it);
    }
    if (rc == 0)
        rc = rill_pipeline_close(p);
    rill_pipeline_free(p);
    if (rc != 0 || bytes != 21) {
        fprintf(stderr, "pipeline: rc %d (%s), %zu bytes\n", rc, rill_strerror(rc), bytes);
        return 1;
    }
    printf("rill %s installed and working\n", rill_version_string());
    return 0;
}
