#include <stdio.h>
#include <string.h>

#include "rill.h"

#ifndef RILL_DATA_DIR /* set by rill's build; copied out of the tree, run it from */
#define RILL_DATA_DIR "data" /* the repository root or pass the log as argv[1] */
#endif

int main(int argc, char **argv) {
    const char *ips[] = {"83.149.9.216", "93.114.45.13", "207.241.237.101"};
    rill_pipeline *p = NULL;
    rill_stage *src, *bcast, *count, *f;
    int rc = rill_pipeline_new("readme", &p);
    if (!rc) rc = rill_lines_file_add(p, "source", argc > 1 ? argv[1] : RILL_DATA_DIR "/apache_logs",
                                      NULL, NULL, &src);
    if (!rc) rc = rill_broadcast_add(p, "broadcast", NULL, &bcast);
    if (!rc) rc = rill_count_add(p, "count", NULL, NULL, NULL, &count);
    if (!rc) rc = rill_connect(src, bcast);
    for (int i = 0; i < 3 && !rc; i++) { /* one filter per IP; it emits the IP it matched */
        rill_filter_spec spec = {.match = RILL_MATCH_FIRST_FIELD, .pattern = ips[i],
                                 .pattern_len = strlen(ips[i]), .emit_pattern = true};
        if (!(rc = rill_filter_add(p, NULL, &spec, NULL, &f)) && !(rc = rill_connect(bcast, f)))
            rc = rill_connect(f, count);
    }
    if (!rc) rc = rill_pipeline_run(p); /* read to the end, then close in order */
    for (int i = 0; i < 3 && !rc; i++) {
        uint64_t n = 0;
        rill_count_get(count, ips[i], strlen(ips[i]), &n);
        printf("%s %llu\n", ips[i], (unsigned long long)n);
    }
    if (rc) fprintf(stderr, "readme_pipeline: %s\n", rill_pipeline_error(p, rc));
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
