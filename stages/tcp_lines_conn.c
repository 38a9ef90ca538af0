/* The TCP line source's connection task (see tcp_lines.c for the stage):
 * read a chunk, emit its lines with rill_try_emit, hand the batch on, yield,
 * read again. Refused, it waits for the gate (tcp_lines.c) and retries the
 * same line: the splitter keeps its place.
 *
 * Every line a connection received ends one of three ways, each counted:
 * delivered (stats.lines), dropped at a kill or a pipeline stop
 * (stats.dropped), or cut with its connection at an over-long line
 * (stats.too_long counts the connection). */
#include <stdlib.h>
#include <string.h>

#include "tcp_lines_int.h"

typedef struct rill__tcpl_conn {
    rill_gen gen;
    rill_syscall call;
    rill__tcpl *s;
    rill_tcp_conn *c;
    rill__lsplit sp;
    int rc;          /* why reading ended */
    bool client_end; /* rc is the socket's: end of stream, error, idle */
    bool cut;        /* the deadline passed while waiting for data */
    bool waiting;    /* counted in stats.waiting */
    bool tail;       /* an unterminated last line is being delivered */
} rill__tcpl_conn;

static void rill__tcpl_set_waiting(rill__tcpl_conn *k, bool on) {
    if (k->waiting == on)
        return;
    k->waiting = on;
    if (on) {
        rill__counter_add(&k->s->stats.waits, 1);
        rill__counter_add(&k->s->stats.waiting, 1);
    } else {
        RILL__TCPL_SUB(k->s->stats.waiting);
    }
}

/* Wait until the watch has seen room (or a stop), then retry. Without a
 * gate (no memory for a task) poll instead. Lines emitted so far go on
 * first, as before every wait. */
#define RILL__TCPL_WAIT_ROOM(g, k)                                          \
    do {                                                                    \
        rill__tcpl_set_waiting(k, true);                                    \
        rill_stage_flush((k)->s->st);                                       \
        if (rill_sched_gate_up((k)->s->sched, &(k)->s->gate) == 0) {        \
            RILL_SYS_WAIT(g, &(k)->call, (k)->s->gate.id);                  \
        } else {                                                            \
            RILL_SYS_SLEEP(g, &(k)->call, RILL__TCPL_POLL_NS);              \
        }                                                                   \
    } while (0)

/* Lines received but never to be delivered. */
static void rill__tcpl_drop_rest(rill__tcpl_conn *k) {
    const rill__lsplit *sp = &k->sp;
    uint64_t n = 0;
    if (sp->pending) {
        const char *p = sp->buf->data + sp->pos, *end = sp->buf->data + sp->end, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            n++;
            p = nl + 1;
        }
        n += p < end;
    } else {
        n = sp->tlen > 0;
    }
    if (n)
        rill__counter_add(&k->s->stats.dropped, n);
    rill__lsplit_release(&k->sp);
}

/* An over-long line: the connection's bad input, not lines to count as
 * dropped; the lines before it are out. */
static void rill__tcpl_too_long(rill__tcpl_conn *k) {
    rill__counter_add(&k->s->stats.too_long, 1);
    rill__lsplit_release(&k->sp);
}

/* A failed emit or finish while the connection runs: count it. */
static void rill__tcpl_emit_failed(rill__tcpl_conn *k, int rc) {
    if (rc == RILL_ETOOLONG) {
        rill__tcpl_too_long(k);
        return;
    }
    if (rc == RILL_ENOMEM)
        rill__counter_add(&k->s->stats.errors, 1);
    else
        rill__tcpl_halt(k->s); /* the pipeline stopped, or failed downstream */
    rill__tcpl_drop_rest(k);
}

/* Cut off (STOP_NOW, the deadline, the pipeline stopped): deliver what
 * was received if the queue takes it now, never waiting; the rest is
 * counted as dropped. In rill_pipeline_destroy nothing may be emitted any
 * more. */
static void rill__tcpl_cut(rill__tcpl_conn *k) {
    rill__tcpl *s = k->s;
    rill__counter_add(&s->stats.killed, 1);
    rill__tcpl_set_waiting(k, false);
    if (s->in_produce && k->sp.buf) {
        int rc = rill__lsplit_try_emit(s->st, &k->sp);
        k->tail = rc == 0 && k->sp.tlen > 0;
        if (rc == 0)
            rc = rill__lsplit_finish(s->st, &k->sp, true);
        if (rc == 0 && k->tail)
            rill__counter_add(&s->stats.partial, 1);
        if (rc == RILL_ETOOLONG)
            rill__tcpl_too_long(k);
        rill_stage_flush(s->st);
    }
    rill__tcpl_drop_rest(k);
}

static int rill__tcpl_conn_body(rill_gen *g) {
    rill__tcpl_conn *k = RILL_CONTAINER_OF(g, rill__tcpl_conn, gen);
    rill__tcpl *s = k->s;
    RILL_GEN_BEGIN(g);
    for (;;) {
        /* The queue is known to be full (someone waits for room): take
         * nothing more off the socket until the watch has seen room. */
        while (s->gate.id)
            RILL__TCPL_WAIT_ROOM(g, k);
        rill__tcpl_set_waiting(k, false);
        if ((k->rc = rill__lsplit_prepare(&k->sp)) < 0)
            break;
        k->rc = (int)rill_tcp_read(k->c, rill__lsplit_space(&k->sp), k->sp.room);
        if (k->rc == -EAGAIN) {
            /* Lines handed on before any wait: none sits in a partial batch
             * while its client is quiet (a refused emit hands them on too). */
            rill_stage_flush(s->st);
            RILL_TCP_READABLE(g, &k->call, k->c);
            if (k->call.result >= 0)
                continue;
            k->rc = k->call.result;
            /* The deadline, not the idle timeout: end as at the
             * supervisor's kill, which comes at the same moment. */
            k->cut = k->rc == -ETIMEDOUT && rill_sched_now_ns() >= k->c->deadline;
        }
        if (k->rc <= 0) {
            k->client_end = !k->cut;
            break;
        }
        rill__lsplit_fed(&k->sp, (size_t)k->rc);
        while ((k->rc = rill__lsplit_try_emit(s->st, &k->sp)) == RILL_EAGAIN)
            RILL__TCPL_WAIT_ROOM(g, k);
        rill__tcpl_set_waiting(k, false);
        if (k->rc < 0)
            break;
        RILL_SYS_YIELD(g); /* fair to the other connections */
    }
    if (k->cut) {
        rill__tcpl_cut(k);
    } else if (!k->client_end) {
        rill__tcpl_emit_failed(k, k->rc);
    } else {
        /* The client is gone (end of stream, reset, idle): deliver its
         * unterminated last line like the file source's last line. */
        if (k->rc == -ETIMEDOUT)
            rill__counter_add(&s->stats.timed_out, 1);
        else if (k->rc < 0)
            rill__counter_add(&s->stats.errors, 1);
        k->tail = k->sp.tlen > 0;
        while ((k->rc = rill__lsplit_finish(s->st, &k->sp, true)) == RILL_EAGAIN)
            RILL__TCPL_WAIT_ROOM(g, k);
        rill__tcpl_set_waiting(k, false);
        if (k->rc < 0)
            rill__tcpl_emit_failed(k, k->rc);
        else if (k->tail)
            rill__counter_add(&s->stats.partial, 1);
        rill_stage_flush(s->st);
    }
    rill__lsplit_release(&k->sp);
    RILL_GEN_END(g);
}

/* Killed (STOP_NOW, deadline, pipeline stopped). */
static int rill__tcpl_conn_close(rill_gen *g) {
    rill__tcpl_cut(RILL_CONTAINER_OF(g, rill__tcpl_conn, gen));
    return 0;
}

static void rill__tcpl_conn_free(rill_gen *g) {
    rill__tcpl_conn *k = RILL_CONTAINER_OF(g, rill__tcpl_conn, gen);
    rill__tcpl *s = k->s;
    rill__lsplit_release(&k->sp);
    free(k);
    s->live--;
    RILL__TCPL_SUB(s->stats.active);
    rill__tcpl_kick(s); /* maybe the last: the watch decides */
}

int rill__tcpl_accept(void *arg, rill_tcp_conn *c, rill_gen **task, rill_task_free_fn *free_fn) {
    rill__tcpl *s = arg;
    /* The watch may have ended just before this late accept: it must be
     * there to wake this connection if it finds the queue full. */
    rill__tcpl_conn *k = rill__tcpl_watch_up(s) < 0 ? NULL : calloc(1, sizeof *k);
    if (!k) {
        rill__tcpl_kick(s); /* the server closes it (refused): maybe the last */
        return RILL_ENOMEM;
    }
    k->s = s;
    k->c = c;
    rill__lsplit_init(&k->sp, &s->lo, &s->lstats);
    rill_gen_init(&k->gen, rill__tcpl_conn_body, rill__tcpl_conn_close);
    *task = &k->gen;
    *free_fn = rill__tcpl_conn_free;
    s->live++;
    rill__counter_add(&s->stats.connections, 1);
    rill__counter_add(&s->stats.active, 1);
    return 0;
}
