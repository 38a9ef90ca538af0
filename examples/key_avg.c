/* key_avg — mean response size per HTTP status of an access log, computed
 * by two threaded workers behind a selector that hashes the key, so each
 * status is summed by exactly one worker.   key_avg [LOG] */
#include <stdio.h>

#include "rill.h"

enum { STATUS_FIELD = 8, BYTES_FIELD = 9 };

struct worker { uint64_t n[1000], sum[1000]; }; /* by status code */

/* The selector's key: the status field (the whole line if it has none). */
static void status_key(const rill_item *line, void *arg, const void **key, size_t *len) {
    rill_item f;
    (void)arg;
    if (rill_field_nth(line, ' ', 0, STATUS_FIELD, &f)) f = *line;
    *key = f.data;
    *len = f.len;
}

static int worker_send(rill_stage *st, void *state, const rill_item *line) {
    struct worker *w = state;
    rill_item status, bytes;
    uint64_t code, b;
    rill_parse_error e;
    if (rill_field_nth(line, ' ', 0, BYTES_FIELD, &bytes) || rill_item_eq(&bytes, "-", 1))
        return 0; /* no size logged */
    rill_field_nth(line, ' ', 0, STATUS_FIELD, &status);
    if (rill_item_u64(&status, &code, &e) || code >= 1000 || rill_item_u64(&bytes, &b, &e))
        return rill_stage_fail(st, RILL_EINVAL, "bad line '%.*s'", (int)line->len, (const char *)line->data);
    w->n[code]++;
    w->sum[code] += b;
    return 0;
}

static const rill_stage_ops worker_ops = { .send = worker_send };

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "data/apache_logs";
    rill_selector_spec by_status = { .key = status_key };
    rill_stage_opts threaded = { .flags = RILL_STAGE_THREADED };
    rill_pipeline *p = NULL;
    rill_stage *src, *sel, *w[2];
    int rc = rill_pipeline_new("key_avg", &p);
    if (!rc) rc = rill_lines_file_add(p, "lines", path, NULL, NULL, &src);
    if (!rc) rc = rill_selector_add(p, "by-status", &by_status, NULL, &sel);
    if (!rc) rc = rill_connect(src, sel);
    for (int i = 0; i < 2 && !rc; i++)
        if (!(rc = rill_stage_add_new(p, NULL, &worker_ops, sizeof(struct worker), &threaded, &w[i])))
            rc = rill_connect(sel, w[i]);
    if (!rc) rc = rill_pipeline_run(p);
    for (unsigned code = 0; code < 1000 && !rc; code++)
        for (int i = 0; i < 2; i++) {
            struct worker *k = rill_stage_state(w[i]);
            if (k->n[code])
                printf("%u n=%llu mean=%.2f\n", code, (unsigned long long)k->n[code],
                       (double)k->sum[code] / (double)k->n[code]);
        }
    if (rc) fprintf(stderr, "key_avg: %s\n", rill_pipeline_error(p, rc));
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
