/* Internals of the TCP server (engine/net/): net.c (the server, its
 * accept and stop tasks), conn.c (connections and their supervisors,
 * socket helpers).
 *
 * Every task of a server keeps its state in server memory: the accept task,
 * the stop task, the gate (see below) in the server struct, and each
 * connection's supervisor in the connection's slot. Slots are recycled
 * through a free list and released only by rill_tcp_server_free, so a
 * caller's on_close that runs late (in rill_sched_free) still finds its
 * rill_tcp_conn. */
#ifndef RILL_NET_INT_H
#define RILL_NET_INT_H

#include <stdatomic.h>

#include "core/list.h"
#include "core/rill_int.h"

#define RILL__TCP_BATCH 64                      /* accepts per wake-up */
#define RILL__TCP_BACKOFF_NS INT64_C(100000000) /* EMFILE and the like */

/* One connection: its supervisor task and the rill_tcp_conn the caller's
 * task sees. link holds it on the server's list of open connections from
 * accept until the fd is closed, and on the free list otherwise. */
typedef struct rill__tcp_slot {
    rill_gen gen; /* the supervisor */
    rill_syscall call;
    rill_tcp_conn conn;
    rill__list link;
    uint64_t task_id;  /* the caller's task */
    int task_alive;    /* the supervisor has not seen it end */
} rill__tcp_slot;

struct rill_tcp_server {
    rill_sched *s;
    rill_tcp_conn_fn fn;
    void *arg;
    int lfd, efd; /* listener (-1 once closed); stop doorbell */
    uint16_t port;
    unsigned max_conns;
    uint64_t max_accepts;
    int64_t idle_ns, deadline_ns;
    _Atomic int stop;  /* RILL_TCP_STOP_* requested, or-ed; 0: none (any
                          thread, signal handlers) */
    int stop_done;     /* RILL_TCP_STOP_* the stop task has carried out */
    int accept_done;   /* no more accepts: the listener is closed */
    /* The accept task; the stop task; the gate (rill/sched.h) the accept
     * task waits for while it waits for a connection to end, opened by
     * every connection that ends. */
    rill_sched_owned acceptor, stopper;
    rill_sched_gate gate;
    rill__list open;       /* rill__tcp_slot.link of open connections */
    rill__list free_slots; /* rill__tcp_slot.link of slots to reuse */
    struct rill_tcp_server_stats st;
};

/* net.c */
void rill__tcp_maybe_done(rill_tcp_server *srv);

/* net_conn.c */
rill__tcp_slot *rill__tcp_slot_get(rill_tcp_server *srv);
void rill__tcp_slot_put(rill_tcp_server *srv, rill__tcp_slot *sl);
void rill__tcp_conn_start(rill_tcp_server *srv, rill__tcp_slot *sl, int fd);
void rill__tcp_slots_free(rill_tcp_server *srv);

#endif
