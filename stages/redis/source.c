/* The Redis Streams source (rill/redis.h). Each produce call makes one read
 * and emits one batch: this consumer's own pending entries first after a
 * (re)start or a refused commit, then entries claimed from idle consumers
 * (XAUTOCLAIM), then new ones (XREADGROUP ... >). A batch is its entries as
 * items, then a barrier whose id the ledger maps to the batch's entry IDs;
 * the sink commits them at that barrier (sink.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"


enum { RILL__NEW, RILL__OWN, RILL__CLAIMED };

/* A reply the items point into, freed when the last item is released. */
typedef struct rill__rbox {
    rill_ref ref;
    redisReply *r;
} rill__rbox;

static void rill__rbox_release(rill_ref *ref) {
    rill__rbox *b = (rill__rbox *)ref;
    freeReplyObject(b->r);
    free(b);
}

const char rill__dead_lua[] =
    "local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1, ARGV[2])\n"
    "if #p == 0 then return 0 end\n"
    "redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'reason', ARGV[4], 'deliveries',\n"
    "           p[1][4], unpack(ARGV, 5))\n"
    "return redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])\n";

int rill__ensure_group(rill__rsource *s, char *err, size_t errlen) {
    redisReply *r = rill__rcmdv(&s->conn, err, errlen, 6, "XGROUP", "CREATE", s->stream,
                                s->group, "0", "MKSTREAM");
    if (!r)
        return -ECONNRESET;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
        snprintf(err, errlen, "cannot create group '%s' on '%s': %s", s->group, s->stream, r->str);
        rc = RILL_ESTAGE;
    }
    freeReplyObject(r);
    return rc;
}

static int rill__setup_group(void *arg, char *err, size_t errlen) {
    return rill__ensure_group(arg, err, errlen);
}

/* After a connection loss: connect again (with backoff), then read this
 * consumer's pending entries first. */
static int rill__reconnect(rill_stage *st, rill__rsource *s, const char *why) {
    char err[256];
    int rc = rill__rconn_reopen(&s->conn, &s->stop, rill__setup_group, s, err, sizeof err);
    if (!rc)
        atomic_fetch_add(&s->ledger.reconnects, 1);
    if (rc)
        return rill_stage_fail(st, rc, "%s; then %s", why, err);
    s->pending_phase = true;
    strcpy(s->pending_after, "0");
    return 0;
}

/* Move entry e to STREAM:dead and ack it, if it is still this consumer's.
 * A lost connection leaves it pending here, to be tried again when the
 * pending list is read after the reconnect that the loss leads to; an error
 * reply (a wrong type at the dead-letter key) fails the stage, since the
 * entry would otherwise stay pending and come back on every read. The
 * argument list holds every field of the entry: a cut list could end on a
 * field without its value, which XADD refuses. */
static int rill__dead_letter(rill_stage *st, rill__rsource *s, redisReply *e,
                            const char *reason) {
    redisReply *f = e->element[1];
    size_t nf = f && f->type == REDIS_REPLY_ARRAY ? f->elements & ~(size_t)1 : 0;
    const char **argv = malloc((9 + nf) * sizeof *argv);
    size_t *lens = malloc((9 + nf) * sizeof *lens);
    if (!argv || !lens) {
        free(argv), free(lens);
        return rill_stage_fail(st, RILL_ENOMEM, "out of memory to dead-letter entry %s of '%s'",
                               e->element[0]->str, s->stream);
    }
    const char *fixed[] = {"EVAL", rill__dead_lua, "2", s->stream, s->dead_key, s->group,
                           s->consumer, e->element[0]->str, reason};
    size_t n = 0;
    for (; n < 9; n++) {
        argv[n] = fixed[n];
        lens[n] = strlen(fixed[n]);
    }
    for (size_t i = 0; i < nf; i++, n++) {
        argv[n] = f->element[i]->str;
        lens[n] = f->element[i]->len;
    }
    char err[256];
    redisReply *r = rill__rcmd(&s->conn, (int)n, argv, lens, err, sizeof err);
    free(argv), free(lens);
    int rc = 0;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 1)
        atomic_fetch_add(&s->ledger.dead, 1);
    else if (r && r->type == REDIS_REPLY_ERROR)
        rc = rill_stage_fail(st, RILL_ESTAGE, "dead-lettering entry %s of '%s' to '%s': %s",
                             e->element[0]->str, s->stream, s->dead_key, r->str);
    if (r)
        freeReplyObject(r);
    return rc;
}

/* Delivery counts of a batch read from a pending list, in entry order
 * (XPENDING returns the range in ID order, as the batch is). */
static void rill__deliveries(rill__rsource *s, redisReply *ents, long long *out) {
    size_t n = ents->elements;
    for (size_t i = 0; i < n; i++)
        out[i] = 1;
    char cnt[24], err[256];
    snprintf(cnt, sizeof cnt, "%zu", n);
    redisReply *r = rill__rcmdv(&s->conn, err, sizeof err, 7, "XPENDING", s->stream, s->group,
                                ents->element[0]->element[0]->str,
                                ents->element[n - 1]->element[0]->str, cnt, s->consumer);
    if (!r)
        return; /* the next command reconnects */
    size_t j = 0;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *p = r->element[i];
        if (p->type != REDIS_REPLY_ARRAY || p->elements < 4)
            continue;
        while (j < n && strcmp(ents->element[j]->element[0]->str, p->element[0]->str) < 0)
            j++;
        if (j < n && strcmp(ents->element[j]->element[0]->str, p->element[0]->str) == 0)
            out[j] = p->element[3]->integer;
    }
    freeReplyObject(r);
}

/* The value of the configured field in an entry's field list, or NULL. */
static redisReply *rill__field(const rill__rsource *s, redisReply *f) {
    if (!f || f->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (strcmp(f->element[i]->str, s->field) == 0)
            return f->element[i + 1];
    return NULL;
}

/* Emit one batch (ents: [id, fields] pairs inside reply r, which this call
 * owns), record it in the ledger and emit its barrier. */
static int rill__emit_batch(rill_stage *st, rill__rsource *s, redisReply *r, redisReply *ents,
                            int kind) {
    size_t n = ents->elements;
    rill__rbox *box = malloc(sizeof *box);
    char **ids = calloc(n ? n : 1, sizeof *ids);
    long long *dl = kind == RILL__NEW ? NULL : malloc(n * sizeof *dl);
    if (!box || !ids || (kind != RILL__NEW && !dl)) {
        free(box), free(ids), free(dl), freeReplyObject(r);
        return rill_stage_fail(st, RILL_ENOMEM, "out of memory for a batch of %zu entries", n);
    }
    box->r = r;
    rill_ref_init(&box->ref, rill__rbox_release);
    if (dl)
        rill__deliveries(s, ents, dl);
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        redisReply *e = ents->element[i];
        if (kind == RILL__CLAIMED && rill__ledger_holds(&s->ledger, e->element[0]->str)) {
            /* Ours, in a batch whose commit is still to come: emitting it
             * again would read it twice for nothing (the second commit is
             * refused) or, past max_deliveries, send a good entry to the
             * dead letters. XAUTOCLAIM did add one to its delivery count
             * (one per claim_idle_ms of commit delay), looked at only if
             * the pending list is read again (docs/redis.md). */
            atomic_fetch_add(&s->ledger.in_flight_claims, 1);
            continue;
        }
        redisReply *v = rill__field(s, e->element[1]);
        bool deleted = e->element[1]->type == REDIS_REPLY_NIL;
        if (!deleted && (!v || (dl && dl[i] > (long long)s->max_deliveries))) {
            rc = rill__dead_letter(st, s, e, v ? "too many deliveries" : "no such field");
            continue;
        }
        if (!(ids[k] = strdup(e->element[0]->str))) {
            rc = rill_stage_fail(st, RILL_ENOMEM, "out of memory for the entry IDs of '%s'",
                                 s->stream);
            break;
        }
        k++; /* a deleted entry is acknowledged with the batch, counting nothing */
        if (deleted)
            continue;
        rill_item it = {.data = v->str, .len = v->len, .owner = &box->ref};
        rc = rill_emit(st, &it);
    }
    rill_ref_release(&box->ref);
    free(dl);
    atomic_fetch_add(&s->ledger.read, k);
    if (kind == RILL__OWN)
        atomic_fetch_add(&s->ledger.own_pending, k);
    else if (kind == RILL__CLAIMED)
        atomic_fetch_add(&s->ledger.claimed, k);
    if (rc || k == 0) {
        for (size_t i = 0; i < k; i++)
            free(ids[i]);
        free(ids);
        return rc;
    }
    uint64_t id = ++s->next_barrier;
    if ((rc = rill__ledger_put(&s->ledger, id, ids, k))) {
        for (size_t i = 0; i < k; i++)
            free(ids[i]);
        free(ids);
        return rill_stage_fail(st, rc, "out of memory for the ledger");
    }
    return rill_emit_barrier(st, id);
}

/* The entries array inside an XREADGROUP reply, or NULL if none. */
static redisReply *rill__xread_entries(redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return NULL;
    redisReply *sk = r->element[0];
    if (sk->type != REDIS_REPLY_ARRAY || sk->elements < 2 ||
        sk->element[1]->type != REDIS_REPLY_ARRAY || sk->element[1]->elements == 0)
        return NULL;
    return sk->element[1];
}

/* Nothing pending in the whole group? (-1 on a lost connection) */
static int rill__group_idle(rill__rsource *s) {
    char err[256];
    redisReply *r = rill__rcmdv(&s->conn, err, sizeof err, 3, "XPENDING", s->stream, s->group);
    if (!r)
        return -1;
    int idle = r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
               r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 0;
    freeReplyObject(r);
    return idle;
}

static int rill__rsource_produce(rill_stage *st, void *state) {
    rill__rsource *s = state;
    int stopped = rill_pipeline_stopped(rill_stage_pipeline(st));
    if (stopped)
        return stopped;
    if (atomic_load(&s->stop))
        return RILL_EDONE;
    if (!s->conn.c) {
        int rc = rill__reconnect(st, s, "connection lost");
        if (rc)
            return rc;
    }
    if (atomic_exchange(&s->ledger.resync, false)) {
        s->pending_phase = true;
        strcpy(s->pending_after, "0");
    }
    char cnt[24], blk[24], idle[24], err[256];
    snprintf(cnt, sizeof cnt, "%u", s->count);
    snprintf(blk, sizeof blk, "%u", s->block_ms);
    snprintf(idle, sizeof idle, "%u", s->claim_idle_ms);
    redisReply *r = NULL;
    if (s->pending_phase) {
        if (rill__ledger_open(&s->ledger)) { /* batches in flight are pending too */
            rill__sleep_ms(1);
            return 0;
        }
        r = rill__rcmdv(&s->conn, err, sizeof err, 9, "XREADGROUP", "GROUP", s->group,
                        s->consumer, "COUNT", cnt, "STREAMS", s->stream, s->pending_after);
        if (!r)
            return rill__reconnect(st, s, err);
        redisReply *ents = r->type == REDIS_REPLY_ERROR ? NULL : rill__xread_entries(r);
        if (!ents) {
            s->pending_phase = false;
            freeReplyObject(r);
            return 0;
        }
        snprintf(s->pending_after, sizeof s->pending_after, "%s",
                 ents->element[ents->elements - 1]->element[0]->str);
        return rill__emit_batch(st, s, r, ents, RILL__OWN);
    }
    uint64_t now = rill__ms_now();
    if (now - s->last_claim_ms >= s->claim_idle_ms / 4 + 1) {
        s->last_claim_ms = now;
        r = rill__rcmdv(&s->conn, err, sizeof err, 8, "XAUTOCLAIM", s->stream, s->group,
                        s->consumer, idle, s->claim_cursor, "COUNT", cnt);
        if (!r)
            return rill__reconnect(st, s, err);
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2) {
            snprintf(s->claim_cursor, sizeof s->claim_cursor, "%s", r->element[0]->str);
            redisReply *ents = r->element[1];
            if (ents->type == REDIS_REPLY_ARRAY && ents->elements > 0)
                return rill__emit_batch(st, s, r, ents, RILL__CLAIMED);
        }
        freeReplyObject(r);
    }
    rill_stage_flush(st); /* nothing waits behind a blocking read */
    r = rill__rcmdv(&s->conn, err, sizeof err, 11, "XREADGROUP", "GROUP", s->group, s->consumer,
                    "COUNT", cnt, "BLOCK", blk, "STREAMS", s->stream, ">");
    if (!r)
        return rill__reconnect(st, s, err);
    if (r->type == REDIS_REPLY_ERROR) {
        bool nogroup = strncmp(r->str, "NOGROUP", 7) == 0;
        int rc = nogroup ? rill__ensure_group(s, err, sizeof err) : RILL_ESTAGE;
        if (!nogroup)
            snprintf(err, sizeof err, "XREADGROUP on '%s': %s", s->stream, r->str);
        freeReplyObject(r);
        return rc ? rill_stage_fail(st, rc, "%s", err) : 0;
    }
    redisReply *ents = rill__xread_entries(r);
    if (ents) {
        s->last_entry_ms = rill__ms_now();
        return rill__emit_batch(st, s, r, ents, RILL__NEW);
    }
    freeReplyObject(r);
    if (s->idle_exit_ms && rill__ms_now() - s->last_entry_ms >= s->idle_exit_ms &&
        !rill__ledger_open(&s->ledger)) {
        int done = rill__group_idle(s);
        if (done < 0)
            return rill__reconnect(st, s, "connection lost");
        if (done)
            return RILL_EDONE;
    }
    return 0;
}

static int rill__rsource_close(rill_stage *st, void *state) {
    (void)st;
    rill__rsource *s = state;
    rill__rconn_close(&s->conn);
    return 0;
}

void rill__rsource_free(void *state) {
    rill__rsource *s = state;
    rill__rconn_fini(&s->conn);
    rill__ledger_fini(&s->ledger);
    free(s->stream), free(s->group), free(s->consumer), free(s->field);
    free(s->dead_key), free(s->counts_key);
    free(s);
}

const rill_stage_ops rill__rsource_ops = {
    .produce = rill__rsource_produce,
    .close = rill__rsource_close,
    .free = rill__rsource_free,
};
