/* Making the Redis source (connect, check the keys' types, create the
 * group: every mistake is reported before the pipeline runs), stopping it,
 * and its counters. The reading loop is in source.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_int.h"

static char *rill__cat(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 1);
    if (s) {
        memcpy(s, a, la);
        memcpy(s + la, b, lb + 1);
    }
    return s;
}

RILL_API int rill_redis_source_add(rill_pipeline *p, const char *name,
                                   const rill_redis_conf *conf, const rill_redis_source_opts *o,
                                   const rill_stage_opts *stage_opts, rill_stage **out, char *err,
                                   size_t errlen) {
    char scratch[8];
    if (!err || !errlen) {
        err = scratch;
        errlen = sizeof scratch;
    }
    err[0] = '\0';
    const char *what = name ? name : "(unnamed)";
    const char *bad = !p ? "p is NULL" : rill__rconf_bad(conf) ? rill__rconf_bad(conf)
                    : !o ? "opts is NULL"
                    : !o->stream || !*o->stream ? "opts->stream is NULL or empty"
                    : !o->consumer || !*o->consumer ? "opts->consumer is NULL or empty" : NULL;
    if (bad) {
        snprintf(err, errlen, "rill_redis_source_add '%s': %s (a Redis source needs a stream "
                 "and a consumer name)", what, bad);
        return RILL_EINVAL;
    }
    rill__rsource *s = calloc(1, sizeof *s);
    if (!s)
        return RILL_ENOMEM;
    int rc = rill__rconn_init(&s->conn, conf); /* conf is good: only ENOMEM is left */
    if (rc) {
        snprintf(err, errlen, "rill_redis_source_add '%s': %s", what, rill_strerror(rc));
        free(s);
        return rc;
    }
    if ((rc = rill__ledger_init(&s->ledger))) {
        rill__rconn_fini(&s->conn);
        free(s);
        return rc;
    }
    s->stream = strdup(o->stream);
    s->group = strdup(o->group ? o->group : "rill");
    s->consumer = strdup(o->consumer);
    s->field = strdup(o->field ? o->field : "line");
    s->dead_key = rill__cat(o->stream, ":dead");
    s->counts_key = rill__cat(o->stream, ":counts");
    s->count = o->count ? (o->count > 4096 ? 4096 : o->count) : 500;
    s->block_ms = o->block_ms ? o->block_ms : 200;
    if (s->conn.timeout_ms < s->block_ms + 1000) /* a long BLOCK is not a lost connection */
        s->conn.timeout_ms = s->block_ms + 1000;
    s->claim_idle_ms = o->claim_idle_ms ? o->claim_idle_ms : 30000;
    s->max_deliveries = o->max_deliveries ? o->max_deliveries : 10;
    s->idle_exit_ms = o->idle_exit_ms;
    s->pending_phase = true;
    strcpy(s->pending_after, "0");
    strcpy(s->claim_cursor, "0-0");
    s->last_entry_ms = rill__ms_now();
    if (!s->stream || !s->group || !s->consumer || !s->field || !s->dead_key || !s->counts_key)
        rc = RILL_ENOMEM;
    if (!rc)
        rc = rill__rconn_open(&s->conn, err, errlen);
    if (!rc)
        rc = rill__rcheck_type(&s->conn, s->stream, "stream", err, errlen);
    if (!rc)
        rc = rill__rcheck_type(&s->conn, s->counts_key, "hash", err, errlen);
    if (!rc)
        rc = rill__rcheck_type(&s->conn, s->dead_key, "stream", err, errlen);
    if (!rc)
        rc = rill__ensure_group(s, err, errlen);
    if (!rc)
        rc = rill_stage_add(p, name, &rill__rsource_ops, s, stage_opts, out);
    if (rc)
        rill__rsource_free(s);
    return rc;
}

RILL_API void rill_redis_source_stop(rill_stage *source) {
    if (source && rill_stage_ops_of(source) == &rill__rsource_ops)
        atomic_store(&((rill__rsource *)rill_stage_state(source))->stop, true);
}

RILL_API int rill_redis_source_stats(const rill_stage *source, rill_redis_stats *out) {
    if (!source || !out || rill_stage_ops_of(source) != &rill__rsource_ops)
        return RILL_EINVAL;
    rill__rsource *s = rill_stage_state(source);
    out->read = atomic_load(&s->ledger.read);
    out->own_pending = atomic_load(&s->ledger.own_pending);
    out->claimed = atomic_load(&s->ledger.claimed);
    out->in_flight_claims = atomic_load(&s->ledger.in_flight_claims);
    out->dead = atomic_load(&s->ledger.dead);
    out->commits = atomic_load(&s->ledger.commits);
    out->refused = atomic_load(&s->ledger.refused);
    out->reconnects = atomic_load(&s->ledger.reconnects);
    return 0;
}
