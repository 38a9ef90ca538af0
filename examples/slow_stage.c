/* slow_stage — a slow stage in a thread of its own, and the statistics that
 * show where the time goes: requests per client, with the counting stage
 * made to spend DELAY_US per line. Counts go to stdout, the queue and stage
 * report to stderr.   slow_stage [LOG [DELAY_US]] */
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

int main(int argc, char **argv) {
    rill_stage_opts threaded = { .flags = RILL_STAGE_THREADED, .capacity = 1024 };
    rill_pipeline *p = NULL;
    rill_stage *src, *count;
    rill_stats *stats = NULL;
    int rc = rill_pipeline_new("slow_stage", &p);
    if (!rc) rc = rill_lines_file_add(p, "lines", argc > 1 ? argv[1] : "data/apache_logs", NULL, NULL, &src);
    if (!rc) rc = rill_count_add(p, "count", rill_key_first_field, NULL, &threaded, &count);
    if (!rc) rc = rill_stage_set_delay(count, argc > 2 ? (unsigned)atoi(argv[2]) : 20);
    if (!rc) rc = rill_connect(src, count);
    if (!rc) rc = rill_pipeline_run(p);
    if (!rc) rc = rill_pipeline_stats(p, &stats);
    if (!rc) rc = rill_stats_print(stats, stderr);
    rill_count_entry top[3];
    size_t n = 0;
    if (!rc) rc = rill_count_top(count, 3, top, &n);
    for (size_t i = 0; i < n; i++)
        printf("%llu %.*s\n", (unsigned long long)top[i].count, (int)top[i].len, (const char *)top[i].key);
    if (rc) fprintf(stderr, "slow_stage: %s\n", rill_pipeline_error(p, rc));
    rill_stats_free(stats);
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
