/* gen_status — requests per HTTP status of an access log, written as
 * generators: the counting stage is a generator fed with send (the seed's
 * @coroutine), and at end of stream it hands its report over to a
 * sub-generator with yield from.   gen_status [LOG] */
#include <stdio.h>

#include "rill.h"

/* The stage's state, both generators' included (locals do not survive a yield). */
struct counter { rill_gen gen, report; uint64_t n[1000], bad; /* by status */
                 unsigned code; char text[32]; rill_item item; };        /* report's */

/* Yields "CODE COUNT" for every status seen, in code order. */
static int report_body(rill_gen *g) {
    struct counter *c = RILL_CONTAINER_OF(g, struct counter, report);
    RILL_GEN_BEGIN(g);
    for (c->code = 0; c->code < 1000; c->code++) {
        if (!c->n[c->code]) continue;
        c->item = rill_item_borrow(c->text, (size_t)snprintf(c->text, sizeof c->text, "%u %llu",
                                   c->code, (unsigned long long)c->n[c->code]));
        RILL_YIELD(g, &c->item);
    }
    RILL_GEN_END(g);
}

static void count_line(struct counter *c, const rill_item *line) {
    uint64_t code;
    if (rill_field_u64(line, ' ', 0, 8, &code, NULL) || code >= 1000) c->bad++;
    else c->n[code]++;
}

/* Receives lines (yield NULL = "the next one, please"); NULL means the end. */
static int counter_body(rill_gen *g) {
    struct counter *c = RILL_CONTAINER_OF(g, struct counter, gen);
    RILL_GEN_BEGIN(g);
    for (;;) {
        RILL_YIELD(g, NULL);
        if (!RILL_SENT(g)) break;
        count_line(c, RILL_SENT(g));
    }
    rill_gen_init(&c->report, report_body, NULL);
    RILL_YIELD_FROM(g, &c->report);
    RILL_GEN_END(g);
}

int main(int argc, char **argv) {
    static struct counter c; /* lives until the pipeline is freed */
    rill_pipeline *p = NULL;
    rill_stage *src, *count, *print;
    rill_gen_init(&c.gen, counter_body, NULL);
    int rc = rill_pipeline_new("gen_status", &p);
    if (!rc) rc = rill_lines_file_add(p, "lines", argc > 1 ? argv[1] : "data/apache_logs", NULL, NULL, &src);
    if (!rc) rc = rill_gen_stage_add(p, "count", &c.gen, NULL, NULL, &count);
    if (!rc) rc = rill_print_add(p, "print", 1, NULL, &print);
    if (!rc) rc = rill_connect_chain(src, count, print, NULL);
    if (!rc) rc = rill_pipeline_run(p);
    if (!rc) printf("unparsed %llu\n", (unsigned long long)c.bad);
    if (rc) fprintf(stderr, "gen_status: %s\n", rill_pipeline_error(p, rc));
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
