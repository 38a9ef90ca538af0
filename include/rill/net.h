/* rill — TCP servers on the scheduler (rill/sched.h): one task per
 * connection, with the limits a server needs to survive real clients.
 *
 * A server is a listening socket and a set of scheduler tasks: one accept
 * task, and per connection one task the caller makes (rill_tcp_conn_fn) plus
 * one supervisor the server owns. The supervisor enforces the connection's
 * total deadline (it kills the caller's task when the deadline passes, so
 * its on_close runs), then closes the socket and frees the slot; the
 * caller's task never closes the fd. A task waits for its socket with the
 * rill_tcp_readable / rill_tcp_writable calls below, which bound every wait by the idle timeout and
 * by the deadline, so a client that trickles one byte a second is cut off
 * at the deadline, and one that sends nothing at the idle timeout.
 *
 * Limits:
 *   max_conns  connections served at once. At the limit the accept task
 *              waits for a connection to end; further clients wait in the
 *              kernel's listen queue (backlog); beyond it Linux does not
 *              refuse them but leaves their handshakes unanswered, so
 *              they wait (retransmitting) or time out.
 *   EMFILE     (and ENFILE, ENOBUFS, ENOMEM) on accept: the accept task
 *              waits for a connection to end or 100 ms, then tries again;
 *              it never spins and never stops. Counted in stats.
 *   max_accepts the server stops accepting after this many connections
 *              (0: no limit), e.g. for tests and benchmarks.
 *
 * Lifecycle: rill_tcp_server_new() binds and listens at once (so the port
 * is known before rill_sched_run) and spawns the accept task and a stop
 * task (which waits for rill_tcp_server_stop) on s. The
 * server's tasks end when it is stopped (rill_tcp_server_stop, or
 * max_accepts reached) and its connections have ended; rill_sched_run
 * returns when every task of s has ended. Free the server after that.
 *
 * Thread-safety: everything runs on the scheduler's thread, except
 * rill_tcp_server_stop(), which any thread or a signal handler may call.
 */
#ifndef RILL_NET_H
#define RILL_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rill/sched.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_tcp_server rill_tcp_server;

typedef struct rill_tcp_opts {
    const char *host;      /* numeric IPv4 or IPv6 address to bind;
                              NULL: "127.0.0.1" */
    uint16_t port;         /* 0: any free port (see rill_tcp_server_port) */
    int backlog;           /* listen(2) backlog; 0: 1024 (the kernel caps it
                              at net.core.somaxconn) */
    unsigned max_conns;    /* connections at once; 0: 1024 */
    uint64_t max_accepts;  /* stop after accepting this many; 0: no limit */
    int64_t idle_ns;       /* longest wait for one read or write to make
                              progress; 0: 10 s; RILL_SCHED_FOREVER: none */
    int64_t deadline_ns;   /* longest life of a connection; 0: 30 s;
                              RILL_SCHED_FOREVER: none */
} rill_tcp_opts;

/* One connection, owned by the server. Valid from the rill_tcp_conn_fn call
 * until the caller's task has ended. */
typedef struct rill_tcp_conn {
    int fd;                       /* non-blocking; the server closes it */
    uint64_t id;                  /* 1, 2, 3, ... in accept order */
    uint64_t deadline;            /* rill_sched_now_ns() at which it is cut;
                                     UINT64_MAX: never */
    int64_t idle_ns;              /* from rill_tcp_opts */
    rill_tcp_server *server;
    struct sockaddr_storage peer; /* the client's address */
    socklen_t peer_len;
} rill_tcp_conn;

/* Make the task that serves conn: set *task (created, not started: see
 * rill_gen_init) and *free_fn (may be NULL) and return 0; the server spawns
 * it and owns it from then on, as rill_sched_spawn does (if it cannot be
 * spawned, the server releases it with *free_fn, closes the connection and
 * counts it refused). Return a negative code to refuse the connection: the
 * server closes it and counts it. Called on the scheduler's thread, from
 * the accept task (so it must not block). */
typedef int (*rill_tcp_conn_fn)(void *arg, rill_tcp_conn *conn, rill_gen **task,
                                rill_task_free_fn *free_fn);

/* Bind and listen on opts (NULL: all defaults) and spawn the accept task on
 * s. On success *out is the caller's, to be freed with
 * rill_tcp_server_free() after rill_sched_run(s) has returned. Returns 0,
 * RILL_EINVAL (fn or out NULL, host not a numeric address), RILL_ENOMEM, or
 * the negative errno of socket/bind/listen (e.g. -EADDRINUSE). */
int rill_tcp_server_new(rill_sched *s, const rill_tcp_opts *opts, rill_tcp_conn_fn fn, void *arg,
                        rill_tcp_server **out);

/* The port the server listens on (the one chosen when opts->port was 0). */
uint16_t rill_tcp_server_port(const rill_tcp_server *srv);

/* How a server (or a TCP line source) stops. The values are levels whose
 * bits nest (NOW holds DRAIN's), so the engine records requests by or-ing
 * them and a later, harder stop adds to an earlier one. */
enum {
    RILL_TCP_STOP_DRAIN = 1, /* stop accepting; connections finish (within
                                their deadline) */
    RILL_TCP_STOP_NOW = 3    /* also kill every connection's task now (its
                                on_close runs: e.g. deliver a partial line) */
};

/* Stop srv: close the listening socket and end the server's tasks as how
 * (RILL_TCP_STOP_*; any other value means DRAIN) says. Only atomic stores and a write(2) to an eventfd: callable from any
 * thread and from a signal handler. Stopping twice is harmless; NOW after
 * DRAIN kills what is left. */
void rill_tcp_server_stop(rill_tcp_server *srv, int how);

/* Free srv once none of its tasks is left on s: after a rill_sched_run(s)
 * that returned with rill_sched_count(s) == 0, or else (it never ran, or it
 * failed with -EDEADLK or an epoll error and left tasks) after
 * rill_sched_free(s), which closes those tasks; the sockets of their
 * connections stay open until this call. NULL is a no-op. */
void rill_tcp_server_free(rill_tcp_server *srv);

struct rill_tcp_server_stats {
    uint64_t accepted;   /* connections accepted */
    uint64_t active;     /* connections now */
    uint64_t peak;       /* most at once */
    uint64_t refused;    /* the conn_fn or spawning its task failed */
    uint64_t timed_out;  /* killed at their deadline */
    uint64_t killed;     /* killed by RILL_TCP_STOP_NOW */
    uint64_t at_limit;   /* times accept waited because max_conns was reached */
    uint64_t accept_errors; /* EMFILE, ENFILE, ENOBUFS, ENOMEM and the like */
};

/* Snapshot of srv's counters (scheduler thread). Returns 0. */
int rill_tcp_server_stats(const rill_tcp_server *srv, struct rill_tcp_server_stats *out);

/* ---- for connection tasks -------------------------------------------------- */

/* Timeout for the next wait on c: the idle timeout, shortened to what is
 * left of the deadline (0 once it has passed: the wait times out at once). */
int64_t rill_tcp_wait_ns(const rill_tcp_conn *c);

/* recv(2) on c's socket, retrying EINTR. Returns bytes read (> 0), 0 at end
 * of stream, -EAGAIN when nothing is there yet (wait with
 * rill_tcp_readable), or another negative errno (-ECONNRESET, ...);
 * RILL_EINVAL if len is 0 (which would read as the end of the stream). */
ssize_t rill_tcp_read(rill_tcp_conn *c, void *buf, size_t len);

/* send(2) with MSG_NOSIGNAL (a closed peer gives -EPIPE, never SIGPIPE),
 * retrying EINTR. Returns bytes written (> 0, maybe fewer than len),
 * -EAGAIN when the socket buffer is full (wait with rill_tcp_writable), or
 * another negative errno. */
ssize_t rill_tcp_write(rill_tcp_conn *c, const void *buf, size_t len);

/* Fill call to wait until c is readable / writable, at most
 * rill_tcp_wait_ns(c), and return call: make the call with
 * RILL_SYSCALL(g, rill_tcp_readable(&state->call, c)). Afterwards
 * call->result is the events (> 0) or -ETIMEDOUT (idle timeout or
 * deadline), as rill_sys_wait_fd. */
static inline rill_syscall *rill_tcp_readable(rill_syscall *call, const rill_tcp_conn *c) {
    return rill_sys_wait_fd(call, c->fd, RILL_FD_READABLE, rill_tcp_wait_ns(c));
}

static inline rill_syscall *rill_tcp_writable(rill_syscall *call, const rill_tcp_conn *c) {
    return rill_sys_wait_fd(call, c->fd, RILL_FD_WRITABLE, rill_tcp_wait_ns(c));
}

/* Raise this process's soft RLIMIT_NOFILE towards want (at most the hard
 * limit). Returns the soft limit in force afterwards (>= 0), or a negative
 * errno if it cannot be read. */
long rill_raise_fd_limit(long want);

#ifdef __cplusplus
}
#endif
#endif
