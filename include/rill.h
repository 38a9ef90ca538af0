/* rill — hybrid coroutine-thread dataflow engine. Include this one header.
 *
 * The API's verbs. A public name is rill_<object>_<verb> (rill_pipeline_run),
 * or rill_<verb> for what every stage does (rill_emit, rill_connect) and for
 * process-wide helpers (rill_strerror, rill_version). A verb means the same
 * thing on every object:
 *
 *   rill_X_new(..., &out)    allocate; *out is the caller's until
 *                            rill_X_free. (pipeline, sched, tcp_server)
 *   rill_X_free(x)           release x and all it owns; NULL is a no-op.
 *                            The one destructor verb (also
 *                            rill_stage_ops.free for a stage's state).
 *   rill_X_init(x, ...)      prepare caller-owned memory; nothing to free.
 *                            (gen, ref)
 *   rill_X_add(p, name, ..., opts, &out)
 *                            make a stage and add it to pipeline p, which
 *                            owns it from then on. (stage, map, lines_file...)
 *   rill_X_stats(x, &out)    read x's counters into the caller's
 *                            struct rill_X_stats, named after the call as
 *                            POSIX's stat. A pipeline's snapshot has
 *                            variable size: rill_pipeline_stats allocates a
 *                            rill_stats, freed with rill_stats_free.
 *   rill_X_Y(x)              read attribute Y (rill_stage_name); rill_X_Y_of
 *                            where rill_X_Y names a type (rill_stage_ops_of).
 *   rill_try_X(...)          never waits; RILL_EAGAIN means "not now".
 *   start/run/push/flush/close, stop/abort
 *                            a lifecycle: each header says what may follow.
 *   retain/release           reference counts (rill/item.h).
 *
 * Errors: a call that can fail returns int, 0 or a negative code: a RILL_E*
 * code or a negated errno (rill/error.h; rill_strerror, rill_errname), and
 * gives its results through its last parameters (&out). Only rill_tcp_read
 * and rill_tcp_write return a count or a negative errno, as read(2) and
 * write(2) do. A call that cannot fail returns its answer (an attribute, a
 * count); bool answers questions only (rill_stage_threaded).
 *
 * Every header says, above each call, what the caller must know: who owns
 * what, what a call invalidates, and from which thread it may be made. How
 * it works is in docs/ (docs/threads.md, docs/stages.md, docs/stats.md,
 * docs/scheduler.md).
 */
#ifndef RILL_H
#define RILL_H

#include "rill/version.h"
#include "rill/error.h"
#include "rill/coro.h"
#include "rill/item.h"
#include "rill/fields.h"
#include "rill/pipeline.h"
#include "rill/lines.h"
#include "rill/stages.h"
#include "rill/count.h"
#include "rill/checkpoint.h"
#include "rill/stats.h"
#include "rill/sched.h"
#include "rill/net.h"
#include "rill/tcp_lines.h"

#endif
