/* wordfreq — the ten most frequent words of a file (words: runs of
 * non-whitespace). lines -> split -> count.   wordfreq [FILE] */
#include <stdio.h>

#include "rill.h"

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "data/apache_logs";
    rill_pipeline *p = NULL;
    rill_stage *src, *split, *count;
    int rc = rill_pipeline_new("wordfreq", &p);
    if (!rc) rc = rill_lines_file_add(p, "lines", path, NULL, NULL, &src);
    if (!rc) rc = rill_split_add(p, "words", 0, RILL_FIELDS_WHITESPACE, NULL, &split);
    if (!rc) rc = rill_count_add(p, "count", NULL, NULL, NULL, &count);
    if (!rc) rc = rill_connect_chain(src, split, count, NULL);
    if (!rc) rc = rill_pipeline_run(p);
    rill_count_entry top[10];
    size_t n = 0, keys = 0;
    uint64_t total = 0;
    if (!rc) rc = rill_count_top(count, 10, top, &n);
    if (!rc) rc = rill_count_size(count, &keys, &total);
    for (size_t i = 0; i < n; i++)
        printf("%llu %.*s\n", (unsigned long long)top[i].count, (int)top[i].len,
               (const char *)top[i].key);
    if (!rc) printf("words %llu distinct %zu\n", (unsigned long long)total, keys);
    if (rc) fprintf(stderr, "wordfreq: %s\n", rill_pipeline_error(p, rc));
    rill_pipeline_free(p);
    return rc ? 1 : 0;
}
