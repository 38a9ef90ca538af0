/* rill — count-by-key reducer.
 *
 * Counts items by key in an open-addressing hash table. Each distinct key is
 * copied once into the stage; items are not kept. Results are read after
 * close (or from the stage's own thread).
 */
#ifndef RILL_COUNT_H
#define RILL_COUNT_H

#include <stdint.h>

#include "rill/stages.h"

#ifdef __cplusplus
extern "C" {
#endif

/* key: the key of each item (NULL: the whole item). Replicas
 * (opts->replicas > 1) each count the items dealt to them, round robin, and
 * the shares are added up at close into replica 0, st, which answers the
 * calls below; read them after close. */
int rill_count_add(rill_pipeline *p, const char *name, rill_key_fn key, void *key_arg,
                   const rill_stage_opts *opts, rill_stage **out);

/* rill_count_add whose replicas are dealt items by key: every key is
 * counted in one replica only (smaller shares, a cheaper merge; a
 * skewed key load lands on one replica). Without replicas, the same. */
int rill_count_keyed_add(rill_pipeline *p, const char *name, rill_key_fn key, void *key_arg,
                         const rill_stage_opts *opts, rill_stage **out);

typedef struct rill_count_entry {
    const void *key;   /* valid until the pipeline is freed */
    size_t len;
    uint64_t count;
} rill_count_entry;

/* Count for key (0 if never seen). RILL_EINVAL if st is not a count stage. */
int rill_count_get(const rill_stage *st, const void *key, size_t len, uint64_t *count);

/* Number of distinct keys, and total items counted. */
int rill_count_size(const rill_stage *st, size_t *keys, uint64_t *total);

/* The n most frequent keys into out[0..*nout-1] (*nout <= n), by count
 * descending, then key ascending (bytewise; a prefix sorts first). */
int rill_count_top(const rill_stage *st, size_t n, rill_count_entry *out, size_t *nout);

#ifdef __cplusplus
}
#endif
#endif
