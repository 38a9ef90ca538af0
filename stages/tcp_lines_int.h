/* Internals of the TCP line source (rill/tcp_lines.h), shared by
 * tcp_lines.c (the stage: its scheduler and server, the watch and the gate,
 * stopping, counters) and tcp_lines_conn.c (the connection task).
 *
 * Everything here runs on the scheduler's thread, except what
 * rill_tcp_lines_stop and the counter readers touch: stop_req and the
 * kick (atomics, write(2)), stats and lstats (rill__counter_add). */
#ifndef RILL_TCP_LINES_INT_H
#define RILL_TCP_LINES_INT_H

#include <stdatomic.h>

#include "lines_int.h"

/* A connection with no memory for a gate polls for room this often. */
#define RILL__TCPL_POLL_NS INT64_C(1000000)

#define RILL__TCPL_SUB(field) rill__counter_sub(&field, 1)

typedef struct rill__tcpl rill__tcpl;

struct rill__tcpl {
    rill_stage *st;
    rill_sched *sched;
    rill_tcp_server *srv;
    rill_lines_opts lo;
    uint64_t max_accepts;
    int room_fd;       /* the pipeline's; -1 until produce asks for it */
    int kick;          /* ours: stop requests, ended connections */
    int wfd;           /* ours: epoll set of room_fd and kick */
    _Atomic int stop_req; /* RILL_TCP_STOP_* requested, or-ed; 0: none */
    bool in_produce;   /* emits allowed (not in rill_pipeline_free) */
    bool halted;       /* the pipeline stopped: server stopped NOW */
    uint64_t live;     /* connection tasks not yet released */
    rill_sched_owned watch; /* the only reader of room_fd (tcp_lines.c) */
    rill_sched_gate gate; /* refused connections wait for it; the watch opens it */
    struct rill_lines_stats lstats;
    struct rill_tcp_lines_stats stats; /* lines, bytes, truncated: see lstats */
};

/* tcp_lines.c */

/* Wake the watch: something it decides on changed. */
void rill__tcpl_kick(rill__tcpl *s);

/* The pipeline stopped (or failed downstream): stop the server NOW, since
 * nothing read from now on could be delivered. */
void rill__tcpl_halt(rill__tcpl *s);

/* Make sure the watch is alive: 0 or RILL_ENOMEM. */
int rill__tcpl_watch_up(rill__tcpl *s);

/* tcp_lines_conn.c: the server's rill_tcp_conn_fn (arg: the stage). */
int rill__tcpl_accept(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn);

#endif
