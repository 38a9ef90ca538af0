/* The pipeline's internal structures, shared by graph.c (building),
 * plan.c (domains and queues), flow.c (the item's path), pipeline.c
 * (starting, closing, errors), room.c (the room eventfd) and worker.c
 * (threads). */
#ifndef RILL_PIPELINE_INT_H
#define RILL_PIPELINE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "park.h"
#include "queue.h"
#include "core/fifo.h"
#include "core/names.h"
#include "core/rill_int.h"
#include "stats/stats_int.h"

enum { RILL__NEW, RILL__STARTED, RILL__CLOSED };

#define RILL__DEFAULT_CAPACITY 4096u
#define RILL__DEFAULT_BATCH 256u
#define RILL__DEFAULT_LATENCY_US 1000u

/* Dealing one producer's items over a group of replicas (replica.c): the
 * queue of each replica, filled in by the plan, and where round robin is. */
typedef struct rill__deal {
    unsigned n, cur, fill, batch;
    uint64_t (*hash)(const void *state, const rill_item *item);
    const void *hstate;
    rill__queue *q[];
} rill__deal;

/* A replicated stage (replica.c): its members, and the close-time merge. */
typedef struct rill__group {
    unsigned n;             /* replicas */
    _Atomic unsigned done;  /* replicas 1..n-1 whose input has ended */
    rill_stage *member[];
} rill__group;

/* One output port. queue == NULL: `to` runs on the same thread and is called
 * directly; otherwise items cross to its thread through the queue. A port to
 * a group of replicas has dl: emits pick one replica's queue; the ports to
 * replicas 1..N-1 follow the emitted ones (st->nemit .. st->nout), so that
 * graph walks see every replica and emits see one port per connection. */
typedef struct rill__port {
    rill_stage *to;
    rill__queue *queue;
    rill__deal *dl;
} rill__port;

/* What a domain holds back at the inline depth limit (held.c), and what an
 * inline input being aligned holds back (barrier.c): an item, a barrier or
 * end of stream, in order. An item holds a reference of its own: its
 * owner's, or a private copy's. */
enum { RILL__HELD_ITEM, RILL__HELD_BARRIER, RILL__HELD_EOS };
typedef struct rill__deferred {
    rill_stage *to;             /* via == NULL: deliver to this stage */
    const struct rill__port *via; /* else to via->to as it is at delivery: an
                                   input being aligned is rerouted to a stash */
    rill_item item;
    uint64_t id;                /* RILL__HELD_BARRIER */
    unsigned slot;              /* the input of `to` a barrier arrives on */
    unsigned kind;              /* RILL__HELD_* */
} rill__deferred;

/* Items, barriers and end of stream from one inline input of a stage being
 * aligned (barrier.c), in order. */
typedef struct rill__stash {
    struct rill__align *al;
    unsigned slot;
    rill__fifo q;             /* of rill__deferred */
} rill__stash;

enum { RILL__IN_OPEN, RILL__IN_ARRIVED, RILL__IN_CLOSED };

/* Barrier alignment of a stage with several inputs (barrier.c). Its inputs
 * are its queues (w->in of a threaded head) or its inline connections. */
typedef struct rill__align {
    rill_stage *st;
    unsigned n;               /* inputs */
    unsigned narrived, nclosed;
    uint64_t id;              /* largest id arrived this round */
    uint64_t since;           /* when the round's first barrier arrived */
    unsigned char *state;     /* per input: RILL__IN_* */
    struct rill__port **port; /* inline: the producer's port into st */
    rill_stage *proxy;        /* inline: n stand-ins whose send stashes */
    rill__stash *stash;       /* inline, or some input shared: n stashes */
    bool *shared;             /* threaded: input i comes from a thread that
                                 feeds another input too: stashed while held */
    bool replaying;
} rill__align;

/* A thread running one threaded stage and the inline stages after it that
 * only it feeds (its "domain"). Domain 0 is the caller's thread. */
typedef struct rill__worker {
    rill_pipeline *p;
    rill_stage *head;     /* the threaded stage */
    pthread_t tid;
    bool started;
    rill__park data;      /* the worker sleeps here when its inputs are empty */
    rill__queue **in;      /* one queue per producer port */
    unsigned nin;
    rill__queue **out;     /* queues this domain produces into (to flush) */
    unsigned nout;
    uint64_t latency_ns;  /* flush partial output batches older than this */
    /* Inline delivery on this domain's one thread (flow.c); zeroed is ready. */
    unsigned depth;          /* inline sends nested now, + RILL__HELD if held.n */
    rill__fifo held;         /* of rill__deferred, in order */
    uint64_t discarded;      /* held items dropped by a stop */
    /* Per-stage busy time by sampled windows (stats/prof.h); zeroed is ready. */
    rill_stage *cur;          /* in a window: the stage whose code runs now */
    unsigned prof_tick, prof_left; /* transitions until the next look / left in the window */
    unsigned prof_windows;    /* windows opened so far (their gap grows) */
    uint64_t prof_mark, prof_wmark; /* clock and waited at the last transition */
    _Atomic uint64_t *waited;  /* this thread's waiting time (set by the plan) */
} rill__worker;

struct rill_stage {
    rill_pipeline *p;
    const rill_stage_ops *ops;
    void *state;
    rill__port *out;  /* output ports, in connect order */
    unsigned nout, capout;
    unsigned nemit;   /* ports emits go to: out[0..nemit), one per connection */
    rill__group *grp; /* replicas: the group (NULL: not replicated) */
    struct rill__share *share; /* its ports share batches (share.c), or NULL */
    unsigned rindex;  /* which replica */
    bool paired;      /* fed replica by replica: runs on its feeder's thread */
    unsigned nin;     /* producers connected */
    unsigned open_in; /* producers not yet closed (inline stages) */
    unsigned mark;    /* cycle check: visited in search number mark */
    unsigned domain;  /* 0: caller's thread; k: workers[k-1] */
    rill__worker *dom; /* that domain (&p->main until planned) */
    _Atomic bool closed;   /* read by the watchdog (stats.c) */
    _Atomic bool promoted; /* got a thread because it is fed from several */
    _Atomic uint64_t n_in, n_out; /* items received / emitted (its thread only) */
    _Atomic uint64_t waited_ns;   /* threaded: time its thread waited */
    _Atomic uint64_t prof_ns;     /* busy time seen in sampled windows (prof.h) */
    rill__tclock tclock;          /* threaded: its thread's CPU clock and end */
    uint64_t delay_ns;            /* rill_stage_set_delay: busy time per item */
    uint64_t refused_at;          /* rill_try_emit refused it then (its thread's
                                     clock reading; 0: not waiting for room) */
    rill__queue *refused;         /* the queue that refused */
    _Atomic int room_efd;         /* rill_stage_room_fd's eventfd + 1; 0 until made
                                     (stages are zeroed when added) */
    rill_stage_opts opts;
    char *name;
    /* checkpoint barriers (barrier.c) */
    rill__align *al;        /* several inputs: their alignment; else NULL */
    unsigned *out_slot;     /* per port: the input of out[k].to it is */
    uint64_t barrier_last;  /* last id rill_emit_barrier sent */
    _Atomic uint64_t n_barriers, align_ns;
};

/* Depth sampler and stall watchdog (stats.c). */
typedef struct rill__sampler {
    bool enabled, started;
    size_t max, n;              /* buffer size and use, in samples */
    uint64_t interval_ns;
    rill_depth_sample *buf;
    pthread_mutex_t lock;       /* buf, n, interval_ns: sampler vs snapshots */
    pthread_t tid;
    rill__park park;
    _Atomic int quit;
    uint64_t stall_ns;          /* watchdog timeout; 0 = off */
    rill_stall_fn stall_fn;
    void *stall_arg;
} rill__sampler;

struct rill_pipeline {
    _Atomic int stop;    /* nonzero once an error or an abort stops delivery */
    _Atomic int err;     /* written once under errlock */
    _Atomic int aborted;
    _Atomic int phase;   /* RILL__NEW, _STARTED, _CLOSED; read by snapshots */
    rill_stage **stages;
    unsigned n, cap;
    unsigned search; /* number of the last cycle check */
    rill__names names; /* stage name -> stage, for uniqueness and lookup */
    rill__worker *workers;
    _Atomic unsigned nworkers; /* published after the workers are set up */
    unsigned nworkers_alloc; /* entries of workers[] to free */
    _Atomic int waking;  /* rill__wake_all calls reading workers/queues */
    rill__queue **queues;  /* every queue, for wake-ups and teardown */
    unsigned nqueues;
    rill__worker main;   /* domain 0's outgoing queues (no thread) */
    uint64_t discarded;
    rill__queue_stats *queue_stats;  /* one per queue, kept until destroy */
    size_t nq;
    _Atomic uint64_t main_waited; /* the caller's thread, blocked on full queues */
    rill__tclock main_clock;      /* the thread in rill_pipeline_run, while it runs it */
    uint64_t t_start, t_end;      /* monotonic ns of start and of close */
    pthread_mutex_t statlock;     /* snapshots vs freeing the queues */
    rill__sampler sampler;
    pthread_mutex_t errlock;
    rill_stage *errstage;
    char *name;
    char errmsg[512];
    int msgcode;          /* the code errmsg is about (under errlock) */
};

/* pipeline.c */
/* st's callback cb ("send", "close"...) returned rc < 0: record it as the
 * pipeline's error unless one is known; -1 becomes RILL_ESTAGE naming cb.
 * Returns the code the caller passes on. */
int rill__failed_in(rill_stage *st, int rc, const char *cb);
static inline int rill__failed(rill_stage *st, int rc) { return rill__failed_in(st, rc, "send"); }
int rill__stop_code(const rill_pipeline *p);
void rill__close_stage(rill_stage *st);
void rill__deliver_eos(rill_stage *to);

static inline bool rill__stopped(const rill_pipeline *p) {
    return atomic_load_explicit(&p->stop, memory_order_relaxed) != 0;
}

/* room.c */
void rill__room_signal_all(rill_pipeline *p); /* a stop: write every room fd */
void rill__room_fds_close(rill_pipeline *p);  /* destroy */
/* st waited for room since rill_try_emit refused it: count the wait, as a
 * blocking emit's (room.c). Its thread only. */
void rill__room_waited(rill_stage *st);

/* plan.c: assign domains, build the workers and queues (no thread yet). */
int rill__plan(rill_pipeline *p);

/* worker.c */
int rill__threads_start(rill_pipeline *p);
void rill__threads_join(rill_pipeline *p);
void rill__threads_free(rill_pipeline *p);
void rill__wake_all(rill_pipeline *p);

/* flow.c: the item's path */
void rill__flush_outputs(rill__worker *w);     /* hand over every partial batch */
void rill__flush_old_outputs(rill__worker *w); /* ... those past their latency */
void rill__run_source(rill_stage *st, rill__worker *w); /* on w's thread */
void rill__run_consumer(rill__worker *w);
/* flow_run.c: items[0..n) to t's send_items, or its send per item until a
 * stop or a failure (*rc: its code, or the stop's). Returns how many t
 * received. On t's thread; the caller counts them and nests. */
size_t rill__run_send(rill_stage *t, const rill_item *items, size_t n, int *rc);
/* held.c: inline sends nested deeper than this on one thread are held in
 * its FIFO and delivered once it is back at depth 0. 10,000 inline stages
 * then fit a 256 KiB stack, also under ASan; user frames count too. */
#define RILL__INLINE_DEPTH 64u
/* Added to a domain's depth while its FIFO holds anything: every inline
 * send then holds its item too, and only the outermost one comes back to
 * depth RILL__HELD exactly, the signal to drain. One compare per send. */
#define RILL__HELD (1u << 30)
/* A copy of item that outlives the call it came with, in *out: its owner
 * retained (a static one needs nothing), or borrowed bytes (owner NULL: in
 * the caller's stack or a buffer it reuses) copied into an owned item.
 * Drop it with rill_item_release. 0 or RILL_ENOMEM. */
int rill__item_keep(const rill_item *item, rill_item *out);
int rill__hold(rill__worker *w, rill_stage *from, const rill__port *via, rill_stage *to,
               const rill_item *item);
/* A barrier for via->to's input slot, held in order with the items. */
int rill__hold_barrier(rill__worker *w, rill_stage *from, const rill__port *via, unsigned slot,
                       uint64_t id);
/* Release what a held or stashed entry holds (an item's reference). */
void rill__deferred_release(rill__deferred *d);
int rill__drain(rill__worker *w);
void rill__held_free(rill__worker *w); /* after the run: discards what is left */

/* barrier_plan.c: checkpoint barriers before and after the run. */
int rill__barrier_plan(rill_pipeline *p);        /* after the domains and queues */
void rill__barrier_free(rill_pipeline *p);
void rill__barrier_drop_stashes(rill_pipeline *p); /* at close: count as discarded */
/* barrier.c: checkpoint barriers. slot: the input of `to` it arrives on. */
/* The ops of the stand-in stages an aligning inline stage's held ports point at. */
extern const rill_stage_ops rill__stash_ops;
int rill__barrier_at(rill_stage *to, unsigned slot, uint64_t id); /* on to's thread */
/* An inline input of `to` reached end of stream (close cascade): true if
 * to is now to be closed (its last input closed). */
bool rill__barrier_input_closed(rill__port *o, unsigned slot);
/* A queue input of a threaded head ended; completes a pending alignment. */
void rill__barrier_queue_closed(rill_stage *head, unsigned slot);
/* A threaded head took batch b from input slot, held back but shared with
 * another input's producer: keep its items, barrier and end for later. */
void rill__barrier_stash_batch(rill_stage *head, unsigned slot, const rill__batch *b);

/* stats.c */
int rill__sampler_start(rill_pipeline *p);
void rill__sampler_stop(rill_pipeline *p);

/* Spin for ns nanoseconds (rill_stage_set_delay). */
void rill__busy_wait(uint64_t ns);

/* graph.c */
void rill__graph_free(rill_pipeline *p);
/* Adding stages in two steps, so that a group of replicas is added whole or
 * not at all: make room for extra stages (0 or RILL_ENOMEM), allocate each
 * (NULL: no memory; free it with free() and its name), then commit each,
 * which cannot fail after the reserve. */
int rill__stages_reserve(rill_pipeline *p, unsigned extra);
rill_stage *rill__stage_alloc(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                              void *state, const rill_stage_opts *opts);
void rill__stage_commit(rill_pipeline *p, rill_stage *st);
/* Append a port from from to to (after the emitted ports if extra). */
int rill__port_add(rill_stage *from, rill_stage *to, rill__deal *dl, bool extra);

/* replica.c */
int rill__replicas_add(rill_pipeline *p, const char *name, const rill_stage_ops *ops,
                       void *state, const rill_stage_opts *opts, rill_stage **out);
int rill__replicas_connect(rill_stage *from, rill_stage *to);
int rill__replicas_plan(rill_pipeline *p); /* fill each deal's queues */
void rill__group_free(rill__group *g);
/* st (a replica of a stage with merge) has no more input: false if its
 * close is not to run (replicas 1..N-1); replica 0 waits for the others,
 * merges their shares and returns true. */
bool rill__replica_closing(rill_stage *st);

/* Does st head a thread of its own? Threaded, or a replica nothing pairs. */
static inline bool rill__own_thread(const rill_stage *st) {
    return (st->opts.flags & RILL_STAGE_THREADED) || (st->grp && !st->paired);
}

/* The replica of d's group that item goes to; rill__deal_took after it went. */
static inline unsigned rill__deal_pick(const rill__deal *d, const rill_item *item) {
    if (d->hash) {
        /* Mixed first: a hash whose varying bits are few, low or high (a
         * small integer, a 32-bit hash) must still reach every replica; the
         * high half of the product then picks one (a multiply, no divide). */
        uint64_t h = d->hash(d->hstate, item);
        h = (h ^ h >> 32) * 0x9e3779b97f4a7c15ull;
        return (unsigned)(((h >> 32) * d->n) >> 32);
    }
    return d->fill < d->batch ? d->cur : (d->cur + 1 == d->n ? 0 : d->cur + 1);
}
static inline void rill__deal_took(rill__deal *d, unsigned k) {
    if (d->hash)
        return;
    if (k != d->cur) {
        d->cur = k;
        d->fill = 0;
    }
    d->fill++;
}

#endif
