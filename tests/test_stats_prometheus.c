/* rill_stats_write_prometheus and rill_pipeline_metrics_write: stage names
 * are user data, so label values come out escaped (backslash, double
 * quote, newline) and as valid UTF-8; every stage and queue is a sample;
 * seconds are seconds; promtool (Debian package prometheus) accepts the
 * lot; write errors are returned. The consumer is RILL_STAGE_THREADED so
 * that the pipeline has a queue. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "rill_test.h"
#include "run_cmd.h"

typedef struct src {
    int left;
    char pay[4];
} src;

static int src_produce(rill_stage *st, void *state) {
    src *s = state;
    if (s->left-- <= 0)
        return RILL_EDONE;
    rill_item it = rill_item_static(s->pay, sizeof s->pay);
    return rill_emit(st, &it);
}

static int sink_send(rill_stage *st, void *state, const rill_item *it) {
    (void)st, (void)state, (void)it;
    return 0;
}

static const rill_stage_ops src_ops = {.produce = src_produce};
static const rill_stage_ops sink_ops = {.send = sink_send};

#define ODD "a\"b\\c\nd\xff" /* quote, backslash, newline, a stray byte */

static rill_pipeline *build(src *s) {
    rill_pipeline *p = NULL;
    rill_stage *a = NULL, *b = NULL;
    rill_stage_opts o = {.flags = RILL_STAGE_THREADED, .capacity = 16};
    if (rill_pipeline_new("pipe\"line", &p) || rill_stage_add(p, "src", &src_ops, s, NULL, &a) ||
        rill_stage_add(p, ODD, &sink_ops, NULL, &o, &b) || rill_connect(a, b)) {
        rill_pipeline_free(p);
        return NULL;
    }
    return p;
}

static int render(rill_pipeline *p, char **text, size_t *len) {
    FILE *f = open_memstream(text, len);
    int rc = f ? rill_pipeline_metrics_write(p, f) : -1;
    if (f)
        fclose(f);
    return rc;
}

RILL_TEST(stats_prometheus, labels_escaped_and_every_series_present) {
    src s = {.left = 100};
    rill_pipeline *p = build(&s);
    CHECK(p != NULL);
    CHECK_OK(rill_pipeline_run(p));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(render(p, &text, &len));
    CHECK(text != NULL);
    static const char *const want[] = {
        "# TYPE rill_queue_enqueued_items_total counter\n",
        "# HELP rill_queue_enqueued_items_total ",
        "rill_queue_enqueued_items_total{pipeline=\"pipe\\\"line\",from=\"src\","
        "to=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\",queue=\"0\"} 100\n",
        "rill_queue_delivered_items_total{pipeline=\"pipe\\\"line\",from=\"src\","
        "to=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\",queue=\"0\"} 100\n",
        "rill_stage_received_items_total{pipeline=\"pipe\\\"line\",stage=\"src\"} 0\n",
        "rill_stage_emitted_items_total{pipeline=\"pipe\\\"line\",stage=\"src\"} 100\n",
        "rill_stage_threaded{pipeline=\"pipe\\\"line\",stage=\"a\\\"b\\\\c\\nd\xef\xbf\xbd\"} 1\n",
        "rill_pipeline_running{pipeline=\"pipe\\\"line\"} 0\n",
        "# TYPE rill_queue_full_wait_seconds_total counter\n",
        "# TYPE rill_stage_thread_wait_seconds_total counter\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(text, want[i]))
            rill_test__failf(__FILE__, __LINE__, "missing: %s\nin:\n%s", want[i], text);
    /* Seconds as decimal seconds with nanosecond digits, not nanoseconds. */
    const char *el = strstr(text, "rill_pipeline_elapsed_seconds{pipeline=\"pipe\\\"line\"} ");
    CHECK(el != NULL);
    el = strchr(el, '}') + 2;
    char *end;
    double secs = strtod(el, &end);
    CHECK(*end == '\n');
    CHECK(secs > 0 && secs < 60);
    CHECK(strchr(el, '.') != NULL && strchr(el, '.') < end);
    /* No raw newline inside a sample: every line is a comment or a sample. */
    for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
        CHECK(strchr(l, '\n') != NULL);
        CHECK(l[0] == '#' || strncmp(l, "rill_", 5) == 0);
    }
    char out[4096];
    if (run("command -v promtool", out, sizeof out) != 0) {
        rill_test__failf(__FILE__, __LINE__, "promtool not found: install the Debian package "
                                             "prometheus (scripts/deps.sh test)");
    } else {
        char path[256], cmd[512];
        snprintf(path, sizeof path, "%s/prom_%d.txt", RILL_TEST_TMP, (int)getpid());
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fputs(text, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
        int prc = run(cmd, out, sizeof out);
        unlink(path);
        if (prc != 0)
            rill_test__failf(__FILE__, __LINE__, "promtool: %s", out);
    }
    free(text);
    rill_pipeline_free(p);
}

RILL_TEST(stats_prometheus, errors_are_returned) {
    src s = {.left = 3};
    rill_pipeline *p = build(&s);
    CHECK(p != NULL);
    CHECK_EQ(rill_pipeline_metrics_write(NULL, stdout), RILL_EINVAL);
    CHECK_EQ(rill_pipeline_metrics_write(p, NULL), RILL_EINVAL);
    CHECK_EQ(rill_stats_write_prometheus(NULL, stdout), RILL_EINVAL);
    CHECK_OK(rill_pipeline_run(p));
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        CHECK_EQ(rill_pipeline_metrics_write(p, full), -ENOSPC);
        fclose(full);
    }
    rill_pipeline_free(p);
}

/* A stage connected twice to the same consumer has two queues with the same
 * from and to: each must still be a series of its own, or Prometheus drops
 * one as a duplicate (promtool does not notice). */
RILL_TEST(stats_prometheus, two_queues_between_the_same_stages_are_two_series) {
    src s = {.left = 10, .pay = "abc"};
    rill_pipeline *p = build(&s);
    CHECK(p != NULL);
    CHECK_OK(rill_connect(rill_pipeline_find(p, "src"), rill_pipeline_find(p, ODD)));
    CHECK_OK(rill_pipeline_run(p));
    char *text = NULL;
    size_t len = 0;
    CHECK_OK(render(p, &text, &len));
    CHECK(text != NULL);
    const char *fam = "rill_queue_enqueued_items_total{";
    char *series[4] = {0};
    size_t n = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, fam, strlen(fam)) == 0 && n < 4) {
            char *sp = strrchr(line, ' ');
            if (sp)
                *sp = '\0'; /* the series without its value */
            series[n++] = line;
        }
    CHECK_EQ(n, 2u);
    CHECK(strcmp(series[0], series[1]) != 0);
    free(text);
    rill_pipeline_free(p);
}
