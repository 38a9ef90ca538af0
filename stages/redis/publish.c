/* The publishing sink (XADD per item, pipelined) and the reader of the
 * committed counts (HSCAN over STREAM:counts). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

#define RILL__PUBLISH_WINDOW 1000 /* commands sent before their replies are read */

typedef struct rill__rpub {
    rill__rconn conn;
    char *stream, *field;
    size_t inflight;
    uint64_t published;
} rill__rpub;

/* Read the replies of every command sent so far. */
static int rill__rpub_drain(rill_stage *st, rill__rpub *s) {
    int rc = 0;
    for (; s->inflight; s->inflight--) {
        void *v = NULL;
        if (redisGetReply(s->conn.c, &v) != REDIS_OK || !v)
            return rill_stage_fail(st, -ECONNRESET, "XADD to '%s': connection lost: %s",
                                   s->stream, s->conn.c->errstr);
        redisReply *r = v;
        if (r->type == REDIS_REPLY_ERROR && !rc)
            rc = rill_stage_fail(st, RILL_ESTAGE, "XADD to '%s': %s", s->stream, r->str);
        else if (r->type != REDIS_REPLY_ERROR)
            s->published++;
        freeReplyObject(r);
    }
    return rc;
}

static int rill__rpub_send(rill_stage *st, void *state, const rill_item *it) {
    rill__rpub *s = state;
    const char *argv[5] = {"XADD", s->stream, "*", s->field, it->data};
    size_t lens[5] = {4, strlen(s->stream), 1, strlen(s->field), it->len};
    if (redisAppendCommandArgv(s->conn.c, 5, argv, lens) != REDIS_OK)
        return rill_stage_fail(st, RILL_ENOMEM, "XADD to '%s': cannot queue the command",
                               s->stream);
    if (++s->inflight >= RILL__PUBLISH_WINDOW)
        return rill__rpub_drain(st, s);
    return 0;
}

static int rill__rpub_close(rill_stage *st, void *state) {
    rill__rpub *s = state;
    return s->conn.c ? rill__rpub_drain(st, s) : 0;
}

static void rill__rpub_free(void *state) {
    rill__rpub *s = state;
    rill__rconn_fini(&s->conn);
    free(s->stream), free(s->field);
    free(s);
}

static const rill_stage_ops rill__rpub_ops = {
    .send = rill__rpub_send, .close = rill__rpub_close, .free = rill__rpub_free};

RILL_API int rill_redis_publish_add(rill_pipeline *p, const char *name,
                                    const rill_redis_conf *conf, const char *stream,
                                    const char *field, const rill_stage_opts *so,
                                    rill_stage **out, char *err, size_t errlen) {
    char scratch[8];
    if (!err || !errlen)
        err = scratch, errlen = sizeof scratch;
    err[0] = '\0';
    const char *bad = !p ? "p is NULL" : rill__rconf_bad(conf) ? rill__rconf_bad(conf)
                    : !stream || !*stream ? "stream is NULL or empty" : NULL;
    if (bad) {
        snprintf(err, errlen, "rill_redis_publish_add '%s': %s", name ? name : "(unnamed)", bad);
        return RILL_EINVAL;
    }
    rill__rpub *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    int rc = rill__rconn_init(&s->conn, conf);
    s->stream = strdup(stream);
    s->field = strdup(field ? field : "line");
    if (!rc && (!s->stream || !s->field))
        rc = RILL_ENOMEM;
    if (!rc)
        rc = rill__rconn_open(&s->conn, err, errlen);
    if (!rc)
        rc = rill__rcheck_type(&s->conn, stream, "stream", err, errlen);
    if (!rc)
        rc = rill_stage_add(p, name, &rill__rpub_ops, s, so, out);
    if (rc)
        rill__rpub_free(s);
    return rc;
}

RILL_API int rill_redis_published(const rill_stage *st, uint64_t *n) {
    if (!st || !n || rill_stage_ops_of(st) != &rill__rpub_ops)
        return RILL_EINVAL;
    *n = ((const rill__rpub *)rill_stage_state(st))->published;
    return 0;
}

RILL_API int rill_redis_counts_read(const rill_redis_conf *conf, const char *stream,
                                    int (*fn)(void *arg, const char *key, size_t len,
                                              uint64_t count),
                                    void *arg, char *err, size_t errlen) {
    char scratch[8];
    if (!err || !errlen)
        err = scratch, errlen = sizeof scratch;
    err[0] = '\0';
    if (!conf || !stream || !fn)
        return RILL_EINVAL;
    rill__rconn c;
    int rc = rill__rconn_init(&c, conf);
    size_t sl = strlen(stream);
    char *key = malloc(sl + 8);
    if (!rc && !key)
        rc = RILL_ENOMEM;
    if (!rc) {
        memcpy(key, stream, sl);
        memcpy(key + sl, ":counts", 8);
        rc = rill__rconn_open(&c, err, errlen);
    }
    if (!rc)
        rc = rill__rcheck_type(&c, stream, "stream", err, errlen);
    if (!rc)
        rc = rill__rcheck_type(&c, key, "hash", err, errlen);
    char cursor[32] = "0";
    do {
        redisReply *r = rc ? NULL : rill__rcmdv(&c, err, errlen, 5, "HSCAN", key, cursor,
                                                "COUNT", "1000");
        if (!r) {
            rc = rc ? rc : -ECONNRESET;
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            snprintf(err, errlen, "HSCAN %s: %s", key, r->type == REDIS_REPLY_ERROR ? r->str : "?");
            rc = RILL_ESTAGE;
        } else {
            snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
            redisReply *kv = r->element[1];
            for (size_t i = 0; i + 1 < kv->elements && !rc; i += 2)
                rc = fn(arg, kv->element[i]->str, kv->element[i]->len,
                        strtoull(kv->element[i + 1]->str, NULL, 10));
        }
        freeReplyObject(r);
    } while (!rc && strcmp(cursor, "0") != 0);
    free(key);
    rill__rconn_fini(&c);
    return rc;
}
