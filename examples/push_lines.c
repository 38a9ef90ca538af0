/* push_lines — the seed's flow.send(line): main reads lines itself and
 * pushes each into a pipeline whose entry runs in a thread (split into
 * words -> count), then prints the five most frequent words.
 *   push_lines [FILE]   (reads stdin without FILE) */
#include <stdio.h>
#include <stdlib.h>

#include "rill.h"

int main(int argc, char **argv) {
    FILE *in = argc > 1 ? fopen(argv[1], "r") : stdin;
    if (!in) { perror(argv[1]); return 1; }
    rill_stage_opts threaded = { .flags = RILL_STAGE_THREADED };
    rill_pipeline *p = NULL;
    rill_stage *split, *count;
    int rc = rill_pipeline_new("push_lines", &p);
    if (!rc) rc = rill_split_add(p, "words", 0, RILL_FIELDS_WHITESPACE, &threaded, &split);
    if (!rc) rc = rill_count_add(p, "count", NULL, NULL, NULL, &count);
    if (!rc) rc = rill_connect(split, count);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    /* The line is borrowed (owner NULL): the queue to the thread copies it
     * before getline reuses the buffer. The split drops the '\n' as space. */
    while (!rc && (len = getline(&line, &cap, in)) > 0)
        rc = rill_pipeline_push(p, split, &(rill_item){line, (size_t)len, NULL});
    if (!rc) rc = rill_pipeline_close(p); /* drains the queue, joins the thread */
    rill_count_entry top[5];
    size_t n = 0;
    if (!rc) rc = rill_count_top(count, 5, top, &n);
    for (size_t i = 0; i < n; i++)
        printf("%llu %.*s\n", (unsigned long long)top[i].count, (int)top[i].len, (const char *)top[i].key);
    if (rc) fprintf(stderr, "push_lines: %s\n", rill_pipeline_error(p, rc));
    free(line);
    if (in != stdin) fclose(in);
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
