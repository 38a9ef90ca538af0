/* rill — TCP line source: a listener whose clients send lines into a
 * pipeline (`nc host port < access.log`).
 *
 * The stage is a source. Its produce callback runs a scheduler (rill/sched.h)
 * with a TCP server (rill/net.h) until the server has stopped and every
 * connection has ended. Each connection is a task that reads its socket in
 * chunks and cuts lines by exactly the rules of the file line source
 * (rill/lines.h: max_line, RILL_LINES_TRUNCATE, RILL_LINES_STRIP_CR), each
 * line a slice of the connection's reference-counted read buffer. Lines of
 * one connection arrive in order; lines of different connections
 * interleave.
 *
 * Backpressure: when the queue right after the stage is full, the stage
 * stops reading every socket until it has room again, so the clients'
 * writes block (the TCP window closes). The event loop never waits on that
 * queue, and nothing is buffered without bound: the stage's unemitted bytes
 * stay below connections x (chunk + max_line). Stages run inline after the
 * source (on its thread) may still block on queues further down: put the
 * first threaded stage right after the source (or make the source
 * threaded) for backpressure to reach the sockets. How it waits, and the
 * memory an emitted line pins: docs/stages.md, "The TCP line source".
 *
 * Ends of a connection:
 *   - the client closes (or resets, or the idle timeout passes): its
 *     unterminated last line is delivered, like the file source's last line;
 *   - an over-long line without RILL_LINES_TRUNCATE: the lines before it are
 *     delivered, the connection is closed and counted (too_long); the
 *     pipeline does not fail — one client's bad input is that client's;
 *   - killed (RILL_TCP_STOP_NOW, the deadline, or the pipeline stopping):
 *     lines already received and its partial last line are delivered with
 *     rill_try_emit if the queue has room; whatever finds it full (or the
 *     pipeline stopped) is dropped and counted in `dropped` — never
 *     silently, and the event loop never waits for a consumer.
 * Per-connection errors are counted, never a pipeline failure. The stage
 * fails the pipeline only if its scheduler or server fails (epoll errors).
 *
 * Stop: rill_tcp_lines_stop(st, RILL_TCP_STOP_DRAIN) closes the listener and
 * lets open connections finish (waiting, as long as it takes, for room for
 * their lines); RILL_TCP_STOP_NOW also kills them. With max_accepts the
 * stage ends by itself once that many connections have ended. If the
 * pipeline stops (an error elsewhere, rill_pipeline_abort) the stage stops
 * its server at once (as NOW).
 *
 * Lines do not wait for a full batch while the clients are quiet: the
 * stage hands its partial batch on before it waits for a socket.
 */
#ifndef RILL_TCP_LINES_H
#define RILL_TCP_LINES_H

#include <stdint.h>

#include "rill/lines.h"
#include "rill/net.h"
#include "rill/pipeline.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RILL_TCP_LINES_DEFAULT_CHUNK (64u << 10) /* 64 KiB read per connection */

/* Add a TCP line source. The listening socket is bound and listening when
 * this returns (so rill_tcp_lines_port() is known and clients may connect
 * before the pipeline runs; they wait in the backlog).
 *
 * topts (NULL: all defaults) as for rill_tcp_server_new, except that here
 * idle_ns and deadline_ns 0 mean no limit (RILL_SCHED_FOREVER): a log may
 * stream for hours, and a connection waiting for queue room must not be cut
 * for it. A connection's wait for room is never bounded by idle_ns.
 * lopts (NULL: defaults) as for the file line source, except that chunk
 * defaults to RILL_TCP_LINES_DEFAULT_CHUNK and RILL_LINES_CLOSE_FD is
 * refused. opts as for rill_stage_add (RILL_STAGE_THREADED runs the server
 * in a thread of its own).
 *
 * Returns 0; RILL_EINVAL (p NULL, bad options); the errors of
 * rill_tcp_server_new (-EADDRINUSE, ...), rill_stage_room_fd and
 * rill_stage_add; RILL_ENOMEM. On failure nothing is kept. */
int rill_tcp_lines_add(rill_pipeline *p, const char *name, const rill_tcp_opts *topts,
                       const rill_lines_opts *lopts, const rill_stage_opts *opts,
                       rill_stage **out);

/* The port the stage listens on; 0 if st is not a TCP line source. Any
 * thread. */
uint16_t rill_tcp_lines_port(const rill_stage *st);

/* Stop the stage's server (RILL_TCP_STOP_DRAIN or RILL_TCP_STOP_NOW, see
 * above); the stage's produce then returns once its connections have ended.
 * Before the pipeline runs it makes the run end at once. Only atomic stores
 * and write(2)s to eventfds: callable from any thread and from a signal
 * handler, until rill_pipeline_free. Not a TCP line source: no-op. */
void rill_tcp_lines_stop(rill_stage *st, int how);

struct rill_tcp_lines_stats {
    uint64_t lines;       /* lines emitted (also rill_lines_stats()) */
    uint64_t bytes;       /* bytes read from sockets */
    uint64_t truncated;   /* lines cut to max_line (RILL_LINES_TRUNCATE) */
    uint64_t connections; /* connections served (accepted and given a task) */
    uint64_t active;      /* connections now */
    uint64_t partial;     /* unterminated last lines delivered at an end */
    uint64_t too_long;    /* connections closed at an over-long line */
    uint64_t errors;      /* connections ended by a read error (a reset) or
                             by lack of memory for a buffer */
    uint64_t timed_out;   /* connections ended by the idle timeout */
    uint64_t killed;      /* connection tasks killed (STOP_NOW, deadline,
                             pipeline stopped: then one that is running, or
                             waiting for room, may end by itself first) */
    uint64_t dropped;     /* received lines not delivered: found the queue
                             full (or the pipeline stopped) at a kill */
    uint64_t waits;       /* times a connection stopped reading because the
                             queue was full */
    uint64_t waiting;     /* connections waiting for queue room now */
};

/* Counters of a TCP line source. Callable from any thread while the
 * pipeline runs (each counter current, not all taken at one instant); exact
 * once the pipeline is closed. RILL_EINVAL if st is not one. */
int rill_tcp_lines_stats(const rill_stage *st, struct rill_tcp_lines_stats *out);

#ifdef __cplusplus
}
#endif
#endif
