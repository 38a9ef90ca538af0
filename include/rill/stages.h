/* rill — built-in stages: broadcast, filter, map, selector, collect, print.
 * (The line source is in rill/lines.h, the counting reducer in rill/count.h.)
 *
 * Every constructor has the form rill_X_add(pipeline, name, ..., opts, &out):
 * it allocates the stage state, adds the stage (see rill_stage_add for name,
 * opts and ownership), and returns 0 or a negative code. Configuration that
 * points to memory (patterns, prefixes) is copied unless stated otherwise.
 */
#ifndef RILL_STAGES_H
#define RILL_STAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "rill/coro.h"
#include "rill/fields.h"
#include "rill/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A key extracted from an item: a slice of it (or of memory that outlives
 * the call). Set *key and *len. */
typedef void (*rill_key_fn)(const rill_item *item, void *arg, const void **key,
                            size_t *len);

/* Key function: the first field, i.e. the bytes up to the first space (the
 * whole item if it has none). The client address of an access-log line. */
void rill_key_first_field(const rill_item *item, void *arg, const void **key,
                          size_t *len);

/* ---- broadcast: every item to every output ------------------------------ */
int rill_broadcast_add(rill_pipeline *p, const char *name,
                       const rill_stage_opts *opts, rill_stage **out);

/* ---- filter ------------------------------------------------------------- */
typedef bool (*rill_pred_fn)(const rill_item *item, void *arg);

typedef enum rill_match {
    RILL_MATCH_PRED = 0,     /* pred(item, arg) */
    RILL_MATCH_PREFIX,       /* item starts with pattern (str.startswith) */
    RILL_MATCH_FIRST_FIELD   /* rill_key_first_field(item) equals pattern */
} rill_match;

typedef struct rill_filter_spec {
    rill_match match;
    rill_pred_fn pred;        /* RILL_MATCH_PRED */
    void *arg;                /* passed to pred (not owned) */
    const void *pattern;      /* RILL_MATCH_PREFIX / _FIRST_FIELD (copied) */
    size_t pattern_len;
    /* false: emit the matching item. true: emit the pattern itself instead
     * (an item pointing into the stage state): the IP that matched rather
     * than the whole log line, say. */
    bool emit_pattern;
} rill_filter_spec;

int rill_filter_add(rill_pipeline *p, const char *name, const rill_filter_spec *spec,
                    const rill_stage_opts *opts, rill_stage **out);

/* ---- map ---------------------------------------------------------------- */
/* Compute *out from in (*out starts zeroed). Return 0 to emit *out, 1 to
 * emit nothing for this item, or a negative code to fail. If out->owner is
 * set and differs from in->owner, the map stage takes over that one
 * reference and drops it after the call, whatever the outcome (emitted,
 * skipped, failed, or a failed emit), so rill_item_copy() results are freed.
 * A slice of in (same owner as in), a static item or a borrowed one (owner
 * NULL: copied by the engine if it must outlive the emit) is not released. */
typedef int (*rill_map_fn)(const rill_item *in, rill_item *out, void *arg);

/* With replicas (opts->replicas), fn is called from every replica's thread
 * at once, with the same arg: it must be safe to call concurrently. */
int rill_map_add(rill_pipeline *p, const char *name, rill_map_fn fn, void *arg,
                 const rill_stage_opts *opts, rill_stage **out);

/* ---- selector: each item to exactly one output -------------------------- */
/* Return the output port for item (0 .. nports-1), or a negative code. */
typedef int (*rill_select_fn)(const rill_item *item, unsigned nports, void *arg);

typedef struct rill_selector_spec {
    rill_select_fn select;  /* route by predicate/function ... */
    void *arg;
    rill_key_fn key;        /* ... or, if select is NULL, by a hash of this key
                               (whole item if NULL) modulo the port count */
    void *key_arg;
} rill_selector_spec;

/* An item routed to a port that does not exist fails the pipeline with
 * RILL_EINVAL; a selector with no outputs drops nothing silently: it fails. */
/* With replicas, select (or key) is called from every replica's thread at
 * once, with the same arg. */
int rill_selector_add(rill_pipeline *p, const char *name,
                      const rill_selector_spec *spec, const rill_stage_opts *opts,
                      rill_stage **out);

/* ---- collect: keep every item in memory --------------------------------- */
/* Items are kept by reference (one reference per distinct owner, not per
 * item; static ones as they are) and stay valid until the pipeline is freed.
 * Borrowed items (owner NULL) are copied, and kept as static items. */
int rill_collect_add(rill_pipeline *p, const char *name, const rill_stage_opts *opts,
                     rill_stage **out);

/* The collected items in arrival order; *n is their number. RILL_EINVAL if
 * st is not a collect stage. Read after close (or from the stage's thread). */
int rill_collect_items(const rill_stage *st, const rill_item **items, size_t *n);

/* ---- print: write each item and a '\n' to fd ----------------------------- */
/* Buffered (64 KiB; larger items are written directly); flushed at close,
 * also after an error elsewhere. Short writes and EINTR are retried. A write
 * error (EPIPE, ENOSPC...) fails the pipeline with -errno and drops what is
 * still buffered. Writing to a pipe without a reader raises SIGPIPE, which
 * kills the process by default: ignore SIGPIPE to get -EPIPE instead. fd is
 * not closed. */
int rill_print_add(rill_pipeline *p, const char *name, int fd,
                   const rill_stage_opts *opts, rill_stage **out);

/* ---- split: one item in, one item per field out --------------------------- */
/* Emits each field of every item, split on the byte sep, or with
 * RILL_FIELDS_WHITESPACE on runs of whitespace (tokenize; rill/fields.h has
 * the flags and what counts as a field). Each field is a slice of its item
 * (same owner): nothing is copied, nothing allocated per item. RILL_EINVAL
 * for an unknown flag. */
int rill_split_add(rill_pipeline *p, const char *name, char sep, unsigned flags,
                   const rill_stage_opts *opts, rill_stage **out);

/* ---- your own stage with state, in one call ---------------------------------- */
/* rill_stage_add with a zeroed state of state_size bytes (aligned for any
 * type) that the pipeline allocates, and frees after ops->free at
 * rill_pipeline_free: ops->free, if set, releases what the state
 * holds, never the state itself. Read the state with rill_stage_state(*out)
 * (in C no cast is needed: `struct avg *a = rill_stage_state(st);`) and
 * fill in its settings before the pipeline starts. On failure nothing is
 * allocated and *out is NULL. rill_stage_ops_of() of such a stage returns
 * the pipeline's copy of ops, not ops itself. Returns what rill_stage_add
 * returns, RILL_EINVAL for NULL, a state over 2^40 bytes or opts->replicas
 * over 1 (replicas need rill_stage_add and ops->clone), or RILL_ENOMEM. */
int rill_stage_add_new(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                       size_t state_size, const rill_stage_opts *opts, rill_stage **out);

/* ---- generators as stages (rill/coro.h) ------------------------------------ */
/* A generator as a source: each value it yields is a `const rill_item *`,
 * emitted, then the generator is resumed (NULL yields are skipped). The item
 * is borrowed until the generator is resumed, like any emitted item: an item
 * in the generator's state that it overwrites is borrowed (owner NULL), and
 * the engine copies it if it crosses to a threaded stage (rill/item.h).
 * Exhaustion ends
 * the source; an error of the body fails the pipeline with it.
 *
 * g must be initialized (rill_gen_init) and never started: RILL_EINVAL
 * otherwise. Its memory is the caller's, but from a successful add the
 * pipeline drives it: at rill_pipeline_free a generator left suspended
 * (error, abort) is closed (its on_close runs once), then destroy(g) is
 * called if not NULL (to free the memory holding g). On failure nothing is
 * kept. */
int rill_gen_source_add(rill_pipeline *p, const char *name, rill_gen *g,
                        void (*destroy)(rill_gen *g), const rill_stage_opts *opts,
                        rill_stage **out);

/* A stage whose body is a generator that receives items with send, as the
 * stages of Python's generator pipelines do with `@coroutine` (ownership of g as for rill_gen_source_add):
 *
 *  - the body yields NULL to ask for the next item, and reads it with
 *    RILL_SENT(g) as a `const rill_item *`, valid until the body next yields
 *    NULL (it is borrowed for the stage's send call);
 *  - the body yields a `const rill_item *` to emit it (borrowed as for
 *    rill_emit); it is resumed, with NULL, once the emit returned 0;
 *  - at end of stream the body is resumed with NULL where it asked for an
 *    item: it may emit totals, and should return. A body still asking for
 *    items after that is closed (on_close runs), as Python's close().
 *
 * The generator is first resumed (primed) with the first item or the end of
 * stream, on the stage's own thread. A body that returns before the end of
 * stream fails the pipeline (RILL_ESTATE) at the next item; an error
 * returned by the body fails it with that error. */
int rill_gen_stage_add(rill_pipeline *p, const char *name, rill_gen *g,
                       void (*destroy)(rill_gen *g), const rill_stage_opts *opts,
                       rill_stage **out);

#ifdef __cplusplus
}
#endif
#endif
