/* rill — stages and pipelines.
 *
 * A pipeline is an acyclic graph of stages. A stage is a coroutine in the
 * push style of Python's generator pipelines (`@coroutine` consumers that
 * are sent values with .send()): it is sent items one at a
 * time, emits items to the stages connected after it, and is closed exactly
 * once when every stage feeding it has closed (end of stream), after which
 * it closes the stages after it. Its state is a struct the pipeline owns from
 * rill_stage_add() until rill_pipeline_free() — not just until close, so
 * items pointing into it stay valid while results are read.
 *
 * Writing a stage takes a state struct and one or two functions (see
 * docs/stages.md):
 *
 *     static int upper_send(rill_stage *st, void *state, const rill_item *it);
 *     static const rill_stage_ops upper_ops = { .send = upper_send };
 *
 * Sources have `produce` instead of `send`; rill_pipeline_run() drives them.
 * Data can also be pushed from outside with rill_pipeline_push().
 *
 * Threading: unless documented otherwise, a pipeline is used from one thread
 * (the one that calls run/push/close). Stage callbacks run on the thread that
 * runs the stage and never concurrently with themselves.
 */
#ifndef RILL_PIPELINE_H
#define RILL_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rill/item.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_pipeline rill_pipeline; /* opaque */
typedef struct rill_stage rill_stage;       /* opaque; owned by its pipeline */

typedef struct rill_stage_ops {
    /* Receive one item (borrowed: see rill/item.h). Emit with rill_emit*().
     * Return 0, or a negative code that stops the pipeline (record details
     * with rill_stage_fail()). Required unless produce is set. */
    int (*send)(rill_stage *st, void *state, const rill_item *item);

    /* Sources only: emit the next items (any number, e.g. one read buffer's
     * worth) and return 0 to be called again, RILL_EDONE when exhausted, or
     * a negative code on failure. */
    int (*produce)(rill_stage *st, void *state);

    /* End of stream (Python's GeneratorExit): every producer has closed.
     * Flush, emit final items, release resources. Called exactly once for
     * every stage of a started pipeline — also after an error or abort,
     * when emits are discarded (rill_emit returns the pipeline's error).
     * The stages after this one are closed when it returns. Optional. */
    int (*close)(rill_stage *st, void *state);

    /* Free the state. Called once by rill_pipeline_free(), after every
     * close. Optional (NULL: the state is not the pipeline's to free). */
    void (*free)(void *state);

    /* Checkpoint barrier `id` has arrived from every producer (rill/checkpoint.h):
     * every item before it has been sent, none after it. Emit what belongs
     * before the barrier (e.g. a delta since the last one); when this
     * returns the barrier is passed on to every port, after those items.
     * Return 0, or a negative code that fails the pipeline as a failing send
     * does. Not called once the pipeline has stopped. Optional (NULL: the
     * barrier is just passed on). */
    int (*barrier)(rill_stage *st, void *state, uint64_t id);

    /* Replicas (rill_stage_opts.replicas > 1) only; see docs/threads.md.
     *
     * clone: make the state of one more replica from the state given to
     * rill_stage_add (replica 0's), which it only reads: a copy of its
     * settings with nothing counted yet. Set *out and return 0, or a
     * negative code. Called N-1 times inside rill_stage_add, on its thread;
     * each clone is freed with free. Required for replicas > 1. A replica
     * learns which one it is with rill_stage_replicas(). */
    int (*clone)(const void *state, void **out);

    /* merge: add the share held in from (another replica's state) to into;
     * from is left unchanged. Optional. With it, a replicated stage is a
     * stateful one: when every replica's input has ended, replica 0 merges
     * the others' shares into its own state in replica order, and only
     * replica 0's close runs, once, on the merged state (the others get no
     * close; their states are freed with free). Not called after the
     * pipeline has stopped (error, abort): replica 0 then closes with its
     * own share. Replicas never run during a merge, so a checkpoint taken
     * while they are paused may merge every share into a fresh clone the
     * same way. Return 0 or a negative code (fails the pipeline). */
    int (*merge)(void *into, const void *from);

    /* hash: the key hash of item, for dealing by key: items with equal
     * hashes always go to the same replica. Called on the producer's thread
     * with replica 0's state, which it must only read. NULL: items are
     * dealt round robin, a batch at a time. Optional. */
    uint64_t (*hash)(const void *state, const rill_item *item);

    /* Receive a run: items[0..n), n >= 1, in order, each borrowed as for
     * send (the array too: valid for the call only, never written to; it may
     * be passed on as it is, rill_emit_items(st, items, n), and must not be
     * kept, nor a borrowed item's bytes, past the call). Must do what send
     * called on each item in turn would, typically with one loop and no
     * call per item (a filter collects its matches and emits them with
     * rill_emit_items). The engine calls it when items come as a run
     * (rill_emit_items, or a batch from another thread) and the stage has no
     * delay (rill_stage_set_delay); send still gets single items, so a stage
     * with send_items must have send too. Return 0, or a negative code as
     * send does; a run handed to send_items counts as received whole
     * (items_in) whatever it returns. Optional (NULL: send per item). */
    int (*send_items)(rill_stage *st, void *state, const rill_item *items, size_t n);
} rill_stage_ops;

enum {
    /* Run the stage in a worker thread of its own. Its producers reach it
     * through bounded queues (one per producer, see capacity); the stage's
     * code does not change. Inline stages after it that only it feeds run on
     * its thread too. See docs/threads.md. */
    RILL_STAGE_THREADED = 1u << 0
};

/* Per-stage options. Zero-initialize, then set what you need; NULL means all
 * defaults. The queue options apply to a stage that receives items from
 * another thread (a threaded stage, or one promoted to a thread because it is
 * fed from several threads). */
typedef struct rill_stage_opts {
    unsigned flags;          /* RILL_STAGE_* */
    unsigned capacity;       /* items each producer may have queued for this
                                stage, never exceeded; 0 = 4096. A producer
                                that hands over many partial batches may
                                wait before reaching it (docs/threads.md) */
    unsigned batch;          /* items per hand-off between threads (clamped to
                                capacity); 0 = 256 */
    unsigned max_latency_us; /* a partial batch is handed over after about
                                this long even if its producer stays busy;
                                a caller that pushes and then idles calls
                                rill_pipeline_flush; 0 = 1000 */
    unsigned overflow;       /* RILL_OVERFLOW_*: what a producer does when the
                                queue is full; 0 = RILL_OVERFLOW_BLOCK */
    unsigned replicas;       /* run the stage as this many copies, each on a
                                thread of its own with a state of its own
                                (ops->clone); 0 or 1 = one. See "replicas"
                                at rill_stage_add and docs/threads.md */
} rill_stage_opts;

/* Overflow policies of a queue (rill_stage_opts.overflow). Drops are counted
 * per queue (rill/stats.h), never silent. */
enum {
    RILL_OVERFLOW_BLOCK = 0,   /* the producer waits for room: backpressure */
    RILL_OVERFLOW_DROP_NEWEST, /* the item that does not fit is dropped */
    RILL_OVERFLOW_DROP_OLDEST  /* the oldest batch still waiting is dropped to
                                  make room (leaky, for live sources that must
                                  never stall); if none waits — the consumer is
                                  delivering the only one — the new item is */
};

/* ---- pipeline ----------------------------------------------------------- */

/* Create an empty pipeline named name (copied; NULL gives "pipeline").
 * On success *out is the caller's, to be freed with rill_pipeline_free().
 * Returns 0 or RILL_ENOMEM. */
int rill_pipeline_new(const char *name, rill_pipeline **out);

/* Add a stage. name is copied and must be unique in the pipeline (NULL
 * gives "stage-<n>"); ops must stay valid until the pipeline is freed
 * (normally a static const). On success the pipeline owns state (see
 * ops->free) and *out (if out is not NULL) is a handle valid until
 * rill_pipeline_free(). On failure nothing is kept: state is still the
 * caller's. Returns 0, RILL_EINVAL (no send and no produce, or both, an
 * unknown flag or overflow policy, or a capacity over 2^20 batches), RILL_EEXIST (name taken), RILL_ESTATE
 * (pipeline already started) or RILL_ENOMEM. Names are indexed: adding n stages
 * takes time linear in n.
 *
 * Replicas (opts->replicas = N > 1): the stage is added as N stages, each
 * with a state of its own: state for replica 0 and ops->clone(state) for
 * the others, named name, "name#1" ... "name#N-1" (all must be free). *out
 * is replica 0, which stands for the whole group in rill_connect,
 * rill_stage_set_delay and ops->merge; the statistics show one row per
 * replica. A replica that no replica of the same width feeds pairwise
 * (rill_connect) runs on a thread of its own. RILL_EINVAL also for N over
 * RILL_MAX_REPLICAS or without ops->clone. Items from one producer reach
 * the replicas in no order between them (docs/threads.md, "Order"). */
#define RILL_MAX_REPLICAS 1024u
int rill_stage_add(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                   void *state, const rill_stage_opts *opts, rill_stage **out);

/* Connect from's next output port to to. Ports are numbered in connect
 * order from 0 (rill_emit_to). A stage may feed many stages (fan-out) and be
 * fed by many (fan-in: it is closed when the last producer closes). Returns
 * 0, RILL_ECYCLE if to already reaches from (or to == from), RILL_EINVAL if
 * to is a source or a stage of another pipeline, RILL_ESTATE if the pipeline
 * has started, or RILL_ENOMEM. Connecting the same pair twice delivers every
 * item twice. The cycle check visits at most the stages after to, and none
 * when from has no producer yet (a chain connected in either order costs
 * constant time per connection); no graph walk recurses, so a graph may be
 * as deep as memory allows (deep inline chains too: docs/threads.md).
 *
 * With replicas (opts.replicas), from and to stand for their groups. From N
 * replicas to N replicas: pairwise, replica k feeding replica k only (on
 * replica k's thread if to is not threaded: N parallel chains), unless to
 * has ops->hash. Otherwise, from one
 * stage, or a group of another width, to a group: each item goes to one
 * replica, by ops->hash of to if set, else round robin a batch at a time.
 * From a group to a single stage: every replica feeds it (it counts N
 * producers and gets a thread of its own). */
int rill_connect(rill_stage *from, rill_stage *to);

/* Connect a line of stages, rill_connect(first, second), (second, third)...,
 * up to a NULL: rill_connect_chain(src, split, count, NULL). Stops at the
 * first error and returns it (the connections made before it stay). A NULL
 * ends the list, so check every stage's add first: fewer than two stages
 * before the NULL is RILL_EINVAL, with a message. Setup only (not thread-safe,
 * like rill_connect). */
int rill_connect_chain(rill_stage *first, ...) __attribute__((sentinel));

/* Validate and start the pipeline: worker threads start here. Called by run
 * and push when needed. Returns 0, or a negative code (the pipeline is then
 * failed: close returns that code and joins whatever started). Starting
 * twice returns 0. An inline stage fed from stages on different threads
 * would be entered by two threads at once: it gets a thread of its own
 * instead (rill_stage_threaded() tells). */
int rill_pipeline_start(rill_pipeline *p);

/* Start if needed, drive every source to exhaustion (in the order added),
 * then close. Returns 0 or the first error (see rill_pipeline_errmsg);
 * RILL_ECLOSED if the pipeline was closed already (a pipeline runs once).
 * Not from a stage callback of the same pipeline. */
int rill_pipeline_run(rill_pipeline *p);

/* Start if needed and send item into entry, a stage that no stage feeds and
 * that is not a source, as .send() feeds the first coroutine of a Python
 * pipeline. The item is borrowed for the call: a threaded entry's queue
 * copies borrowed bytes (owner NULL), so the caller may reuse its buffer at
 * once; static and owned items cross by pointer (rill/item.h). If entry is
 * threaded this may block while its queue is full. Returns 0, the
 * pipeline's first error, RILL_EINVAL (entry not an entry of p: errmsg says
 * why) or RILL_ECLOSED after close. Call run, push, flush and close from one
 * thread. */
int rill_pipeline_push(rill_pipeline *p, rill_stage *entry, const rill_item *item);

/* Hand partial batches pushed so far to the threads they are bound for now.
 * Without it, items pushed into a threaded entry move on when their batch is
 * full, at a later push once max_latency_us has passed, or at close — like
 * stdio's buffering, where this is fflush. Returns 0. */
int rill_pipeline_flush(rill_pipeline *p);

/* End of stream for the whole pipeline: close every entry, which closes the
 * rest in order (a stage after all its producers, a threaded stage after the
 * end-of-stream marker of each producer has come through its queue). When it
 * returns every queue has drained, every worker thread has been joined and
 * every close callback has run: results are complete. Returns 0 or the first
 * error; later calls return the same. */
int rill_pipeline_close(rill_pipeline *p);

/* Request a stop: sources stop producing, producers and consumers blocked on
 * queues wake up, queued items are discarded (rill_pipeline_discarded), and
 * the current or next run/close joins every thread and returns RILL_EABORTED
 * (unless an error came first). Only sets flags and wakes sleepers (atomic
 * stores and futex wake-ups): callable from any thread and from a signal
 * handler. Does nothing after close. */
void rill_pipeline_abort(rill_pipeline *p);

/* Free the pipeline: close it if it was started and not closed (as after an
 * abort: nothing more is delivered), call every stage's free, free all.
 * Invalidates p, every rill_stage handle, and every item pointing into stage
 * state. NULL is a no-op. */
void rill_pipeline_free(rill_pipeline *p);

/* Items that were queued between threads, held back past the inline depth
 * limit (docs/threads.md), or emitted in a run (rill_emit_items) to a stage
 * that stopped taking them, but never delivered because the pipeline stopped
 * (error or abort). Exact after close. */
uint64_t rill_pipeline_discarded(const rill_pipeline *p);

/* The first error (0 if none). */
int rill_pipeline_status(const rill_pipeline *p);

/* Has p stopped early? 0 while it runs (or ran) normally; once an error or
 * an abort has stopped it, the code its emits now return: the first error,
 * or RILL_EABORTED. Unlike rill_pipeline_status it sees an abort at once.
 * Lock-free (two atomic loads): callable from any thread, e.g. from an event
 * loop inside a source that woke on its room fd (rill_stage_room_fd).
 * RILL_EINVAL for NULL. */
int rill_pipeline_stopped(const rill_pipeline *p);

/* The first error as text, "stage 'NAME': DETAIL: STRERROR" ("pipeline
 * aborted" after an abort); before the run has one, the last call on p that
 * failed before or outside the run (adding or connecting a stage, opening a
 * line source's file, a push), with the argument at fault and why; "" if
 * none. For p NULL, a text saying that rill_pipeline_new failed. Read it
 * after close (or from the thread that calls run/close); valid until the
 * pipeline is freed. */
const char *rill_pipeline_errmsg(const rill_pipeline *p);

/* What to print for rc, a code that a call on p (or on one of its stages)
 * just returned: rill_pipeline_errmsg(p) when that is about rc, else
 * rill_strerror(rc). A setup message is about rc only until the next
 * rill_stage_add or rill_connect begins (a built-in add calls
 * rill_stage_add once its own checks pass): a later failure with the same
 * code and no message of its own gets
 * rill_strerror(rc), not an older call's text. The run's error stays.
 * Never NULL; same validity as rill_pipeline_errmsg. So
 *     if (rc) fprintf(stderr, "prog: %s\n", rill_pipeline_error(p, rc));
 * is all a program needs, whichever call failed (p may still be NULL). */
const char *rill_pipeline_error(const rill_pipeline *p, int rc);

/* For stages made outside the library on this API (librill_redis, a
 * program's own rill_X_add): a setup call on p refused its arguments or
 * could not prepare the stage; record what and where (printf's fmt: name
 * the call, the stage and the argument at fault) so that
 * rill_pipeline_errmsg and rill_pipeline_error report it as they report the
 * built-in stages' setup errors: "<fmt...>: <rill_strerror(code)>". It does
 * not stop the pipeline, and a run error already there is kept. Returns
 * code (RILL_EINVAL if code is not negative). p NULL: nothing is recorded.
 * Thread-safety: as rill_stage_add (before the run, one thread). */
int rill_pipeline_setup_error(rill_pipeline *p, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The name of the stage that raised the first error, or NULL. */
const char *rill_pipeline_errstage(const rill_pipeline *p);

/* The pipeline's name (valid until rill_pipeline_free). */
const char *rill_pipeline_name(const rill_pipeline *p);

/* The stage named name, or NULL. Constant expected time. */
rill_stage *rill_pipeline_find(const rill_pipeline *p, const char *name);

/* ---- inside stage callbacks ------------------------------------------- */

/* Send item to every stage connected after st, in connect order. The item is
 * borrowed for the call. Returns 0 or the first error of a downstream stage
 * (stop and return it). Call only from st's callbacks. Delivery to an inline
 * stage is a call nested in this one, up to a depth limit past which the item
 * is held and delivered, in order, once this thread's outermost send returns
 * to it (docs/threads.md, "Deep inline chains"); a held item's error is
 * returned by that outermost call instead. */
int rill_emit(rill_stage *st, const rill_item *item);

/* Send item to output port `port` only. RILL_EINVAL if there is no such port. */
int rill_emit_to(rill_stage *st, unsigned port, const rill_item *item);

/* Send items[0..n) to every stage connected after st, as a run: the same
 * items reach the same stages in the same order per connection as n calls
 * of rill_emit would deliver, at a fraction of the cost per item (the
 * engine's checks and counters are paid once per run per port, and a stage
 * with ops->send_items gets the run in one call). Each port gets the whole
 * run before the next port gets any of it, so a stage fed by two of st's
 * ports (directly or through others) sees the runs interleaved, not the
 * items (docs/stages.md, "Runs"). Ownership as for rill_emit: the array and
 * every item are borrowed for the call; threads copy or retain what they
 * keep (rill/item.h).
 *
 * Returns 0; the first error of a downstream stage or the pipeline's error
 * once it has stopped (RILL_EABORTED after an abort), as rill_emit; or
 * RILL_EINVAL if st is NULL, or items is NULL with n > 0. n == 0 emits
 * nothing and returns 0 (or the stop's code). Every item of the run counts
 * in st's items_out, also when the pipeline had stopped before the call, and
 * is then received by each stage after st or counted in
 * rill_pipeline_discarded (as queued ones are) if a stop or a failure kept it
 * from one. It may block on a full queue as rill_emit does; call it
 * only from st's callbacks. A source with a delay (rill_stage_set_delay)
 * emits the run item by item, its delay before each. */
int rill_emit_items(rill_stage *st, const rill_item *items, size_t n);

/* Like rill_emit, but never waits for room in a queue directly after st:
 * for a source that runs an event loop (sockets, timers: rill/sched.h) in
 * its produce callback and must keep serving it instead of blocking.
 *
 * All or nothing: if a queue to another thread directly after st (on any
 * port, policy RILL_OVERFLOW_BLOCK) cannot take the item now, nothing is
 * emitted on any port and RILL_EAGAIN is returned: wait for
 * rill_stage_room_fd(st) to become readable, then try again. Otherwise the
 * item is emitted as by rill_emit; stages run inline after st run inside the
 * call and may still wait on queues of their own.
 *
 * The item is borrowed as for rill_emit. Returns 0, RILL_EAGAIN, the
 * pipeline's error once it has stopped (RILL_EABORTED after an abort: the
 * retry after a wait for room learns of the stop), an error of a downstream
 * stage, RILL_ENOMEM, or RILL_EINVAL for NULL. Call only from st's callbacks.
 * The time from a RILL_EAGAIN to st's next emit of any kind (or its close)
 * counts as waiting for room (wait_full_ns, rill/stats.h), as a blocking
 * emit's wait does. When a queue counts as full: docs/threads.md,
 * "Emitting without waiting". */
int rill_try_emit(rill_stage *st, const rill_item *item);

/* The "room available" doorbell of st, for a source that rill_try_emit
 * refused: an eventfd (EFD_NONBLOCK, EFD_CLOEXEC), made on the first call,
 * to wait on together with sockets and timers (poll, epoll,
 * rill_sys_wait_fd). It becomes readable once the queue that refused st has
 * room again, and whenever the pipeline stops (also if it stopped before the
 * fd was made). Readiness may be spurious: drain the fd with read(), then
 * call rill_try_emit again, which re-arms it if there is still no room.
 * Drain only before retrying, never between a RILL_EAGAIN and the wait, or
 * the wake-up for that refusal may be lost.
 *
 * The fd belongs to the pipeline: do not close it; rill_pipeline_free does.
 * Call from st's callbacks, or before the pipeline starts from the thread
 * that builds it; another thread may wait on the fd. Sets *fd and returns 0;
 * RILL_EINVAL for NULL, RILL_ESTATE once the pipeline is closed, or -errno if
 * eventfd fails. */
int rill_stage_room_fd(rill_stage *st, int *fd);

/* Hand every partial batch that st's thread has queued for other threads to
 * them now. A source calls it before an operation that may wait for input
 * (a read on a pipe or socket), so items already produced do not wait too.
 * Otherwise partial batches go when full, at close, when the thread waits
 * for its own input, or after max_latency_us. Call only from st's callbacks. */
void rill_stage_flush(rill_stage *st);

/* Number of output ports (connected stages) of st. */
unsigned rill_stage_outputs(const rill_stage *st);

/* Record why st fails, printf-style, and return code (pass through):
 *     return rill_stage_fail(st, -errno, "cannot read '%s'", path);
 * The first failure of the pipeline becomes its error message. A code that
 * is not negative becomes RILL_ESTAGE (a failure must stop the pipeline). */
int rill_stage_fail(rill_stage *st, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* An experiment knob, to see backpressure happen: st spends at least
 * delay_us per item it receives (per item it emits, for a source), by
 * busy-waiting after its callback — sleeping is far too coarse for a few
 * microseconds. 0 turns it off. Call before the pipeline starts: RILL_ESTATE
 * after, RILL_EINVAL for a NULL stage. */
int rill_stage_set_delay(rill_stage *st, unsigned delay_us);

/* ---- handles ------------------------------------------------------------ */

/* What a stage was added with, and where. Each answer is valid until the
 * pipeline is freed; any thread may ask (they never change after the add). */
const char *rill_stage_name(const rill_stage *st);
void *rill_stage_state(const rill_stage *st);
const rill_stage_ops *rill_stage_ops_of(const rill_stage *st);
rill_pipeline *rill_stage_pipeline(const rill_stage *st);

/* True once the pipeline has started if st runs a thread of its own
 * (RILL_STAGE_THREADED, or promoted because it is fed from several threads). */
bool rill_stage_threaded(const rill_stage *st);

/* The number of replicas of st's stage (1 if it is not replicated), and in
 * *index (if not NULL) which one st is, from 0. Any thread; never changes. */
unsigned rill_stage_replicas(const rill_stage *st, unsigned *index);

/* Replica k of st's stage (k = 0: the handle rill_stage_add gave), or NULL
 * if there is no replica k. Any thread; valid until the pipeline is freed. */
rill_stage *rill_stage_replica(const rill_stage *st, unsigned k);

#ifdef __cplusplus
}
#endif
#endif
