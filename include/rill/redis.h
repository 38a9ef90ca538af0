/* rill — Redis Streams: a consumer-group source and a counting sink that
 * commits exactly once (librill_redis, link with -lrill_redis -lrill).
 *
 * Several worker processes share one stream through a consumer group. The
 * source reads batches of entries (XREADGROUP), emits one item per entry
 * (the value of one field, "line" by default) and after each batch a
 * checkpoint barrier. The sink counts the keys of the items it receives and,
 * when a barrier arrives, adds the counts since the previous barrier to the
 * hash STREAM:counts and acknowledges the batch's entries in one atomic step
 * (a Lua script). A worker killed at any moment has therefore changed
 * nothing that its unacknowledged entries stand for; another worker claims
 * them once they have been idle long enough (or the same worker, restarted
 * under its name, reads them first). Totals are exact: see docs/redis.md for
 * the argument, reconnects and retries.
 *
 * Threading: the source makes blocking calls with timeouts from the thread
 * that runs it (docs/redis.md says why); give it RILL_STAGE_THREADED when
 * other sources share its thread. The sink makes its calls on its own
 * thread. The two share a ledger of batches under a mutex.
 *
 * No password is ever taken from, or written to, a command line or a log:
 * rill_redis_conf.password comes from the caller (ip_stats reads it from
 * RILL_REDIS_PASSWORD or the file named by RILL_REDIS_PASSWORD_FILE).
 */
#ifndef RILL_REDIS_H
#define RILL_REDIS_H

#include <stdint.h>

#include "rill/pipeline.h"
#include "rill/stages.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where the server is. Strings are copied by the calls that take a conf. */
typedef struct rill_redis_conf {
    const char *host;      /* IPv4/IPv6 address or name */
    uint16_t port;
    const char *password;  /* NULL: no AUTH. Never logged */
    unsigned timeout_ms;   /* connect and per-command timeout; 0 = 2000 */
    unsigned reconnect_ms; /* once connected, a lost connection is retried with
                              backoff for this long before the stage fails;
                              0 = 30000. The first connect is never retried */
} rill_redis_conf;

/* Parse "HOST:PORT" (an IPv6 host in brackets: "[::1]:6379") into conf,
 * copying the host into host[hostlen]. Returns 0 or RILL_EINVAL (no port, a
 * port outside 1..65535, an empty or too long host). */
int rill_redis_parse_addr(const char *addr, rill_redis_conf *conf, char *host, size_t hostlen);

typedef struct rill_redis_source_opts {
    const char *stream;      /* the stream key (required) */
    const char *group;       /* consumer group; NULL = "rill". Created at the
                                stream's start (id 0) if missing */
    const char *consumer;    /* this worker's name in the group (required):
                                a worker restarted under the same name reads
                                its own pending entries first */
    const char *field;       /* the entry field an item carries; NULL = "line".
                                An entry without it goes to STREAM:dead */
    unsigned count;          /* entries per read, and so per checkpoint; 0 = 500;
                                at most 4096 (a larger value is taken as 4096) */
    unsigned block_ms;       /* XREADGROUP BLOCK; 0 = 200 (the command timeout
                                is raised to block_ms + 1 s if below) */
    unsigned claim_idle_ms;  /* claim others' entries pending longer; 0 = 30000 */
    unsigned max_deliveries; /* an entry delivered more often than this goes
                                to STREAM:dead (and is acknowledged); 0 = 10 */
    unsigned idle_exit_ms;   /* end (RILL_EDONE) once nothing new has come for
                                this long and nothing is pending in the group;
                                0 = run until rill_redis_source_stop */
} rill_redis_source_opts;

/* Add the source. Connects, authenticates and creates the group now (so a
 * wrong address, password or key type is reported here, with the reason in
 * err[errlen] when err is not NULL). On success *out (if not NULL) is the
 * stage. Returns 0, RILL_EINVAL (missing stream or consumer), -ECONNREFUSED
 * or another -errno for a connection that failed, RILL_ESTAGE for a refusal
 * by the server (wrong type at the key, bad password), RILL_ENOMEM, or what
 * rill_stage_add returns. */
int rill_redis_source_add(rill_pipeline *p, const char *name, const rill_redis_conf *conf,
                          const rill_redis_source_opts *opts, const rill_stage_opts *stage_opts,
                          rill_stage **out, char *err, size_t errlen);

/* Ask the source to end after the batch it is in (its checkpoint is still
 * committed): produce then returns RILL_EDONE. One atomic store: callable
 * from any thread and from a signal handler. */
void rill_redis_source_stop(rill_stage *source);

/* Add the sink for source: it counts the key of each item (key NULL: the
 * whole item; rill_key_first_field: a log line's client address) and commits
 * at each of the source's barriers. It opens a connection of its own with
 * the source's conf (connected, and the commit script loaded, now).
 * The pipeline owns it; results live in Redis. Call before the pipeline
 * runs, on the thread that builds it. Returns 0, RILL_EINVAL (source is not
 * a Redis source), RILL_EEXIST (source has a sink already: one sink commits
 * its batches), -errno for a connection that failed, RILL_ESTAGE (the
 * server refused AUTH or SCRIPT LOAD), RILL_ENOMEM, or what rill_stage_add
 * returns. */
int rill_redis_sink_add(rill_pipeline *p, const char *name, rill_stage *source, rill_key_fn key,
                        void *key_arg, const rill_stage_opts *stage_opts, rill_stage **out);

/* Add a sink that appends each item to stream as one entry with one field
 * (NULL: "line"), with XADD STREAM * FIELD ITEM, pipelined (up to 1000
 * commands in flight; close waits for every reply). Connects and checks the
 * key's type now, with the reason in err[errlen]. Returns 0, -errno for a
 * failed connection, RILL_ESTAGE for a key of another type, RILL_ENOMEM, or
 * what rill_stage_add returns. A lost connection fails the stage (entries
 * whose replies were not read may or may not have been added). */
int rill_redis_publish_add(rill_pipeline *p, const char *name, const rill_redis_conf *conf,
                           const char *stream, const char *field,
                           const rill_stage_opts *stage_opts, rill_stage **out, char *err,
                           size_t errlen);

/* Entries the publish sink st has added (replies read), for after close. */
int rill_redis_published(const rill_stage *st, uint64_t *n);

/* Call fn for every key/count of STREAM:counts (HSCAN: a key may come twice
 * if the hash changes meanwhile; read it when the workers are done). fn's
 * non-zero return stops the walk and is returned. key is valid for the
 * call. Opens and closes a connection of its own; the reason of a failure
 * in err[errlen]. Returns 0, -errno, RILL_ESTAGE (a key of another type), or
 * fn's code. Blocking; any thread. */
int rill_redis_counts_read(const rill_redis_conf *conf, const char *stream,
                           int (*fn)(void *arg, const char *key, size_t len, uint64_t count),
                           void *arg, char *err, size_t errlen);

/* Add the sink for source fed with the delta items of a count reducer made
 * with rill_count_add_deltas (rill/count.h), which emits them at each
 * barrier: the way to count in other threads or replicas and still commit
 * once per barrier. Same contract as rill_redis_sink_add; an item that is
 * not a delta fails the pipeline. */
int rill_redis_sink_add_deltas(rill_pipeline *p, const char *name, rill_stage *source,
                               const rill_stage_opts *stage_opts, rill_stage **out);

typedef struct rill_redis_stats {
    uint64_t read;        /* entries emitted (a redelivered entry counts again) */
    uint64_t own_pending; /* of those, read back from this consumer's pending list */
    uint64_t claimed;     /* of those, claimed from other consumers */
    uint64_t dead;        /* entries moved to STREAM:dead */
    uint64_t commits;     /* checkpoints committed (counts added and entries acked) */
    uint64_t refused;     /* checkpoints not applied: their entries were no longer
                             all this consumer's (claimed, or already committed
                             before a lost reply); they are read again */
    uint64_t reconnects;  /* connections re-established */
    uint64_t in_flight_claims; /* this consumer's own entries that XAUTOCLAIM
                                  returned while their checkpoint was still to
                                  be committed (a commit slower than
                                  claim_idle_ms): skipped, not emitted again;
                                  each such claim adds one to the entry's
                                  delivery count */
} rill_redis_stats;

/* Counters of source (and its sink). Any thread; each is exact on its own,
 * not as a set while the pipeline runs. RILL_EINVAL if not a Redis source. */
int rill_redis_source_stats(const rill_stage *source, rill_redis_stats *out);

#ifdef __cplusplus
}
#endif
#endif
