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

/* As rill_count_add, for checkpoints (rill/checkpoint.h): at each barrier the
 * stage emits, before the barrier, one item per key counted since the last
 * barrier, its delta (read it with rill_count_delta_parse), and starts a new
 * delta. The deltas of all barriers sum to the totals of the items before
 * the last barrier; items after it join the totals at close, as no delta
 * (end a source with a barrier to have them emitted). Totals, read as for
 * rill_count_add, include the deltas emitted so far; complete after close.
 * The cost per item is rill_count_add's; a barrier costs a pass over the
 * delta table (sized by the most keys one delta held) and one allocation. */
int rill_count_add_deltas(rill_pipeline *p, const char *name, rill_key_fn key, void *key_arg,
                          const rill_stage_opts *opts, rill_stage **out);

/* Read a delta item of rill_count_add_deltas: its key (pointing into the
 * item, valid while the item is) and the count added since the last
 * barrier. RILL_EINVAL if item is not one (too short) or an argument is NULL.
 * Any thread. */
int rill_count_delta_parse(const rill_item *item, const void **key, size_t *len, uint64_t *count);

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
