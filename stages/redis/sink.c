/* The counting sink (rill/redis.h): counts keys since the last barrier and
 * at each barrier runs the commit script, which adds the counts to
 * STREAM:counts and acknowledges the batch in one atomic step.
 *
 * Why a retry cannot count twice: the script first checks that every entry
 * of the batch is still pending for this consumer, and changes nothing
 * unless all are. Once it has run, none is pending any more, so a retry
 * after a lost reply is refused; an entry claimed by another worker
 * meanwhile (which counts it itself) also makes it refuse. A refused batch
 * asks the source to read this consumer's pending list again, so the
 * entries still its own are counted once more, in a batch of their own.
 * The script checks the hash's type before any write: Redis does not roll
 * back a script that fails half-way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../hash.h"
#include "redis_int.h"


const char rill__commit_lua[] =
    "local n = tonumber(ARGV[3])\n"
    "local t = redis.call('TYPE', KEYS[2])['ok']\n"
    "if t ~= 'hash' and t ~= 'none' then\n"
    "  return redis.error_reply('WRONGTYPE ' .. KEYS[2] .. ' holds a ' .. t .. ', not a hash')\n"
    "end\n"
    "for i = 4, 3 + n do\n"
    "  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) == 0 then\n"
    "    return 0\n"
    "  end\n"
    "end\n"
    "for i = 4 + n, #ARGV, 2 do\n"
    "  redis.call('HINCRBY', KEYS[2], ARGV[i], ARGV[i + 1])\n"
    "end\n"
    "return redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 4, 3 + n))\n";

typedef struct rill__dslot {
    uint64_t hash, n;
    size_t off, len;
} rill__dslot;

typedef struct rill__rsink {
    rill_stage *st;
    rill__rsource *src;
    rill__rconn conn;
    rill_key_fn key;
    void *key_arg;
    bool deltas; /* items are rill_count_add_deltas' (key, count) items */
    char sha[48];
    rill__dslot *slots; /* counts since the last barrier (n == 0: empty) */
    size_t mask, nkeys;
    char *kbuf;
    size_t kused, kcap;
} rill__rsink;

static int rill__dgrow(rill__rsink *k) {
    size_t cap = k->slots ? (k->mask + 1) * 2 : 256;
    rill__dslot *s = calloc(cap, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    for (size_t i = 0; k->slots && i <= k->mask; i++) {
        if (!k->slots[i].n)
            continue;
        size_t j = k->slots[i].hash & (cap - 1);
        while (s[j].n)
            j = (j + 1) & (cap - 1);
        s[j] = k->slots[i];
    }
    free(k->slots);
    k->slots = s;
    k->mask = cap - 1;
    return 0;
}

static int rill__dadd(rill__rsink *k, const void *key, size_t len, uint64_t n) {
    if ((!k->slots || (k->nkeys + 1) * 2 > k->mask + 1) && rill__dgrow(k))
        return RILL_ENOMEM;
    uint64_t h = rill__hash_bytes(key, len);
    size_t j = h & k->mask;
    for (; k->slots[j].n; j = (j + 1) & k->mask) {
        rill__dslot *d = &k->slots[j];
        if (d->hash == h && d->len == len && memcmp(k->kbuf + d->off, key, len) == 0) {
            d->n += n;
            return 0;
        }
    }
    if (k->kcap - k->kused < len) {
        size_t cap = k->kcap ? k->kcap * 2 : 4096;
        while (cap - k->kused < len)
            cap *= 2;
        char *b = realloc(k->kbuf, cap);
        if (!b)
            return RILL_ENOMEM;
        k->kbuf = b;
        k->kcap = cap;
    }
    memcpy(k->kbuf + k->kused, key, len);
    k->slots[j] = (rill__dslot){.hash = h, .n = n, .off = k->kused, .len = len};
    k->kused += len;
    k->nkeys++;
    return 0;
}

static int rill__rsink_send(rill_stage *st, void *state, const rill_item *it) {
    rill__rsink *k = state;
    const void *key = it->data;
    size_t len = it->len;
    uint64_t n = 1;
    if (k->deltas && rill_count_delta_parse(it, &key, &len, &n))
        return rill_stage_fail(st, RILL_EINVAL, "an item of %zu bytes is not a count delta "
                               "(feed this sink from rill_count_add_deltas)", it->len);
    if (!k->deltas && k->key)
        k->key(it, k->key_arg, &key, &len);
    if (rill__dadd(k, key, len, n))
        return rill_stage_fail(st, RILL_ENOMEM, "out of memory for the counts of a checkpoint");
    return 0;
}

static int rill__load_script(rill__rsink *k, char *err, size_t errlen) {
    redisReply *r = rill__rcmdv(&k->conn, err, errlen, 3, "SCRIPT", "LOAD", rill__commit_lua);
    if (!r)
        return -ECONNRESET;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING)
        snprintf(k->sha, sizeof k->sha, "%s", r->str);
    else {
        snprintf(err, errlen, "SCRIPT LOAD: %s", r->type == REDIS_REPLY_ERROR ? r->str : "?");
        rc = RILL_ESTAGE;
    }
    freeReplyObject(r);
    return rc;
}

static int rill__setup_script(void *arg, char *err, size_t errlen) {
    return rill__load_script(arg, err, errlen);
}

/* The EVALSHA's arguments: the batch's IDs, then key/count pairs. */
static int rill__commit_argv(rill__rsink *k, const rill__batch *b, const char ***argv,
                             size_t **lens, char **nums) {
    size_t argc = 8 + b->n + 2 * k->nkeys;
    *argv = malloc(argc * sizeof **argv);
    *lens = malloc(argc * sizeof **lens);
    *nums = malloc(24 * (k->nkeys + 1));
    if (!*argv || !*lens || !*nums)
        return -1;
    const char **a = *argv;
    size_t *l = *lens, i = 0;
    a[i++] = "EVALSHA", a[i++] = k->sha, a[i++] = "2", a[i++] = k->src->stream;
    a[i++] = k->src->counts_key, a[i++] = k->src->group, a[i++] = k->src->consumer;
    char *np = *nums;
    np += sprintf(np, "%zu", b->n) + 1;
    a[i++] = *nums;
    for (size_t j = 0; j < i; j++)
        l[j] = strlen(a[j]);
    for (size_t j = 0; j < b->n; j++, i++) {
        a[i] = b->ids[j];
        l[i] = strlen(b->ids[j]);
    }
    for (size_t j = 0; k->slots && j <= k->mask; j++) {
        if (!k->slots[j].n)
            continue;
        a[i] = k->kbuf + k->slots[j].off, l[i++] = k->slots[j].len;
        int w = sprintf(np, "%llu", (unsigned long long)k->slots[j].n);
        a[i] = np, l[i++] = (size_t)w;
        np += w + 1;
    }
    return (int)i;
}

static int rill__rsink_commit(rill_stage *st, rill__rsink *k, rill__batch *b) {
    if (!b)
        return rill_stage_fail(st, RILL_ESTAGE, "a barrier with no batch in the ledger");
    const char **argv = NULL;
    size_t *lens = NULL;
    char *nums = NULL, err[256] = "";
    int rc = 0, argc = rill__commit_argv(k, b, &argv, &lens, &nums);
    if (argc < 0)
        rc = rill_stage_fail(st, RILL_ENOMEM, "out of memory for a commit");
    uint64_t end = rill__ms_now() + 2ull * k->conn.reconnect_ms; /* lost on every try */
    for (int tries = 0; !rc; tries++) {
        if (!k->conn.c) {
            if ((rc = rill__rconn_reopen(&k->conn, &k->src->stop, rill__setup_script, k, err,
                                         sizeof err))) {
                rc = rill_stage_fail(st, rc, "commit: %s", err);
                break;
            }
            atomic_fetch_add(&k->src->ledger.reconnects, 1);
        }
        argv[1] = k->sha;
        redisReply *r = rill__rcmd(&k->conn, argc, argv, lens, err, sizeof err);
        if (!r && rill__ms_now() < end)
            continue; /* reconnect and run it again: the script makes that safe */
        if (!r) {
            rc = rill_stage_fail(st, -ECONNRESET, "commit: %s", err);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0 && tries < 3) {
            rc = rill__load_script(k, err, sizeof err); /* a restarted server */
            if (rc && rc != -ECONNRESET)
                rc = rill_stage_fail(st, rc, "commit: %s", err);
        } else if (r->type == REDIS_REPLY_INTEGER) {
            if (r->integer == (long long)b->n)
                atomic_fetch_add(&k->src->ledger.commits, 1);
            else { /* claimed meanwhile, or committed before a lost reply */
                atomic_fetch_add(&k->src->ledger.refused, 1);
                atomic_store(&k->src->ledger.resync, true);
            }
            freeReplyObject(r);
            break;
        } else
            rc = rill_stage_fail(st, RILL_ESTAGE, "commit to '%s': %s", k->src->counts_key,
                                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        if (rc == -ECONNRESET)
            rc = 0;
    }
    free(argv), free(lens), free(nums);
    if (k->slots)
        memset(k->slots, 0, (k->mask + 1) * sizeof *k->slots);
    k->nkeys = k->kused = 0;
    return rc;
}

static int rill__rsink_barrier(rill_stage *st, void *state, uint64_t id) {
    rill__rsink *k = state;
    rill__batch *b = rill__ledger_take(&k->src->ledger, id);
    int rc = rill__rsink_commit(st, k, b);
    if (b)
        rill__ledger_done(&k->src->ledger, b);
    rill__batch_free(b);
    return rc;
}

static int rill__rsink_close(rill_stage *st, void *state) {
    (void)st;
    rill__rsink *k = state;
    rill__rconn_close(&k->conn);
    return 0; /* counts after the last barrier were never acked: redelivered */
}

static void rill__rsink_free(void *state) {
    rill__rsink *k = state;
    rill__rconn_fini(&k->conn);
    free(k->slots);
    free(k->kbuf);
    free(k);
}

static const rill_stage_ops rill__rsink_ops = {
    .send = rill__rsink_send,
    .barrier = rill__rsink_barrier,
    .close = rill__rsink_close,
    .free = rill__rsink_free,
};

static int rill__rsink_add(rill_pipeline *p, const char *name, rill_stage *source,
                           rill_key_fn key, void *key_arg, bool deltas,
                           const rill_stage_opts *so, rill_stage **out) {
    const char *fn = deltas ? "rill_redis_sink_add_deltas" : "rill_redis_sink_add";
    const char *what = name ? name : "(unnamed)";
    if (!p)
        return RILL_EINVAL;
    if (!source)
        return rill_pipeline_setup_error(p, RILL_EINVAL, "%s '%s': source is NULL", fn, what);
    if (rill_stage_ops_of(source) != &rill__rsource_ops)
        return rill_pipeline_setup_error(p, RILL_EINVAL, "%s '%s': source '%s' is not a Redis "
                                         "source (from rill_redis_source_add)", fn, what,
                                         rill_stage_name(source));
    rill__rsource *src = rill_stage_state(source);
    if (src->sink) /* one sink per source: it owns the batches' commits */
        return rill_pipeline_setup_error(p, RILL_EEXIST, "%s '%s': source '%s' has a sink "
                                         "already", fn, what, rill_stage_name(source));
    rill__rsink *k = calloc(1, sizeof *k);
    if (!k)
        return RILL_ENOMEM;
    rill_redis_conf conf = {.host = src->conn.host, .port = src->conn.port,
                            .password = src->conn.password, .timeout_ms = src->conn.timeout_ms,
                            .reconnect_ms = src->conn.reconnect_ms};
    k->src = src;
    k->key = key;
    k->key_arg = key_arg;
    k->deltas = deltas;
    char err[256] = "";
    int rc = rill__rconn_init(&k->conn, &conf);
    if (!rc)
        rc = rill__rconn_open(&k->conn, err, sizeof err);
    if (!rc)
        rc = rill__load_script(k, err, sizeof err);
    if (rc && err[0]) /* the reason the connection or the script failed */
        rill_pipeline_setup_error(p, rc, "%s '%s': %s", fn, what, err);
    if (!rc)
        rc = rill_stage_add(p, name, &rill__rsink_ops, k, so, &k->st);
    if (rc) {
        rill__rsink_free(k);
        return rc;
    }
    src->sink = k;
    if (out)
        *out = k->st;
    return 0;
}

RILL_API int rill_redis_sink_add(rill_pipeline *p, const char *name, rill_stage *source,
                                 rill_key_fn key, void *key_arg, const rill_stage_opts *so,
                                 rill_stage **out) {
    return rill__rsink_add(p, name, source, key, key_arg, false, so, out);
}

RILL_API int rill_redis_sink_add_deltas(rill_pipeline *p, const char *name, rill_stage *source,
                                        const rill_stage_opts *so, rill_stage **out) {
    return rill__rsink_add(p, name, source, NULL, NULL, true, so, out);
}
